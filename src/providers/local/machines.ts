/**
 * Machines: one QEMU process each, daemonised (a server must outlive the command that deployed
 * it), on a qcow2 overlay in its own run folder. machine.json in that folder holds what is needed
 * to find the machine again from another process: labels, SSH port, pid, QMP socket.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { CancelledError, ProviderError } from '../../core/errors.js';
import { sleep } from '../../core/wait.js';
import type { Server, SshEndpoint } from '../types.js';
import type { Accelerator } from './accelerator.js';
import type { BootSpec } from './base-record.js';
import { readJson, writeJsonAtomic } from './files.js';
import { machineDir, machinesDir, socketPath } from './layout.js';
import { processMatches, processesMentioning, run, tail } from './process.js';
import { cloudInitSeed, hostnameFor, machineArgs } from './qemu-args.js';
import { QEMU_SYSTEM, createOverlay } from './qemu.js';
import { qmpCommand } from './qmp.js';
import type { PortForward } from './settings.js';

export interface MachineRecord {
  id: string;
  name: string;
  project: string;
  labels: Record<string, string>;
  createdAt: string;
  ssh: SshEndpoint;
  ports: PortForward[];
  /** What the overlay is on: a base ref or a version (its qcow2 path). */
  source: { kind: 'base'; ref: string } | { kind: 'version'; image: string; version: string; disk: string };
  backing: string;
  boot: BootSpec;
  accelerator: Accelerator;
  qmp: string;
  /** Host forwards added while it runs, for endpoints: guest port -> 127.0.0.1 port. */
  endpointPorts?: Record<string, number>;
  pid?: number;
  stoppedAt?: string;
  /**
   * A resumed builder (warm.ts): its overlay is on the saved machine's, and a version made from it
   * is first rebased onto this backing (the base's disk), so that no version depends on a saved state.
   */
  rebaseOnto?: { backing: string; format: string };
}

export interface LaunchSpec {
  project: string;
  name: string;
  labels: Record<string, string>;
  source: MachineRecord['source'];
  backing: string;
  backingFormat: string;
  boot: BootSpec;
  accelerator: Accelerator;
  memoryMiB: number;
  cpus: number;
  ports: PortForward[];
  authorizedKey: string;
  /** The guest's host name at boot (default: from `name`). */
  hostname?: string;
  /** A machine to be saved, or resumed from a saved state (qemu-args.ts `warm`). */
  warm?: { incoming?: string };
  rebaseOnto?: MachineRecord['rebaseOnto'];
}

export const OVERLAY = 'overlay.qcow2';
const RECORD = 'machine.json';
const PID_FILE = 'qemu.pid';

export async function readMachine(project: string, id: string): Promise<MachineRecord | undefined> {
  return readJson<MachineRecord>(join(machineDir(project, id), RECORD));
}

export async function writeMachine(record: MachineRecord): Promise<void> {
  await writeJsonAtomic(join(machineDir(record.project, record.id), RECORD), record);
}

/** Whether `pid` is a live QEMU started for run folder `dir` (its files are on its command line). */
function isMachineProcess(pid: number, dir: string): Promise<boolean> {
  // With the slash: machine "web-1a2b3c" must not match the folder of "web-1a2b3c-4d5e6f".
  return processMatches(pid, `${dir}/`);
}

/** Whether the machine's QEMU is running (the pid is alive and is QEMU started for this run folder). */
export async function isRunning(record: MachineRecord): Promise<boolean> {
  return !!record.pid && (await isMachineProcess(record.pid, machineDir(record.project, record.id)));
}

