/** `provisional image delete NAME[@VERSION]`: never breaks a version that is built on another. */
import { createInterface } from 'node:readline/promises';
import { UsageError, UserFacingError } from '../../core/errors.js';
import { refuseIfBuiltOn, versionsBuiltOn } from '../../images/dependents.js';
import { byNewest, parseImageRef } from '../../images/naming.js';
import type { ImageVersion } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, ref: string, opts: { yes: boolean }): Promise<number> {
  const { image, version } = parseImageRef(ref);
  if (!image) throw new UsageError(`"${ref}" is not an image reference; write NAME or NAME@VERSION`);
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config);
  try {
    const all = await provider.listImageVersions(ctx.signal);
    const ofImage = all.filter((v) => v.image === image).sort(byNewest);
    const targets = version ? ofImage.filter((v) => v.version === version) : ofImage;
    if (!targets.length) {
      throw new UserFacingError(
        version ? `no version ${version} of ${image}` : `image ${image} has no versions`,
        { hint: ofImage.length ? `versions of ${image}: ${ofImage.map((v) => v.version).join(', ')}` : 'see: provisional image list' },
      );
    }
    const dependents = versionsBuiltOn(targets, all);
    refuseIfBuiltOn(targets, all, `delete ${dependents.length > 1 ? 'those versions' : 'that version'} first (provisional image delete NAME@VERSION), or rebuild them on a newer version`);
    if (!opts.yes && !(await confirm(ctx, targets))) {
      ctx.reporter.message('nothing deleted');
      return 0;
    }
    const deleted: ImageVersion[] = [];
    for (const v of targets) {
      await provider.deleteImageVersion(v, ctx.signal);
      deleted.push(v);
      ctx.reporter.emit({ type: 'info', message: `deleted ${v.version}` });
    }
    if (ctx.globals.json) ctx.reporter.printJson({ deleted: deleted.map((v) => v.version) });
    else ctx.reporter.print(`deleted ${deleted.length} version${deleted.length > 1 ? 's' : ''} of ${image}`);
    return 0;
  } finally {
    await provider.close?.();
  }
}

async function confirm(ctx: CommandContext, targets: ImageVersion[]): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new UsageError(`deleting ${targets.length} version${targets.length > 1 ? 's' : ''} needs confirmation, and there is no terminal to ask on`, 'add --yes');
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`delete ${targets.map((v) => v.version).join(', ')}? [y/N] `, { signal: ctx.signal });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
