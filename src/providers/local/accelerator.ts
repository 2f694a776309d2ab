/**
 * KVM or TCG. /dev/kvm existing is not enough: on some hosts (nested virtualisation, odd CPU
 * models) QEMU aborts as soon as a vCPU is set up ("failed to set MSR ...") or the guest hangs.
 * So we start a tiny guest the way real machines start (-accel kvm -cpu host): a 512-byte boot
 * sector that writes to QEMU's isa-debug-exit port, which makes QEMU exit with a known status.
 * Only that status proves that KVM ran guest code. The probe runs once per process.
 */
import { spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** Command-line arguments that select an accelerator for a real machine. */
export function acceleratorArgs(accelerator: Accelerator): string[] {
  // With KVM the host CPU model is what makes guests fast; it is also what the probe checked.
  // Under TCG `max` gives the guest every feature QEMU can emulate (x86-64-v2+ userlands need some).
  return accelerator === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
}

/** Runs the probe guest under KVM; resolves with undefined when KVM works, or the reason it does not. */
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
    const args = [
      ...acceleratorArgs('kvm'),
      '-M', 'pc',
      '-nodefaults',
      '-no-user-config',
      '-display', 'none',
      '-m', '16',
      '-device', `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`,
      '-drive', `file=${image.replaceAll(',', ',,')},format=raw,if=ide,snapshot=on`,
    ];
    const { status, stderr, timedOut } = await runProbe(args);
    if (status === PROBE_EXIT_STATUS) return undefined;
    const said = stderr
      .split('\n')
      .map((l) => l.replace(/^qemu-system-x86_64:\s*/, '').replace(/^error:\s*/, '').trim())
      .filter((l) => l && !l.startsWith('warning:'));
    if (timedOut) return `a probe guest did not finish under KVM within ${PROBE_TIMEOUT_MS / 1000} s`;
    return said[0] ?? `a probe guest under KVM ended with status ${status}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runProbe(args: string[]): Promise<{ status: number | null; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(QEMU_SYSTEM, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, PROBE_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ status: null, stderr: err.message, timedOut: false });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, timedOut });
    });
  });
}

let probed: Promise<string | undefined> | undefined;

/** Picks the accelerator for a setting; the KVM probe runs at most once per process. */
export async function chooseAccelerator(setting: 'auto' | 'kvm' | 'tcg'): Promise<AcceleratorChoice> {
  if (setting === 'tcg') return { accelerator: 'tcg', reason: 'accelerator: tcg in the settings' };
  probed ??= probeKvm();
  const problem = await probed;
  if (!problem) return { accelerator: 'kvm', reason: 'KVM works' };
  if (setting === 'kvm') {
    return { accelerator: 'kvm', reason: `accelerator: kvm in the settings, but KVM is unusable: ${problem}`, unusable: problem };
  }
  return { accelerator: 'tcg', reason: `KVM unusable: ${problem}` };
}
