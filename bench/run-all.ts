/**
 * Every benchmark, one after the other, printing its figures (`npm run bench`). Each script also
 * runs on its own: node dist/bench/<name>.js. The figures of the last run are in BENCHMARKS.md.
 */
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const skip = new Set(['run-all.js', 'lib.js']);
const only = process.argv.slice(2);
const scripts = readdirSync(here)
  .filter((f) => f.endsWith('.js') && !skip.has(f))
  .filter((f) => spawnSync(process.execPath, ['-e', `import(${JSON.stringify(join(here, f))}).then(m=>process.exit(Object.keys(m).some(k=>k.startsWith('bench'))?0:1))`]).status === 0)
  .filter((f) => !only.length || only.some((o) => f.includes(o)));

let failed = 0;
for (const script of scripts) {
  console.log(`\n## ${script.replace(/\.js$/, '')}\n`);
  const r = spawnSync(process.execPath, [join(here, script)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
