/**
 * Deploy end to end with the real CLI on the local provider: cold deploy, warm replacement of app
 * servers (db is cold-only and untouched), rollback, a failing health check that leaves the old
 * servers serving, prune that keeps what is in use, destroy. The sample's staging app has an
 * endpoint whose port, held by another program, is refused before anything is created; then it
 * (HAProxy on 127.0.0.1) takes requests at 5 a second through the warm deploy, the rollback and
 * a failing deploy, each answer naming the build of app that gave it; none may fail.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { runCli, qemuProcessesMentioning, serverRows, versionNames } from '../helpers/cli.js';
import { whoAnswers } from '../emulators/traffic.js';
import { tempProject, type TempProject } from '../helpers/project.js';

/** HAProxy processes started for this test's data folder (its config path is on the command line). */
function haproxyProcessesMentioning(needle: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8');
        return cmdline.startsWith('haproxy') && cmdline.includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

let project: TempProject;
let dataDir: string;
let env: NodeJS.ProcessEnv;
const cli = (...args: string[]) => runCli(args, { cwd: project.dir, env });
const servers = () => serverRows('staging', { cwd: project.dir, env });
const versionsOf = (image: string) => versionNames(image, { cwd: project.dir, env });

/** The staging app's HTTP health check expects `status` (the sample's app answers 200), within `timeout` s. */
function setHealthCheck(status: number, timeout: number) {
  const file = join(project.dir, 'config/provisional/config.yml');
  const text = readFileSync(file, 'utf8').replace(/status: \d+ \}\n(\s+)timeout: \d+/, `status: ${status} }\n$1timeout: ${timeout}`);
  writeFileSync(file, text);
}

let port: number;
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as { port: number };
      s.close(() => resolve(p));
    });
  });
}

/** The build an answer of the sample app names ("app built 2026-...Z mode=staging server=..."). */
async function ask(): Promise<string> {
  const a = await whoAnswers('127.0.0.1', port);
  if ('error' in a) return `!${a.error}`;
  return a.status === 200 ? (/^app built (\S+) mode=staging/.exec(a.body)?.[1] ?? `?${a.body}`) : `HTTP ${a.status}`;
}

