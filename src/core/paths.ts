import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where Provisional keeps things on this machine, following the XDG base directory spec.
 * PROVISIONAL_DATA_DIR / PROVISIONAL_CACHE_DIR / PROVISIONAL_STATE_DIR override each one
 * (the tests use that to keep runs apart while sharing the base-image cache).
 */
function xdg(envName: string, fallback: string): string {
  const value = process.env[envName];
  return value && value.startsWith('/') ? value : join(homedir(), fallback);
}

/** Images and other data that must survive (local provider's image versions, servers). */
export function dataDir(): string {
  return process.env.PROVISIONAL_DATA_DIR || join(xdg('XDG_DATA_HOME', '.local/share'), 'provisional');
}

/** Things that can be made again (downloaded or built base images). */
export function cacheDir(): string {
  return process.env.PROVISIONAL_CACHE_DIR || join(xdg('XDG_CACHE_HOME', '.cache'), 'provisional');
}

/** Run journals, locks and build logs. */
export function stateDir(): string {
  return process.env.PROVISIONAL_STATE_DIR || join(xdg('XDG_STATE_HOME', '.local/state'), 'provisional');
}
