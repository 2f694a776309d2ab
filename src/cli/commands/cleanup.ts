/**
 * `provisional cleanup [--dry-run] [--yes]`: the reaper. What counts as a leftover, and how it is
 * removed, is in pipeline/reaper.ts; this shows the list, asks, and reports.
 */
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../../core/errors.js';
import { describeLeftovers, findLeftovers, forgetRuns, removeLeftovers } from '../../pipeline/reaper.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, opts: { dryRun?: boolean; yes?: boolean }): Promise<number> {
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config, { quiet: true });
  try {
    const found = await findLeftovers(provider, config.project, ctx.signal, (ref) => config.deployments[ref.environment]?.[ref.image]?.endpoint);
    const items = describeLeftovers(found);
    if (!items.length) {
      await forgetRuns(config.project, found);
      const runs = found.runs;
      if (ctx.globals.json) ctx.reporter.printJson({ removed: [], runs: runs.map((r) => r.runId) });
      else ctx.reporter.print(runs.length ? `nothing left behind by ${runs.length} unfinished run${runs.length > 1 ? 's' : ''}; their journals are cleared` : 'nothing to clean up');
      return 0;
    }
    if (opts.dryRun) {
      if (ctx.globals.json) ctx.reporter.printJson({ wouldRemove: items });
      else ctx.reporter.print(['would remove:', ...items.map((i) => `  ${i}`)].join('\n'));
      return 0;
    }
    if (!opts.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`cleanup would remove ${items.length} resource${items.length > 1 ? 's' : ''}, and there is no terminal to ask on`, 'see them with --dry-run; add --yes to remove them');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(`remove:\n${items.map((i) => `  ${i}`).join('\n')}\n? [y/N] `, { signal: ctx.signal }).finally(() => rl.close());
      if (!/^y(es)?$/i.test(answer.trim())) {
        ctx.reporter.message('nothing removed');
        return 0;
      }
    }
    const removed = await removeLeftovers(provider, config.project, found, ctx.signal, (name) => ctx.reporter.emit({ type: 'info', message: `removed ${name}` }));
    if (ctx.globals.json) ctx.reporter.printJson({ removed });
    else ctx.reporter.print(`removed ${removed.length}: ${removed.join(', ')}`);
    return 0;
  } finally {
    await provider.close?.();
  }
}
