/**
 * `provisional image list`: every image with all its versions, newest first (marking those whose
 * provider base has moved since they were built), and the base images with their build dates.
 */
import { chainBaseState, shortId, type BaseState } from '../../images/base-drift.js';
import { unusableReason } from '../../images/choice.js';
import { byNewest } from '../../images/naming.js';
import type { ImageVersion } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';
import { table } from '../table.js';

export async function run(ctx: CommandContext): Promise<number> {
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config);
  try {
    const [versions, bases] = await Promise.all([provider.listImageVersions(ctx.signal), provider.listBaseImages(ctx.signal)]);
    const byImage = new Map<string, ImageVersion[]>();
    for (const v of versions) byImage.set(v.image, [...(byImage.get(v.image) ?? []), v]);
    for (const list of byImage.values()) list.sort(byNewest);
    const configured = config.graph.order();
    // Versions of images no longer in the config are still at the provider (and still cost): show them.
    const others = [...byImage.keys()].filter((name) => !config.graph.has(name)).sort();
    // What each provider base that versions were built on resolves to now (never built here).
    const refs = [...new Set(versions.flatMap((v) => (v.parent.kind === 'base' ? [v.parent.ref] : [])))];
    const current = new Map(await Promise.all(refs.map(async (ref) => [ref, await provider.resolveBase(ref, ctx.signal)] as const)));
    const byName = new Map(versions.map((v) => [v.version, v]));
    const baseOf = (v: ImageVersion): BaseState => chainBaseState(v, byName, current)?.state ?? { kind: 'unknown' };

    if (ctx.globals.json) {
      ctx.reporter.printJson({
        project: config.project,
        provider: config.provider.name,
        images: [...configured, ...others].map((name) => ({
          name,
          base: config.images[name]?.['base-image'] ?? null,
          inConfig: config.graph.has(name),
          versions: (byImage.get(name) ?? []).map((v) => ({ ...v, base: baseOf(v) })),
        })),
        bases,
      });
      return 0;
    }

    const out: string[] = [];
    for (const name of [...configured, ...others]) {
      const list = byImage.get(name) ?? [];
      const base = config.images[name]?.['base-image'];
      out.push(`${name}${base ? ` (from ${base})` : ' (not in the config)'}: ${list.length ? `${list.length} version${list.length > 1 ? 's' : ''}` : 'no versions yet'}`);
      if (list.length) {
        out.push(
          table(
            ['VERSION', 'CREATED', 'PARENT', 'SIZE', 'STATUS', 'BASE'],
            list.map((v) => [
              v.version,
              v.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
              v.parent.kind === 'image' ? v.parent.version : v.parent.ref,
              v.sizeBytes === undefined ? '-' : formatBytes(v.sizeBytes),
              statusText(v),
              describeBase(baseOf(v)),
            ]),
            '  ',
          ),
        );
      }
    }
    out.push('', `base images (${config.provider.name}):`);
    out.push(
      table(
        ['BASE', 'DESCRIPTION', 'READY', 'BUILT', 'ID'],
        bases.map((b) => [
          b.ref,
          b.description,
          b.ready ? (b.sizeBytes ? `yes (${formatBytes(b.sizeBytes)})` : 'yes') : 'on first use',
          b.createdAt ? b.createdAt.replace('T', ' ').replace(/(:\d\d)(\.\d+)?Z$/, '$1Z') : '-',
          b.id ? shortId(b.id) : '-',
        ]),
        '  ',
      ),
    );
    ctx.reporter.print(out.join('\n'));
    return 0;
  } finally {
    await provider.close?.();
  }
}

/** Revoked (with when and why) and being tested come before the provider's status. */
function statusText(v: ImageVersion): string {
  const status = unusableReason(v) ?? v.status;
  return v.regions?.length ? `${status} (${v.regions.join(', ')})` : status;
}

/** `moved: A -> B` when the chain's provider base resolves to another image now; `-` when unknown (built before base ids were recorded). */
function describeBase(state: BaseState): string {
  return state.kind === 'moved' ? `moved: ${shortId(state.from)} -> ${shortId(state.to)}` : state.kind === 'same' ? 'current' : '-';
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
