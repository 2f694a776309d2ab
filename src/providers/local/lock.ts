/**
 * A lock file, so that two processes (two terminals, two parallel builds) do not both build or
 * download the same base. The file holds the owner's pid; a lock whose owner has died (killed,
 * machine rebooted) is stale and taken over.
 */
import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { poll } from '../../core/wait.js';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export interface LockOptions {
  signal?: AbortSignal;
  timeoutMs: number;
  /** Called once, when the lock is found held by a live process. */
  onWait?: (owner: LockOwner) => void;
  what: string;
}

/** Take the lock; resolves with its release function. */
export async function acquireLock(path: string, opts: LockOptions): Promise<() => Promise<void>> {
  let told = false;
  await poll(
    async () => {
      if (await tryCreate(path)) return true;
      const owner = await readOwner(path);
      if (!owner || isStale(owner)) {
        // Another process may be taking over the same stale lock: only remove it if it is still
        // the stale one we looked at (a tiny window remains; the cost would be a duplicate build).
        const again = await readOwner(path);
        if (again?.pid === owner?.pid && again?.since === owner?.since) await rm(path, { force: true });
        return (await tryCreate(path)) ? true : undefined;
      }
      if (!told) {
        told = true;
        opts.onWait?.(owner);
      }
      return undefined;
    },
    { what: opts.what, timeoutMs: opts.timeoutMs, intervalMs: 500, maxIntervalMs: 2000, signal: opts.signal },
  );
  return async () => {
    const owner = await readOwner(path);
    if (owner?.pid === process.pid) await rm(path, { force: true });
  };
}

/** Creates the lock with its content in one step (link() of a written file), so nobody reads it half-written. */
async function tryCreate(path: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  await writeFile(temp, JSON.stringify(owner), { flag: 'wx' });
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

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockOwner;
  } catch {
    // Gone since we looked, or unreadable garbage (then it is stale).
    return undefined;
  }
}

function isStale(owner: LockOwner): boolean {
  // Another host (a shared home directory): we cannot check its pid, so trust it.
  if (owner.host !== hostname()) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
