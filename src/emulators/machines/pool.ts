/**
 * Real machines behind an emulated cloud: containers over copy-on-write layers, provider-neutral
 * (droplets for the DigitalOcean emulator, instances for the EC2 one).
 *
 * - A layer is a read-only directory tree. The base layer is the cached Debian rootfs (rootfs.ts);
 *   every snapshot adds one, which is a stopped machine's upper directory, frozen.
 * - A machine is an overlay of its image's layers plus an upper directory of its own, booted with
 *   `systemd-nspawn --boot` on the host's network, its sshd on its own loopback address.
 * - Everything lives in one run directory per pool, removed by close(); a run directory whose
 *   emulator died is reaped by the next pool that starts.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTree } from '../../providers/local/files.js';
import { run } from '../../providers/local/process.js';
import { chooseSshPort, claimAddress, reapStaleClaims, releaseAddress } from './addresses.js';
import { bootContainer, descendants, dropSshSessions, prepareUpper, requestPoweroff, sshSessions } from './container.js';
import { emulatorCacheDir, ensureRootfs } from './rootfs.js';

/** The layer id of the Debian 12 rootfs. */
export const BASE_LAYER = 'debian-12';

export type MachineState = 'running' | 'stopped';

export interface MachineInfo {
  id: string;
  name: string;
  /** The machine's own loopback address, where its sshd listens. */
  ip: string;
  port: number;
  /** The layer it was created from. */
  layer: string;
  labels: Record<string, string>;
  state: MachineState;
}

export interface CreateMachineOptions {
  name: string;
  /** A layer id: BASE_LAYER or one that snapshot() returned. */
  layer: string;
  /** OpenSSH public key lines for root. */
  authorizedKeys: string[];
  labels?: Record<string, string>;
}

export interface MachinePoolOptions {
  /** Port 22 unless the host holds it on every address (see addresses.ts). */
  sshPort?: number;
  /** How long a clean shutdown may take before the machine is killed. */
  stopTimeoutMs?: number;
  /** Called when a machine stops by itself (poweroff inside it, a crash), not on stop(). */
  onExit?: (id: string) => void;
}

interface Layer {
  id: string;
  dir: string;
  /** Directories of this layer and those below it, topmost first. */
  stack: string[];
  /** Layers this one stands on (released with it). */
  holds: string[];
  users: number;
  deleted: boolean;
}

interface Machine extends MachineInfo {
  dir: string;
  lowerDirs: string[];
  /** Layers this machine's stack holds (released on destroy). */
  holds: string[];
  process?: ChildProcess;
  exited?: Promise<void>;
  stopping: boolean;
}

export class MachinePool {
  readonly runDir: string;
  readonly sshPort: number;
  private readonly layers = new Map<string, Layer>();
  private readonly machines = new Map<string, Machine>();
  private seq = 0;
  private closed = false;

  private constructor(runDir: string, sshPort: number, private readonly opts: MachinePoolOptions) {
    this.runDir = runDir;
    this.sshPort = sshPort;
  }

  /** Builds the rootfs on first use (about a minute, once), reaps dead pools' leftovers. */
  static async open(opts: MachinePoolOptions = {}, signal?: AbortSignal): Promise<MachinePool> {
    const rootfs = await ensureRootfs({ signal });
    await reapDeadRuns();
    const runDir = join(runsDir(), `${process.pid}-${randomBytes(3).toString('hex')}`);
    await mkdir(join(runDir, 'layers'), { recursive: true });
    await mkdir(join(runDir, 'machines'), { recursive: true });
    await writeFile(join(runDir, 'owner'), `${process.pid}\n`);
    const pool = new MachinePool(runDir, opts.sshPort ?? (await chooseSshPort()), opts);
    pool.layers.set(BASE_LAYER, { id: BASE_LAYER, dir: rootfs, stack: [rootfs], holds: [], users: 1, deleted: false });
    return pool;
  }

  hasLayer(id: string): boolean {
    const layer = this.layers.get(id);
    return !!layer && !layer.deleted;
  }

  list(): MachineInfo[] {
    return [...this.machines.values()].map((m) => this.info(m));
  }

  get(id: string): MachineInfo | undefined {
    const m = this.machines.get(id);
    return m && this.info(m);
  }

