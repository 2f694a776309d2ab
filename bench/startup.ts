/**
 * Start-up time of `provisional --help` and `provisional validate` (target: at most 200 ms each).
 * Median of 21 runs, after 2 warm-up runs.
 */
import { tempProject } from '../test/helpers/project.js';
import { median, timeCli } from './lib.js';

export async function benchStartup(): Promise<{ help: number; validate: number }> {
  const project = tempProject('provisional-bench-startup-');
  try {
    timeCli(['init'], { cwd: project.dir });
    const measure = (args: string[]) => {
      for (let i = 0; i < 2; i++) timeCli(args, { cwd: project.dir });
      return median(Array.from({ length: 21 }, () => timeCli(args, { cwd: project.dir })));
    };
    return { help: measure(['--help']), validate: measure(['validate']) };
  } finally {
    project.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchStartup();
  console.log(`provisional --help:    ${r.help.toFixed(0)} ms (median of 21; target <= 200 ms)`);
  console.log(`provisional validate:  ${r.validate.toFixed(0)} ms (median of 21; target <= 200 ms)`);
}
