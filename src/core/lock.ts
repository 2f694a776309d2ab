/**
 * Locks in the state directory, so that two commands never build the same image or deploy the same
 * environment at once. A lock names its holder (pid, host, command, since when); a lock whose
 * process is gone (on this host) is stale and is taken over.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { UserFacingError } from './errors.js';
import { stateDir } from './paths.js';
import { processAlive } from './pid.js';

interface Holder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export class LockedError extends UserFacingError {}

export interface Lock {
  release(): Promise<void>;
}

export function lockPath(project: string, kind: 'image' | 'env', name: string): string {
  return join(stateDir(), 'locks', project, `${kind}-${name}.lock`);
}


export async function acquireLock(path: string, what: string): Promise<Lock> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const me: Holder = { pid: process.pid, host: hostname(), command: process.argv.slice(2).join(' '), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, JSON.stringify(me), { flag: 'wx', mode: 0o600 });
      return { release: () => rm(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(await readFile(path, 'utf8')) as Holder;
    } catch {
      holder = undefined; // half-written or gone: try again
    }
    if (holder && holder.host === me.host && !processAlive(holder.pid)) {
      await rm(path, { force: true }); // stale: its process died
      continue;
    }
    if (holder) {
      throw new LockedError(`${what} is busy: \`provisional ${holder.command}\` (pid ${holder.pid} on ${holder.host}, since ${holder.since}) is working on it`, {
        hint: `wait for it to finish; if that process is gone, remove ${path}`,
      });
    }
  }
  throw new LockedError(`could not lock ${what} (${path})`);
}
