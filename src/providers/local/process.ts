/**
 * Running the host tools (qemu-img, mmdebstrap, mkfs.ext4) with a time limit and the command's
 * AbortSignal. Each child gets its own process group so that a cancel also stops what it started
 * (mmdebstrap runs apt and dpkg under it).
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { CancelledError, ProviderError } from '../../core/errors.js';
import { sleep } from '../../core/wait.js';

export interface RunOptions {
  signal?: AbortSignal;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each line of output as it comes (for progress), stdout and stderr alike. */
  onLine?: (line: string) => void;
  /** What it is, for errors: "building debian-12". */
  operation: string;
  /** After SIGTERM, how long the group gets to exit before SIGKILL. */
  termGraceMs?: number;
  /** Send output to these file descriptors instead of capturing it (for a daemon that keeps them). */
  outputFd?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const MAX_CAPTURE = 4 * 1024 * 1024;

export function run(command: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new CancelledError());
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: opts.outputFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', opts.outputFd, opts.outputFd],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    let stopping: 'timeout' | 'abort' | undefined;
    const collect = (chunk: Buffer, into: 'out' | 'err') => {
      const text = chunk.toString('utf8');
      if (into === 'out' && stdout.length < MAX_CAPTURE) stdout += text;
      if (into === 'err') stderr = (stderr + text).slice(-MAX_CAPTURE);
      if (opts.onLine) {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) opts.onLine(line);
      }
    };
    child.stdout?.on('data', (c: Buffer) => collect(c, 'out'));
    child.stderr?.on('data', (c: Buffer) => collect(c, 'err'));

    const stop = (why: 'timeout' | 'abort') => {
      if (stopping) return;
      stopping = why;
      void killGroup(child.pid, opts.termGraceMs ?? 5000);
    };
    const timer = setTimeout(() => stop('timeout'), opts.timeoutMs);
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new ProviderError({
          provider: 'local',
          operation: opts.operation,
          message: missing ? `${command} is not installed` : err.message,
          hint: missing ? 'install the local provider\'s tools: apt-get install qemu-system-x86 qemu-utils mmdebstrap e2fsprogs' : undefined,
          cause: err,
        }),
      );
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (partial && opts.onLine) opts.onLine(partial);
      if (stopping === 'abort') return reject(new CancelledError());
      if (stopping === 'timeout') {
        return reject(
          new ProviderError({
            provider: 'local',
            operation: opts.operation,
            message: `${command} did not finish within ${Math.round(opts.timeoutMs / 1000)} s${tail(stderr)}`,
          }),
        );
      }
      if (code !== 0) {
        return reject(
          new ProviderError({
            provider: 'local',
            operation: opts.operation,
            message: `${command} ${code === null ? `was killed by ${sig}` : `exited with status ${code}`}${tail(stderr || stdout)}`,
          }),
        );
      }
      resolve({ stdout, stderr });
    });
  });
}

/** The last few lines of a tool's output, for an error message. */
export function tail(text: string, lines = 8): string {
  const last = text.trim().split('\n').slice(-lines).join('\n');
  return last ? `:\n${last}` : '';
}

/** SIGTERM a process group, then SIGKILL it if it is still there after `graceMs`. */
export async function killGroup(pid: number | undefined, graceMs: number): Promise<void> {
  if (!pid) return;
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
      return true;
    } catch {
      return false;
    }
  };
  if (!signalGroup('SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(100);
    if (!groupAlive(pid)) return;
  }
  signalGroup('SIGKILL');
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether `pid` is alive and is the process we think (its command line mentions `marker`). */
export async function processMatches(pid: number, marker: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.split('\0').some((arg) => arg.includes(marker))) return false;
    // A zombie keeps its command line but is gone for our purposes.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Pids of live processes with an argument containing `marker`. */
export async function processesMentioning(marker: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p)).map(Number);
  const found: number[] = [];
  for (const pid of pids) {
    if (pid !== process.pid && (await processMatches(pid, marker))) found.push(pid);
  }
  return found;
}
