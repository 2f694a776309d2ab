/**
 * What each boot lever is worth: the debian-12 base booted the way the local provider boots it
 * (the same command line, from qemu-args.ts), one lever changed at a time, timed from QEMU's start
 * to sshd answering (its "SSH-2.0-" banner through the forwarded port). Median of BOOT_RUNS runs
 * (default 3; each boot costs 15-60 s under TCG), with the load average before each lever.
 *
 *   node dist/bench/boot-levers.js [group ...]     groups: default machine cpu cpu-more tb cmdline initrd parallel parallel-single analyze clean resume
 *
 * `analyze` boots once with a key and prints `systemd-analyze critical-chain` and `blame`.
 * `clean` boots once and times the build's clean step part by part over one SSH connection (as the
 * tool runs it: a command per channel), right after SSH answers, as a one-line build would.
 * `resume` saves a booted machine once and times resuming it instead of booting (see resume()).
 * The base is the ready debian-12 in the cache (built first if missing), or BOOT_BASE=<folder>.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createConnection, createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hardwareFor, type GuestHardware } from '../src/providers/local/accelerator.js';
import { bootSpecOf, readBaseRecord, type BootSpec } from '../src/providers/local/base-record.js';
import { BaseStore } from '../src/providers/local/bases.js';
import { machineArgs } from '../src/providers/local/qemu-args.js';
import { QEMU_SYSTEM } from '../src/providers/local/qemu.js';
import { saveMachineState } from '../src/providers/local/warm.js';
import { DEBIAN_BASE, localSettingsSchema } from '../src/providers/local/settings.js';
import { nullSink } from '../src/core/events.js';
import { cleanFilesCommand, POWER_OFF_REQUEST } from '../src/pipeline/pipeline.js';
import { median } from './lib.js';

const RUNS = Number(process.env['BOOT_RUNS'] ?? 3);
const BOOT_TIMEOUT_MS = 300_000;

export interface Lever {
  group: string;
  label: string;
  hardware?: Partial<GuestHardware>;
  /** Replaces the base's kernel command line. */
  append?: (base: string) => string;
  /** Boot without the base's initrd. */
  noInitrd?: boolean;
  /** Boot with the base's initrd decompressed (the kernel takes a plain cpio archive too). */
  plainInitrd?: boolean;
  cpus?: number;
  /** Machines booted at once (the figure is the last one's). */
  machines?: number;
  /** Added to the provider's command line (the `resume` group: vmgenid, -incoming). */
  extraArgs?: string[];
  /** Start from this overlay (a copy is made) instead of a new one on the base. */
  fromOverlay?: string;
}

const tcg = hardwareFor('tcg');

