/**
 * Which versions `image prune` may delete: with `--keep N`, those beyond the N newest of each
 * image; with `--older-than AGE`, those older than that (and never an image's newest: it is what
 * a deploy uses); with both, those that are both. Never one a server runs, nor the version a
 * rollback would go to (the one before each running version), nor one that a kept version is
 * built on.
 */
import { byNewest, parseVersionName } from './naming.js';
import { rollbackTarget } from './choice.js';
import { LABELS, type ImageVersion, type Server } from '../providers/types.js';

export interface PruneDecision {
  remove: ImageVersion[];
  keep: { version: ImageVersion; why: string }[];
}

export interface PruneRules {
  /** Keep the N newest versions of each image. */
  keep?: number;
  /** Keep versions younger than this (milliseconds before `now`). */
  olderThanMs?: number;
  now?: Date;
}

export function planPrune(versions: ImageVersion[], servers: Server[], rules: PruneRules, images?: string[]): PruneDecision {
  const keepCount = rules.keep ?? (rules.olderThanMs === undefined ? 3 : 1);
  const cutoff = rules.olderThanMs === undefined ? undefined : (rules.now ?? new Date()).getTime() - rules.olderThanMs;
  const why = new Map<string, string>();
  const mark = (v: string | undefined, reason: string) => {
    if (v && !why.has(v)) why.set(v, reason);
  };
  const byImage = new Map<string, ImageVersion[]>();
  for (const v of versions) byImage.set(v.image, [...(byImage.get(v.image) ?? []), v]);
  for (const list of byImage.values()) {
    list.sort(byNewest);
    list.slice(0, keepCount).forEach((v) => mark(v.version, rules.keep === undefined && cutoff !== undefined ? 'the newest' : `one of the ${keepCount} newest`));
    if (cutoff !== undefined) list.filter((v) => createdAt(v) >= cutoff).forEach((v) => mark(v.version, `younger than ${ageText(rules.olderThanMs!)}`));
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

/** When a version was made: its recorded time, or its name's stamp. */
function createdAt(v: ImageVersion): number {
  const t = Date.parse(v.createdAt);
  return Number.isNaN(t) ? (parseVersionName(v.version)?.date.getTime() ?? 0) : t;
}

function ageText(ms: number): string {
  const units: [string, number][] = [['w', 7 * 86_400_000], ['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  const [unit, size] = units.find(([, size]) => ms % size === 0) ?? ['s', 1000];
  return `${Math.round(ms / size)}${unit}`;
}