  async create(opts: CreateMachineOptions): Promise<MachineInfo> {
    if (this.closed) throw new Error('the machine pool is closed');
    const layer = this.layers.get(opts.layer);
    if (!layer || layer.deleted) throw new Error(`no layer ${opts.layer}`);
    const id = `m${++this.seq}`;
    const ip = await claimAddress(this.sshPort);
    const machine: Machine = {
      id,
      name: opts.name,
      ip,
      port: this.sshPort,
      layer: layer.id,
      labels: { ...opts.labels },
      state: 'stopped',
      dir: join(this.runDir, 'machines', id),
      lowerDirs: layer.stack,
      holds: [layer.id],
      stopping: false,
    };
    layer.users++;
    this.machines.set(id, machine);
    try {
      await prepareUpper(this.spec(machine), opts.authorizedKeys);
      await this.start(id);
    } catch (err) {
      await this.destroy(id).catch(() => undefined);
      throw err;
    }
    return this.info(machine);
  }

  async start(id: string): Promise<void> {
    const m = this.must(id);
    if (m.state === 'running') return;
    const child = await bootContainer(this.spec(m));
    m.process = child;
    m.state = 'running';
    m.stopping = false;
    m.exited = new Promise((resolve) => {
      child.once('exit', () => {
        m.state = 'stopped';
        m.process = undefined;
        if (!m.stopping && this.machines.has(id)) this.opts.onExit?.(id);
        resolve();
      });
    });
  }