function levers(): Lever[] {
  const all: Lever[] = [
    { group: 'default', label: "the provider's own command line" },
    { group: 'machine', label: `q35, -cpu max (before)`, hardware: { machine: 'q35', cpu: 'max', accel: 'tcg,thread=multi' } },
    { group: 'machine', label: 'pc, -cpu max', hardware: { machine: 'pc', cpu: 'max' } },
    { group: 'machine', label: 'pc, QEMU default CPU (qemu64)', hardware: { machine: 'pc', cpu: 'qemu64' } },
    { group: 'machine', label: 'q35, QEMU default CPU (qemu64)', hardware: { machine: 'q35', cpu: 'qemu64' } },
    { group: 'cpu', label: `${tcg.machine}, -cpu Nehalem (x86-64-v2)`, hardware: { cpu: 'Nehalem' } },
    { group: 'cpu', label: `${tcg.machine}, -cpu qemu64`, hardware: { cpu: 'qemu64' } },
    { group: 'cpu-more', label: `${tcg.machine}, -cpu Haswell-noTSX (x86-64-v3)`, hardware: { cpu: 'Haswell-noTSX' } },
    { group: 'cpu-more', label: `${tcg.machine}, -cpu max`, hardware: { cpu: 'max' } },
    { group: 'tb', label: 'tb-size default (thread=multi)', hardware: { accel: 'tcg,thread=multi' } },
    { group: 'tb', label: 'tb-size=64 MiB', hardware: { accel: 'tcg,thread=multi,tb-size=64' } },
    { group: 'tb', label: 'tb-size=512 MiB', hardware: { accel: 'tcg,thread=multi,tb-size=512' } },
    { group: 'tb', label: 'thread=single', hardware: { accel: 'tcg,thread=single' } },
    { group: 'cmdline', label: 'the base command line', append: (a) => a },
    { group: 'cmdline', label: '+ loglevel=0 (no console output)', append: (a) => `${a} loglevel=0` },
    { group: 'cmdline', label: '+ no console=ttyS0', append: (a) => a.replace(/\s*console=\S+/, '') },
    { group: 'cmdline', label: '+ tsc=reliable no_timer_check', append: (a) => `${a} tsc=reliable no_timer_check` },
    { group: 'cmdline', label: '+ mitigations=off', append: (a) => `${a} mitigations=off` },
    { group: 'cmdline', label: '+ cryptomgr.notests (no crypto self-tests)', append: (a) => `${a} cryptomgr.notests` },
    { group: 'cmdline', label: '+ systemd.show_status=false', append: (a) => `${a} systemd.show_status=false` },
    { group: 'initrd', label: 'with the base initrd', noInitrd: false },
    { group: 'initrd', label: 'the base initrd, uncompressed', plainInitrd: true },
    { group: 'initrd', label: 'no initrd', noInitrd: true, append: (a) => `${a} panic=-1` },
  ];
  for (const cpus of [1, 2]) {
    for (const machines of [1, 2, 3]) all.push({ group: 'parallel', label: `${machines} at once, ${cpus} vCPU each`, cpus, machines });
  }
  // One host thread per machine, whatever its vCPUs: no vCPU thread spins on a lock whose holder waits for a core.
  for (const machines of [2, 3]) all.push({ group: 'parallel-single', label: `${machines} at once, 2 vCPU each, thread=single`, cpus: 2, machines, hardware: { accel: 'tcg,thread=single' } });
  return all;
}

interface Booted {
  child: ChildProcess;
  port: number;
  dir: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function start(boot: BootSpec, lever: Lever, key: string, index: number): Promise<Booted> {
  const dir = mkdtempSync(join(tmpdir(), 'boot-lever-'));
  const overlay = join(dir, 'overlay.qcow2');
  const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', lever.fromOverlay ?? boot.baseDisk, overlay]);
  if (made.status !== 0) throw new Error(`qemu-img: ${made.stderr}`);
  const port = await freePort();
  const append = lever.append ? lever.append(boot.append ?? '') : boot.append;
  const args = machineArgs({
    dir,
    name: `lever-${index}`,
    hostname: `lever-${index}`,
    accelerator: 'tcg',
    memoryMiB: 1024,
    cpus: lever.cpus ?? 2,
    overlay,
    boot: { ...boot, append, initrd: lever.noInitrd ? undefined : lever.plainInitrd ? plainInitrd(boot.initrd!) : boot.initrd },
    sshPort: port,
    ports: [],
    authorizedKey: key,
    qmp: join(dir, 'qmp.sock'),
    serialLog: join(dir, 'serial.log'),
    pidFile: join(dir, 'qemu.pid'),
    hardware: lever.hardware,
  })
    .filter((a) => a !== '-daemonize')
    .concat(lever.extraArgs ?? []);
  const child = spawn(QEMU_SYSTEM, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return { child, port, dir };
}

/** QEMU processes still running: killed if the bench is interrupted. */
const live = new Set<ChildProcess>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const child of live) child.kill('SIGKILL');
    process.exit(130);
  });
}

let plainInitrdPath: string | undefined;

function plainInitrd(initrd: string): string {
  if (!plainInitrdPath) {
    plainInitrdPath = join(mkdtempSync(join(tmpdir(), 'boot-levers-initrd-')), 'initrd.cpio');
    const data = readFileSync(initrd);
    writeFileSync(plainInitrdPath, data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : zstdOrPlain(initrd, data));
  }
  return plainInitrdPath;
}

