/**
 * Releases: which version each image gets and why (latest, from another environment, pinned,
 * rollback), replacement when the runtime config changed, the refusals, the runtime-config label
 * and the env file's quoting (read back by a real POSIX shell here; systemd reads it in the
 * emulator end-to-end tests).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planEnvironment } from '../../src/deploy/plan.js';
import { describeReason, resolvePins, rollbackTargets } from '../../src/deploy/release.js';
import { renderEnvFile, runtimeConfigLabel, type RuntimeConfig } from '../../src/deploy/runtime-config.js';
import { EXIT, UsageError } from '../../src/core/errors.js';
import { LABELS, type ImageVersion, type Server } from '../../src/providers/types.js';

const version = (image: string, stamp: string, status: ImageVersion['status'] = 'available'): ImageVersion => ({
  image,
  version: `${image}-${stamp}`,
  id: `${image}-${stamp}`,
  parent: { kind: 'base', ref: 'debian-12' },
  inputHash: 'h',
  toolVersion: '0',
  createdAt: '2026-01-01T00:00:00Z',
  status,
});
const server = (name: string, v: string, opts: { state?: Server['state']; config?: string } = {}): Server => ({
  id: name,
  name,
  ssh: { host: '127.0.0.1', port: 22, user: 'root' },
  labels: {
    [LABELS.environment]: name.split('.')[1]!,
    [LABELS.image]: name.replace(/\d+\..*$/, ''),
    [LABELS.version]: v,
    ...(opts.config ? { [LABELS.config]: opts.config } : {}),
  },
  state: opts.state ?? 'running',
});

const v1 = version('app', '20260101000000');
const v2 = version('app', '20260102000000');
const v3failed = version('app', '20260103000000', 'failed');
const db1 = version('db', '20260101000000');
const versions = [v1, v2, v3failed, db1];
const app = (extra: Record<string, unknown> = {}) => ({ servers: 1, 'cold-only': false, ...extra });
const production = { app: app({ from: 'staging' }) };

/** The plan's one line per image: target, reason, and what happens to servers. */
function summary(plan: ReturnType<typeof planEnvironment>, image = 'app') {
  const i = plan.images.find((p) => p.image === image)!;
  return {
    target: i.target?.version,
    reason: i.reason && describeReason(i.reason),
    create: i.create.map((s) => s.name),
    destroy: i.destroy.map((s) => `${s.name}: ${i.destroyWhy[s.name]}`),
    keep: i.keep.map((s) => s.name),
  };
}

function refusal(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, String(err));
    assert.equal(err.exitCode, EXIT.usage);
    assert.match(`${err.message}\n${err.hint}`, pattern);
    return true;
  });
}

