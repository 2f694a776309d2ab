/** What every command gets from the entry point, and the two things most commands do first. */
import type { Redactor } from '../core/redact.js';
import { loadConfig, type ProjectConfig } from '../config/load.js';
import type { Provider } from '../providers/types.js';
import type { Reporter } from './reporter.js';
import { unfinishedRuns } from '../core/journal.js';

export interface GlobalOptions {
  config?: string;
  json: boolean;
  verbose: boolean;
  debug: boolean;
}

export interface CommandContext {
  globals: GlobalOptions;
  reporter: Reporter;
  signal: AbortSignal;
  redactor: Redactor;
  toolVersion: string;
}

export async function loadProject(ctx: CommandContext): Promise<ProjectConfig> {
  const config = await loadConfig({ configPath: ctx.globals.config, onSecrets: (values) => ctx.redactor.add(...values) });
  ctx.redactor.add(...config.secrets);
  return config;
}

export async function openProvider(ctx: CommandContext, config: ProjectConfig, opts: { quiet?: boolean } = {}): Promise<Provider> {
  if (!opts.quiet) {
    // A run killed before it could clean up has left a journal: say so at every command.
    for (const run of await unfinishedRuns(config.project)) {
      if (!run.entries.length) continue;
      ctx.reporter.emit({
        type: 'warn',
        message: `\`provisional ${run.command}\` (pid ${run.pid}, ${run.started}) did not finish and may have left ${run.entries.map((e) => e.name).join(', ')}; run \`provisional cleanup\``,
      });
    }
  }
  const provider = await config.provider.definition.create(config.provider.settings, {
    project: config.project,
    projectDir: config.projectDir,
    events: ctx.reporter,
  });
  return provider;
}
