/** `provisional ssh SERVER [-- COMMAND]`: OpenSSH with the project's deploy key. */
import { spawn } from 'node:child_process';
import { closest } from '../../config/suggest.js';
import { environmentState } from '../../deploy/environment.js';
import { deployKeys } from '../../core/project-keys.js';
import { UsageError, UserFacingError } from '../../core/errors.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, name: string, command: string[]): Promise<number> {
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config);
  let target;
  try {
    const { servers } = await environmentState(provider, config, undefined, ctx.signal);
    target = servers.find((s) => s.name === name || s.id === name);
    if (!target) {
      const guess = closest(name, servers.map((s) => s.name));
      throw new UsageError(`no server "${name}"`, guess ? `did you mean "${guess}"?` : 'see: provisional server list');
    }
    if (target.state === 'dead' || target.state === 'stopped') throw new UserFacingError(`${target.name} is ${target.state}`);
  } finally {
    await provider.close?.();
  }
  const keys = await deployKeys(config.project);
  const args = [
    '-i', keys.privateKeyPath,
    '-p', String(target.ssh.port),
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    `${target.ssh.user}@${target.ssh.host}`,
    ...(command.length ? ['--', ...command] : []),
  ];
  ctx.reporter.close();
  const child = spawn('ssh', args, { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new UserFacingError(`cannot run ssh: ${err.message}`, { hint: 'install OpenSSH: apt-get install openssh-client' })));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 1)));
  });
}
