/** Image lifecycle: the rebuild rule with resolved bases, base drift marks, the duration parser, prune by age. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { baseState, chainBaseState, rebuildDecision } from '../../src/images/base-drift.js';
import { parseDuration } from '../../src/core/duration-text.js';
import { UsageError } from '../../src/core/errors.js';
import { planPrune } from '../../src/images/prune.js';
import { versionName } from '../../src/images/naming.js';
import { LABELS, type ImageVersion, type ImageVersionMetadata, type Server } from '../../src/providers/types.js';

describe('the hash with resolved bases', () => {
  const latest = { version: 'base-20260101120000', inputHash: 'h1', baseId: '12345', parent: { kind: 'base' as const, ref: 'debian-12-x64' } };
  const base = { ref: 'debian-12-x64', identity: '12345' };

  it('skips a version built from the same inputs on the same base', () => {
    const d = rebuildDecision(latest, 'h1', base);
    assert.equal(d.rebuild, false);
    assert.match(d.why, /base-20260101120000 was built from the same inputs/);
  });

  it('rebuilds when the base moved, saying from what to what', () => {
    const d = rebuildDecision(latest, 'h1', { ...base, identity: '67890' });
    assert.deepEqual(d, { rebuild: true, why: 'base debian-12-x64 moved: 12345 -> 67890' });
  });

  it('a version without a recorded base id is "unknown", not changed: no mass rebuild after an upgrade', () => {
    const old = { version: 'base-20250101120000', inputHash: 'h1', parent: latest.parent };
    assert.equal(rebuildDecision(old, 'h1', { ...base, identity: '67890' }).rebuild, false);
    assert.deepEqual(baseState(undefined, '67890'), { kind: 'unknown' });
    assert.deepEqual(baseState('12345', undefined), { kind: 'unknown' });
  });

  it('changed inputs and no version still rebuild; a child (no base given) follows only its inputs', () => {
    assert.deepEqual(rebuildDecision(latest, 'h2', base), { rebuild: true, why: 'inputs changed since base-20260101120000' });
    assert.deepEqual(rebuildDecision(undefined, 'h1', base), { rebuild: true, why: 'no version yet' });
    assert.equal(rebuildDecision({ ...latest, baseId: 'other' }, 'h1').rebuild, false);
  });

  it('a child whose parent has a new version says so', () => {
    const child = { version: 'app-20260101120000', inputHash: 'h1', parent: { kind: 'image' as const, image: 'base', version: 'base-20260101110000' } };
    assert.deepEqual(rebuildDecision(child, 'h2', undefined, 'base-20260102000000'), {
      rebuild: true,
      why: 'inputs changed since app-20260101120000 (base has a new version: base-20260102000000)',
    });
    assert.deepEqual(rebuildDecision(child, 'h2', undefined, 'base-20260101110000').why, 'inputs changed since app-20260101120000');
  });

  it('marks a whole chain by the base at its bottom', () => {
    type V = Pick<ImageVersionMetadata, 'parent' | 'baseId'>;
    const root: V = { parent: { kind: 'base', ref: 'debian-12' }, baseId: 'sha256:a' };
    const child: V = { parent: { kind: 'image', image: 'base', version: 'base-20260101120000' }, baseId: 'sha256:a' };
    const oldChild: V = { parent: { kind: 'image', image: 'base', version: 'base-20260101120000' } };
    const byName = new Map([['base-20260101120000', root]]);
    const moved = new Map([['debian-12', 'sha256:b']]);
    assert.deepEqual(chainBaseState(root, byName, moved), { ref: 'debian-12', state: { kind: 'moved', from: 'sha256:a', to: 'sha256:b' } });
    assert.deepEqual(chainBaseState(child, byName, moved)?.state.kind, 'moved');
    assert.deepEqual(chainBaseState(oldChild, byName, moved)?.state.kind, 'unknown');
    assert.deepEqual(chainBaseState(child, byName, new Map([['debian-12', 'sha256:a']]))?.state.kind, 'same');
    assert.equal(chainBaseState(child, new Map(), moved), undefined, 'a chain whose parent is gone has no known base');
  });
});

describe('duration parser', () => {
  const day = 86_400_000;
  it('reads NUMBER+UNIT parts', () => {
    assert.equal(parseDuration('30d', '--older-than'), 30 * day);
    assert.equal(parseDuration('12h', '--older-than'), 12 * 3_600_000);
    assert.equal(parseDuration('2w', '--older-than'), 14 * day);
    assert.equal(parseDuration('90m', '--older-than'), 90 * 60_000);
    assert.equal(parseDuration('45s', '--older-than'), 45_000);
    assert.equal(parseDuration('1d12h', '--older-than'), 36 * 3_600_000);
    assert.equal(parseDuration(' 7d ', '--older-than'), 7 * day);
  });

  it('refuses what is not a duration, with exit 2 and what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['', /is empty/],
      ['30', /"30" has no unit/],
      ['30x', /"30x" is not NUMBER\+UNIT/],
      ['d', /"d" is not NUMBER\+UNIT/],
      ['1d2', /"2" has no unit/],
      ['-1d', /"-1d" is not NUMBER\+UNIT/],
      ['1.5d', /"1.5d" is not NUMBER\+UNIT/],
      ['0d', /longer than zero/],
      ['1d1d', /the unit "d" comes twice/],
      ['1 month', /is not NUMBER\+UNIT/],
      ['99999999999999999w', /too long/],
    ];
    for (const [text, why] of cases) {
      assert.throws(
        () => parseDuration(text, '--older-than'),
        (err: unknown) => err instanceof UsageError && err.exitCode === 2 && err.message.startsWith(`--older-than: "${text}" is not a duration`) && why.test(err.message),
        `"${text}"`,
      );
    }
  });
});

describe('prune by age', () => {
  const day = 86_400_000;
  const now = new Date('2026-03-01T00:00:00Z');
  const at = (daysAgo: number) => new Date(now.getTime() - daysAgo * day);
  const v = (image: string, daysAgo: number, parent?: string): ImageVersion => {
    const version = versionName(image, at(daysAgo));
    return {
      image,
      version,
      parent: parent ? { kind: 'image', image: 'base', version: parent } : { kind: 'base', ref: 'debian-12' },
      inputHash: 'h',
      toolVersion: '0.1.0',
      createdAt: at(daysAgo).toISOString(),
      id: version,
      status: 'available',
    };
  };
  const server = (name: string, image: string, version: string): Server => ({
    id: name,
    name,
    ssh: { host: '127.0.0.1', port: 22, user: 'root' },
    labels: { [LABELS.image]: image, [LABELS.version]: version },
    state: 'running',
  });
  const base90 = v('base', 90);
  const base40 = v('base', 40);
  const base10 = v('base', 10);
  const app80 = v('app', 80, base90.version);
  const app60 = v('app', 60, base40.version);
  const app50 = v('app', 50, base40.version);
  const app45 = v('app', 45, base40.version);
  const all = [base90, base40, base10, app80, app60, app50, app45];
  const names = (list: ImageVersion[]) => list.map((x) => x.version).sort();

  it('alone: deletes versions older than the limit, never the newest of an image, nor what a kept one is built on', () => {
    const d = planPrune(all, [], { olderThanMs: 30 * day, now });
    // app45 is app's newest (kept though old), so base40 under it stays too.
    assert.deepEqual(names(d.remove), names([base90, app80, app60, app50]));
    const why = Object.fromEntries(d.keep.map((k) => [k.version.version, k.why]));
    assert.equal(why[app45.version], 'the newest');
    assert.equal(why[base10.version], 'the newest');
    assert.match(why[base40.version]!, /is built on it/);
  });

  it('with --keep N: only versions both older and beyond the N newest', () => {
    const d = planPrune(all, [], { olderThanMs: 55 * day, keep: 3, now });
    // app: the 3 newest are 45, 50, 60; app80 is older than 55 days and beyond them. base has only 3.
    assert.deepEqual(names(d.remove), names([app80]));
    const two = planPrune(all, [], { olderThanMs: 55 * day, keep: 2, now });
    assert.deepEqual(names(two.remove), names([app80, app60, base90]), 'beyond the 2 newest and older than 55 days; nothing kept is built on base90');
    const young = planPrune(all, [], { olderThanMs: 100 * day, keep: 1, now });
    assert.deepEqual(young.remove, [], 'nothing is older than 100 days');
  });

  it('keeps what servers run and their rollback targets, however old', () => {
    const d = planPrune(all, [server('app1.staging', 'app', app60.version)], { olderThanMs: 30 * day, now });
    const why = Object.fromEntries(d.keep.map((k) => [k.version.version, k.why]));
    assert.match(why[app60.version]!, /runs on app1.staging/);
    assert.match(why[app80.version]!, /rollback target of app1.staging/);
    assert.match(why[base90.version]!, /is built on it/);
    assert.deepEqual(names(d.remove), names([app50]));
  });
});
