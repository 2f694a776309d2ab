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
    if (!servers.length) {
      ctx.reporter.print(`${environment} has no servers`);
      return 0;
    }
    if (!opts.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`destroying ${servers.length} servers of ${environment} needs confirmation, and there is no terminal to ask on`, 'add --yes');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(`destroy ${servers.map((s) => s.name).join(', ')}? [y/N] `, { signal: ctx.signal }).finally(() => rl.close());
      if (!/^y(es)?$/i.test(answer.trim())) {
        ctx.reporter.message('nothing destroyed');
        return 0;
      }
    }
    for (const server of servers) {
      await provider.destroyMachine(server, ctx.signal);
      ctx.reporter.emit({ type: 'info', message: `destroyed ${server.name}` });
    }
    if (ctx.globals.json) ctx.reporter.printJson({ destroyed: servers.map((s) => s.name) });
    else ctx.reporter.print(`destroyed ${servers.length} server${servers.length > 1 ? 's' : ''} of ${environment}`);
    return 0;
  } finally {
    await provider?.close?.();
    await lock.release();
  }
}
