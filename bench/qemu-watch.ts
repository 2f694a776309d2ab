/**
 * The machine while a benchmark runs: which options a tool gave its QEMU guest, whether others
 * share the CPUs (under TCG every guest is CPU-bound), and stopping the QEMU processes a failed run
 * left behind.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { qemuProcessesMentioning } from '../test/helpers/cli.js';

/** Notes the QEMU command line of the first QEMU process mentioning `needle`, while a build runs. */
export function watchQemu(needle: string): { stop(): string[] | undefined } {
  let argv: string[] | undefined;
  const timer = setInterval(() => {
    if (argv) return;
    const [pid] = qemuProcessesMentioning(needle);
    if (pid === undefined) return;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      // it ended meanwhile
    }
  }, 200);
  // A sampler must never be what keeps the process alive.
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return argv;
    },
  };
}

/** The value of the first of `names` on a QEMU command line. */
export function qemuOption(argv: string[], ...names: string[]): string | undefined {
  for (const name of names) {
    const i = argv.indexOf(name);
    if (i >= 0) return argv[i + 1];
  }
  return undefined;
}

/** The options that decide a TCG guest's speed, as given: "-machine q35 -cpu max -m 1024 -smp 2". */
export function describeVm(argv: string[] | undefined): string {
  if (!argv) return 'not seen';
  const value = (...names: string[]) => qemuOption(argv, ...names);
  return [
    ['-accel', value('-accel')],
    ['-machine', value('-machine', '-M')],
    ['-cpu', value('-cpu')],
    ['-m', value('-m')],
    ['-smp', value('-smp')],
  ]
    .filter(([, v]) => v !== undefined)
    .map(([name, v]) => `${name} ${v}`)
    .join(' ');
}

/** BENCH_QUIET_WAIT_S: how long to wait for idle CPUs before each counted run (default 600). */
const QUIET_WAIT_MS = Number(process.env['BENCH_QUIET_WAIT_S'] ?? 600) * 1000;

/**
 * Under TCG a build is CPU-bound: whatever else runs on the machine slows it down. Before each
 * counted run, wait (at most QUIET_WAIT_MS, then run anyway) until the CPUs are at least 75 % idle
 * for 3 s in a row. (An idle guest left running by someone else costs a few per cent: not a reason
 * to wait; one that boots takes a whole core.)
 */
export async function waitForQuiet(signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  let quietSeconds = 0;
  let said = false;
  while (quietSeconds < 3 && Date.now() < deadline && !signal.aborted) {
    const before = cpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const after = cpuTimes();
    const busy = 1 - (after.idle - before.idle) / Math.max(1, after.total - before.total);
    quietSeconds = busy < 0.25 ? quietSeconds + 1 : 0;
    if (!quietSeconds && !said) {
      console.error('waiting for the CPUs to be idle (other guests or test suites are running)...');
      said = true;
    }
  }
}

/** Jiffies since boot, all CPUs: idle (idle + iowait) and total, from the first line of /proc/stat. */
function cpuTimes(): { idle: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
}

/** USER_HZ: /proc/stat counts in 1/100 s on Linux (proc(5)). */
const MS_PER_JIFFY = 10;

/** A moment's CPU counters: time every CPU was busy, in ms, and when. */
export interface CpuBusy {
  busyMs: number;
  at: number;
}

export function cpuBusy(): CpuBusy {
  const { idle, total } = cpuTimes();
  return { busyMs: (total - idle) * MS_PER_JIFFY, at: performance.now() };
}

/** Share of the machine's CPU (all cores) used between two moments by others than a tree that used `ownCpuMs`. */
export function otherCpuShare(before: CpuBusy, after: CpuBusy, ownCpuMs: number): number {
  const capacityMs = (after.at - before.at) * cpus().length;
  return capacityMs > 0 ? Math.max(0, after.busyMs - before.busyMs - ownCpuMs) / capacityMs : 0;
}

/** QEMU processes that a failed or interrupted run left under `root`: TERM, then KILL. */
export async function stopQemuUnder(root: string): Promise<void> {
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    const pids = qemuProcessesMentioning(root);
    if (!pids.length) return;
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
    for (let waited = 0; waited < 5000 && qemuProcessesMentioning(root).length; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
