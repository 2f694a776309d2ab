/**
 * Loopback addresses for emulated machines. Every machine shares the host's network but has an
 * address of its own in 127.0.0.0/8 (all of which Linux routes to `lo` without configuration), where
 * its sshd listens, so that a client connects to the address the API reports, on port 22, as it
 * would to a cloud server.
 *
 * Addresses are claimed with lock files under /run (the owner's pid inside), so that emulators in
 * parallel processes never hand out the same one; a claim whose owner died is taken over.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const ADDRESS_DIR = '/run/provisional-emulator/addresses';

/** Candidates in order: 127.0.0.2 ... 127.0.0.254, then 127.0.1.1 ..., up to 127.0.63.254. */
function* candidates(): Generator<string> {
  for (let third = 0; third < 64; third++) {
    for (let fourth = third === 0 ? 2 : 1; fourth < 255; fourth++) yield `127.0.${third}.${fourth}`;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether something on this host (a container's sshd, a host service on 0.0.0.0) holds host:port. */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The SSH port machines listen on: 22 when this host lets a loopback address have its own port 22,
 * else `fallback` (a host sshd on 0.0.0.0:22 takes port 22 on every address).
 */
export async function chooseSshPort(fallback = 2222): Promise<number> {
  // 127.0.63.255 is never handed out to a machine: a clean probe of the wildcard listener.
  if (await portFree('127.0.63.255', 22)) return 22;
  if (await portFree('127.0.63.255', fallback)) return fallback;
  throw new Error(`neither port 22 nor port ${fallback} can be bound on loopback addresses`);
}

async function tryClaim(path: string): Promise<boolean> {
  try {
    await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  if (Number.isFinite(owner) && alive(owner)) return false;
  await rm(path, { force: true });
  try {
    await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Claims a free loopback address on which nobody listens on `ports` (every one of them: a listener
 * left on one port of an address, such as an orphaned container's sshd, must not catch connections
 * meant for what claims it next).
 */
export async function claimAddress(ports: number | readonly number[], inUse: ReadonlySet<string>): Promise<string> {
  const wanted = typeof ports === 'number' ? [ports] : ports;
  await mkdir(ADDRESS_DIR, { recursive: true });
  for (const address of candidates()) {
    if (inUse.has(address)) continue;
    const path = join(ADDRESS_DIR, address);
    if (!(await tryClaim(path))) continue;
    if (await allFree(address, wanted)) return address;
    await rm(path, { force: true });
  }
  throw new Error('no free loopback address left for an emulated machine');
}

async function allFree(address: string, ports: readonly number[]): Promise<boolean> {
  for (const port of ports) if (!(await portFree(address, port))) return false;
  return true;
}

export async function releaseAddress(address: string): Promise<void> {
  const path = join(ADDRESS_DIR, address);
  const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  if (owner === process.pid) await rm(path, { force: true });
}

/** Removes claims whose owner has died (an emulator killed with SIGKILL). */
export async function reapStaleClaims(): Promise<void> {
  const entries = await readdir(ADDRESS_DIR).catch(() => [] as string[]);
  for (const entry of entries) {
    const path = join(ADDRESS_DIR, entry);
    const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (!Number.isFinite(owner) || !alive(owner)) await rm(path, { force: true });
  }
}
