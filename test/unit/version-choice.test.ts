/**
 * The choice of version with revocations and image tests (src/images/choice.ts and its users): a
 * revoked version, or one whose tests have not passed, is never latest for a deploy, never the
 * parent of a build, never a rollback target, never what a promotion hands over; naming one with
 * --pin or --to exits 2 with the reason.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { latestUsable, unusableReason } from '../../src/images/choice.js';
import { planPrune } from '../../src/images/prune.js';
import { planEnvironment } from '../../src/deploy/plan.js';
import { resolvePins, rollbackTargets } from '../../src/deploy/release.js';
import { EXIT, UsageError } from '../../src/core/errors.js';
import { LABELS, type ImageVersion, type Server } from '../../src/providers/types.js';

const version = (image: string, stamp: string, marks: Partial<ImageVersion> = {}): ImageVersion => ({
  image,
  version: `${image}-${stamp}`,
  id: `${image}-${stamp}`,
  parent: { kind: 'base', ref: 'debian-12' },
  inputHash: 'h',
  toolVersion: '0',
  createdAt: '2026-01-01T00:00:00Z',
  status: 'available',
  ...marks,
});
const server = (name: string, v: string): Server => ({
  id: name,
  name,
  ssh: { host: '127.0.0.1', port: 22, user: 'root' },
  labels: { [LABELS.environment]: name.split('.')[1]!, [LABELS.image]: name.replace(/\d+\..*$/, ''), [LABELS.version]: v },
  state: 'running',
});
const revoked = { reason: 'leaks memory', at: '2026-01-05T10:00:00.000Z' };
const v1 = version('app', '20260101000000');
const v2 = version('app', '20260102000000');
const v3revoked = version('app', '20260103000000', { revoked });
const v4testing = version('app', '20260104000000', { testing: 'run42' });
const versions = [v1, v2, v3revoked, v4testing];
const deployment = { app: { servers: 1, 'cold-only': false } };

function refusal(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, String(err));
    assert.equal(err.exitCode, EXIT.usage);
    assert.match(`${err.message}\n${err.hint}`, pattern);
    return true;
  });
}

describe('choice of version with revocations', () => {
  it('says why a version cannot be chosen', () => {
    assert.equal(unusableReason(v1), undefined);
    assert.equal(unusableReason(v3revoked), 'revoked on 2026-01-05 10:00:00Z: leaks memory');
    assert.match(unusableReason(v4testing)!, /being tested \(run run42\)/);
    assert.equal(unusableReason(version('app', '20260105000000', { status: 'pending' })), 'pending');
  });

  it('latest for a deploy: the newest version neither revoked nor being tested', () => {
    const plan = planEnvironment({ environment: 'staging', deployment, versions, servers: [], mode: 'warm' });
    assert.equal(plan.images[0]!.target?.version, v2.version);
    const none = planEnvironment({ environment: 'staging', deployment, versions: [v3revoked, v4testing], servers: [], mode: 'warm' });
    assert.deepEqual(none.missing, ['app'], 'with only revoked or untested versions there is nothing to deploy');
  });

  it('parent for a build: the newest that is not revoked, with the revoked ones it passed over (to say so)', () => {
    const choice = latestUsable(versions, 'app');
    assert.equal(choice.version?.version, v2.version);
    assert.deepEqual(choice.passedOver.map((v) => v.version), [v3revoked.version]);
    const onlyRevoked = latestUsable([v3revoked], 'app');
    assert.equal(onlyRevoked.version, undefined);
    assert.deepEqual(onlyRevoked.passedOver.map((v) => v.version), [v3revoked.version]);
    assert.deepEqual(latestUsable([v1, version('app', '20251201000000', { revoked })], 'app').passedOver, [], 'an older revoked version is not passed over');
  });

  it('rollback target: skips revoked versions; --to a revoked one exits 2 with the reason', () => {
    const servers = [server('app1.staging', version('app', '20260106000000').version)];
    const withNewer = [...versions, version('app', '20260106000000')];
    const back = rollbackTargets({ environment: 'staging', deployment, versions: withNewer, servers });
    assert.equal(back.app!.version.version, v2.version, 'v4 is being tested and v3 revoked: back to v2');
    refusal(() => rollbackTargets({ environment: 'staging', image: 'app', to: '20260103000000', deployment, versions: withNewer, servers }), /--to 20260103000000: app-20260103000000 is revoked on 2026-01-05 10:00:00Z: leaks memory[\s\S]*can be used: app-20260106000000, app-20260102000000, app-20260101000000/);
    refusal(() => rollbackTargets({ environment: 'staging', deployment, versions: [v3revoked], servers: [server('app1.staging', v3revoked.version)] }), /no older version to roll back to/);
  });

  it('--pin a revoked or untested version exits 2 with the reason', () => {
    refusal(() => resolvePins([`app@${v3revoked.version}`], ['app'], versions), /--pin app@app-20260103000000: app-20260103000000 is revoked on .*: leaks memory/);
    refusal(() => resolvePins(['app@20260104000000'], ['app'], versions), /is being tested/);
    assert.equal(resolvePins(['app@20260102000000'], ['app'], versions).app!.version.version, v2.version);
  });

  it('from: a revoked version that the source still runs is never handed over', () => {
    const production = { app: { servers: 1, 'cold-only': false, from: 'staging' } };
    refusal(
      () => planEnvironment({ environment: 'production', deployment: production, versions, servers: [server('app1.staging', v3revoked.version)], mode: 'warm' }),
      /cannot deploy app to production from staging: staging runs app-20260103000000, which cannot be promoted: app-20260103000000 is revoked/,
    );
    const ok = planEnvironment({ environment: 'production', deployment: production, versions, servers: [server('app1.staging', v1.version)], mode: 'warm' });
    assert.equal(ok.images[0]!.target?.version, v1.version);
  });

  it('prune: the rollback target it keeps is the one a rollback would use; a version being tested stays', () => {
    const d = planPrune([v1, v2, v3revoked, v4testing, version('app', '20260106000000')], [server('app1.staging', 'app-20260106000000')], { keep: 1 });
    const kept = Object.fromEntries(d.keep.map((k) => [k.version.version, k.why]));
    assert.match(kept[v2.version] ?? '', /rollback target of app1.staging/);
    assert.match(kept[v4testing.version] ?? '', /being tested by run run42/);
    assert.deepEqual(d.remove.map((v) => v.version).sort(), [v1.version, v3revoked.version]);
  });
});
