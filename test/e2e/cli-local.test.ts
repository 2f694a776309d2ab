/**
 * The real CLI against real QEMU and real SSH, on the local provider: init, build images from
 * images, list, update (skip / rebuild only what changed), `image show` (the project's commit, the
 * chain down to the base's digest), prune by age, and failures that leave nothing behind.
 * The debian-12 base is cached in the user's cache dir, so only the first run on a machine pays
 * for building it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, qemuProcessesMentioning } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import localProvider from '../../src/providers/local/index.js';
import { nullSink } from '../../src/core/events.js';
import type { ImageVersion } from '../../src/providers/types.js';
import { generateKeyPair, waitForSsh } from '../../src/ssh/client.js';

let project: TempProject;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let commit = '';

const cli = (...args: string[]) => runCli(args, { cwd: project.dir, env });

async function listVersions(): Promise<Record<string, ImageVersion[]>> {
  const r = await cli('image', 'list', '--json');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { images: { name: string; versions: ImageVersion[] }[] };
  return Object.fromEntries(doc.images.map((i) => [i.name, i.versions]));
}

/** Everything a build may leave: QEMU processes, machine folders, partial files. */
function assertNothingLeftBehind() {
  assert.deepEqual(qemuProcessesMentioning(dataDir), [], 'a QEMU process is still running');
  const leftovers: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) {
        if (entry === 'machines' && readdirSync(path).length) leftovers.push(`${path}: ${readdirSync(path).join(', ')}`);
        walk(path);
      } else if (/\.partial|\.tmp/.test(entry)) leftovers.push(path);
    }
  };
  if (existsSync(dataDir)) walk(dataDir);
  assert.deepEqual(leftovers, [], 'build leftovers on disk');
}