/** Requests to the endpoint every 200 ms while `during` runs (bounded by it): the build each answer named. */
async function underLoad<T>(during: () => Promise<T>): Promise<{ result: T; answers: string[] }> {
  const answers: string[] = [];
  let running = true;
  const load = (async () => {
    while (running) {
      answers.push(await ask());
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    return { result: await during(), answers };
  } finally {
    running = false;
    await load;
  }
}

describe('deploy end to end on the local provider (QEMU)', { timeout: 45 * 60_000 }, () => {
  before(async () => {
    project = tempProject('provisional-deploy-');
    dataDir = mkdtempSync(join(tmpdir(), 'provisional-deploy-data-'));
    env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(dataDir, 'state') };
    assert.equal((await cli('init')).code, 0);
    // The sample's endpoint, on a port free here.
    port = await freePort();
    const file = join(project.dir, 'config/provisional/config.yml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('endpoint: { port: 8080,', `endpoint: { port: ${port},`));
  });
  after(async () => {
    await cli('destroy', 'staging', '--yes');
    for (const pid of [...qemuProcessesMentioning(dataDir), ...haproxyProcessesMentioning(dataDir)]) process.kill(pid, 'SIGKILL');
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
    // The endpoint's port held by another program: refused with the config line, before anything is created.
    const holder = createServer().listen(port, '127.0.0.1');
    await new Promise((resolve) => holder.once('listening', resolve));
    const taken = await cli('deploy', 'staging', '--cold');
    holder.close();
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, new RegExp(`config\\.yml:\\d+: deployments\\.staging\\.app\\.endpoint: 127\\.0\\.0\\.1:${port} is in use by another program`));
    assert.deepEqual(await servers(), []);
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
    // The endpoint answers from both app servers, with the build they run, each saying its own name.
    const built = (await cli('ssh', 'app1.staging', '--', 'cat', '/etc/app-build')).stdout.trim().replace(/^app built /, '');
    assert.deepEqual(new Set(await Promise.all([1, 2, 3, 4].map(() => ask()))), new Set([built]));
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const a = await whoAnswers('127.0.0.1', port);
      names.add('body' in a ? (/ server=(\S+)$/.exec(a.body)?.[1] ?? a.body) : a.error);
    }
    assert.deepEqual([...names].sort(), ['app1.staging', 'app2.staging'], 'each server says its own name');
    const shown = JSON.parse((await cli('server', 'list', 'staging', '--json')).stdout) as { endpoints: { image: string; kind: string; address: string; members: { name: string; state: string }[] }[] };
    assert.deepEqual(shown.endpoints.map((e) => `${e.image} ${e.kind} ${e.address} ${e.members.map((m) => `${m.name}:${m.state}`).sort().join(',')}`), [
      `app haproxy 127.0.0.1:${port} app1.staging:healthy,app2.staging:healthy`,
    ]);
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

    const oldBuild = await ask();
    const { result: r, answers } = await underLoad(() => cli('deploy', 'staging'));
    assert.equal(r.code, 0, r.stderr);
    const after = await servers();
    const apps = after.filter((s) => s.image === 'app');
    // Through the whole deploy the endpoint answered, first with the old build, then the new one.
    const newBuild = (await cli('ssh', apps[0]!.name, '--', 'cat', '/etc/app-build')).stdout.trim().replace(/^app built /, '');
    assert.deepEqual(answers.filter((a) => a !== oldBuild && a !== newBuild), [], `failed or odd answers: ${answers.join(' ')}`);
    assert.ok(answers.length >= 25, `${answers.length} requests`);
    const afterwards = await Promise.all([1, 2, 3, 4].map(() => ask()));
    assert.deepEqual(new Set(afterwards), new Set([newBuild]), 'only the new build answers after the deploy');
    assert.equal(answers[0], oldBuild);
    assert.match(r.stdout, new RegExp(`app: haproxy at 127\\.0\\.0\\.1:${port} -> app3\\.staging \\(healthy\\), app4\\.staging \\(healthy\\)`));
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
    const current = await ask();
    const { result: r, answers } = await underLoad(() => cli('rollback', 'staging', 'app'));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(answers.every((a) => !/^[!?H]/.test(a)), `failed answers: ${answers.join(' ')}`);
    assert.equal(answers[0], current);
    const afterwards = await Promise.all([1, 2, 3, 4].map(() => ask()));
    assert.equal(new Set(afterwards).size, 1);
    assert.ok(!afterwards.includes(current), 'the endpoint answers with the previous build after the rollback');
    const apps = (await servers()).filter((s) => s.image === 'app');
    assert.equal(apps.length, 2);
    assert.ok(apps.every((s) => s.version === previous), JSON.stringify(apps));
  });

  it('a deploy whose health check fails leaves the old servers serving and no new server', async () => {
    const before = await servers();
    setHealthCheck(299, 5);
    const serving = await ask();
    const { result: r, answers } = await underLoad(() => cli('deploy', 'staging'));
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(new Set(answers), new Set([serving]), 'the old servers kept answering, alone');
    assert.match(r.stderr, /did not get healthy/);
    assert.match(r.stderr, /the old ones keep running/);
    const after = await servers();
    assert.deepEqual(after.map((s) => `${s.id}:${s.state}`), before.map((s) => `${s.id}:${s.state}`));
    setHealthCheck(200, 120);
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
    assert.match(r.stdout, /and 1 endpoint of staging/);
    assert.match(await ask(), /^!ECONNREFUSED/, 'the endpoint is gone');
    assert.deepEqual(haproxyProcessesMentioning(dataDir), []);
  });
});
