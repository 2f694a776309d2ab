/** `provisional server list [ENV]`: the project's servers, found by their labels at the provider. */
import { environmentState } from '../../deploy/environment.js';
import { LABELS } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';
import { table } from '../table.js';
import { describeEndpoint, endpointJson } from '../endpoints.js';

export async function run(ctx: CommandContext, env: string | undefined): Promise<number> {
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config);
  try {
    const { servers } = await environmentState(provider, config, env, ctx.signal);
    const rows = servers
      .map((s) => ({
        name: s.name,
        environment: s.labels[LABELS.environment] ?? '',
        image: s.labels[LABELS.image] ?? '',
        version: s.labels[LABELS.version] ?? '',
        /** The runtime-config label: a keyed hash, safe to show. */
        config: s.labels[LABELS.config] ?? null,
        state: s.state,
        address: s.address ?? s.ssh.host,
        ssh: s.ssh,
        id: s.id,
      }))
      .sort((a, b) => a.environment.localeCompare(b.environment) || a.name.localeCompare(b.name, undefined, { numeric: true }));
    const endpoints = ((await provider.endpoints?.list(config.project, ctx.signal)) ?? [])
      .filter((e) => !env || e.environment === env)
      .sort((a, b) => a.environment.localeCompare(b.environment) || a.image.localeCompare(b.image));
    if (ctx.globals.json) {
      ctx.reporter.printJson({ servers: rows, endpoints: endpoints.map((e) => ({ environment: e.environment, image: e.image, ...endpointJson(e, servers) })) });
    } else if (!rows.length && !endpoints.length) ctx.reporter.print(env ? `no servers in ${env}` : 'no servers');
    else {
      const lines = rows.length ? [table(['NAME', 'IMAGE', 'VERSION', 'STATE', 'ADDRESS', 'SSH'], rows.map((r) => [r.name, r.image, r.version, r.state, r.address, `${r.ssh.user}@${r.ssh.host}:${r.ssh.port}`]))] : [];
      if (endpoints.length) lines.push('', 'endpoints:', ...endpoints.map((e) => `  ${e.image}.${e.environment}: ${describeEndpoint(e, servers)}`));
      ctx.reporter.print(lines.join('\n'));
    }
    return 0;
  } finally {
    await provider.close?.();
  }
}
