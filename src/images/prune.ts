/**
 * Which versions `image prune --keep N` may delete: never one a server runs, nor the version a
 * rollback would go to (the one before each running version), nor one that a kept version is
 * built on.
 */
import { byNewest } from './naming.js';
import { rollbackTarget } from './choice.js';
import { LABELS, type ImageVersion, type Server } from '../providers/types.js';

export interface PruneDecision {
  remove: ImageVersion[];
  keep: { version: ImageVersion; why: string }[];
}

export function planPrune(versions: ImageVersion[], servers: Server[], keepCount: number, images?: string[]): PruneDecision {
  const why = new Map<string, string>();
  const mark = (v: string | undefined, reason: string) => {
    if (v && !why.has(v)) why.set(v, reason);
  };
  const byImage = new Map<string, ImageVersion[]>();
  for (const v of versions) byImage.set(v.image, [...(byImage.get(v.image) ?? []), v]);
  for (const list of byImage.values()) {
    list.sort(byNewest);
    list.slice(0, keepCount).forEach((v) => mark(v.version, `one of the ${keepCount} newest`));
  }
  // Its run removes it if a test fails, and `cleanup` if the run died.
  for (const v of versions) if (v.testing) mark(v.version, `being tested by run ${v.testing}`);
  for (const s of servers) {
    const running = s.labels[LABELS.version];
    mark(running, `runs on ${s.name}`);
    const list = byImage.get(s.labels[LABELS.image] ?? '') ?? [];
    mark(running ? rollbackTarget(list, s.labels[LABELS.image] ?? '', running)?.version : undefined, `rollback target of ${s.name}`);
  }
  // A kept version's parent chain must stay.
  const byName = new Map(versions.map((v) => [v.version, v]));
  for (const kept of [...why.keys()]) {
    for (let v = byName.get(kept); v && v.parent.kind === 'image'; v = byName.get(v.parent.version)) {
      mark(v.parent.version, `${v.version} is built on it`);
    }
  }
  const inScope = (v: ImageVersion) => !images || images.includes(v.image);
  return {
    // Children before parents: newest first across images is not enough, so order by chain depth.
    remove: versions.filter((v) => inScope(v) && !why.has(v.version)).sort((a, b) => depth(b, byName) - depth(a, byName) || byNewest(a, b)),
    keep: versions.filter((v) => inScope(v) && why.has(v.version)).map((v) => ({ version: v, why: why.get(v.version)! })),
  };
}

function depth(v: ImageVersion, byName: Map<string, ImageVersion>): number {
  let d = 0;
  for (let p = v; p.parent.kind === 'image'; d++) {
    const next = byName.get(p.parent.version);
    if (!next) break;
    p = next;
  }
  return d;
}
