/** `provisional destroy ENV [--yes]`: removes every server of the environment. */
import { createInterface } from 'node:readline/promises';
import { environmentState, pickEnvironment } from '../../deploy/environment.js';
import { UsageError } from '../../core/errors.js';
import { acquireLock, lockPath } from '../../core/lock.js';
import type { Provider } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, env: string, opts: { yes: boolean }): Promise<number> {
  const config = await loadProject(ctx);
  const environment = pickEnvironment(config, env);
  const lock = await acquireLock(lockPath(config.project, 'env', environment), `environment ${environment}`);
  let provider: Provider | undefined;
  try {
    provider = await openProvider(ctx, config);
    const { servers } = await environmentState(provider, config, environment, ctx.signal);
    const endpoints = ((await provider.endpoints?.list(config.project, ctx.signal)) ?? []).filter((e) => e.environment === environment);
    if (!servers.length && !endpoints.length) {
      ctx.reporter.print(`${environment} has no servers`);
      return 0;
    }
    if (!opts.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`destroying ${servers.length} servers of ${environment} needs confirmation, and there is no terminal to ask on`, 'add --yes');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const what = [...endpoints.map((e) => `the endpoint of ${e.image} (${e.address})`), ...servers.map((s) => s.name)];
      const answer = await rl.question(`destroy ${what.join(', ')}? [y/N] `, { signal: ctx.signal }).finally(() => rl.close());
      if (!/^y(es)?$/i.test(answer.trim())) {
        ctx.reporter.message('nothing destroyed');
        return 0;
      }
    }
    // The endpoints first: clients stop being sent to servers that are about to go.
    for (const endpoint of endpoints) {
      await provider.endpoints!.remove(endpoint, config.deployments[environment]?.[endpoint.image]?.endpoint, ctx.signal);
      ctx.reporter.emit({ type: 'info', message: `removed the endpoint of ${endpoint.image} (${endpoint.address})` });
    }
    for (const server of servers) {
      await provider.destroyMachine(server, ctx.signal);
      ctx.reporter.emit({ type: 'info', message: `destroyed ${server.name}` });
    }
    if (ctx.globals.json) ctx.reporter.printJson({ destroyed: servers.map((s) => s.name), endpoints: endpoints.map((e) => ({ image: e.image, address: e.address })) });
    else ctx.reporter.print(`destroyed ${servers.length} server${servers.length === 1 ? '' : 's'}${endpoints.length ? ` and ${endpoints.length} endpoint${endpoints.length > 1 ? 's' : ''}` : ''} of ${environment}`);
    return 0;
  } finally {
    await provider?.close?.();
    await lock.release();
  }
}
