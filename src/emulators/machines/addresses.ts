/**
 * Loopback addresses for emulated machines. Every machine shares the host's network but has an
 * address of its own in 127.0.0.0/8 (all of which Linux routes to `lo` without configuration), where
 * its sshd listens, so that a client connects to the address the API reports, on port 22, as it
 * would to a cloud server.
 *
 * Addresses are claimed with lock files under /run (the owner's pid inside), so that emulators in
 * parallel processes never hand out the same one; a claim whose owner died is taken over. A claim
 * file appears whole (written aside, then hard-linked into place): one created empty and filled
 * afterwards looked, for a moment, like a dead owner's to a second claimer, which took it over, and
 * two machines launched together got one address (one's SSH then reached the other's container).
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
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

/** Addresses this process holds or is claiming (its machines', load balancers', IPs'): never offered to a second claimer in it. */
const heldHere = new Set<string>();

/** A claim file's owner: its pid, or 'unknown' for a file without one (written by an older version, or cut short). */
async function ownerOf(path: string): Promise<number | 'none' | 'unknown'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
  const pid = Number.parseInt(text, 10);
  return Number.isFinite(pid) && pid > 0 ? pid : 'unknown';
}

/** A claim file nobody holds: its owner died, or it has no owner and is older than any claim in progress. */
async function stale(path: string, owner: number | 'unknown'): Promise<boolean> {
  if (owner !== 'unknown') return !alive(owner);
  const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => 0);
  return age > 10_000;
}

/** Creates the claim file whole, or fails if it exists (link(2) never replaces). */
async function createClaim(path: string): Promise<boolean> {
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.new`;
  await writeFile(aside, `${process.pid}\n`);
  try {
    await link(aside, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}

async function tryClaim(path: string): Promise<boolean> {
  if (await createClaim(path)) return true;
  const owner = await ownerOf(path);
  if (owner === 'none') return createClaim(path);
  if (!(await stale(path, owner))) return false;
  // Taken over by moving the stale file aside first: of two claimers that both found it stale,
  // only one moves it; the other finds it gone or replaced, and claims nothing.
  const moved = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.stale`;
  try {
    await rename(path, moved);
  } catch {
    return false;
  }
  const movedOwner = await ownerOf(moved);
  if (movedOwner !== owner) {
    // Another claimer took the stale file over first, and this moved its fresh claim: put it back.
    await link(moved, path).catch(() => undefined);
    await rm(moved, { force: true });
    return false;
  }
  await rm(moved, { force: true });
  return createClaim(path);
}

/**
 * Claims a free loopback address on which nobody listens on `ports` (every one of them: a listener
 * left on one port of an address, such as an orphaned container's sshd, must not catch connections
 * meant for what claims it next).
 */
export async function claimAddress(ports: number | readonly number[]): Promise<string> {
  const wanted = typeof ports === 'number' ? [ports] : ports;
  await mkdir(ADDRESS_DIR, { recursive: true });
  for (const address of candidates()) {
    if (heldHere.has(address)) continue;
    heldHere.add(address);
    let claimed = false;
    try {
      const path = join(ADDRESS_DIR, address);
      if (!(await tryClaim(path))) continue;
      claimed = true;
      if (await allFree(address, wanted)) return address;
      claimed = false;
      await rm(path, { force: true });
    } finally {
      if (!claimed) heldHere.delete(address);
    }
  }
  throw new Error('no free loopback address left for an emulated machine');
}

async function allFree(address: string, ports: readonly number[]): Promise<boolean> {
  for (const port of ports) if (!(await portFree(address, port))) return false;
  return true;
}

export async function releaseAddress(address: string): Promise<void> {
  const path = join(ADDRESS_DIR, address);
  if ((await ownerOf(path).catch(() => 'none' as const)) === process.pid) await rm(path, { force: true });
  heldHere.delete(address);
}

/** Removes claims whose owner has died (an emulator killed with SIGKILL). */
export async function reapStaleClaims(): Promise<void> {
  const entries = await readdir(ADDRESS_DIR).catch(() => [] as string[]);
  for (const entry of entries) {
    const path = join(ADDRESS_DIR, entry);
    // Files set aside by a claimer (NAME.PID.RANDOM.new or .stale) go once that claimer is dead.
    const aside = /^\d+\.\d+\.\d+\.\d+\.(\d+)\.[0-9a-f]{8}\.(?:new|stale)$/.exec(entry);
    if (aside) {
      if (!alive(Number(aside[1]))) await rm(path, { force: true });
      continue;
    }
    const owner = await ownerOf(path).catch(() => 'none' as const);
    if (owner !== 'none' && (await stale(path, owner))) await rm(path, { force: true });
  }
}
