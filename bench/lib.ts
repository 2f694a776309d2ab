/** Small helpers shared by the benchmark scripts. They print figures; they assert nothing. */
import { spawnSync } from 'node:child_process';
import { CLI } from '../test/helpers/cli.js';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Wall time of one CLI run, in ms. Throws if it fails (a benchmark of a failing command is no figure). */
export function timeCli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): number {
  const started = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`provisional ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

export function row(label: string, value: string, target?: string): string {
  return `| ${label} | ${value} |${target === undefined ? '' : ` ${target} |`}`;
}
