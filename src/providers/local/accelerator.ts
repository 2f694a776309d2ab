/**
 * KVM or TCG. /dev/kvm existing is not enough: on some hosts (nested virtualisation, odd CPU
 * models) QEMU aborts as soon as a vCPU is set up ("failed to set MSR ...") or the guest hangs.
 * So we start a tiny guest the way real machines start (-accel kvm -cpu host): a 512-byte boot
 * sector that writes to QEMU's isa-debug-exit port, which makes QEMU exit with a known status.
 * Only that status proves that KVM ran guest code. The probe runs once per process.
 */
import { spawn } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDir } from '../../core/paths.js';
import { readJson, writeJsonAtomic } from './files.js';
import { QEMU_SYSTEM } from './qemu.js';

export type Accelerator = 'kvm' | 'tcg';

export interface AcceleratorChoice {
  accelerator: Accelerator;
  /** Why: "KVM works", "KVM unusable: ...", "accelerator: tcg in the settings". */
  reason: string;
  /** Set when the settings force KVM but the probe failed: machines cannot start. */
  unusable?: string;
}

/** Port of isa-debug-exit; QEMU exits with (value << 1) | 1 when the guest writes `value` to it. */
const DEBUG_EXIT_PORT = 0xf4;
const PROBE_VALUE = 0x31;
const PROBE_EXIT_STATUS = (PROBE_VALUE << 1) | 1;
const PROBE_TIMEOUT_MS = 8000;

