/**
 * Deploy end to end with the real CLI on the local provider: cold deploy, warm replacement of app
 * servers (db is cold-only and untouched), rollback, a failing health check that leaves the old
 * servers serving, prune that keeps what is in use, destroy.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, qemuProcessesMentioning, serverRows, versionNames } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';

let project: TempProject;
let dataDir: string;
let env: NodeJS.ProcessEnv;
const cli = (...args: string[]) => runCli(args, { cwd: project.dir, env });
const servers = () => serverRows('staging', { cwd: project.dir, env });
const versionsOf = (image: string) => versionNames(image, { cwd: project.dir, env });

function setHealthCheck(command: string, timeout: number) {
  const file = join(project.dir, 'config/provisional/config.yml');
  const text = readFileSync(file, 'utf8').replace(/command: .*\n(\s+)timeout: \d+/, `command: ${command}\n$1timeout: ${timeout}`);
  writeFileSync(file, text);
}

describe('deploy end to end on the local provider (QEMU)', { timeout: 45 * 60_000 }, () => {
  before(async () => {
    project = tempProject('provisional-deploy-');
    dataDir = mkdtempSync(join(tmpdir(), 'provisional-deploy-data-'));
    env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(dataDir, 'state') };
    assert.equal((await cli('init')).code, 0);
  });
  after(async () => {
    await cli('destroy', 'staging', '--yes');
    for (const pid of qemuProcessesMentioning(dataDir)) process.kill(pid, 'SIGKILL');
    project.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses a cold deploy while images are missing', async () => {
    const r = await cli('deploy', 'staging', '--cold');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no version of app, db to deploy/);
    assert.match(r.stderr, /provisional image update/);
  });

  it('cold deploy creates 2 app and 1 db from the latest versions', async () => {
    const build = await cli('image', 'update');
    assert.equal(build.code, 0, build.stderr);
    const r = await cli('deploy', 'staging', '--cold');
    assert.equal(r.code, 0, r.stderr);
    const list = await servers();
    assert.deepEqual(list.map((s) => `${s.name}:${s.state}`), ['app1.staging:running', 'app2.staging:running', 'db1.staging:running']);
    const [app] = await versionsOf('app');
    assert.ok(list.filter((s) => s.image === 'app').every((s) => s.version === app));
    const ssh = await cli('ssh', 'app1.staging', '--', 'systemctl', 'is-active', 'app.service');
    assert.equal(ssh.code, 0, ssh.stderr);
    assert.match(ssh.stdout, /^active/);
    const status = await cli('ssh', 'app1.staging', '--', 'exit', '7');
    assert.equal(status.code, 7);
  });

  it('warm deploy after image update replaces both app servers and leaves db untouched', async () => {
    const before = await servers();
    appendFileSync(join(project.dir, 'config/provisional/app/scripts/10-app.sh'), 'echo second > /etc/app-edition\n');
    assert.equal((await cli('image', 'update', 'app')).code, 0);
    const [newApp, oldApp] = await versionsOf('app');
    const plan = await cli('deploy', 'staging', '--plan');
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /\+ app3\.staging/);
    assert.match(plan.stdout, /- app1\.staging/);
    assert.deepEqual((await servers()).map((s) => s.id), before.map((s) => s.id), '--plan changed something');

    const r = await cli('deploy', 'staging');
    assert.equal(r.code, 0, r.stderr);
    const after = await servers();
    const apps = after.filter((s) => s.image === 'app');
    assert.equal(apps.length, 2);
    assert.ok(apps.every((s) => s.version === newApp && !before.some((b) => b.id === s.id)));
    assert.notEqual(newApp, oldApp);
    const db = after.filter((s) => s.image === 'db');
    assert.deepEqual(db.map((s) => s.id), before.filter((s) => s.image === 'db').map((s) => s.id));
    const edition = await cli('ssh', apps[0]!.name, '--', 'cat', '/etc/app-edition');
    assert.match(edition.stdout, /second/);
  });

  it('rollback returns app to the previous version', async () => {
    const [, previous] = await versionsOf('app');
    const r = await cli('rollback', 'staging', 'app');
    assert.equal(r.code, 0, r.stderr);
    const apps = (await servers()).filter((s) => s.image === 'app');
    assert.equal(apps.length, 2);
    assert.ok(apps.every((s) => s.version === previous), JSON.stringify(apps));
  });

  it('a deploy whose health check fails leaves the old servers serving and no new server', async () => {
    const before = await servers();
    setHealthCheck('test -f /nonexistent', 5);
    const r = await cli('deploy', 'staging');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /did not get healthy/);
    assert.match(r.stderr, /the old ones keep running/);
    const after = await servers();
    assert.deepEqual(after.map((s) => `${s.id}:${s.state}`), before.map((s) => `${s.id}:${s.state}`));
    setHealthCheck('systemctl is-active app.service', 120);
  });

  it('prune keeps what is in use and its rollback target', async () => {
    const running = new Set((await servers()).map((s) => s.version));
    const r = await cli('image', 'prune', '--keep', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { deleted: string[]; kept: { version: string }[] };
    for (const v of running) assert.ok(!result.deleted.includes(v), `deleted ${v}, which a server runs`);
    const remaining = [...(await versionsOf('app')), ...(await versionsOf('db')), ...(await versionsOf('base'))];
    for (const v of running) assert.ok(remaining.includes(v));
  });

  it('destroy removes every server and process', async () => {
    const r = await cli('destroy', 'staging', '--yes');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await servers(), []);
    assert.deepEqual(qemuProcessesMentioning(dataDir), []);
  });
});
