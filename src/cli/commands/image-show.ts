/**
 * `provisional image show NAME[@VERSION]`: where a version came from (its provenance, as recorded
 * at the provider) and the chain of parents down to the provider's base, with whether that base
 * has moved since.
 */
import { UsageError, UserFacingError } from '../../core/errors.js';
import { chainBaseState, type BaseState } from '../../images/base-drift.js';
import { byNewest, parseImageRef } from '../../images/naming.js';
import type { ImageVersion } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, ref: string): Promise<number> {
  const { image, version } = parseImageRef(ref);
  if (!image) throw new UsageError(`"${ref}" is not an image reference; write NAME or NAME@VERSION`);
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config);
  try {
    const all = await provider.listImageVersions(ctx.signal);
    const ofImage = all.filter((v) => v.image === image).sort(byNewest);
    const shown = version ? ofImage.find((v) => v.version === version) : ofImage[0];
    if (!shown) {
      throw new UserFacingError(version ? `no version ${version} of ${image}` : `image ${image} has no versions`, {
        exitCode: 2,
        hint: ofImage.length ? `versions of ${image}: ${ofImage.map((v) => v.version).join(', ')}` : 'see: provisional image list',
      });
    }
    const byName = new Map(all.map((v) => [v.version, v]));
    const chain: ImageVersion[] = [shown];
    for (let v = shown; v.parent.kind === 'image'; ) {
      const parent = byName.get(v.parent.version);
      if (!parent || chain.includes(parent)) break;
      chain.push(parent);
      v = parent;
    }
    const bottom = chain.at(-1)!;
    const baseRef = bottom.parent.kind === 'base' ? bottom.parent.ref : undefined;
    const current = baseRef ? await provider.resolveBase(baseRef, ctx.signal) : undefined;
    const base = chainBaseState(shown, byName, new Map(baseRef ? [[baseRef, current]] : []));

    if (ctx.globals.json) {
      ctx.reporter.printJson({
        version: shown,
        chain: [
          ...chain.map((v) => ({ version: v.version, image: v.image, baseId: v.baseId ?? null, createdAt: v.createdAt })),
          ...(baseRef ? [{ base: baseRef, id: shown.baseId ?? null, currentId: current ?? null }] : bottom.parent.kind === 'image' ? [{ missing: bottom.parent.version }] : []),
        ],
        base: base ? { ref: base.ref, recorded: shown.baseId ?? null, current: current ?? null, state: base.state.kind } : null,
      });
      return 0;
    }

    const p = shown.provenance;
    const unrecorded = 'not recorded (built before provenance was recorded)';
    const rows: [string, string][] = [
      ['image', shown.image],
      ['created', shown.createdAt],
      ['status', shown.status],
      ['commit', p ? (p.commit ? `${p.commit}${p.dirty ? ' (with uncommitted changes)' : ''}` : 'none (the project is not in a git work tree)') : unrecorded],
      ['tool version', shown.toolVersion],
      ['builder size', p?.builderSize ?? (p ? 'unknown' : unrecorded)],
      ['scripts', p ? p.scripts.join(', ') || '(none)' : unrecorded],
      ['tests', p ? p.tests.join(', ') || '(none)' : unrecorded],
      ['input hash', shown.inputHash],
      ['base', base ? `${base.ref}, id ${shown.baseId ?? 'not recorded'}${describeState(base.state)}` : 'unknown (a parent version is gone)'],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    const lines = [shown.version, ...rows.map(([k, v]) => `  ${`${k}:`.padEnd(width + 2)}${v}`), '', 'built on:'];
    chain.forEach((v, i) => lines.push(`  ${'  '.repeat(i)}${v.version}${i ? '' : ' (this version)'}`));
    const depth = '  '.repeat(chain.length);
    if (baseRef) lines.push(`  ${depth}${baseRef} (${config.provider.name} base${shown.baseId ? `, id ${shown.baseId}` : ''})`);
    else if (bottom.parent.kind === 'image') lines.push(`  ${depth}${bottom.parent.version} (deleted)`);
    ctx.reporter.print(lines.join('\n'));
    return 0;
  } finally {
    await provider.close?.();
  }
}

function describeState(state: BaseState): string {
  if (state.kind === 'moved') return `; moved since: now ${state.to} (image update rebuilds it)`;
  if (state.kind === 'same') return '; still current';
  return '';
}
