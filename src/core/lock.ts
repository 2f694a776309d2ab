/**
 * Lock files, the one implementation: two commands never build the same image or deploy the same
 * environment at once (they refuse: `acquireLock(path, what)`), and two processes never make the
 * same local base or emulator rootfs at once (the second waits: `acquireLock(path, what, { wait })`).
 * A lock names its holder (pid, host, command, since when) and is created with its content in one
 * step (link() of a written file), so nobody reads it half-written; a lock whose process is gone
 * (on this host) is stale and is taken over.
 */
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { UserFacingError } from './errors.js';
import { stateDir } from './paths.js';
import { processAlive } from './pid.js';
import { poll } from './wait.js';

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export class LockedError extends UserFacingError {}

export interface Lock {
  /** Removes the lock if this process still holds it. */
  release(): Promise<void>;
}

export interface LockWait {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called once, when the lock is found held by a live process. */
  onWait?: (holder: LockHolder) => void;
}

export function lockPath(project: string, kind: 'image' | 'env', name: string): string {
  return join(stateDir(), 'locks', project, `${kind}-${name}.lock`);
}

/** Take the lock. Held by a live process: LockedError naming it, or with `wait`, wait for it (TimeoutError). */
export async function acquireLock(path: string, what: string, wait?: LockWait): Promise<Lock> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let told = false;
  const attempt = async (): Promise<Lock | undefined> => {
    if (await tryCreate(path)) return { release: () => release(path) };
    const holder = await readHolder(path);
    if (!holder || isStale(holder)) {
      // Another process may be taking over the same stale lock: only remove it if it is still the
      // stale one we looked at (a tiny window remains; the cost would be a duplicate build).
      const again = await readHolder(path);
      if (again?.pid === holder?.pid && again?.since === holder?.since) await rm(path, { force: true });
      return (await tryCreate(path)) ? { release: () => release(path) } : undefined;
    }
    if (!wait) {
      throw new LockedError(`${what} is busy: \`provisional ${holder.command}\` (pid ${holder.pid} on ${holder.host}, since ${holder.since}) is working on it`, {
        hint: `wait for it to finish; if that process is gone, remove ${path}`,
      });
    }
    if (!told) {
      told = true;
      wait.onWait?.(holder);
    }
    return undefined;
  };
  if (!wait) {
    for (let i = 0; i < 3; i++) {
      const lock = await attempt();
      if (lock) return lock;
    }
    throw new LockedError(`could not lock ${what} (${path})`);
  }
  return poll(
    async () => {
      try {
        return await attempt();
      } catch (err) {
        if (err instanceof LockedError) return undefined;
        throw err;
      }
    },
    { what, timeoutMs: wait.timeoutMs, intervalMs: 500, maxIntervalMs: 2000, signal: wait.signal },
  );
}

async function tryCreate(path: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const me: LockHolder = { pid: process.pid, host: hostname(), command: process.argv.slice(2).join(' '), since: new Date().toISOString() };
  await writeFile(temp, JSON.stringify(me), { flag: 'wx', mode: 0o600 });
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

async function release(path: string): Promise<void> {
  const holder = await readHolder(path);
  if (holder?.pid === process.pid && holder.host === hostname()) await rm(path, { force: true });
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockHolder;
  } catch {
    return undefined; // gone since we looked, or unreadable garbage (then it is stale)
  }
}

/** Another host's lock (a shared home directory) cannot be checked: it is trusted. */
function isStale(holder: LockHolder): boolean {
  return holder.host === hostname() && !processAlive(holder.pid);
}
