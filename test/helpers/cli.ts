/** Runs the real CLI as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../../bin/provisional.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  child: ChildProcess;
  done: Promise<CliResult>;
  /** Resolves when stderr or stdout has printed text matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

export function startCli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: { pattern: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...watchers]) {
      if (w.pattern.test(stdout) || w.pattern.test(stderr)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    check();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (process.env.PROVISIONAL_TEST_ECHO) process.stderr.write(d);
    check();
  });
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    done,
    waitFor: (pattern, timeoutMs = 600_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; stderr:\n${stderr}`)), timeoutMs);
        watchers.push({
          pattern,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        check();
        void done.then(() => {
          clearTimeout(timer);
          if (watchers.some((w) => w.pattern === pattern)) reject(new Error(`exited before ${pattern}; stdout:\n${stdout}\nstderr:\n${stderr}`));
        });
      }),
  };
}

export function runCli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return startCli(args, opts).done;
}

/** PIDs of QEMU processes whose command line mentions `needle` (e.g. a test's data dir). */
export function qemuProcessesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('qemu-system') && cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

export interface ServerRow {
  name: string;
  image: string;
  version: string;
  state: string;
  id: string;
}

/** The servers of an environment, as `provisional server list ENV --json` reports them. */
export async function serverRows(environment: string, opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<ServerRow[]> {
  const r = await runCli(['server', 'list', environment, '--json'], opts);
  if (r.code !== 0) throw new Error(`server list exited ${r.code}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { servers: ServerRow[] }).servers;
}

/** Version names of an image, newest first, as `provisional image list --json` reports them. */
export async function versionNames(image: string, opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string[]> {
  const r = await runCli(['image', 'list', '--json'], opts);
  if (r.code !== 0) throw new Error(`image list exited ${r.code}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as { images: { name: string; versions: { version: string }[] }[] };
  return doc.images.find((i) => i.name === image)?.versions.map((v) => v.version) ?? [];
}
