/**
 * Image lifecycle end to end with the real CLI, the same flow on each cloud emulator: provenance
 * (`image show` has the project's commit, the dirty flag, the builder size, scripts and tests, and
 * the chain down to the provider's base); base drift for real (the emulator publishes a new image
 * behind the same slug / AMI name: `image list` marks the versions, `image update` rebuilds the
 * image and its child, saying "base ... moved: A -> B"); a version without a recorded base id is
 * "unknown" and not rebuilt; prune by age (`--older-than`, with `--keep`, `--dry-run`, a bad age
 * exits 2) keeps what a server runs and what a kept version is built on.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { runCli, serverRows, versionNames } from '../helpers/cli.js';
import type { TempProject } from '../helpers/project.js';

export interface LifecycleTarget {
  project: () => TempProject;
  env: () => NodeJS.ProcessEnv;
  /** The `provider:` block's lines, indented under `provider:`. */
  providerYaml: () => string;
  baseImage: string;
  /** The builder size the provider records when the config names none. */
  defaultSize: string;
  /** Publishes a new image behind `baseImage` through the emulator's control; returns the new id (in the provider's region). */
  publishBase: () => Promise<{ previous: string; current: string }>;
  /** Drops the recorded base id from a version's metadata at the emulator, as a version built before it was recorded has none. */
  forgetBaseId: (version: string) => Promise<void>;
}

interface ShowDoc {
  version: { version: string; toolVersion: string; baseId?: string; provenance?: { commit?: string; dirty?: boolean; builderSize?: string; scripts: string[]; tests: string[] } };
  chain: Record<string, string | null>[];
  base: { ref: string; recorded: string | null; current: string | null; state: string } | null;
}

interface ListDoc {
  images: { name: string; versions: { version: string; baseId?: string; base: { kind: string; from?: string; to?: string } }[] }[];
  bases: { ref: string; id?: string; createdAt?: string }[];
}

