/** `provisional rollback ENV [IMAGE] [--to VERSION]`: a warm deploy of the previous (or named) version. */
import { UsageError, UserFacingError } from '../../core/errors.js';
import { byNewest, parseImageRef } from '../../images/naming.js';
import { LABELS, type ImageVersion, type Server } from '../../providers/types.js';
import type { CommandContext } from '../context.js';
import { deploy } from './deploy.js';

export function run(ctx: CommandContext, env: string, image: string | undefined, opts: { to?: string; plan?: boolean; parallel: number }): Promise<number> {
  if (opts.to && !image) throw new UsageError('--to names a version of one image: give the IMAGE too', 'provisional rollback ENV IMAGE --to VERSION');
  return deploy(ctx, env, {
    mode: 'warm',
    planOnly: !!opts.plan,
    parallel: opts.parallel,
    only: image ? [image] : undefined,
    pin: (versions, servers, deployment) => {
      // A warm deploy leaves cold-only images alone, so a rollback does too, unless one is named.
      const coldOnly = Object.keys(deployment).filter((name) => deployment[name]!['cold-only'] && name !== image);
      return rollbackTargets(env, image, opts.to, versions, servers.filter((s) => !coldOnly.includes(s.labels[LABELS.image]!)));
    },
  });
}

/** For each image with servers in `env`: the version just before the one they run (or `to`). */
export function rollbackTargets(env: string, image: string | undefined, to: string | undefined, versions: ImageVersion[], servers: Server[]): Record<string, ImageVersion> {
  const pins: Record<string, ImageVersion> = {};
  const running = servers.filter((s) => s.labels[LABELS.environment] === env && (!image || s.labels[LABELS.image] === image));
  const images = image ? [image] : [...new Set(running.map((s) => s.labels[LABELS.image]!))];
  for (const name of images) {
    const ofImage = versions.filter((v) => v.image === name && v.status === 'available').sort(byNewest);
    if (to) {
      const wanted = parseImageRef(`${name}@${to}`).version;
      const found = ofImage.find((v) => v.version === wanted);
      if (!found) throw new UserFacingError(`no version ${wanted} of ${name}`, { hint: `versions: ${ofImage.map((v) => v.version).join(', ') || '(none)'}` });
      pins[name] = found;
      continue;
    }
    const current = running.filter((s) => s.labels[LABELS.image] === name).map((s) => s.labels[LABELS.version]!).sort().pop();
    if (!current) throw new UserFacingError(`no servers of ${name} run in ${env}: nothing to roll back`);
    const previous = ofImage.find((v) => v.version < current);
    if (!previous) throw new UserFacingError(`${name} in ${env} runs ${current}, and there is no older version to roll back to`);
    pins[name] = previous;
  }
  return pins;
}