describe('release planner: which version and why', () => {
  it('latest: the newest available version (a failed one is never chosen)', () => {
    const plan = planEnvironment({ environment: 'staging', deployment: { app: app() }, versions, servers: [], mode: 'warm' });
    assert.deepEqual(summary(plan), { target: v2.version, reason: 'latest', create: ['app1.staging'], destroy: [], keep: [] });
  });

  it('from: production gets what staging runs, not the latest; then follows staging', () => {
    let servers = [server('app1.staging', v1.version)];
    let plan = planEnvironment({ environment: 'production', deployment: production, versions, servers, mode: 'warm' });
    assert.deepEqual(summary(plan), { target: v1.version, reason: 'from staging', create: ['app1.production'], destroy: [], keep: [] });
    servers = [server('app2.staging', v2.version), server('app1.production', v1.version)];
    plan = planEnvironment({ environment: 'production', deployment: production, versions, servers, mode: 'warm' });
    assert.deepEqual(summary(plan), { target: v2.version, reason: 'from staging', create: ['app2.production'], destroy: ['app1.production: older version'], keep: [] });
  });

  it('--from: every image from the named environment, whatever the config says', () => {
    const servers = [server('app1.qa', v1.version), server('db1.qa', db1.version)];
    const plan = planEnvironment({ environment: 'staging', deployment: { app: app(), db: app() }, versions, servers, mode: 'warm', from: 'qa' });
    assert.equal(summary(plan).reason, 'from qa');
    assert.equal(summary(plan).target, v1.version);
    assert.equal(summary(plan, 'db').reason, 'from qa');
  });

  it('from: a warm deploy does not promote cold-only images, so an empty source cannot block it', () => {
    const servers = [server('app1.staging', v1.version)];
    const plan = planEnvironment({ environment: 'production', deployment: { ...production, db: { servers: 1, 'cold-only': true, from: 'staging' } }, versions, servers, mode: 'warm' });
    assert.equal(summary(plan).target, v1.version);
    assert.match(plan.images.find((i) => i.image === 'db')!.note!, /cold-only/);
  });

  it('pinned: exactly the version named, by full name or stamp, over from:', () => {
    const servers = [server('app1.staging', v1.version)];
    for (const ref of [`app@${v2.version}`, 'app@20260102000000']) {
      const overrides = resolvePins([ref], ['app'], versions);
      const plan = planEnvironment({ environment: 'production', deployment: production, versions, servers, mode: 'warm', overrides });
      assert.deepEqual(summary(plan), { target: v2.version, reason: 'pinned', create: ['app1.production'], destroy: [], keep: [] });
    }
  });

  it('pins that cannot be honoured exit 2: unknown, failed, foreign, not deployed here, twice, no version', () => {
    refusal(() => resolvePins(['app@20990101000000'], ['app'], versions), /not a version of app.*\n.*app-20260102000000/);
    refusal(() => resolvePins([`app@${v3failed.version}`], ['app'], versions), /app-20260103000000 is failed/);
    refusal(() => resolvePins([`app@${db1.version}`], ['app'], versions), /db-20260101000000 is not a version of app/);
    refusal(() => resolvePins([`db@${db1.version}`], ['app'], versions), /deploys no image "db"/);
    refusal(() => resolvePins([`app@${v1.version}`, `app@${v2.version}`], ['app'], versions), /pinned twice/);
    refusal(() => resolvePins(['app'], ['app'], versions), /name a version/);
  });

  it('rollback: the version before the running one, with the current config; other environments untouched', () => {
    const servers = [server('app1.staging', v2.version, { config: 'old' }), server('app1.production', v2.version)];
    const overrides = rollbackTargets({ environment: 'staging', deployment: { app: app() }, versions, servers });
    const plan = planEnvironment({ environment: 'staging', deployment: { app: app() }, versions, servers, mode: 'warm', overrides, configLabels: { app: 'new' } });
    assert.deepEqual(summary(plan), { target: v1.version, reason: `rollback from ${v2.version}`, create: ['app2.staging'], destroy: ['app1.staging: other version'], keep: [] });
    assert.equal(plan.images[0]!.create[0]!.config, 'new');
    assert.ok(plan.images.every((i) => [...i.create, ...i.destroy].every((s) => s.name.endsWith('.staging'))));
    // With from: in production, a rollback there still goes to production's previous version.
    const back = rollbackTargets({ environment: 'production', deployment: production, versions, servers });
    assert.equal(back.app!.version.version, v1.version);
    refusal(() => rollbackTargets({ environment: 'production', deployment: production, versions, servers, to: '1' }), /give the IMAGE too/);
    refusal(() => rollbackTargets({ environment: 'qa', deployment: production, versions, servers }), /no servers run in qa/);
  });

  it('config changed: same version, other runtime config -> replaced; no config and no label match', () => {
    const servers = [server('app1.staging', v2.version, { config: 'aaaa' }), server('app2.staging', v2.version)];
    const deployment = { app: app({ servers: 2 }) };
    let plan = planEnvironment({ environment: 'staging', deployment, versions, servers, mode: 'warm', configLabels: { app: 'bbbb' } });
    assert.deepEqual(summary(plan), {
      target: v2.version,
      reason: 'latest',
      create: ['app3.staging', 'app4.staging'],
      destroy: ['app1.staging: config changed', 'app2.staging: config changed'],
      keep: [],
    });
    plan = planEnvironment({ environment: 'staging', deployment, versions, servers, mode: 'warm', configLabels: { app: 'aaaa' } });
    assert.deepEqual(summary(plan).destroy, ['app2.staging: config changed']);
    plan = planEnvironment({ environment: 'staging', deployment, versions, servers: [servers[1]!, server('app3.staging', v2.version)], mode: 'warm', configLabels: {} });
    assert.deepEqual([summary(plan).create, summary(plan).destroy], [[], []]);
    // A cold deploy replaces nothing, config or not.
    plan = planEnvironment({ environment: 'staging', deployment, versions, servers, mode: 'cold', configLabels: { app: 'bbbb' } });
    assert.deepEqual(summary(plan).destroy, []);
  });

  it('promotion refusals (exit 2, nothing planned): no servers, several versions, not running, itself, gone version', () => {
    const plan = (servers: Server[], from?: string) => () => planEnvironment({ environment: 'production', deployment: production, versions, servers, mode: 'warm', from });
    refusal(plan([]), /staging has no servers of app[\s\S]*provisional deploy staging/);
    refusal(plan([server('app1.staging', v1.version), server('app2.staging', v2.version)]), /run 2 versions \(app-20260101000000 on app1.staging; app-20260102000000 on app2.staging\): a deploy there is in progress or half done/);
    refusal(plan([server('app1.staging', v1.version, { state: 'dead' })]), /not running \(app1.staging: dead\)/);
    refusal(plan([server('app1.production', v1.version)], 'production'), /from itself/);
    refusal(plan([server('app1.staging', 'app-20250101000000')]), /not an available version of app/);
  });
});

