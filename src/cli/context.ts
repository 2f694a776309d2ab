/** What every command gets from the entry point, and the two things most commands do first. */
import type { Redactor } from '../core/redact.js';
import { loadConfig, type ProjectConfig } from '../config/load.js';
import type { Provider } from '../providers/types.js';
import type { Reporter } from './reporter.js';

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

export async function openProvider(ctx: CommandContext, config: ProjectConfig): Promise<Provider> {
  const provider = await config.provider.definition.create(config.provider.settings, {
    project: config.project,
    projectDir: config.projectDir,
    events: ctx.reporter,
  });
  return provider;
}