/** Create the run folder and overlay, start QEMU; on any failure nothing is left behind. */
export async function launch(spec: LaunchSpec, signal: AbortSignal): Promise<MachineRecord> {
  const id = `${hostnameFor(spec.name).replaceAll('.', '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`;
  const dir = machineDir(spec.project, id);
  await mkdir(machinesDir(spec.project), { recursive: true });
  await mkdir(dir);
  const record: MachineRecord = {
    id,
    name: spec.name,
    project: spec.project,
    labels: spec.labels,
    createdAt: new Date().toISOString(),
    ssh: { host: '127.0.0.1', port: 0, user: 'root' },
    ports: spec.ports,
    source: spec.source,
    backing: spec.backing,
    boot: spec.boot,
    accelerator: spec.accelerator,
    qmp: qmpAddress(dir),
    rebaseOnto: spec.rebaseOnto,
  };
  try {
    await createOverlay(spec.backing, spec.backingFormat, join(dir, OVERLAY), signal);
    let seedDir: string | undefined;
    if (!spec.boot.kernel) {
      // Booted by its own boot loader: most likely a cloud image, which takes its key from cloud-init.
      seedDir = join(dir, 'seed');
      await mkdir(seedDir);
      for (const [file, content] of Object.entries(cloudInitSeed(id, hostnameFor(spec.name), spec.authorizedKey))) {
        await writeFile(join(seedDir, file), content);
      }
    }
    if (!record.qmp.startsWith(dir)) await mkdir(dirname(record.qmp), { recursive: true, mode: 0o700 });
    await writeMachine(record);
    await startOnFreePort(spec, record, dir, seedDir, signal);
    await writeMachine(record);
    return record;
  } catch (err) {
    await removeMachine(spec.project, id).catch(() => undefined);
    throw err;
  }
}

/** Start QEMU on a free SSH port: one may be taken between our check and QEMU's bind, so another is tried. */
async function startOnFreePort(spec: LaunchSpec, record: MachineRecord, dir: string, seedDir: string | undefined, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw new CancelledError();
    record.ssh.port = await freePort();
    try {
      record.pid = await startQemu(spec, record, dir, seedDir, signal);
      return;
    } catch (err) {
      if (attempt >= 3 || !/hostfwd|host forwarding|Could not set up/i.test((err as Error).message)) throw err;
    }
  }
}

/**
 * Start a launched machine's QEMU again, on the same run folder and overlay (its last QEMU must be
 * gone): how a machine just saved (warm.ts) is resumed, `spec.warm.incoming` naming its state.
 */
export async function restartMachine(spec: LaunchSpec, record: MachineRecord, signal: AbortSignal): Promise<MachineRecord> {
  const dir = machineDir(record.project, record.id);
  await startOnFreePort(spec, record, dir, undefined, signal);
  await writeMachine(record);
  return record;
}

