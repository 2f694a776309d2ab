/**
 * The QEMU processes on this machine while a benchmark runs: which options a tool gave its guest,
 * whether others' guests share the CPUs (under TCG every guest is CPU-bound), and stopping what a
 * failed run left behind.
 */
import { readFileSync } from 'node:fs';
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

const QUIET_WAIT_MS = 10 * 60_000;

/**
 * Under TCG a build is CPU-bound: another guest on the machine slows it down. Before each counted
 * run, wait (at most QUIET_WAIT_MS, then run anyway) until no other QEMU runs and the CPUs are idle
 * for 3 s in a row.
 */
export async function waitForQuiet(root: string, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  let quietSeconds = 0;
  let said = false;
  while (quietSeconds < 3 && Date.now() < deadline && !signal.aborted) {
    const before = cpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const after = cpuTimes();
    const busy = 1 - (after.idle - before.idle) / Math.max(1, after.total - before.total);
    const ours = new Set(qemuProcessesMentioning(root));
    const othersRun = qemuProcessesMentioning('').some((pid) => !ours.has(pid));
    quietSeconds = !othersRun && busy < 0.25 ? quietSeconds + 1 : 0;
    if (!quietSeconds && !said) {
      console.error('waiting for the machine to be quiet (other QEMU processes or CPU load)...');
      said = true;
    }
  }
}

/** Jiffies since boot, all CPUs: idle (idle + iowait) and total, from the first line of /proc/stat. */
function cpuTimes(): { idle: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
}

/** Samples, once a second, whether QEMU processes other than ours are running (they share the CPUs). */
export function watchOtherQemu(root: string): { stop(): void; share(): number } {
  let samples = 0;
  let busy = 0;
  const timer = setInterval(() => {
    samples++;
    const ours = new Set(qemuProcessesMentioning(root));
    if (qemuProcessesMentioning('').some((pid) => !ours.has(pid))) busy++;
  }, 1000);
  timer.unref();
  return { stop: () => clearInterval(timer), share: () => (samples ? busy / samples : 0) };
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
