/**
 * Helpers shared by the cloud benchmarks (cloud-digitalocean.ts, cloud-aws.ts): a private copy of
 * the built CLI, child runs timed line by line, memory and machine facts, and a cleanup stack.
 * They print figures; they assert nothing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The CLI as built now, copied aside: others may run `npm run build` (which empties dist/) while
 * a benchmark runs for minutes, and every CLI run must use the same build.
 */
export function copyCli(): { cli: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'provisional-bench-cli-'));
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist/bundle'), join(dir, 'dist/bundle'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(ROOT, 'schema'), join(dir, 'schema'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { cli: join(dir, 'bin/provisional.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TimedLine {
  /** ms since the run started. */
  at: number;
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface TimedRun {
  code: number | null;
  wallMs: number;
  /** Wall-clock ms (Date.now()) when the process was spawned. */
  startedAt: number;
  lines: TimedLine[];
  stdout: string;
  stderr: string;
}

/** Children still running, so that a cleanup after Ctrl-C can end them (by pid, never by name). */
const children = new Set<ChildProcess>();

/** Runs a command; every output line is stamped when it arrives. */
export function runTimed(command: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<TimedRun> {
  const startedAt = Date.now();
  const started = performance.now();
  const child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines: TimedLine[] = [];
  const out = { stdout: '', stderr: '' };
  for (const stream of ['stdout', 'stderr'] as const) {
    let partial = '';
    child[stream]!.on('data', (d: Buffer) => {
      const at = performance.now() - started;
      out[stream] += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const text of parts) lines.push({ at, stream, text });
    });
  }
  const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, wallMs: performance.now() - started, startedAt, lines, ...out });
    });
  });
}

/** Asks every child still running to stop (SIGTERM: the CLI then removes what it created). */
export async function stopChildren(): Promise<void> {
  const running = [...children];
  for (const child of running) child.kill('SIGTERM');
  await Promise.all(running.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(undefined) : c.once('close', resolve)))));
}

/** `--json` events of a CLI run, each with the ms (since the run started) its line arrived. */
export function jsonEvents(run: TimedRun): { at: number; event: Record<string, unknown> }[] {
  const events: { at: number; event: Record<string, unknown> }[] = [];
  for (const line of run.lines) {
    if (line.stream !== 'stdout' || !line.text.startsWith('{')) continue;
    try {
      events.push({ at: line.at, event: JSON.parse(line.text) as Record<string, unknown> });
    } catch {
      // not an event
    }
  }
  return events;
}

/** Sum of durationMs per step over the step-done events. */
export function stepDurations(run: TimedRun): Record<string, number> {
  const steps: Record<string, number> = {};
  for (const { event } of jsonEvents(run)) {
    if (event.type === 'step-done' && typeof event.step === 'string' && typeof event.durationMs === 'number') {
      steps[event.step] = (steps[event.step] ?? 0) + event.durationMs;
    }
  }
  return steps;
}

/** Used memory of the machine (MemTotal - MemAvailable), sampled; the peak above the baseline. */
export class MemorySampler {
  readonly baseline = usedMemory();
  peak = this.baseline;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 500) {
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, usedMemory())), intervalMs);
    this.timer.unref();
  }

  stop(): { baseline: number; peak: number; added: number } {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, usedMemory());
    return { baseline: this.baseline, peak: this.peak, added: this.peak - this.baseline };
  }
}

export function usedMemory(): number {
  const info = readFileSync('/proc/meminfo', 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? 0) * 1024;
  return kib('MemTotal') - kib('MemAvailable');
}

/** Processes whose command line mentions `needle` (e.g. an emulator's run directory): leftovers. */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

export function machineFacts(): string {
  const os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  const packer = spawnSync('packer', ['version'], { encoding: 'utf8', env: { ...process.env, CHECKPOINT_DISABLE: '1' } }).stdout?.split('\n')[0]?.trim();
  return [
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    os,
    `kernel ${release()}`,
    `${cpus().length} cores (${cpus()[0]?.model.trim()})`,
    `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Node ${process.version}`,
    // Each container's systemd holds about 4 inotify instances: the default 128 stops at about 30 machines.
    `fs.inotify.max_user_instances ${readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8').trim()}`,
    packer ?? 'no packer',
    // Other work on the machine (others' tests, QEMU guests) slows the containers and the CLI alike.
    `load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the start`,
  ].join('; ');
}

/** What a benchmark started, removed in reverse order even when it fails or is interrupted. */
export class Teardown {
  private readonly steps: { what: string; fn: () => Promise<unknown> | unknown }[] = [];
  readonly problems: string[] = [];

  /** Registers a removal; the function returned runs it now (once) and forgets it. */
  add(what: string, fn: () => Promise<unknown> | unknown): () => Promise<void> {
    const step = { what, fn };
    this.steps.push(step);
    return async () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      try {
        await fn();
      } catch (err) {
        this.problems.push(`${what}: ${(err as Error).message}`);
        console.error(`cleanup: ${what} failed: ${(err as Error).message}`);
      }
    };
  }

  async run(): Promise<void> {
    while (this.steps.length) {
      const { what, fn } = this.steps.pop()!;
      try {
        await fn();
      } catch (err) {
        this.problems.push(`${what}: ${(err as Error).message}`);
        console.error(`cleanup: ${what} failed: ${(err as Error).message}`);
      }
    }
  }
}

/** Runs `body` with a teardown that also runs on SIGINT/SIGTERM (children stopped first). */
export async function withTeardown<T>(body: (teardown: Teardown) => Promise<T>): Promise<T> {
  const teardown = new Teardown();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`${signal}: stopping the runs and removing what the benchmark started`);
    void stopChildren()
      .then(() => teardown.run())
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await body(teardown);
  } finally {
    await stopChildren();
    await teardown.run();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(dir, { recursive: true });
  return dir;
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
export const percent = (x: number) => `${(x * 100).toFixed(1)} %`;
