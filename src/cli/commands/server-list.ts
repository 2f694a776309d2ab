/** `provisional server list [ENV]`: the project's servers, found by their labels at the provider. */
import { environmentState } from '../../deploy/environment.js';
import { LABELS } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';
import { table } from '../table.js';

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
    if (ctx.globals.json) ctx.reporter.printJson({ servers: rows });
    else if (!rows.length) ctx.reporter.print(env ? `no servers in ${env}` : 'no servers');
    else ctx.reporter.print(table(['NAME', 'IMAGE', 'VERSION', 'STATE', 'ADDRESS', 'SSH'], rows.map((r) => [r.name, r.image, r.version, r.state, r.address, `${r.ssh.user}@${r.ssh.host}:${r.ssh.port}`])));
    return 0;
  } finally {
    await provider.close?.();
  }
}
