/** Settings of the digitalocean provider (the `provider:` block of config.yml). Loaded by `validate`: no SDK, no network. */
import { z } from 'zod';
import { ignored, launchOptions } from '../kit/options.js';

export const digitalOceanSettingsSchema = z.strictObject({
  token: z
    .string()
    .min(1)
    .optional()
    .describe('API token; better ${DIGITALOCEAN_TOKEN}. Defaults to DIGITALOCEAN_TOKEN, DIGITALOCEAN_ACCESS_TOKEN or DIGITAL_OCEAN_API_KEY.'),
  'api-url': z.url().optional().describe('API base URL (default https://api.digitalocean.com, or DIGITALOCEAN_API_URL); tests point it at the emulator.'),
  region: z.string().regex(/^[a-z]{3}\d$/, 'a region slug such as nyc3').default('nyc3'),
  size: z.string().min(1).default('s-1vcpu-1gb').describe('Droplet size slug for builders and servers (images and deployments may override).'),
  'ssh-user': z.string().default('root'),
  'ssh-port': z.number().int().min(1).max(65535).default(22).describe('SSH port of droplets (22 unless a bastion or emulator says otherwise).'),
  'create-timeout': z.number().int().positive().default(600).describe('Seconds a droplet may take to become active with an address.'),
  'shutdown-timeout': z.number().int().positive().default(120).describe('Seconds to wait for a clean shutdown before power_off.'),
  'api-budget': z.number().int().positive().default(2000).describe('Most API requests one command may make.'),
});

export type DigitalOceanSettings = z.output<typeof digitalOceanSettingsSchema>;

/** Where the token comes from, in order: the config, then doctl's and older tools' variables. */
export const TOKEN_VARIABLES = ['DIGITALOCEAN_TOKEN', 'DIGITALOCEAN_ACCESS_TOKEN', 'DIGITAL_OCEAN_API_KEY'] as const;

export function resolveToken(settings: DigitalOceanSettings, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return settings.token ?? TOKEN_VARIABLES.map((name) => env[name]).find((v) => v);
}

/** Distribution slugs (debian-12-x64) or numeric image ids. */
export function checkBaseRef(ref: string): string | undefined {
  return /^[a-z0-9][a-z0-9.-]*$/.test(ref) ? undefined : `"${ref}" is not a DigitalOcean image slug (e.g. debian-12-x64) or image id`;
}

/** Launch options: a droplet size slug and a region slug (per server: droplets may live in any region). */
export const digitalOceanLaunchOptionsSchema = launchOptions({
  size: z.string().min(1).optional(),
  region: z.string().regex(/^[a-z]{3}\d$/, 'a region slug such as nyc3').optional(),
  ports: ignored,
  memory: ignored,
  cpus: ignored,
});
