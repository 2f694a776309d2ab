/**
 * Start-up of `provisional --help` from the installed package (npm pack, then `npm install` of the
 * tarball into an empty project): target at most 200 ms, as from the repository. The installed bin
 * is run with node directly (what `provisional` on the PATH does); npx adds npm's own start-up
 * (figure printed too). Median of 21 runs after 2 warm-up runs.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packAndInstall } from '../test/helpers/package.js';
import { median } from './lib.js';

function timeRun(command: string, args: string[], cwd: string): number {
  const started = performance.now();
  const r = spawnSync(command, args, { cwd, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

export async function benchPackageStartup(): Promise<{ help: number; npx: number }> {
  const pkg = packAndInstall();
  try {
    const measure = (command: string, args: string[], runs: number) => {
      for (let i = 0; i < 2; i++) timeRun(command, args, pkg.project);
      return median(Array.from({ length: runs }, () => timeRun(command, args, pkg.project)));
    };
    return {
      help: measure(process.execPath, [join(pkg.project, 'node_modules/.bin/provisional'), '--help'], 21),
      npx: measure('npx', ['--no-install', 'provisional', '--help'], 11),
    };
  } finally {
    pkg.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchPackageStartup();
  console.log(`installed package, provisional --help:      ${r.help.toFixed(0)} ms (median of 21; target <= 200 ms)`);
  console.log(`installed package, npx provisional --help:  ${r.npx.toFixed(0)} ms (median of 11; npm's own start-up included)`);
}
