/** Reading an environment's state at the provider: its servers and the versions they can run. */
import { UsageError } from '../core/errors.js';
import { closest } from '../config/suggest.js';
import type { ProjectConfig } from '../config/load.js';
import { LABELS, type ImageVersion, type Provider, type Server } from '../providers/types.js';

export function environmentNames(config: ProjectConfig): string[] {
  return Object.keys(config.deployments).sort();
}

/**
 * The environment a command acts on. With none named, the only environment is taken; with several,
 * the command refuses rather than guess (deploying to production by accident is worse than typing).
 */
export function pickEnvironment(config: ProjectConfig, env: string | undefined): string {
  const names = environmentNames(config);
  if (env) {
    if (!config.deployments[env]) {
      const guess = closest(env, names);
      throw new UsageError(
        `no environment "${env}" under deployments: in ${config.file}`,
        guess ? `did you mean "${guess}"?` : `environments: ${names.join(', ') || '(none)'}`,
      );
    }
    return env;
  }
  if (names.length === 1) return names[0]!;
  if (!names.length) throw new UsageError(`no environments under deployments: in ${config.file}`, 'add one, e.g. deployments: { staging: { app: { servers: 1 } } }');
  throw new UsageError(`this project has ${names.length} environments: name one (${names.join(', ')})`);
}

export async function environmentState(
  provider: Provider,
  config: ProjectConfig,
  environment: string | undefined,
  signal: AbortSignal,
): Promise<{ servers: Server[]; versions: ImageVersion[] }> {
  const filter: Partial<Record<keyof typeof LABELS, string>> = { project: config.project, role: 'server' };
  if (environment) filter.environment = environment;
  const [servers, versions] = await Promise.all([provider.listServers(filter, signal), provider.listImageVersions(signal)]);
  return { servers, versions };
}