function zstdOrPlain(path: string, data: Buffer): Buffer {
  // zstd magic 28 b5 2f fd (initramfs-tools' default compression in newer releases).
  if (data.readUInt32LE(0) !== 0xfd2fb528) return data;
  return spawnSync('zstd', ['-dc', path], { maxBuffer: 1 << 30 }).stdout;
}

/** Resolves when the port answers with an SSH banner (QEMU's forwarder accepts before the guest listens). */
function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(3000, () => done(false));
    socket.on('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** CPU time (user + system) QEMU has used so far, in ms: steadier than wall time on a busy machine. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/**
 * Probes overlap, one every 200 ms: a probe made before the guest has its address hangs (QEMU
 * resends its SYN to the guest with backoff), and waiting it out would round every figure up by
 * seconds (single probes with a 2 s timeout made the figures steps of 2.2 s).
 */
async function waitForSsh(m: Booted, started: number): Promise<{ ms: number; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setInterval(() => {
      if (done) return;
      if (m.child.exitCode !== null || performance.now() - started > BOOT_TIMEOUT_MS) {
        done = true;
        clearInterval(timer);
        return reject(new Error(m.child.exitCode !== null ? `QEMU exited with ${m.child.exitCode}` : 'no SSH banner within the time limit'));
      }
      void banner(m.port).then((ok) => {
        if (!ok || done) return;
        done = true;
        clearInterval(timer);
        resolve({ ms: performance.now() - started, cpuMs: cpuMs(m.child.pid!) });
      });
    }, 200);
  });
}

async function stop(m: Booted): Promise<void> {
  if (m.child.exitCode === null) {
    const exited = new Promise((r) => m.child.once('exit', r));
    m.child.kill('SIGKILL');
    await exited;
  }
  rmSync(m.dir, { recursive: true, force: true });
}

/** One boot of `lever.machines` machines at once; the time until the last one answers, and their CPU time. */
export async function bootOnce(boot: BootSpec, lever: Lever, key: string): Promise<{ ms: number; cpuMs: number }> {
  const started = performance.now();
  const machines = await Promise.all(Array.from({ length: lever.machines ?? 1 }, (_, i) => start(boot, lever, key, i)));
  try {
    const times = await Promise.all(machines.map((m) => waitForSsh(m, started)));
    return { ms: Math.max(...times.map((t) => t.ms)), cpuMs: times.reduce((sum, t) => sum + t.cpuMs, 0) };
  } finally {
    await Promise.all(machines.map(stop));
  }
}

async function readyBase(): Promise<BootSpec> {
  const dir = process.env['BOOT_BASE'];
  if (dir) {
    const record = await readBaseRecord(dir);
    if (!record) throw new Error(`${dir} has no base.json`);
    return bootSpecOf(dir, record);
  }
  const store = new BaseStore(localSettingsSchema.parse({}), nullSink);
  return (await store.prepare(DEBIAN_BASE, new AbortController().signal)).boot;
}

function keyPair(dir: string): { privateKey: string; publicKey: string } {
  const privateKey = join(dir, 'id_ed25519');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', privateKey]);
  return { privateKey, publicKey: spawnSync('cat', [`${privateKey}.pub`], { encoding: 'utf8' }).stdout };
}

