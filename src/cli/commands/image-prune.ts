/** `provisional image prune [NAME] [--keep N] [--older-than AGE]`: delete old versions that nothing needs. */
import { environmentState } from '../../deploy/environment.js';
import { planPrune } from '../../images/prune.js';
import { UsageError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration-text.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, name: string | undefined, opts: { keep?: number; olderThan?: string; dryRun: boolean }): Promise<number> {
  // Read before anything is asked or changed: a bad age exits 2 with nothing done.
  const olderThanMs = opts.olderThan === undefined ? undefined : parseDuration(opts.olderThan, '--older-than');
  const config = await loadProject(ctx);
  if (name && !config.graph.has(name)) throw new UsageError(`no image "${name}" in ${config.file}`);
  const provider = await openProvider(ctx, config);
  try {
    const { servers, versions } = await environmentState(provider, config, undefined, ctx.signal);
    const decision = planPrune(versions, servers, { keep: opts.keep, olderThanMs }, name ? [name] : undefined);
    if (!opts.dryRun) {
      for (const v of decision.remove) {
        await provider.deleteImageVersion(v, ctx.signal);
        ctx.reporter.emit({ type: 'info', message: `deleted ${v.version}` });
      }
    }
    if (ctx.globals.json) {
      ctx.reporter.printJson({
        deleted: opts.dryRun ? [] : decision.remove.map((v) => v.version),
        wouldDelete: opts.dryRun ? decision.remove.map((v) => v.version) : [],
        kept: decision.keep.map((k) => ({ version: k.version.version, why: k.why })),
      });
    } else {
      const verb = opts.dryRun ? 'would delete' : 'deleted';
      ctx.reporter.print(
        [
          `${verb} ${decision.remove.length} version${decision.remove.length === 1 ? '' : 's'}${decision.remove.length ? `: ${decision.remove.map((v) => v.version).join(', ')}` : ''}`,
          ...decision.keep.map((k) => `  kept ${k.version.version}: ${k.why}`),
        ].join('\n'),
      );
    }
    return 0;
  } finally {
    await provider.close?.();
  }
}
