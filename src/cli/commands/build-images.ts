/** What `image create` and `image update` share: run the builds, then a summary and an exit code. */
import { updateImages, type BuildOutcome } from '../../pipeline/update.js';
import { closest } from '../../config/suggest.js';
import { CancelledError, EXIT, ScriptError, UsageError, UserFacingError } from '../../core/errors.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';
import { seconds } from '../reporter.js';
import { openBuildLog } from '../build-log.js';

export async function buildImages(ctx: CommandContext, opts: { images?: string[]; force: boolean; parallel: number }): Promise<number> {
  const config = await loadProject(ctx);
  for (const name of opts.images ?? []) {
    if (!config.graph.has(name)) {
      const guess = closest(name, config.graph.names());
      throw new UsageError(
        `no image "${name}" in ${config.file}`,
        guess ? `did you mean "${guess}"?` : `images: ${config.graph.names().join(', ') || '(none)'}`,
      );
    }
  }
  const provider = await openProvider(ctx, config);
  ctx.reporter.emit({ type: 'info', message: `provider: ${await provider.describe()}` });
  try {
    const outcomes = await updateImages({
      config,
      provider,
      images: opts.images,
      force: opts.force,
      parallel: opts.parallel,
      toolVersion: ctx.toolVersion,
      events: ctx.reporter,
      signal: ctx.signal,
      openLog: (image, runId) => openBuildLog(config.project, image, runId, ctx.redactor),
    });
    return summarise(ctx, outcomes);
  } finally {
    await provider.close?.();
  }
}

function summarise(ctx: CommandContext, outcomes: BuildOutcome[]): number {
  if (ctx.globals.json) {
    ctx.reporter.printJson({
      type: 'summary',
      images: outcomes.map((o) =>
        o.status === 'failed'
          ? { image: o.image, status: o.status, error: o.error.message, exitCode: exitCodeOf(o.error), log: o.log }
          : o,
      ),
    });
  } else {
    const lines = outcomes.map((o) => {
      switch (o.status) {
        case 'built':
          return `  ${o.image}: built ${o.version.version} (${seconds(o.durationMs)})`;
        case 'skipped':
          return `  ${o.image}: up to date (${o.version.version})`;
        case 'not-run':
          return `  ${o.image}: not built: ${o.reason}`;
        case 'failed': {
          const hint = o.error instanceof UserFacingError && o.error.hint ? `\n${indent(o.error.hint, '    ')}` : '';
          return `  ${o.image}: FAILED: ${o.error.message}${hint}${o.log ? `\n    full log: ${o.log}` : ''}`;
        }
      }
    });
    ctx.reporter.print(lines.join('\n'));
  }
  const failures = outcomes.filter((o): o is Extract<BuildOutcome, { status: 'failed' }> => o.status === 'failed');
  if (ctx.signal.aborted) return EXIT.interrupted;
  if (!failures.length) return EXIT.ok;
  // An unexpected error is a bug: let the entry point report it with its stack under --debug.
  const unexpected = failures.find((f) => !(f.error instanceof UserFacingError));
  if (unexpected) throw unexpected.error;
  return Math.max(...failures.map((f) => exitCodeOf(f.error)));
}

function exitCodeOf(err: Error): number {
  if (err instanceof CancelledError) return EXIT.interrupted;
  if (err instanceof ScriptError) return EXIT.failed;
  return err instanceof UserFacingError ? err.exitCode : EXIT.failed;
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}
