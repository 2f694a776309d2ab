/** `provisional rollback ENV [IMAGE] [--to VERSION]`: a warm deploy of the previous (or named) version. */
import { rollbackTargets } from '../../deploy/release.js';
import type { CommandContext } from '../context.js';
import { deploy } from './deploy.js';

export function run(ctx: CommandContext, env: string, image: string | undefined, opts: { to?: string; plan?: boolean; parallel: number }): Promise<number> {
  return deploy(ctx, env, {
    mode: 'warm',
    planOnly: !!opts.plan,
    parallel: opts.parallel,
    only: image ? [image] : undefined,
    onlyOverridden: true,
    overrides: (versions, servers, deployment) => rollbackTargets({ environment: env, image, to: opts.to, deployment, versions, servers }),
  });
}
