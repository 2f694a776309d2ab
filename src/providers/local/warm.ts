/**
 * Warm builders. Under software emulation (TCG) most of a local build is its builder's boot:
 * 10 of 12.6 s for a one-line script. So a builder from a base resumes a machine instead: one
 * that booted from that base, settled, and was saved (QEMU's migration, to a file) beside a copy
 * of its overlay. Resuming takes about a second to SSH (bench/boot-levers.ts `resume`).
 *
 *   cacheDir()/warm/<key>/      state (the machine's RAM and devices), overlay.qcow2 (its disk,
 *                               on the base's), key (root's key on it, 0600), warm.json (last)
 *   cacheDir()/warm/<key>.lock  held while one process makes it
 *
 * The key covers everything a saved machine must share with the one resuming it: the base
 * build, the kernel and its command line, memory, vCPUs, the hardware and QEMU's version. The
 * first builder of a shape makes it (boot, settle, save), and is itself resumed from it.
 *
 * A resumed machine differs from a booted one in what the saved one had; `adoptCommand` mends
 * that before anyone else logs in: root's keys (authorized_keys and the key credential sshd also
 * reads) become the request's (the saved key is gone), the
 * host name the builder's, the clock the host's (the saved clock stood still while saved), and
 * the RNG is fed from the host (the VM generation ID device makes the kernel reseed too). The
 * rest is as the clean step leaves every builder's: machine-id and host keys are made again at
 * the first boot of each server.
 *
 * A version made from a resumed builder is rebased onto the base's disk first (machines.ts
 * `rebaseOnto`; qemu-img copies what the saved overlay held, a few MiB, in milliseconds), so
 * versions never depend on a saved state, which may be made again or removed with the cache.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../../core/paths.js';
import { acquireLock } from '../../core/lock.js';
import { poll } from '../../core/wait.js';
import { shellQuote } from '../../pipeline/shell.js';
import { authorizedKeyLines } from '../kit/cloud-config.js';
import type { GuestHardware } from './accelerator.js';
import type { BootSpec } from './base-record.js';
import { readJson, writeJsonAtomic } from './files.js';
import { qmpCommand } from './qmp.js';
import { KEY_CREDENTIAL } from './qemu-args.js';

/** The host name a saved machine boots with (each resumed builder gets its own). */
export const WARM_HOSTNAME = 'provisional-warm';

/** What a saved machine and every machine resumed from it must share. */
export interface WarmShape {
  boot: BootSpec;
  hardware: GuestHardware;
  memoryMiB: number;
  cpus: number;
  qemuVersion: string;
}

export interface WarmState {
  dir: string;
  /** The migration URI to resume from. */
  incoming: string;
  overlay: string;
  privateKey: string;
  publicKey: string;
}

interface WarmRecord {
  shape: WarmShape;
  createdAt: string;
  stateBytes: number;
  saveMs: number;
}

const FORMAT = 1;

export function warmKey(shape: WarmShape): string {
  const { boot } = shape;
  const identity = { format: FORMAT, base: [boot.baseRef, boot.baseBuildId, boot.baseDisk, boot.kernel, boot.initrd, boot.append], hardware: shape.hardware, memory: shape.memoryMiB, cpus: shape.cpus, qemu: shape.qemuVersion };
  return `${boot.baseRef}-${createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16)}`;
}

export const warmRoot = (): string => join(cacheDir(), 'warm');

function files(dir: string): { state: string; overlay: string; key: string; record: string } {
  return { state: join(dir, 'state'), overlay: join(dir, 'overlay.qcow2'), key: join(dir, 'key'), record: join(dir, 'warm.json') };
}

function stateOf(dir: string, publicKey: string, privateKey: string): WarmState {
  const f = files(dir);
  return { dir, incoming: `exec:cat ${shellQuote(f.state)}`, overlay: f.overlay, privateKey, publicKey };
}

/** The saved machine for `key`, if one is complete; marked used now (see pruneWarm). */
export async function readWarm(key: string): Promise<WarmState | undefined> {
  const dir = join(warmRoot(), key);
  const f = files(dir);
  if (!(await readJson<WarmRecord>(f.record).catch(() => undefined))) return undefined;
  const now = new Date();
  await utimes(f.record, now, now).catch(() => undefined);
  const privateKey = await readFile(f.key, 'utf8').catch(() => undefined);
  const publicKey = await readFile(`${f.key}.pub`, 'utf8').catch(() => undefined);
  return privateKey && publicKey ? stateOf(dir, publicKey.trim(), privateKey) : undefined;
}

/**
 * Remove saved machines unused for `unusedMs` (a day): each is about 170 MiB, and a new base,
 * memory size or QEMU makes new ones. A builder resumed from one needs its files until its
 * version is saved, which is never a day later.
 */