async function analyze(boot: BootSpec, publicKey: string, privateKey: string): Promise<void> {
  const m = await start(boot, { group: 'analyze', label: 'analyze' }, publicKey, 0);
  try {
    const { ms } = await waitForSsh(m, performance.now());
    console.log(`\nbooted to SSH in ${(ms / 1000).toFixed(1)} s; on the guest:`);
    const ssh = (cmd: string) =>
      spawnSync('ssh', ['-i', privateKey, '-p', String(m.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', cmd], { encoding: 'utf8' }).stdout;
    // Waiting for the boot to settle, so that systemd-analyze has the whole picture.
    console.log(ssh('systemctl is-system-running --wait >/dev/null; systemd-analyze; systemd-analyze critical-chain ssh.service; systemd-analyze blame | head -25; systemctl list-units --state=failed --no-legend'));
  } finally {
    await stop(m);
  }
}

/** The clean step's parts, each as its own command on one SSH connection, median of 5 (the last ones once). */
async function cleanParts(boot: BootSpec, publicKey: string, privateKey: string): Promise<void> {
  const m = await start(boot, { group: 'clean', label: 'clean' }, publicKey, 0);
  const control = join(m.dir, 'control');
  const base = ['-i', privateKey, '-p', String(m.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', `ControlPath=${control}`];
  try {
    const { ms } = await waitForSsh(m, performance.now());
    spawnSync('ssh', [...base, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=120', '-f', '-N', 'root@127.0.0.1']);
    const time = (cmd: string) => {
      const t0 = performance.now();
      const r = spawnSync('ssh', [...base, 'root@127.0.0.1', cmd], { encoding: 'utf8' });
      if (r.status !== 0 && !cmd.includes('poweroff')) throw new Error(`${cmd}: ${r.stderr}`);
      return performance.now() - t0;
    };
    console.log(`\nbooted to SSH in ${(ms / 1000).toFixed(1)} s; the clean step's parts, each its own command on one connection (median of 5, ms):`);
    time('echo v1 > /etc/build-marker'); // the one-line script
    // The files part is run as the build runs it, for a key the machine does not have (the
    // connection's own key stays); "before" is the same work as it was done until 42eb377.
    const before = `rm -rf /var/tmp/x; grep -vxF 'ssh-ed25519 AAAA x' /root/.ssh/authorized_keys > /root/.ssh/k.new || true; rm -f /root/.ssh/k.new; : > /tmp/machine-id; rm -f /tmp/none_*_key`;
    const parts: [string, string][] = [
      ['an empty command (the round trip)', 'true'],
      ['the key, files, machine-id and host keys, before (grep, a temporary file, an rm each)', before],
      ['the key, files, machine-id and host keys, now (cleanFilesCommand, with its sync)', cleanFilesCommand('ssh-ed25519 AAAA not-this-machines-key')],
      ['sync alone', 'sync'],
      ['systemctl --version (systemctl start-up)', 'systemctl --version >/dev/null'],
    ];
    for (const [label, cmd] of parts) {
      const times = Array.from({ length: 5 }, () => time(cmd));
      console.log(`| ${label} | ${median(times).toFixed(0)} | ${times.map((t) => t.toFixed(0)).join(', ')} |`);
    }
    // Once: it powers the machine off (before 42eb377 the request was `systemctl poweroff --no-block`).
    console.log(`| the power-off request, now (POWER_OFF_REQUEST: systemd's signal), once | ${time(POWER_OFF_REQUEST).toFixed(0)} | |`);
  } finally {
    spawnSync('ssh', [...base, '-O', 'exit', 'root@127.0.0.1']);
    await stop(m);
  }
}

/**
 * The `resume` group: instead of booting, a builder resumes a machine saved once right after its
 * boot (QEMU's migration to a file, beside a copy of its overlay). Each resume gets a new VM
 * generation ID (vmgenid: the guest kernel reseeds its RNG when it changes) and a new overlay on
 * the saved one. Timed from QEMU's start to the SSH banner and to a first command; then what a
 * resumed guest needs before a build (its clock set), and whether resumes draw different random
 * numbers. The key is the saved machine's (a product would hand each builder its own).
 */
async function resume(boot: BootSpec, publicKey: string, privateKey: string): Promise<void> {
  const saved = mkdtempSync(join(tmpdir(), 'boot-levers-saved-'));
  const state = join(saved, 'state');
  const vmgenid = (guid: string) => ['-device', `vmgenid,guid=${guid}`];
  const sshArgs = (port: number) => ['-i', privateKey, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', 'root@127.0.0.1'];
  const ssh = (port: number, cmd: string) => spawnSync('ssh', [...sshArgs(port), cmd], { encoding: 'utf8' });
  try {
    const source = await start(boot, { group: 'resume', label: 'save', extraArgs: vmgenid(randomUUID()) }, publicKey, 0);
    let saveMs = 0;
    try {
      const { ms } = await waitForSsh(source, performance.now());
      // The boot settles first (units after sshd), so that a resumed guest starts idle.
      const settled = ssh(source.port, 'systemctl is-system-running --wait; true');
      saveMs = await saveMachineState(join(source.dir, 'qmp.sock'), state);
      spawnSync('cp', [join(source.dir, 'overlay.qcow2'), join(saved, 'overlay.qcow2')]);
      console.log(`\nsaved machine: booted to SSH in ${(ms / 1000).toFixed(1)} s, settled (${settled.stdout.trim()}), saved in ${saveMs.toFixed(0)} ms: state ${(statSync(state).size / 2 ** 20).toFixed(0)} MiB, overlay ${(statSync(join(saved, 'overlay.qcow2')).size / 2 ** 20).toFixed(0)} MiB`);
    } finally {
      await stop(source);
    }
    console.log('| run | QEMU start to SSH banner | to a first command | setting the clock (guest was behind by) | 16 random bytes from the guest |');
    console.log('| --- | --- | --- | --- | --- |');
    const banners: number[] = [];
    const firsts: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      const m = await start(boot, { group: 'resume', label: 'resume', fromOverlay: join(saved, 'overlay.qcow2'), extraArgs: [...vmgenid(randomUUID()), '-incoming', `exec:cat ${state}`] }, publicKey, 0);
      try {
        const { ms } = await waitForSsh(m, started);
        const first = ssh(m.port, 'true');
        const firstMs = performance.now() - started;
        if (first.status !== 0) throw new Error(`first command: ${first.stderr}`);
        const t1 = performance.now();
        const clock = ssh(m.port, `echo $(( ${Math.round(Date.now() / 1000)} - $(date +%s) )); date -s @${Math.round(Date.now() / 1000)} >/dev/null`);
        const clockMs = performance.now() - t1;
        const random = ssh(m.port, 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"');
        banners.push(ms);
        firsts.push(firstMs);
        console.log(`| ${i + 1} | ${(ms / 1000).toFixed(2)} s | ${(firstMs / 1000).toFixed(2)} s | ${clockMs.toFixed(0)} ms (${clock.stdout.trim()} s) | ${random.stdout.trim()} |`);
      } finally {
        await stop(m);
      }
    }
    console.log(`median: SSH banner ${(median(banners) / 1000).toFixed(2)} s, first command ${(median(firsts) / 1000).toFixed(2)} s`);
  } finally {
    rmSync(saved, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const groups = process.argv.slice(2);
  const boot = await readyBase();
  const work = mkdtempSync(join(tmpdir(), 'boot-levers-'));
  const { privateKey, publicKey } = keyPair(work);
  console.log(`base: ${boot.baseDisk}\nkernel: ${boot.kernel}\ninitrd: ${boot.initrd}\nappend: ${boot.append}\ndefault TCG hardware: ${JSON.stringify(tcg)}\nruns per lever: ${RUNS}\n`);
  if (groups.includes('analyze')) await analyze(boot, publicKey, privateKey);
  if (groups.includes('clean')) await cleanParts(boot, publicKey, privateKey);
  if (groups.includes('resume')) await resume(boot, publicKey, privateKey);
  const chosen = levers().filter((l) => groups.length === 0 || groups.includes(l.group));
  if (chosen.length) {
    console.log('| group | lever | boot to SSH, median | runs (s) | QEMU CPU time to SSH, median | load average before |');
    console.log('| --- | --- | --- | --- | --- | --- |');
  }
  for (const lever of chosen) {
    const load = loadavg()[0]!.toFixed(2);
    const times: number[] = [];
    const cpu: number[] = [];
    let failed: string | undefined;
    for (let i = 0; i < RUNS && !failed; i++) {
      try {
        const t = await bootOnce(boot, lever, publicKey);
        times.push(t.ms);
        cpu.push(t.cpuMs);
      } catch (err) {
        failed = (err as Error).message;
      }
    }
    const figure = failed ? `did not boot: ${failed}` : `${(median(times) / 1000).toFixed(1)} s`;
    const cpuFigure = cpu.length ? `${(median(cpu) / 1000).toFixed(1)} s` : '-';
    console.log(`| ${lever.group} | ${lever.label} | ${figure} | ${times.map((t) => (t / 1000).toFixed(1)).join(', ')} | ${cpuFigure} | ${load} |`);
  }
  rmSync(work, { recursive: true, force: true });
}

await main();
