/**
 * The one schema of config/provisional/config.yml. The JSON Schema that editors use
 * (schema/config.schema.json) is generated from it by scripts/gen-schema.ts.
 */
import { z } from 'zod';

/**
 * Image names become parts of version names (`app-20260101120000`), server host names
 * (`app1.staging`) and `NAME@VERSION` references, so they are lower-case DNS-label-like words.
 */
export const IMAGE_NAME = /^[a-z][a-z0-9-]*$/;
export const IMAGE_NAME_MAX = 48;
export const ENV_NAME = /^[a-z][a-z0-9-]*$/;
/** Names of environment variables: what both a POSIX shell and systemd accept. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const variableNameSchema = z.string().regex(VARIABLE_NAME, 'a variable name is letters, digits and underscores, not starting with a digit');

/** Seconds an image test may run when `test-timeout:` is not set. */
export const DEFAULT_TEST_TIMEOUT_S = 600;

export const imageNameSchema = z
  .string()
  .max(IMAGE_NAME_MAX, `an image name is at most ${IMAGE_NAME_MAX} characters`)
  .regex(IMAGE_NAME, 'an image name is lower-case letters, digits and hyphens, starting with a letter');

export const imageSchema = z
  .strictObject({
    'base-image': z
      .string()
      .min(1)
      .describe('What this image is built from: another image of this file, or a base image of the provider (local: debian-12).'),
    description: z.string().optional(),
    'build-timeout': z
      .number()
      .int()
      .positive()
      .default(3600)
      .describe('Seconds a whole build may take before it is stopped and cleaned up.'),
    'script-timeout': z.number().int().positive().default(1800).describe('Seconds one script may run.'),
    'test-timeout': z
      .number()
      .int()
      .positive()
      // No default here: a default would enter every image's input hash and rebuild them all.
      .optional()
      .describe(`Seconds one image test (config/provisional/<name>/tests/*, run on a server booted from the new version) may run (default ${DEFAULT_TEST_TIMEOUT_S}).`),
    size: z.string().optional().describe('Builder size for cloud providers (a droplet size slug, an instance type).'),
    regions: z.array(z.string()).optional().describe('Cloud providers: regions the image is copied to after the build.'),
    env: z
      .record(variableNameSchema, z.string())
      .optional()
      .describe('Environment variables for the scripts.'),
  })
  .describe('An image: a base, scripts in config/provisional/<name>/scripts run on a builder, and tests in tests/ that a new version must pass.');

const portSchema = z
  .string()
  .regex(/^\d{1,5}:\d{1,5}$/, 'a port forward is "HOST:GUEST", e.g. "8080:80"');

export const deploymentImageSchema = z.strictObject({
  servers: z.number().int().min(0).max(1000).describe('How many servers of this image.'),
  size: z.string().optional(),
  region: z.string().optional(),
  ports: z.array(portSchema).optional().describe('Local provider: ports forwarded from 127.0.0.1.'),
  'cold-only': z
    .boolean()
    .default(false)
    .describe('Never replaced by an ordinary (warm) deploy: databases, load balancers.'),
  from: z
    .string()
    .optional()
    .describe('Promotion: deploy the version that this other environment\'s servers of the image run now, not the latest.'),
  env: z
    .record(variableNameSchema, z.string())
    .optional()
    .describe('Runtime configuration: written to /etc/provisional/env (root, 0600) on every new server, and given to the deploy scripts. Secrets belong here, not in the image.'),
  'health-check': z
    .strictObject({
      command: z.string().min(1).optional().describe('Run over SSH on the server; healthy when it exits 0.'),
      http: z
        .strictObject({
          port: z.number().int().min(1).max(65535).describe('The port on the server, reached through the SSH connection (no open firewall or curl needed).'),
          path: z.string().regex(/^\//, 'a path starts with /').default('/'),
          status: z.number().int().min(100).max(599).default(200).describe('The status a healthy server answers.'),
        })
        .optional()
        .describe('An HTTP GET on the server, through a channel of the SSH connection.'),
      timeout: z.number().positive().default(120).describe('Seconds to wait for health.'),
      passes: z.number().int().min(1).max(100).default(2).describe('Checks that must pass in a row before the server is healthy (joins the endpoint).'),
    })
    .refine((c) => c.command !== undefined || c.http !== undefined, { message: 'give a command, an http check, or both' })
    .optional(),
  endpoint: z
    .unknown()
    .optional()
    .describe("A stable address for this image's servers, moved only to healthy ones; its kinds are the provider's (local: {port, target-port, address})."),
  drain: z
    .number()
    .min(0)
    .max(3600)
    .optional()
    .describe('Seconds (default 10) an old server stays in the endpoint without new connections, so that open ones finish, before it is destroyed.'),
  rollout: z
    .strictObject({
      batch: z.number().int().min(1).optional().describe('Replace at most this many servers at a time (default: all at once).'),
    })
    .optional(),
});

export const providerRefSchema = z.union([
  z.string().min(1),
  z.looseObject({ name: z.string().min(1) }),
]);

export const configSchema = z.strictObject({
  project: z
    .string()
    .regex(IMAGE_NAME, 'a project name is lower-case letters, digits and hyphens, starting with a letter')
    .max(48)
    .optional()
    .describe('Project name; keeps this project\'s images apart at the provider. Defaults to the directory name.'),
  provider: providerRefSchema.default('local').describe('The provider: local (QEMU), or another provider folder, with its settings.'),
  images: z.record(imageNameSchema, imageSchema).describe('The images of this project, by name.'),
  deployments: z
    .record(
      z.string().regex(ENV_NAME, 'an environment name is lower-case letters, digits and hyphens'),
      z.record(z.string(), deploymentImageSchema),
    )
    .default({})
    .describe('environment -> image -> servers.'),
});

export type ImageConfig = z.output<typeof imageSchema>;
export type DeploymentImageConfig = z.output<typeof deploymentImageSchema>;
export type RawConfig = z.output<typeof configSchema>;