/** mov al, 0x31; out 0xf4, al; then hlt forever (never reached when the exit works). */
export function probeBootSector(): Buffer {
  const sector = Buffer.alloc(512);
  Buffer.from([0xb0, PROBE_VALUE, 0xe6, DEBUG_EXIT_PORT, 0xf4, 0xeb, 0xfd]).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/**
 * The emulated hardware of a machine, chosen per accelerator. Under KVM the guest runs on the
 * host's CPU and the machine type costs nothing. Under TCG every guest instruction is translated,
 * so the hardware is chosen by what boots fastest (bench/boot-levers.ts, figures in BENCHMARKS.md).
 */
export interface GuestHardware {
  /** The -accel value. */
  accel: string;
  /** The -M value. */
  machine: string;
  /** The -cpu value. */
  cpu: string;
}

/**
 * `ownKernel`: the machine boots a kernel given on QEMU's command line (the built-in debian-12,
 * whose userland runs on any x86-64). A configured base boots its own loader and may need
 * x86-64-v2 or later (RHEL 9 and its rebuilds do): it gets every feature QEMU emulates.
 */
export function hardwareFor(accelerator: Accelerator, ownKernel = true): GuestHardware {
  // With KVM the host CPU model is what makes guests fast; it is also what the probe checked.
  if (accelerator === 'kvm') return { accel: 'kvm', machine: 'q35', cpu: 'host' };
  // Under TCG: `pc` and QEMU's default CPU model. `max` makes the guest kernel use every feature
  // QEMU can emulate, slowly: about a fifth more CPU time to boot; `q35` costs about the same as `pc`.
  return { accel: 'tcg,thread=multi', machine: 'pc', cpu: ownKernel ? 'qemu64' : 'max' };
}

/** Command-line arguments that select an accelerator (and the CPU model that goes with it). */
export function acceleratorArgs(hardware: GuestHardware): string[] {
  return ['-accel', hardware.accel, '-cpu', hardware.cpu];
}

/**
 * Runs the probe guest under KVM, and the same guest under TCG at the same time; resolves with
 * undefined when KVM works, or the reason it does not. Under nested virtualisation KVM can run the
 * probe and still be unusable: seconds for 512 bytes of real mode (TCG: a tenth of a second), and
 * a Linux guest stalls. KVM counts as working only if it is not much slower than TCG.
 */
export async function probeKvm(): Promise<string | undefined> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch (err) {
    return `/dev/kvm is not usable (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const dir = await mkdtemp(join(tmpdir(), 'provisional-kvm-probe-'));
  try {
    const image = join(dir, 'boot.img');
    await writeFile(image, probeBootSector());
    const args = (hardware: GuestHardware) => [
      ...acceleratorArgs(hardware),
      '-M', 'pc',
      '-nodefaults',
      '-no-user-config',
      '-display', 'none',
      '-m', '16',
      '-device', `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`,
      '-drive', `file=${image.replaceAll(',', ',,')},format=raw,if=ide,snapshot=on`,
    ];
    const kvmRun = runProbe(args(hardwareFor('kvm')));
    const tcg = await runProbe(args({ ...hardwareFor('tcg'), cpu: 'qemu64' })).result;
    // Once TCG is done, KVM gets a quarter more than its time (plus slack for QEMU's start-up) and
    // no more: a working KVM runs 512 bytes of real mode in no time, so both are QEMU's start-up.
    // On a nested host seen here, KVM took 2.5-7.5 s where TCG took 0.5-1.1 s (under load), and a
    // looser bound (twice TCG's time) let a slow TCG run pass such a KVM.
    const tooSlow = tcg.status === PROBE_EXIT_STATUS ? setTimeout(() => kvmRun.kill(), Math.max(0, kvmDeadlineMs(tcg.ms) - kvmRun.elapsed())) : undefined;
    const kvm = await kvmRun.result;
    clearTimeout(tooSlow);
    if (kvm.status === PROBE_EXIT_STATUS) return undefined;
    if (kvm.killed) {
      return `KVM took over ${(kvmDeadlineMs(tcg.ms) / 1000).toFixed(1)} s to run a probe guest that software emulation ran in ${(tcg.ms / 1000).toFixed(1)} s (nested virtualisation?)`;
    }
    const said = kvm.stderr
      .split('\n')
      .map((l) => l.replace(/^qemu-system-x86_64:\s*/, '').replace(/^error:\s*/, '').trim())
      .filter((l) => l && !l.startsWith('warning:'));
    if (kvm.timedOut) return `a probe guest did not finish under KVM within ${PROBE_TIMEOUT_MS / 1000} s`;
    return said[0] ?? `a probe guest under KVM ended with status ${kvm.status}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How much slower than TCG a working KVM may start and run the probe: QEMU's start-up varies. */
const KVM_SLACK_MS = 300;

/** How long KVM may take to run the probe, given how long TCG took to run it at the same time. */
export function kvmDeadlineMs(tcgMs: number): number {
  return 1.25 * tcgMs + KVM_SLACK_MS;
}

interface ProbeResult {
  status: number | null;
  stderr: string;
  timedOut: boolean;
  /** Killed by kill() (too slow), not by the time limit. */
  killed: boolean;
  ms: number;
}

function runProbe(args: string[]): { result: Promise<ProbeResult>; kill(): void; elapsed(): number } {
  const started = performance.now();
  const child = spawn(QEMU_SYSTEM, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let killed = false;
  const result = new Promise<ProbeResult>((resolve) => {
    let stderr = '';
    let timedOut = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, PROBE_TIMEOUT_MS);
    const done = (status: number | null, said: string) => {
      clearTimeout(timer);
      resolve({ status, stderr: said, timedOut, killed, ms: performance.now() - started });
    };
    child.on('error', (err) => done(null, err.message));
    child.on('close', (status) => done(status, stderr));
  });
  return {
    result,
    kill: () => {
      killed = true;
      child.kill('SIGKILL');
    },
    elapsed: () => performance.now() - started,
  };
}

let probed: Promise<string | undefined> | undefined;

/** Picks the accelerator for a setting; the KVM probe runs at most once per process. */
export async function chooseAccelerator(setting: 'auto' | 'kvm' | 'tcg'): Promise<AcceleratorChoice> {
  if (setting === 'tcg') return { accelerator: 'tcg', reason: 'accelerator: tcg in the settings' };
  probed ??= rememberedProbe();
  const problem = await probed;
  if (!problem) return { accelerator: 'kvm', reason: 'KVM works' };
  if (setting === 'kvm') {
    return { accelerator: 'kvm', reason: `accelerator: kvm in the settings, but KVM is unusable: ${problem}`, unusable: problem };
  }
  return { accelerator: 'tcg', reason: `KVM unusable: ${problem}` };
}

/**
 * The probe's answer is kept for the rest of the host's boot (keyed by its boot id): whether KVM
 * works does not change while the machine runs, and the probe would cost every command its time.
 */
async function rememberedProbe(): Promise<string | undefined> {
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  const file = join(cacheDir(), 'kvm-probe.json');
  const kept = bootId ? await readJson<{ bootId: string; problem: string | null }>(file).catch(() => undefined) : undefined;
  if (kept?.bootId === bootId) return kept.problem ?? undefined;
  const problem = await probeKvm();
  if (bootId) {
    await mkdir(cacheDir(), { recursive: true })
      .then(() => writeJsonAtomic(file, { bootId, problem: problem ?? null }))
      .catch(() => undefined);
  }
  return problem;
}
