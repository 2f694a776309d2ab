/**
 * Deploy wall time for N = 1, 2, 4 servers on the local provider. The servers of one deploy start
 * in parallel, so N servers should take about as long as one, as far as the CPUs allow: under
 * software emulation (TCG) every guest boot is CPU-bound, so on 2 cores 4 boots share 2 CPUs.
 *
 *   node dist/bench/deploy-parallel.js [N ...]     (default: 1 2 4)
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { tempProject } from '../test/helpers/project.js';
import { timeCli } from './lib.js';

export async function benchDeployParallel(counts = [1, 2, 4]): Promise<{ servers: number; seconds: number }[]> {
  const project = tempProject('provisional-bench-deploy-');
  const dataDir = mkdtempSync(join(tmpdir(), 'provisional-bench-deploy-data-'));
  const env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(dataDir, 'state') };
  const config = (n: number) =>
    `images:\n  bench:\n    base-image: debian-12\ndeployments:\n  bench:\n    bench:\n      servers: ${n}\n`;
  const results: { servers: number; seconds: number }[] = [];
  try {
    project.writeConfig(config(1));
    timeCli(['image', 'create', 'bench'], { cwd: project.dir, env });
    for (const n of counts) {
      writeFileSync(join(project.dir, 'config/provisional/config.yml'), config(n));
      const ms = timeCli(['deploy', 'bench', '--cold', '--parallel', String(n)], { cwd: project.dir, env });
      results.push({ servers: n, seconds: ms / 1000 });
      timeCli(['destroy', 'bench', '--yes'], { cwd: project.dir, env });
    }
    return results;
  } finally {
    try {
      timeCli(['destroy', 'bench', '--yes'], { cwd: project.dir, env });
    } catch {
      // nothing left to destroy
    }
    project.remove();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const counts = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const results = await benchDeployParallel(counts.length ? counts : undefined);
  console.log(`deploy --cold on the local provider (${cpus().length} cores), wall time until every server answers SSH:`);
  for (const r of results) console.log(`  ${r.servers} server${r.servers > 1 ? 's' : ''}: ${r.seconds.toFixed(1)} s`);
}
