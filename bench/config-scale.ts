/**
 * Loading a large config: 20,000 images (each built from debian-12 or from an earlier image),
 * with `validate` as a user runs it and loadConfig in this process. No target; a figure to watch
 * for super-linear growth (the unit fuzz test proves correctness on a few hundred images).
 */
import { tempProject } from '../test/helpers/project.js';
import { loadConfig } from '../src/config/load.js';
import { median, timeCli } from './lib.js';

export async function benchConfigScale(images = 20_000): Promise<{ images: number; load: number; validate: number }> {
  const project = tempProject('provisional-bench-config-');
  try {
    const lines = Array.from({ length: images }, (_, i) => `  i${i}:\n    base-image: ${i % 3 === 0 ? 'debian-12' : `i${Math.floor(i / 2)}`}\n`);
    project.writeConfig(`images:\n${lines.join('')}`);
    const loads: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const config = await loadConfig({ cwd: project.dir, env: {} });
      loads.push(performance.now() - started);
      if (config.graph.names().length !== images) throw new Error(`loaded ${config.graph.names().length} images, expected ${images}`);
    }
    const validate = median(Array.from({ length: 3 }, () => timeCli(['validate'], { cwd: project.dir })));
    return { images, load: median(loads), validate };
  } finally {
    project.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchConfigScale();
  console.log(`loadConfig, ${r.images} images:             ${r.load.toFixed(0)} ms (median of 5, in process)`);
  console.log(`provisional validate, ${r.images} images:   ${r.validate.toFixed(0)} ms (median of 3)`);
}
