/**
 * `provisional base update [REF]`: build a provider base again from current packages (the local
 * debian-12). The previous build stays for the versions built on it; `image update` then rebuilds
 * the images on the new one, since their base moved.
 */
import { UsageError } from '../../core/errors.js';
import { shortId } from '../../images/base-drift.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, ref: string | undefined): Promise<number> {
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config);
  try {
    const name = ref ?? config.provider.definition.sampleBaseRef;
    if (!provider.updateBase) {
      throw new UsageError(
        `the ${provider.name} provider's base images are published by the cloud, not built here`,
        'when a new one is published, `provisional image update` rebuilds the images built on it',
      );
    }
    const bases = await provider.listBaseImages(ctx.signal);
    if (!bases.some((b) => b.ref === name)) {
      throw new UsageError(`the ${provider.name} provider has no base image "${name}" (it has: ${bases.map((b) => b.ref).join(', ')})`);
    }
    const result = await provider.updateBase(name, ctx.signal);
    if (ctx.globals.json) {
      ctx.reporter.printJson({ base: name, previous: result.previous ?? null, current: result.current, createdAt: result.createdAt });
    } else {
      ctx.reporter.print(
        [
          `${name} rebuilt from current packages: ${result.previous ? shortId(result.previous) : '(none before)'} -> ${shortId(result.current)} (built ${result.createdAt})`,
          'the previous build stays for the versions built on it; run `provisional image update` to rebuild the images on the new one',
        ].join('\n'),
      );
    }
    return 0;
  } finally {
    await provider.close?.();
  }
}
