/** Settings of the hetzner provider (the `provider:` block of config.yml). Loaded by `validate`: no network. */
import { z } from 'zod';
import { ignored, launchOptions } from '../kit/options.js';

export const hetznerSettingsSchema = z.strictObject({
  token: z.string().min(1).optional().describe('API token of the Hetzner Cloud project; better ${HCLOUD_TOKEN}. Defaults to HCLOUD_TOKEN.'),
  'api-url': z.url().optional().describe('API endpoint (default https://api.hetzner.cloud/v1, or HCLOUD_ENDPOINT); tests point it at the emulator.'),
  location: z.string().regex(/^[a-z]+\d*$/, 'a location name such as fsn1').default('fsn1'),
  'server-type': z.string().min(1).default('cx22').describe('Server type for builders and servers (images and deployments may override with size:).'),
  'ssh-user': z.string().default('root'),
  'ssh-port': z.number().int().min(1).max(65535).default(22).describe('SSH port of servers (22 unless a bastion or emulator says otherwise).'),
  'create-timeout': z.number().int().positive().default(600).describe('Seconds a server may take to be running.'),
  'shutdown-timeout': z.number().int().positive().default(120).describe('Seconds to wait for a clean shutdown before poweroff.'),
  'api-budget': z.number().int().positive().default(2000).describe('Most API requests one command may make (the project has 3600 an hour).'),
});

export type HetznerSettings = z.output<typeof hetznerSettingsSchema>;

export const TOKEN_VARIABLE = 'HCLOUD_TOKEN';

export function resolveToken(settings: HetznerSettings, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return settings.token ?? (env[TOKEN_VARIABLE] || undefined);
}

/** System image names (debian-12) or numeric image ids. */
export function checkBaseRef(ref: string): string | undefined {
  return /^[a-z0-9][a-z0-9.-]*$/.test(ref) ? undefined : `"${ref}" is not a Hetzner image name (e.g. debian-12) or image id`;
}

/** Launch options: `size` is a server type, `region` a location (servers may live in any). */
export const hetznerLaunchOptionsSchema = launchOptions({
  size: z.string().min(1).optional(),
  region: z.string().regex(/^[a-z]+\d*$/, 'a location name such as fsn1').optional(),
  ports: ignored,
  memory: ignored,
  cpus: ignored,
});