describe('CLI end to end on the local provider (QEMU)', { timeout: 40 * 60_000 }, () => {
  before(() => {
    project = tempProject('provisional-e2e-');
    dataDir = mkdtempSync(join(tmpdir(), 'provisional-e2e-data-'));
    env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(dataDir, 'state') };
    // The in-process provider used to inspect images must look where the CLI stores them.
    Object.assign(process.env, env);
  });
  after(() => {
    project.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('init writes the config and a sample tree, and never overwrites it', async () => {
    const r = await cli('init');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(project.dir, 'config/provisional/config.yml')));
    assert.ok(existsSync(join(project.dir, 'config/provisional/app/scripts/10-app.sh')));
    const again = await cli('init');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists; init changed nothing/);
  });

  it('validate accepts the sample', async () => {
    const r = await cli('validate');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /image app <- base \(1 script\)/);
  });

  it('image create base, then app from base', async () => {
    // The project is a git work tree: its versions record the commit.
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: project.dir, encoding: 'utf8' }).trim();
    git('init', '-q');
    git('add', '.');
    git('commit', '-qm', 'sample');
    commit = git('rev-parse', 'HEAD');
    const base = await cli('image', 'create', 'base');
    assert.equal(base.code, 0, base.stderr);
    assert.match(base.stderr, /10-system\.sh/);
    const app = await cli('image', 'create', 'app');
    assert.equal(app.code, 0, app.stderr);
    assert.match(app.stderr, /\[app\] 10-app\.sh \| Created symlink/);
    const versions = await listVersions();
    assert.equal(versions.base!.length, 1);
    assert.equal(versions.app!.length, 1);
    assert.equal(versions.app![0]!.parent.kind, 'image');
    assert.deepEqual(versions.app![0]!.parent, { kind: 'image', image: 'base', version: versions.base![0]!.version });
    assert.match(versions.app![0]!.version, /^app-\d{14}$/);
    assertNothingLeftBehind();
  });

  it('image show: the commit, a clean tree, the builder size, the scripts, the chain down to the base and its digest', async () => {
    const versions = await listVersions();
    const [app, base] = [versions.app![0]!.version, versions.base![0]!.version];
    const r = await cli('image', 'show', `app@${app}`, '--json');
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { version: ImageVersion; chain: Record<string, string | null>[]; base: { ref: string; recorded: string; current: string; state: string } };
    assert.deepEqual(doc.version.provenance, { commit, dirty: false, builderSize: doc.version.provenance?.builderSize, scripts: ['10-app.sh'], tests: [] });
    assert.match(doc.version.provenance!.builderSize!, /^\d+ MiB, \d+ vCPU$/);
    assert.deepEqual(doc.chain.map((c) => c.version ?? c.base), [app, base, 'debian-12']);
    // The base's identity: the digest of its disk (a base made before digests were kept: its build id).
    assert.match(doc.base.recorded, /^(sha256:[0-9a-f]{64}|build-[0-9a-f-]{36})$/);
    assert.deepEqual([doc.base.current, doc.base.state], [doc.base.recorded, 'same']);
    const text = await cli('image', 'show', `app@${app}`);
    assert.match(text.stdout, new RegExp(`^  commit: +${commit}$`, 'm'));
    assert.match(text.stdout, /^ +debian-12 \(local base, id (sha256|build-)/m);
    const list = await cli('image', 'list');
    assert.match(list.stdout, /^  debian-12 .* yes \(.*\) +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +(sha256:[0-9a-f]{12}|build-)/m, 'the base with its build date and id');
  });

  it("the app image holds both base's and app's work, boots with fresh host keys and no build key", async () => {
    const versions = await listVersions();
    const provider = await localProvider.create(localProvider.settingsSchema.parse({}), {
      project: JSON.parse((await cli('validate', '--json')).stdout).project,
      projectDir: project.dir,
      events: nullSink,
    });
    const signal = AbortSignal.timeout(300_000);
    const key = generateKeyPair('e2e-check');
    const machine = await provider.launchMachine(
      { name: 'e2e-check', source: { kind: 'version', version: versions.app![0]! }, authorizedKey: key.publicKey, labels: {} },
      signal,
    );
    try {
      const ssh = await waitForSsh(machine.ssh, key.privateKey, { timeoutMs: 240_000, signal, what: 'SSH on the check VM' });
      const r = await ssh.exec(
        'cat /etc/provisional-release; cat /etc/motd; systemctl is-enabled app.service; ls /etc/ssh/ssh_host_ed25519_key; ls /var/tmp/provisional 2>&1; cat /etc/machine-id',
      );
      ssh.close();
      assert.match(r.stdout, /^base: built/m);
      assert.match(r.stdout, /^app: built/m);
      assert.match(r.stdout, /built by Provisional/);
      assert.match(r.stdout, /^enabled$/m);
      assert.match(r.stdout, /ssh_host_ed25519_key/);
      assert.match(r.stdout, /No such file or directory/);
      assert.match(r.stdout, /^[0-9a-f]{32}$/m);
    } finally {
      await provider.destroyMachine(machine, AbortSignal.timeout(60_000));
      await provider.close?.();
    }
    assertNothingLeftBehind();
  });

  it('image update builds what has no version (db) and skips what is unchanged', async () => {
    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /base: up to date/);
    assert.match(r.stdout, /app: up to date/);
    assert.match(r.stdout, /db: built db-\d{14}/);
    const again = await cli('image', 'update', '--json');
    assert.equal(again.code, 0, again.stderr);
    const events = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const summary = events.find((e) => e.type === 'summary');
    assert.deepEqual(
      summary.images.map((i: { image: string; status: string }) => `${i.image}:${i.status}`).sort(),
      ['app:skipped', 'base:skipped', 'db:skipped'],
    );
    // The summary lists the images in the order their own lines came.
    const upToDate = events.filter((e) => e.type === 'info' && / is up to date: /.test(e.message)).map((e) => e.scope);
    assert.deepEqual(summary.images.map((i: { image: string }) => i.image), upToDate);
    assert.equal(upToDate[0], 'base', 'a parent comes before its children');
  });

  it("after app's script changes, update rebuilds app only", async () => {
    appendFileSync(join(project.dir, 'config/provisional/app/scripts/10-app.sh'), 'echo "app: second edition" >> /etc/provisional-release\n');
    const before = await listVersions();
    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /app: built app-\d{14}/);
    assert.match(r.stdout, /base: up to date/);
    assert.match(r.stdout, /db: up to date/);
    const after = await listVersions();
    assert.equal(after.app!.length, 2);
    assert.equal(after.base!.length, before.base!.length);
    assert.equal(after.db!.length, before.db!.length);
    assertNothingLeftBehind();
  });

  it('a failing script fails the build (exit 1) and leaves no builder, overlay or version', async () => {
    project.write('config/provisional/db/scripts/50-fail.sh', '#!/bin/sh\necho "about to fail"\nexit 3\n', 0o755);
    const before = await listVersions();
    const r = await cli('image', 'create', 'db');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[db\] 50-fail\.sh \| about to fail/);
    assert.match(r.stdout, /script 50-fail\.sh exited with status 3/);
    assert.equal((await listVersions()).db!.length, before.db!.length);
    assertNothingLeftBehind();
    rmSync(join(project.dir, 'config/provisional/db/scripts/50-fail.sh'));
  });

  it('Ctrl-C during a build cleans up and exits 130', async () => {
    project.write('config/provisional/db/scripts/50-slow.sh', '#!/bin/sh\necho "sleeping"\nsleep 600\n', 0o755);
    const before = await listVersions();
    const run = startCli(['image', 'create', 'db'], { cwd: project.dir, env });
    await run.waitFor(/50-slow\.sh \| sleeping/);
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /cleaning up/);
    assert.equal((await listVersions()).db!.length, before.db!.length);
    assertNothingLeftBehind();
    rmSync(join(project.dir, 'config/provisional/db/scripts/50-slow.sh'));
  });

  it('prune by age: --dry-run lists what would go; it keeps the newest and what a kept version is built on; a bad age exits 2', async () => {
    const versions = await listVersions();
    const [newApp, oldApp] = versions.app!.map((v) => v.version);
    const bad = await cli('image', 'prune', '--older-than', '2 weeks');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--older-than: "2 weeks" is not a duration/);
    const young = await cli('image', 'prune', '--older-than', '1h', '--dry-run', '--json');
    assert.deepEqual(JSON.parse(young.stdout).wouldDelete, [], 'nothing is an hour old');
    const dry = await cli('image', 'prune', '--older-than', '1s', '--dry-run', '--json');
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { wouldDelete: string[]; kept: { version: string; why: string }[] };
    assert.deepEqual(plan.wouldDelete, [oldApp]);
    assert.match(plan.kept.find((k) => k.version === versions.base![0]!.version)!.why, /the newest|built on it/);
    assert.deepEqual((await listVersions()).app!.map((v) => v.version), [newApp, oldApp], '--dry-run deleted nothing');
    const r = await cli('image', 'prune', '--older-than', '1s');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`deleted 1 version: ${oldApp}`));
    assert.deepEqual((await listVersions()).app!.map((v) => v.version), [newApp]);
  });

  it('image delete refuses a version that others are built on, and deletes a leaf', async () => {
    const versions = await listVersions();
    const base = versions.base![0]!.version;
    const refused = await cli('image', 'delete', `base@${base}`, '--yes');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot delete base-\d{14}: .* (is|are) built on it/);
    const db = versions.db![0]!.version;
    const ok = await cli('image', 'delete', `db@${db}`, '--yes');
    assert.equal(ok.code, 0, ok.stderr);
    const after = await listVersions();
    assert.deepEqual(after.db ?? [], []);
  });

  it('bad usage exits 2 and changes nothing', async () => {
    const r = await cli('image', 'create', 'nope');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no image "nope"/);
    const p = await cli('image', 'update', '--parallel', '0');
    assert.equal(p.code, 2);
    assert.match(p.stderr, /--parallel takes a whole number/);
  });
});