async function startQemu(spec: LaunchSpec, record: MachineRecord, dir: string, seedDir: string | undefined, signal: AbortSignal): Promise<number> {
  const args = machineArgs({
    dir,
    name: spec.name,
    hostname: spec.hostname ?? hostnameFor(spec.name),
    accelerator: spec.accelerator,
    memoryMiB: spec.memoryMiB,
    cpus: spec.cpus,
    overlay: join(dir, OVERLAY),
    boot: spec.boot,
    sshPort: record.ssh.port,
    ports: spec.ports,
    authorizedKey: spec.authorizedKey,
    qmp: record.qmp,
    serialLog: join(dir, 'serial.log'),
    pidFile: join(dir, PID_FILE),
    seedDir,
    warm: spec.warm,
  });
  // With -daemonize the first process exits once the machine runs (or failed to start, saying why
  // on stderr). The daemon calls setsid(): a Ctrl-C in the terminal does not reach it. The start is
  // not cut short by the signal: killing QEMU between its fork and its pid file could leave an
  // orphan nobody knows about. It takes well under a second; the caller checks the signal after.
  const log = join(dir, 'qemu.log');
  const handle = await open(log, 'w');
  try {
    await run(QEMU_SYSTEM, args, { timeoutMs: 60_000, operation: `starting machine ${spec.name}`, outputFd: handle.fd });
  } catch (err) {
    const said = await readFile(log, 'utf8').catch(() => '');
    throw new ProviderError({ provider: 'local', operation: `starting machine ${spec.name}`, message: `${(err as Error).message}${tail(said)}`, cause: err });
  } finally {
    await handle.close();
  }
  if (signal.aborted) throw new CancelledError();
  const pid = Number((await readFile(join(dir, PID_FILE), 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`QEMU wrote no usable pid file in ${dir}`);
  return pid;
}

/** Kill the QEMU whose pid file is in `dir`, if it is still ours. */
async function killRecorded(dir: string): Promise<void> {
  const pid = Number((await readFile(join(dir, PID_FILE), 'utf8').catch(() => '')).trim());
  if (pid > 0 && (await isMachineProcess(pid, dir))) await killMachineProcess(pid, dir);
}

/** SIGTERM (QEMU exits cleanly on it), then SIGKILL; waits until the process is gone. */
export async function killMachineProcess(pid: number, dir: string): Promise<void> {
  const signalPid = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  signalPid('SIGTERM');
  for (let waited = 0; waited < 5000; waited += 100) {
    if (!(await isMachineProcess(pid, dir))) return;
    await sleep(100);
  }
  signalPid('SIGKILL');
  for (let waited = 0; waited < 10_000; waited += 100) {
    if (!(await isMachineProcess(pid, dir))) return;
    await sleep(100);
  }
  throw new Error(`QEMU process ${pid} did not exit after SIGKILL`);
}

/** Kill the machine if it runs, then remove its run folder. Idempotent. */
export async function removeMachine(project: string, id: string): Promise<void> {
  const dir = machineDir(project, id);
  if (!existsSync(dir)) return;
  const record = await readMachine(project, id).catch(() => undefined);
  if (record?.pid && (await isMachineProcess(record.pid, dir))) await killMachineProcess(record.pid, dir);
  await killRecorded(dir);
  // Belt and braces: any process still started for this folder (a launch that timed out midway).
  for (const pid of await processesMentioning(`${dir}/`)) await killMachineProcess(pid, dir);
  if (record && !record.qmp.startsWith(`${dir}/`)) await rm(record.qmp, { force: true });
  await rm(dir, { recursive: true, force: true });
}

/** Machines of a project, read back from their machine.json files. */
export async function listMachines(project: string): Promise<Array<{ record: MachineRecord; state: Server['state'] }>> {
  let ids: string[];
  try {
    ids = await readdir(machinesDir(project));
  } catch {
    return [];
  }
  const found = await Promise.all(
    ids.map(async (id) => {
      const record = await readMachine(project, id).catch(() => undefined);
      if (!record) return undefined;
      const state: Server['state'] = (await isRunning(record))
        ? 'running'
        : record.stoppedAt
          ? 'stopped'
          : record.pid
            ? 'dead'
            : 'unknown';
      return { record, state };
    }),
  );
  return found.filter((m): m is NonNullable<typeof m> => !!m);
}

/** The QMP socket: in the run folder, or a short private folder when that path is too long. */
export function qmpAddress(dir: string): string {
  return socketPath(dir, 'qmp.sock', 'qmp');
}

/**
 * Where 127.0.0.1 reaches `guestPort` on a running machine: a host forward added to its QEMU
 * (QMP, HMP's hostfwd_add), made once per port and kept in machine.json. An endpoint's HAProxy
 * connects there.
 */
export async function forwardGuestPort(project: string, id: string, guestPort: number): Promise<number> {
  const record = await readMachine(project, id);
  if (!record || !(await isRunning(record))) throw new ProviderError({ provider: 'local', operation: 'forward a port', message: `machine ${id} does not run` });
  const known = record.endpointPorts?.[String(guestPort)];
  if (known) return known;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const said = await qmpCommand(record.qmp, 'human-monitor-command', 5000, { 'command-line': `hostfwd_add net0 tcp:127.0.0.1:${port}-:${guestPort}` });
    if (typeof said === 'string' && said.trim()) {
      // Taken between our check and QEMU's bind: try another.
      if (attempt < 3) continue;
      throw new ProviderError({ provider: 'local', operation: `forward port ${guestPort} of ${record.name}`, message: said.trim() });
    }
    record.endpointPorts = { ...record.endpointPorts, [String(guestPort)]: port };
    await writeMachine(record);
    return port;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}
