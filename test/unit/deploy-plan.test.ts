import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planEnvironment, serverIndex } from '../../src/deploy/plan.js';
import { planPrune } from '../../src/images/prune.js';
import { rollbackTargets } from '../../src/deploy/release.js';
import { LABELS, type ImageVersion, type Server } from '../../src/providers/types.js';

const version = (image: string, stamp: string, parent?: string): ImageVersion => ({
  image,
  version: `${image}-${stamp}`,
  id: `${image}-${stamp}`,
  parent: parent ? { kind: 'image', image: parent.replace(/-\d+$/, ''), version: parent } : { kind: 'base', ref: 'debian-12' },
  inputHash: 'h',
  toolVersion: '0',
  createdAt: '2026-01-01T00:00:00Z',
  status: 'available',
});
const server = (name: string, image: string, v: string, state: Server['state'] = 'running'): Server => ({
  id: name,
  name,
  ssh: { host: '127.0.0.1', port: 22, user: 'root' },
  labels: { [LABELS.environment]: name.split('.')[1]!, [LABELS.image]: image, [LABELS.version]: v },
  state,
});

const base1 = version('base', '20260101000000');
const app1 = version('app', '20260102000000', base1.version);
const app2 = version('app', '20260103000000', base1.version);
const db1 = version('db', '20260102000000', base1.version);
const deployment = { app: { servers: 2, 'cold-only': false }, db: { servers: 1, 'cold-only': true } };

describe('deploy plan', () => {
  it('cold: creates every server, cold-only included, from the latest versions', () => {
    const plan = planEnvironment({ environment: 'staging', deployment, versions: [base1, app1, app2, db1], servers: [], mode: 'cold' });
    const app = plan.images.find((i) => i.image === 'app')!;
    assert.deepEqual(app.create.map((s) => `${s.name}:${s.version.version}`), ['app1.staging:app-20260103000000', 'app2.staging:app-20260103000000']);
    assert.deepEqual(plan.images.find((i) => i.image === 'db')!.create.map((s) => s.name), ['db1.staging']);
    assert.deepEqual(plan.missing, []);
  });

  it('warm: replaces outdated servers under new names, leaves cold-only alone', () => {
    const servers = [server('app1.staging', 'app', app1.version), server('app2.staging', 'app', app1.version), server('db1.staging', 'db', db1.version)];
    const plan = planEnvironment({ environment: 'staging', deployment, versions: [app1, app2, db1], servers, mode: 'warm' });
    const app = plan.images.find((i) => i.image === 'app')!;
    assert.deepEqual(app.create.map((s) => s.name), ['app3.staging', 'app4.staging']);
    assert.deepEqual(app.destroy.map((s) => s.name), ['app1.staging', 'app2.staging']);
    const db = plan.images.find((i) => i.image === 'db')!;
    assert.equal(db.create.length + db.destroy.length, 0);
    assert.match(db.note!, /cold-only/);
  });

  it('warm: nothing to do when every server runs the latest version; scales up and down', () => {
    const servers = [server('app1.staging', 'app', app2.version), server('app2.staging', 'app', app2.version)];
    let plan = planEnvironment({ environment: 'staging', deployment: { app: deployment.app }, versions: [app2], servers, mode: 'warm' });
    assert.equal(plan.images[0]!.create.length + plan.images[0]!.destroy.length, 0);
    plan = planEnvironment({ environment: 'staging', deployment: { app: { servers: 3, 'cold-only': false } }, versions: [app2], servers, mode: 'warm' });
    assert.deepEqual(plan.images[0]!.create.map((s) => s.name), ['app3.staging']);
    plan = planEnvironment({ environment: 'staging', deployment: { app: { servers: 1, 'cold-only': false } }, versions: [app2], servers, mode: 'warm' });
    assert.deepEqual(plan.images[0]!.destroy.map((s) => s.name), ['app2.staging']);
  });

  it('replaces dead servers, and reports images with no version', () => {
    const servers = [server('app1.staging', 'app', app2.version, 'dead'), server('app2.staging', 'app', app2.version)];
    const plan = planEnvironment({ environment: 'staging', deployment, versions: [app2], servers, mode: 'warm' });
    const app = plan.images.find((i) => i.image === 'app')!;
    assert.deepEqual(app.destroy.map((s) => s.name), ['app1.staging']);
    assert.deepEqual(app.create.map((s) => s.name), ['app3.staging']);
    assert.deepEqual(plan.missing, ['db']);
  });

  it('parses server names', () => {
    assert.equal(serverIndex('app12.staging', 'app', 'staging'), 12);
    assert.equal(serverIndex('app12.prod', 'app', 'staging'), undefined);
  });
});

describe('rollback targets', () => {
  it('goes to the version before the running one, or the one named', () => {
    const servers = [server('app3.staging', 'app', app2.version)];
    const common = { environment: 'staging', deployment, servers };
    assert.equal(rollbackTargets({ ...common, versions: [app1, app2] }).app!.version.version, app1.version);
    assert.equal(rollbackTargets({ ...common, image: 'app', to: '20260102000000', versions: [app1, app2] }).app!.version.version, app1.version);
    assert.throws(() => rollbackTargets({ ...common, image: 'app', versions: [app2] }), /no older version/);
  });
});

describe('prune', () => {
  it('keeps the newest, what servers run, their rollback targets and parents', () => {
    const app3 = version('app', '20260104000000', base1.version);
    const app4 = version('app', '20260105000000', base1.version);
    const base0 = version('base', '20251201000000');
    const appOld = version('app', '20251202000000', base0.version);
    const servers = [server('app1.staging', 'app', app3.version)];
    const d = planPrune([base0, base1, appOld, app1, app2, app3, app4], servers, { keep: 1 });
    assert.deepEqual(d.remove.map((v) => v.version).sort(), [app1.version, appOld.version, base0.version].sort());
    // a child is deleted before the version it is built on
    assert.ok(d.remove.findIndex((v) => v === appOld) < d.remove.findIndex((v) => v === base0));
    const why = Object.fromEntries(d.keep.map((k) => [k.version.version, k.why]));
    assert.match(why[app3.version]!, /runs on app1.staging/);
    assert.match(why[app2.version]!, /rollback target/);
    assert.match(why[base1.version]!, /newest|built on it/);
  });
});