export function lifecycleFlow(t: LifecycleTarget): void {
  const cli = (...args: string[]) => runCli(args, { cwd: t.project().dir, env: t.env() });
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: t.project().dir, encoding: 'utf8' }).trim();
  const show = async (ref: string) => {
    const r = await cli('image', 'show', ref, '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ShowDoc;
  };
  const list = async () => {
    const r = await cli('image', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ListDoc;
  };
  const versionsOf = (image: string) => versionNames(image, { cwd: t.project().dir, env: t.env() });
  let commit = '';
  let firstBaseId = '';

  it('builds in a git work tree: image show has the commit, a clean tree, the builder size, scripts, tests and the chain to the base', async () => {
    const p = t.project();
    p.writeConfig(`project: lifecycle
provider:
${t.providerYaml()}
images:
  base:
    base-image: ${JSON.stringify(t.baseImage)}
  app:
    base-image: base
deployments:
  staging:
    app: { servers: 1 }
`);
    p.write('config/provisional/base/scripts/10-base.sh', '#!/bin/sh\necho base > /etc/lifecycle-base\n', 0o755);
    p.write('config/provisional/app/scripts/10-app.sh', '#!/bin/sh\necho one > /etc/lifecycle-app\n', 0o755);
    p.write('config/provisional/app/scripts/20-more.sh', '#!/bin/sh\ntrue\n', 0o755);
    p.write('config/provisional/app/tests/10-smoke', '#!/bin/sh\ntest -s /etc/lifecycle-app\n', 0o755);
    git('init', '-q');
    git('add', '.');
    git('commit', '-qm', 'lifecycle');
    commit = git('rev-parse', 'HEAD');

    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    const [app] = await versionsOf('app');
    const doc = await show(`app@${app}`);
    const prov = doc.version.provenance!;
    assert.equal(prov.commit, commit);
    assert.equal(prov.dirty, false);
    assert.equal(prov.builderSize, t.defaultSize);
    assert.deepEqual(prov.scripts, ['10-app.sh', '20-more.sh']);
    assert.deepEqual(prov.tests, ['10-smoke']);
    assert.match(doc.version.toolVersion, /^\d+\.\d+\.\d+/);
    const [base] = await versionsOf('base');
    assert.deepEqual(doc.chain.map((c) => c.version ?? c.base), [app, base, t.baseImage]);
    assert.ok(doc.base && doc.base.recorded && doc.base.recorded === doc.base.current, JSON.stringify(doc.base));
    assert.equal(doc.base.state, 'same');
    firstBaseId = doc.base.recorded;
    const baseDoc = await show(`base@${base}`);
    assert.equal(baseDoc.version.baseId, firstBaseId, 'the base image recorded what its provider base resolved to');
    const text = await cli('image', 'show', `app@${app}`);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`commit: +${commit}\\n`));
    assert.match(text.stdout, new RegExp(`built on:\\n +${app} \\(this version\\)\\n +${base}\\n +${t.baseImage.replace(/[*]/g, '\\*')} `));
    const missing = await cli('image', 'show', 'app@20200101000000');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no version app-20200101000000 of app/);
  });

  it('nothing moved: image update skips both; base update is refused on a cloud (exit 2)', async () => {
    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /base is up to date/);
    assert.match(r.stderr, /app is up to date/);
    const refused = await cli('base', 'update');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /base images are published by the cloud/);
  });

  it('the base moves at the provider: image list marks the versions; image update rebuilds base and app, saying so', async () => {
    const [oldBase] = await versionsOf('base');
    const [oldApp] = await versionsOf('app');
    const published = await t.publishBase();
    assert.equal(published.previous, firstBaseId);
    const doc = await list();
    const marks = doc.images.flatMap((i) => i.versions.map((v) => [v.version, v.base.kind]));
    assert.deepEqual(marks, [[oldBase, 'moved'], [oldApp, 'moved']]);
    assert.equal(doc.bases.find((b) => b.ref === t.baseImage)?.id, published.current);
    const text = await cli('image', 'list');
    assert.match(text.stdout, new RegExp(`${oldApp} .* moved: ${firstBaseId} -> ${published.current}`));

    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`\\[base\\] base: base ${t.baseImage.replace(/[*]/g, '\\*')} moved: ${firstBaseId} -> ${published.current}`));
    assert.match(r.stderr, new RegExp(`\\[app\\] app: inputs changed since ${oldApp} \\(base has a new version: base-\\d{14}\\)`));
    const [newBase] = await versionsOf('base');
    const [newApp] = await versionsOf('app');
    assert.notEqual(newBase, oldBase);
    assert.notEqual(newApp, oldApp);
    assert.equal((await show(`app@${newApp}`)).version.baseId, published.current, 'the child records the chain\'s new base');
    const after = await list();
    const current = after.images.flatMap((i) => i.versions.filter((v) => v.version === newBase || v.version === newApp).map((v) => v.base.kind));
    assert.deepEqual(current, ['same', 'same']);
  });

  it('a version without a recorded base id counts as unknown: no rebuild when the base moves again', async () => {
    const [base] = await versionsOf('base');
    await t.forgetBaseId(base);
    await t.publishBase();
    const doc = await list();
    assert.equal(doc.images.find((i) => i.name === 'base')!.versions.find((v) => v.version === base)!.base.kind, 'unknown');
    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /base is up to date/);
    assert.deepEqual((await versionsOf('base'))[0], base, 'no new version of base');
  });

  it('prune by age keeps the newest, what a server runs and what a kept version is built on; --dry-run; a bad age exits 2', async () => {
    const [app2, app1] = await versionsOf('app');
    // app1 runs on a server: pin it.
    const deploy = await cli('deploy', 'staging', '--cold', '--pin', `app@${app1}`);
    assert.equal(deploy.code, 0, deploy.stderr);
    assert.deepEqual((await serverRows('staging', { cwd: t.project().dir, env: t.env() })).map((s) => s.version), [app1]);
    // An uncommitted change: the next version says so.
    t.project().write('config/provisional/app/scripts/10-app.sh', '#!/bin/sh\necho three > /etc/lifecycle-app\n', 0o755);
    const built = await cli('image', 'update', 'app');
    assert.equal(built.code, 0, built.stderr);
    const [app3] = await versionsOf('app');
    assert.deepEqual([(await show(`app@${app3}`)).version.provenance?.commit, (await show(`app@${app3}`)).version.provenance?.dirty], [commit, true]);
    const [base2, base1] = await versionsOf('base');

    const bad = await cli('image', 'prune', '--older-than', '30x');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--older-than: "30x" is not a duration/);
    await new Promise((r) => setTimeout(r, 1500));
    const young = await cli('image', 'prune', '--older-than', '1h', '--json');
    assert.equal(young.code, 0, young.stderr);
    assert.deepEqual(JSON.parse(young.stdout).deleted, [], 'nothing is an hour old');
    const kept3 = await cli('image', 'prune', '--older-than', '1s', '--keep', '3', '--dry-run', '--json');
    assert.deepEqual(JSON.parse(kept3.stdout).wouldDelete, [], 'with --keep 3 every app version is one of the 3 newest');
    const dry = await cli('image', 'prune', '--older-than', '1s', '--dry-run', '--json');
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { wouldDelete: string[]; kept: { version: string; why: string }[] };
    assert.deepEqual(plan.wouldDelete, [app2]);
    const why = Object.fromEntries(plan.kept.map((k) => [k.version, k.why]));
    assert.equal(why[app3], 'the newest');
    assert.match(why[app1]!, /runs on app1\.staging/);
    assert.equal(why[base2], 'the newest');
    assert.match(why[base1]!, /is built on it/);
    assert.deepEqual(await versionsOf('app'), [app3, app2, app1], '--dry-run deletes nothing');
    const real = await cli('image', 'prune', '--older-than', '1s', '--json');
    assert.equal(real.code, 0, real.stderr);
    // --json: an event line per deletion, then the result.
    const lines = real.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type?: string; message?: string; deleted?: string[] });
    assert.deepEqual(lines.at(-1)!.deleted, [app2]);
    assert.ok(lines.some((l) => l.type === 'info' && l.message === `deleted ${app2}`), real.stdout);
    assert.deepEqual(await versionsOf('app'), [app3, app1]);
    const destroy = await cli('destroy', 'staging', '--yes');
    assert.equal(destroy.code, 0, destroy.stderr);
  });
}
