/**
 * Runs a command and measures its wall time and the bytes its whole process tree wrote.
 *
 * The bytes come from /proc/<pid>/io (Documentation/filesystems/proc.rst, "/proc/<pid>/io"): when a
 * parent reaps a child, the kernel adds the child's counters (and those of the children it reaped)
 * to the parent's. A small Perl wrapper (perl-base is always on Debian) makes itself a child
 * subreaper (prctl(2) PR_SET_CHILD_SUBREAPER), so that even a daemonized QEMU ends up reaped by it,
 * waits for every descendant, and only then reads its own /proc/self/io: the totals of the whole
 * tree, up to the last write before each process exited. Its children's CPU times (times(2)) add
 * up the same way.
 *
 * write_bytes counts pages as they are dirtied, i.e. what the tree asked to be written to storage;
 * cancelled_write_bytes is the part that never got there because the file was truncated or removed
 * first (a temporary copy replaced by another).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface TreeIo {
  readBytes: number;
  writeBytes: number;
  cancelledWriteBytes: number;
}

export interface MeasuredRun {
  wallMs: number;
  code: number | null;
  stdout: string;
  stderr: string;
  io: TreeIo;
  /** CPU time (user + system) of the whole tree, ms: unlike wall time, barely changed by other load. */
  cpuMs: number;
}

const SYS_PRCTL_X86_64 = 157;
const PR_SET_CHILD_SUBREAPER = 36;

const WRAPPER = `
use strict; use warnings;
my $out = shift @ARGV;
syscall(${SYS_PRCTL_X86_64}, ${PR_SET_CHILD_SUBREAPER}, 1, 0, 0, 0) == 0 or die "prctl(PR_SET_CHILD_SUBREAPER): $!\\n";
my $pid = fork() // die "fork: $!\\n";
if ($pid == 0) { exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\\n"; }
my $status = 255;
while ((my $p = wait()) != -1) { $status = $? if $p == $pid; }
open(my $in, '<', '/proc/self/io') or die "/proc/self/io: $!\\n";
local $/; my $io = <$in>;
my (undef, undef, $cuser, $csys) = times();
open(my $fh, '>', $out) or die "$out: $!\\n"; print $fh $io, "children_cpu_seconds: ", $cuser + $csys, "\\n"; close $fh;
exit($status & 127 ? 128 + ($status & 127) : $status >> 8);
`;

export interface MeasureOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** A scratch directory for the counters file. */
  scratchDir: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Runs `command` to the end of its last descendant. Never throws for a failing command: see `code`. */
export function runMeasured(command: string, args: string[], opts: MeasureOptions): Promise<MeasuredRun> {
  const ioFile = join(opts.scratchDir, `io-${process.hrtime.bigint()}.txt`);
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new Error('interrupted'));
    const started = performance.now();
    // Its own process group, so that a timeout or Ctrl-C can stop the whole tree at once.
    const child = spawn('perl', ['-e', WRAPPER, ioFile, command, ...args], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const killTree = () => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(killTree, opts.timeoutMs);
    opts.signal?.addEventListener('abort', killTree, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', killTree);
      let io: TreeIo = { readBytes: NaN, writeBytes: NaN, cancelledWriteBytes: NaN };
      let cpuMs = NaN;
      try {
        const counters = readFileSync(ioFile, 'utf8');
        io = parseProcIo(counters);
        cpuMs = Number(/^children_cpu_seconds:\s*([\d.]+)/m.exec(counters)?.[1] ?? NaN) * 1000;
      } catch {
        // the wrapper died before writing it: the figures stay NaN
      }
      rmSync(ioFile, { force: true });
      resolve({ wallMs, code, stdout, stderr, io, cpuMs });
    });
  });
}

export function parseProcIo(text: string): TreeIo {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    readBytes: field('read_bytes'),
    writeBytes: field('write_bytes'),
    cancelledWriteBytes: field('cancelled_write_bytes'),
  };
}

/** How long `sync` takes: the cost of flushing what a run left dirty in the page cache. */
export function timeSync(): number {
  const started = performance.now();
  spawnSync('sync');
  return performance.now() - started;
}