  /** Clean shutdown (the machine's systemd powers off); killed if it takes longer than the timeout. */
  async stop(id: string, { force = false, timeoutMs }: { force?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const m = this.must(id);
    if (!m.process || !m.exited) return;
    m.stopping = true;
    const pid = m.process.pid!;
    // A forced stop kills the container's processes first: systemd-nspawn dying alone would leave
    // the machine running, orphaned, with its overlay mounted.
    if (force) await killTree(pid);
    else {
      // Early in its boot, systemd ignores the request: ask again until it stops or time is up.
      const deadline = Date.now() + (timeoutMs ?? this.opts.stopTimeoutMs ?? 30_000);
      let stopped = false;
      void m.exited.then(() => (stopped = true));
      while (!stopped && Date.now() < deadline) {
        await requestPoweroff(pid);
        await Promise.race([m.exited, new Promise((r) => setTimeout(r, 1000))]);
      }
      if (!stopped) await killTree(pid);
    }
    await m.exited;
  }

  /**
   * Freezes the machine's disk as a new layer and returns its id. A stopped machine's upper
   * directory becomes the layer (the machine carries on over it with a fresh upper); a running
   * one's is copied as it is, as a cloud's live snapshot would be.
   */
  async snapshot(id: string): Promise<string> {
    const m = this.must(id);
    const layerId = `layer-${++this.seq}`;
    const dir = join(this.runDir, 'layers', layerId);
    if (m.state === 'running') {
      await run('cp', ['-a', '--', join(m.dir, 'upper'), dir], { timeoutMs: 10 * 60_000, operation: `copying ${m.name}'s disk` });
    } else {
      await rename(join(m.dir, 'upper'), dir);
      await mkdir(join(m.dir, 'upper'));
      await removeTree(join(m.dir, 'work'));
      await mkdir(join(m.dir, 'work'));
    }
    const layer: Layer = { id: layerId, dir, stack: [dir, ...m.lowerDirs], holds: [...m.holds], users: 1, deleted: false };
    for (const held of m.holds) this.layers.get(held)!.users++;
    this.layers.set(layerId, layer);
    if (m.state !== 'running') {
      // The machine now runs on top of the frozen layer.
      m.lowerDirs = layer.stack;
      m.holds.push(layerId);
      layer.users++;
    }
    return layerId;
  }

  /** Bytes a layer takes on disk. */
  async layerSize(id: string): Promise<number> {
    const layer = this.layers.get(id);
    if (!layer) return 0;
    const { stdout } = await run('du', ['-s', '--block-size=1', layer.dir], { timeoutMs: 60_000, operation: 'measuring a layer' });
    return Number.parseInt(stdout, 10) || 0;
  }

  /** Forgets a layer; its files go once no machine or other layer stands on it. */
  async deleteLayer(id: string): Promise<void> {
    const layer = this.layers.get(id);
    if (!layer || layer.deleted || id === BASE_LAYER) return;
    layer.deleted = true;
    await this.release(id);
  }

  async destroy(id: string): Promise<void> {
    const m = this.machines.get(id);
    if (!m) return;
    if (m.process) await this.stop(id, { force: true });
    this.machines.delete(id);
    await removeTree(m.dir);
    await releaseAddress(m.ip);
    for (const held of m.holds) await this.release(held);
  }

  /** Drops the SSH connections of a machine (a fault); resolves with how many there were. */
  async dropSsh(id: string): Promise<number> {
    const pid = this.machines.get(id)?.process?.pid;
    return pid ? dropSshSessions(pid) : 0;
  }

  async sshSessionCount(id: string): Promise<number> {
    const pid = this.machines.get(id)?.process?.pid;
    return pid ? sshSessions(pid) : 0;
  }

  /** Stops every machine at once (clean shutdown, briefly), removes all files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.machines.keys()].map((id) => this.stop(id, { timeoutMs: 5000 }).catch(() => undefined)));
    await Promise.all([...this.machines.keys()].map((id) => this.destroy(id).catch(() => undefined)));
    await removeTree(this.runDir);
  }

  private async release(layerId: string): Promise<void> {
    const layer = this.layers.get(layerId);
    if (!layer || layerId === BASE_LAYER) return;
    layer.users--;
    if (layer.users > 0) return;
    this.layers.delete(layerId);
    await removeTree(layer.dir);
    for (const held of layer.holds) await this.release(held);
  }

  private spec(m: Machine) {
    return { dir: m.dir, lowerDirs: m.lowerDirs, hostname: m.name, address: m.ip, sshPort: m.port };
  }

  private must(id: string): Machine {
    const m = this.machines.get(id);
    if (!m) throw new Error(`no machine ${id}`);
    return m;
  }

  private info(m: Machine): MachineInfo {
    return { id: m.id, name: m.name, ip: m.ip, port: m.port, layer: m.layer, labels: { ...m.labels }, state: m.state };
  }
}

/** systemd-nspawn processes whose machine lives under `dir`. */
export async function nspawnProcesses(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (cmdline[0]?.endsWith('systemd-nspawn') && cmdline.some((a) => a.startsWith(`${dir}/`))) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Machines (their systemd, the container's PID 1) whose overlay lives under `dir` and whose
 * systemd-nspawn is gone: killed with SIGKILL, nspawn cannot take its machine with it, and the
 * machine's systemd is reparented to the host's init with its sshd still on its address. Its root
 * mount (the first line of its mountinfo) names the overlay's upper layer, so it is found by that,
 * even after its run's directory was removed.
 */
export async function orphanedMachines(dir: string): Promise<{ pid: number; upperDir: string }[]> {
  const found: { pid: number; upperDir: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!/(^|\/)(systemd|init)$/.test(cmdline[0] ?? '')) continue;
    const rootMount = (await readFile(`/proc/${entry}/mountinfo`, 'utf8').catch(() => '')).split('\n', 1)[0] ?? '';
    const upperDir = /upperdir=([^,\s]+)/.exec(rootMount)?.[1];
    if (upperDir?.startsWith(`${dir}/`)) found.push({ pid: Number(entry), upperDir });
  }
  return found;
}

function runsDir(): string {
  return join(emulatorCacheDir(), 'runs');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function killTree(pid: number): Promise<void> {
  for (const child of await descendants(pid)) signal(child, 'SIGKILL');
  signal(pid, 'SIGKILL');
}

/** Removes run directories of pools whose process has died (their machines died with it). */
async function reapDeadRuns(): Promise<void> {
  const dir = runsDir();
  await mkdir(dir, { recursive: true });
  // Machines of dead runs that outlived their nspawn (their run directory may be gone already).
  for (const orphan of await orphanedMachines(dir)) {
    const owner = Number.parseInt(orphan.upperDir.slice(dir.length + 1), 10);
    if (!processAlive(owner)) await killTree(orphan.pid);
  }
  for (const entry of await readdir(dir)) {
    const owner = Number.parseInt(await readFile(join(dir, entry, 'owner'), 'utf8').catch(() => entry), 10);
    if (processAlive(owner)) continue;
    // Its machines should have shut down with it (parent-death signal); kill any that did not.
    for (const pid of await nspawnProcesses(join(dir, entry))) await killTree(pid);
    await removeTree(join(dir, entry));
  }
  await reapStaleClaims();
}