describe('runtime config', () => {
  const runtime = (env: Record<string, string>, script = '#!/bin/sh\n'): RuntimeConfig => ({ env, scripts: [{ name: '10-config.sh', content: Buffer.from(script) }], scriptsDir: '/x' });
  const key = Buffer.alloc(32, 7);

  it('the label is a keyed hash: it changes with values, scripts and key, and contains no value', () => {
    const label = runtimeConfigLabel(runtime({ DB_PASSWORD: 'hunter2' }), key)!;
    assert.match(label, /^[0-9a-f]{32}$/);
    assert.equal(runtimeConfigLabel(runtime({ DB_PASSWORD: 'hunter2' }), key), label, 'stable');
    assert.notEqual(runtimeConfigLabel(runtime({ DB_PASSWORD: 'hunter3' }), key), label);
    assert.notEqual(runtimeConfigLabel(runtime({ DB_PASSWORD: 'hunter2' }, '#!/bin/sh\ntrue\n'), key), label);
    assert.notEqual(runtimeConfigLabel(runtime({ DB_PASSWORD: 'hunter2' }), Buffer.alloc(32, 8)), label, 'without the key, nothing can be checked against it');
    assert.ok(!label.includes(Buffer.from('hunter2').toString('hex')));
    assert.equal(runtimeConfigLabel({ env: {}, scripts: [], scriptsDir: '/x' }, key), undefined);
  });

  it('the env file gives a POSIX shell (set -a; . file) exactly the values, whatever they hold', () => {
    const values = {
      SPACES: '  two  spaces  ',
      QUOTES: `it's "quoted"`,
      DOLLAR: '$HOME ${HOME} $(id) `id`',
      BACKSLASH: 'C:\\path\\n \\$ \\\\ end\\',
      NEWLINES: 'line one\nline two\n\nline four',
      TAB: 'a\tb',
      HASH: '# not a comment; echo no',
      EMPTY: '',
      UNICODE: 'naïve ☃',
    };
    const dir = mkdtempSync(join(tmpdir(), 'provisional-envfile-'));
    try {
      writeFileSync(join(dir, 'env'), renderEnvFile(values));
      for (const shell of ['sh', 'bash', 'dash'].filter((s) => { try { execFileSync('which', [s]); return true; } catch { return false; } })) {
        const out = execFileSync(shell, ['-c', `set -a; . ${dir}/env; set +a; node -e 'process.stdout.write(JSON.stringify(process.env))'`], { env: { PATH: process.env.PATH, HOME: '/nonexistent' } });
        const read = JSON.parse(out.toString()) as Record<string, string>;
        for (const [name, value] of Object.entries(values)) assert.equal(read[name], value, `${shell}: ${name}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
