/** `provisional image update [NAME]`: rebuilds what changed, parents first. */
import type { CommandContext } from '../context.js';
import { buildImages } from './build-images.js';

export function run(ctx: CommandContext, name: string | undefined, opts: { force: boolean; parallel: number }): Promise<number> {
  return buildImages(ctx, { images: name ? [name] : undefined, force: opts.force, parallel: opts.parallel });
}
