/**
 * A server's runtime configuration: the environment's `env:` values for its image and the image's
 * deploy scripts (config/provisional/<image>/deploy/*). Servers carry a label that identifies it,
 * so that a warm deploy replaces servers whose config changed; the label is an HMAC with a key
 * that stays on the deploying side, so reading labels at the provider reveals nothing (a plain
 * hash of a short secret could be brute-forced).
 */
import { createHash, createHmac } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProjectConfig } from '../config/load.js';

export interface DeployScript {
  name: string;
  content: Buffer;
}

export interface RuntimeConfig {
  env: Record<string, string>;
  /** Deploy scripts, in the lexical order they run in. */
  scripts: DeployScript[];
  /** The folder they come from (uploaded as it is). */
  scriptsDir: string;
}

/** Where the values go on a server. */
export const ENV_FILE = '/etc/provisional/env';

export function deployScriptsDir(config: Pick<ProjectConfig, 'configDir'>, image: string): string {
  return join(config.configDir, image, 'deploy');
}

export async function loadRuntimeConfig(config: Pick<ProjectConfig, 'configDir' | 'deployments'>, environment: string, image: string): Promise<RuntimeConfig> {
  const scriptsDir = deployScriptsDir(config, image);
  const names = await readdir(scriptsDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const scripts: DeployScript[] = [];
  for (const name of names.sort()) {
    // validate() has refused anything but executable files already.
    if ((await stat(join(scriptsDir, name))).isFile()) scripts.push({ name, content: await readFile(join(scriptsDir, name)) });
  }
  return { env: { ...config.deployments[environment]?.[image]?.env }, scripts, scriptsDir };
}

export function isEmptyRuntimeConfig(runtime: RuntimeConfig): boolean {
  return !Object.keys(runtime.env).length && !runtime.scripts.length;
}

/**
 * The label: HMAC-SHA256 of the values and the scripts, truncated to 128 bits (plenty to tell
 * configs apart, and short enough for every provider's tag limits). No runtime config, no label:
 * servers deployed before runtime config existed are not replaced for it.
 */
export function runtimeConfigLabel(runtime: RuntimeConfig, key: Buffer): string | undefined {
  if (isEmptyRuntimeConfig(runtime)) return undefined;
  const canonical = JSON.stringify({
    env: Object.entries(runtime.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    scripts: runtime.scripts.map((s) => [s.name, createHash('sha256').update(s.content).digest('hex')]),
  });
  return createHmac('sha256', key).update(canonical).digest('hex').slice(0, 32);
}

/**
 * The env file: one `NAME="value"` a line, quoted so that systemd's EnvironmentFile= and a POSIX
 * shell's `set -a; . file` read the same value. Inside double quotes both take `\"`, `\\`, `\$`
 * and `` \` `` as the character itself, keep every other character (newlines included) as it is,
 * and expand nothing that is escaped.
 */
export function renderEnvFile(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => `${name}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"\n`)
    .join('');
}
