/** `provisional image create NAME`: always builds a new version. */
import type { CommandContext } from '../context.js';
import { buildImages } from './build-images.js';

export function run(ctx: CommandContext, name: string): Promise<number> {
  return buildImages(ctx, { images: [name], force: true, parallel: 1 });
}