export async function pruneWarm(unusedMs = 24 * 3600_000): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(warmRoot()).catch(() => [] as string[])) {
    if (name.includes('.')) continue; // locks and work folders
    const used = await stat(files(join(warmRoot(), name)).record).then((s) => s.mtimeMs, () => 0);
    if (Date.now() - used < unusedMs) continue;
    await rm(join(warmRoot(), name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** Forget a saved machine that did not resume (a machine resuming from it now has its files open). */
export async function forgetWarm(key: string): Promise<void> {
  await rm(join(warmRoot(), key), { recursive: true, force: true });
}

/** Held while one process makes the saved machine for `key`; others wait, then resume from it. */
export function lockWarm(key: string, signal: AbortSignal) {
  return mkdir(warmRoot(), { recursive: true }).then(() => acquireLock(join(warmRoot(), `${key}.lock`), `the saved builder ${key}`, { timeoutMs: 15 * 60_000, signal }));
}

/**
 * Save a running machine (booted with `keys` authorised, settled) as the one for `key`: its RAM and
 * devices to a file by migration (QEMU leaves it paused, its disk flushed), then a copy of its
 * overlay. Written into a work folder renamed into place last. The machine must be killed after.
 */
export async function saveWarm(key: string, machine: { qmp: string; overlay: string }, keys: { publicKey: string; privateKey: string }, shape: WarmShape): Promise<WarmState> {
  const root = warmRoot();
  await mkdir(root, { recursive: true });
  // What an interrupted save left (under the lock nobody else is saving this key).
  for (const name of await readdir(root)) if (name.startsWith(`${key}.work-`)) await rm(join(root, name), { recursive: true, force: true });
  const work = join(root, `${key}.work-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { mode: 0o700 });
  const f = files(work);
  try {
    const saveMs = await saveMachineState(machine.qmp, f.state);
    await copyFile(machine.overlay, f.overlay);
    // Machines resume on overlays of it: it must never change.
    await chmod(f.overlay, 0o444);
    await writeFile(f.key, keys.privateKey, { mode: 0o600 });
    await writeFile(`${f.key}.pub`, `${keys.publicKey.trim()}\n`);
    const { size } = await stat(f.state);
    await writeJsonAtomic(f.record, { shape, createdAt: new Date().toISOString(), stateBytes: size, saveMs: Math.round(saveMs) } satisfies WarmRecord);
    const dir = join(root, key);
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
    await pruneWarm();
    return stateOf(dir, keys.publicKey.trim(), keys.privateKey);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Save a running machine's RAM and devices to `file` by migration (QMP `migrate` to `exec:cat`);
 * QEMU leaves it paused, its disks flushed. Saved running: a machine saved paused is resumed
 * paused (QEMU keeps the run state). Resolves with how long it took, in ms.
 */
export async function saveMachineState(qmp: string, file: string): Promise<number> {
  const started = performance.now();
  await qmpCommand(qmp, 'migrate', 10_000, { uri: `exec:cat > ${shellQuote(file)}` });
  const outcome = await poll(
    async () => {
      const status = (await qmpCommand(qmp, 'query-migrate', 10_000)) as { status?: string; 'error-desc'?: string };
      if (status.status === 'completed') return { failed: undefined };
      if (status.status === 'failed' || status.status === 'cancelled') return { failed: status['error-desc'] ?? status.status };
      return undefined;
    },
    { what: 'the machine to be saved', timeoutMs: 120_000, intervalMs: 50, factor: 1 },
  );
  if (outcome.failed) throw new Error(`saving the machine failed: ${outcome.failed}`);
  return performance.now() - started;
}

/**
 * What a resumed machine runs first, over SSH with the saved machine's key: root's keys become
 * `authorizedKey`'s (the saved key goes), its host name `hostname`, its clock the host's, and
 * host randomness goes into its RNG.
 */
export function adoptCommand(authorizedKey: string, hostname: string, now = Date.now(), seed = randomBytes(64)): string {
  const keys = `printf '%s\\n' ${authorizedKeyLines(authorizedKey).map(shellQuote).join(' ')}`;
  // Written in place, by the shell: under TCG every program started costs tens of milliseconds,
  // and nobody else logs in before this command ends.
  return [
    'set -e',
    'umask 077',
    '[ -d /root/.ssh ] || mkdir -m 700 /root/.ssh',
    `${keys} > /root/.ssh/authorized_keys`,
    // sshd also reads the key credential (debian-guest.ts): the saved machine's, until replaced.
    // systemd keeps credentials on a read-only ramfs of their own; the file keeps its mode (0400).
    `credential=/run/credentials/@system/${KEY_CREDENTIAL}`,
    'if [ -e "$credential" ]; then',
    '  mount -o remount,rw "${credential%/*}"',
    `  ${keys} > "$credential"`,
    '  mount -o remount,ro "${credential%/*}"',
    'fi',
    // What systemd.hostname= on the kernel command line sets at a boot: the kernel's host name.
    `printf '%s' ${shellQuote(hostname)} > /proc/sys/kernel/hostname`,
    `date -u -s @${(now / 1000).toFixed(3)} >/dev/null`,
    `printf '%s' ${seed.toString('hex')} > /dev/urandom`,
  ].join('\n');
}
