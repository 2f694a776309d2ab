/**
 * Settings of the local provider (the keys beside `name: local` in config.yml), and the names it
 * accepts. Kept free of heavy imports: `validate` loads this without touching QEMU.
 */
import { z } from 'zod';
import { ignored, launchOptions } from '../kit/options.js';

/** The base this provider builds itself from Debian packages. */
export const DEBIAN_BASE = 'debian-12';

/** Image names end up in file names and host names: keep them DNS-label-like (as the config does). */
export const IMAGE_NAME = /^[a-z][a-z0-9-]*$/;
export const IMAGE_NAME_MAX = 48;

/** Extra base names share the image-name rules, so they are safe as cache folder names. */
const BASE_NAME = /^[a-z][a-z0-9-]*$/;

const checksum = z
  .string()
  .regex(/^sha256:[0-9a-fA-F]{64}$/, 'a checksum is "sha256:" followed by 64 hex digits')
  .transform((s) => s.toLowerCase());

const downloadUrl = z
  .string()
  .regex(/^(https?|file):\/\/\S+$/, 'a URL starts with http://, https:// or file://');

const artifact = z.strictObject({
  url: downloadUrl.describe('Where to download it from (http://, https:// or file://).'),
  checksum: checksum.describe('sha256 of the file: "sha256:<hex>". Required: downloads are verified.'),
});

export const baseSettingsSchema = z
  .strictObject({
    url: downloadUrl.describe('Disk image (qcow2 or raw), e.g. a distribution cloud image.'),
    checksum: checksum.describe('sha256 of the disk image: "sha256:<hex>".'),
    kernel: artifact.optional().describe('Boot this kernel directly instead of the image\'s own boot loader.'),
    initrd: artifact.optional().describe('Initial ramdisk for `kernel`.'),
    append: z.string().optional().describe('Kernel command line for `kernel` (default: root=/dev/vda1 rw console=ttyS0).'),
  })
  .refine((b) => !b.initrd || b.kernel, { message: '`initrd` needs `kernel`', path: ['initrd'] })
  .refine((b) => b.append === undefined || b.kernel, { message: '`append` needs `kernel`', path: ['append'] });

export const localSettingsSchema = z.strictObject({
  memory: z.number().int().min(128).max(1_048_576).default(1024).describe('MiB of memory for each machine.'),
  cpus: z.number().int().min(1).max(256).default(2).describe('Virtual CPUs for each machine.'),
  accelerator: z
    .enum(['auto', 'kvm', 'tcg'])
    .default('auto')
    .describe('auto: KVM when a probe guest really runs under it, otherwise TCG (software emulation).'),
  mirror: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'a mirror URL starts with http:// or https://')
    .optional()
    .describe('Debian mirror for building debian-12 (default: the one this machine\'s apt uses).'),
  'stop-timeout': z
    .number()
    .int()
    .min(1)
    .max(3600)
    .default(60)
    .describe('Seconds a machine gets to power off by itself when stopped; then its power button is pressed, and after as long again it is killed.'),
  'warm-builders': z
    .boolean()
    .default(true)
    .describe('Under TCG, builders from a base resume a machine saved once after its boot instead of booting (about 1 s instead of 10 or more).'),
  'disk-size': z
    .number()
    .int()
    .min(1)
    .max(2048)
    .default(8)
    .describe('GiB: virtual size of the debian-12 disk (sparse; only what is written takes space).'),
  bases: z
    .record(
      z.string().regex(BASE_NAME, 'a base name is lower-case letters, digits and hyphens, starting with a letter').max(48),
      baseSettingsSchema,
    )
    .default({})
    .refine((b) => !(DEBIAN_BASE in b), { message: `"${DEBIAN_BASE}" is built in and cannot be redefined` })
    .describe('Extra base images, by name: downloaded once, verified, cached.'),
});

export type LocalSettings = z.output<typeof localSettingsSchema>;
export type BaseSettings = z.output<typeof baseSettingsSchema>;

export function knownBaseRefs(settings: LocalSettings): string[] {
  return [DEBIAN_BASE, ...Object.keys(settings.bases ?? {})];
}

export function checkBaseRef(ref: string, settings: LocalSettings): string | undefined {
  const known = knownBaseRefs(settings);
  if (known.includes(ref)) return undefined;
  return `the local provider has no base image "${ref}" (it has: ${known.join(', ')}; add others under provider.bases)`;
}

export function checkImageName(name: string): string | undefined {
  if (name.length > IMAGE_NAME_MAX) return `the local provider takes image names of at most ${IMAGE_NAME_MAX} characters`;
  if (!IMAGE_NAME.test(name)) return 'the local provider takes image names of lower-case letters, digits and hyphens, starting with a letter';
  return undefined;
}

/**
 * Launch options this provider takes. A cloud `size` or `region` is accepted and ignored: the
 * same image config is meant to work on every provider.
 */
export const machineOptionsSchema = launchOptions({
  memory: z.number().int().min(128).optional(),
  cpus: z.number().int().min(1).optional(),
  /** "HOST:GUEST" or "ADDRESS:HOST:GUEST" TCP forwards; the address defaults to 127.0.0.1. */
  ports: z
    .array(z.string().regex(/^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})$/, 'a port forward is "HOST:GUEST", e.g. "8080:80"'))
    .optional(),
  size: ignored,
  region: ignored,
});
export type MachineOptions = z.output<typeof machineOptionsSchema>;

export interface PortForward {
  address: string;
  hostPort: number;
  guestPort: number;
}

export function parsePortForward(spec: string): PortForward {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})$/.exec(spec);
  if (!m) throw new Error(`bad port forward "${spec}"`);
  const hostPort = Number(m[2]);
  const guestPort = Number(m[3]);
  for (const p of [hostPort, guestPort]) {
    if (p < 1 || p > 65535) throw new Error(`port ${p} in "${spec}" is out of range (1-65535)`);
  }
  return { address: m[1] ?? '127.0.0.1', hostPort, guestPort };
}

/**
 * `deployments.<env>.<image>.endpoint` on the local provider: HAProxy listening on ADDRESS:PORT
 * (127.0.0.1 unless said), balancing across the image's healthy servers' `target-port`.
 */
export const localEndpointSchema = z.strictObject({
  port: z.number().int().min(1).max(65535).describe('The port HAProxy listens on.'),
  'target-port': z.number().int().min(1).max(65535).describe('The port on each server that traffic goes to.'),
  address: z
    .string()
    .regex(/^\d{1,3}(?:\.\d{1,3}){3}$/, 'an address is an IPv4 address, e.g. 127.0.0.1')
    .default('127.0.0.1')
    .describe('Where HAProxy listens (default 127.0.0.1).'),
  protocol: z
    .enum(['http', 'tcp'])
    .default('http')
    .describe('http: HAProxy balances each request and checks members with the image\'s HTTP health check; tcp: connections.'),
});
export type LocalEndpointSpec = z.output<typeof localEndpointSchema>;
