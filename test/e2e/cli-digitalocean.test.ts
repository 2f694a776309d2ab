/**
 * The whole CLI on DigitalOcean, through the API emulator (droplets are real machines with real
 * SSH): init, images from images, list, cold deploy, update, warm deploy, rollback, prune,
 * destroy; then faults: transient ones end in success, persistent ones in a clear error, and
 * never a droplet, key or half-made snapshot left behind.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serverRows, versionNames } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';

let project: TempProject;
let stateDir: string;
let emulator: DigitalOceanEmulator;
let env: NodeJS.ProcessEnv;
const cli = (...args: string[]) => runCli(args, { cwd: project.dir, env });

const servers = () => serverRows('staging', { cwd: project.dir, env });
const versionsOf = (image: string) => versionNames(image, { cwd: project.dir, env });

/** Nothing of a build is left at the provider: droplets other than servers, build keys, snapshots without metadata. */
function assertNoBuildLeftovers() {
  const droplets = [...emulator.cloud.droplets.values()].filter((d) => !/\.staging$/.test(d.name));
  assert.deepEqual(droplets.map((d) => d.name), [], 'builder droplets left');
  assert.deepEqual([...emulator.cloud.keys.values()].filter((k) => k.name.startsWith('provisional-build-')).map((k) => k.name), [], 'build keys left');
  const snapshots = [...emulator.cloud.images.values()].filter((i) => i.type === 'snapshot' && !String(i.description ?? '').startsWith('provisional:'));
  assert.deepEqual(snapshots.map((s) => s.name), [], 'snapshots without metadata left');
}

describe('CLI end to end on DigitalOcean (emulator)', { timeout: 30 * 60_000 }, () => {
  before(async () => {
    emulator = await startDigitalOceanEmulator({ delays: { create: 500, shutdown: 300, power_off: 300, snapshot: 1000, transfer: 500 } });
    project = tempProject('provisional-do-');
    stateDir = mkdtempSync(join(tmpdir(), 'provisional-do-state-'));
    env = { DIGITALOCEAN_TOKEN: emulator.token, PROVISIONAL_STATE_DIR: stateDir, DO_API_URL: emulator.url };
  });
  after(async () => {
    await cli('destroy', 'staging', '--yes').catch(() => undefined);
    await emulator.close();
    project.remove();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('init selects DigitalOcean; a rejected token is a clear error with exit 2', async () => {
    const r = await cli('init', '--provider', 'digitalocean');
    assert.equal(r.code, 0, r.stderr);
    const file = join(project.dir, 'config/provisional/config.yml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('  name: digitalocean\n', `  name: digitalocean\n  api-url: \${DO_API_URL}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30\n`),
    );
    const bad = await runCli(['image', 'list'], { cwd: project.dir, env: { ...env, DIGITALOCEAN_TOKEN: 'dop_v1_wrong' } });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Unable to authenticate you|unauthorized/);
    assert.match(bad.stderr, /DIGITALOCEAN_TOKEN/);
    const none = await runCli(['image', 'list'], { cwd: project.dir, env: { ...env, DIGITALOCEAN_TOKEN: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no DigitalOcean API token/);
  });

  it('builds base, then app and db from it, and lists them with the distribution images', async () => {
    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /base: built base-\d{14}/);
    assert.match(r.stdout, /app: built app-\d{14}/);
    const list = await cli('image', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /debian-12-x64/);
    assert.match(list.stdout, /app-\d{14} .* base-\d{14}/);
    assertNoBuildLeftovers();
  });

  it('cold deploy, update, warm deploy, rollback', async () => {
    const cold = await cli('deploy', 'staging', '--cold');
    assert.equal(cold.code, 0, cold.stderr);
    const first = await servers();
    assert.deepEqual(first.map((s) => s.name), ['app1.staging', 'app2.staging', 'db1.staging']);
    const active = await cli('ssh', 'app1.staging', '--', 'systemctl', 'is-active', 'app.service');
    assert.equal(active.code, 0, active.stderr);
    // The sample's deploy script wrote the name the deploy gave it (PROVISIONAL_SERVER), which its app says.
    for (const name of ['app1.staging', 'app2.staging']) assert.equal((await cli('ssh', name, '--', 'cat', '/etc/app-server')).stdout.trim(), name);

    appendFileSync(join(project.dir, 'config/provisional/app/scripts/10-app.sh'), 'echo second > /etc/app-edition\n');
    assert.equal((await cli('image', 'update')).code, 0);
    const [newApp, oldApp] = await versionsOf('app');
    const warm = await cli('deploy', 'staging');
    assert.equal(warm.code, 0, warm.stderr);
    const after = await servers();
    const apps = after.filter((s) => s.image === 'app');
    assert.ok(apps.every((s) => s.version === newApp && !first.some((f) => f.id === s.id)), JSON.stringify(after));
    assert.deepEqual(after.filter((s) => s.image === 'db').map((s) => s.id), first.filter((s) => s.image === 'db').map((s) => s.id));
    const edition = await cli('ssh', apps[0]!.name, '--', 'cat', '/etc/app-edition');
    assert.match(edition.stdout, /second/);

    const back = await cli('rollback', 'staging');
    assert.equal(back.code, 0, back.stderr);
    assert.ok((await servers()).filter((s) => s.image === 'app').every((s) => s.version === oldApp));
    assertNoBuildLeftovers();
  });

  it('a revoked parent is passed over: image update builds app on the newest base that is not revoked, and says so; restored, it is built on again', async () => {
    assert.equal((await cli('image', 'create', 'base')).code, 0);
    const [b2, b1] = await versionsOf('base');
    const revoke = await cli('image', 'revoke', `base@${b2}`, '--reason', 'kernel regression');
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.doesNotMatch(revoke.stderr, /still runs?/, 'no server runs a base version: no warning');
    const parentOfNewest = async () => {
      const doc = JSON.parse((await cli('image', 'list', '--json')).stdout) as { images: { name: string; versions: { parent: { version?: string } }[] }[] };
      return doc.images.find((i) => i.name === 'app')!.versions[0]!.parent.version;
    };
    appendFileSync(join(project.dir, 'config/provisional/app/scripts/10-app.sh'), 'echo third >> /etc/app-edition\n');
    const update = await cli('image', 'update', 'app');
    assert.equal(update.code, 0, update.stderr);
    assert.match(update.stderr, new RegExp(`app: parent ${b1}, the newest version of base that is not revoked \\(${b2} is revoked on [^\\n]*: kernel regression\\)`));
    assert.match(update.stdout, /app: built app-\d{14}/);
    assert.equal(await parentOfNewest(), b1);
    assert.equal((await cli('image', 'restore', `base@${b2}`)).code, 0);
    const again = await cli('image', 'update', 'app');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /app: built app-\d{14}/, 'a new parent version is a new input');
    assert.equal(await parentOfNewest(), b2);
    assertNoBuildLeftovers();
  });

  it('prune keeps what runs, destroy removes every droplet', async () => {
    const running = new Set((await servers()).map((s) => s.version));
    const prune = await cli('image', 'prune', '--keep', '1', '--json');
    assert.equal(prune.code, 0, prune.stderr);
    // The result document is the last line (NDJSON events come first).
    const deleted = JSON.parse(prune.stdout.trim().split('\n').pop()!).deleted as string[];
    assert.ok(deleted.length > 0, 'prune had something to delete');
    for (const v of deleted) assert.ok(!running.has(v));
    const r = await cli('destroy', 'staging', '--yes');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await servers(), []);
    assert.equal(emulator.cloud.droplets.size, 0);
  });

  it('regions: a new version is transferred to every region; image list shows where; delete removes it everywhere', async () => {
    const file = join(project.dir, 'config/provisional/config.yml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('  db:\n    base-image: base\n', '  db:\n    base-image: base\n    regions: [ams3, sfo3]\n'));
    const r = await cli('image', 'create', 'db');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /copying db-\d{14} to ams3, sfo3/);
    const [latest] = await versionsOf('db');
    const list = await cli('image', 'list');
    assert.match(list.stdout, new RegExp(`${latest} .*available \\(nyc3, ams3, sfo3\\)`));
    const image = [...emulator.cloud.images.values()].find((i) => i.name === latest)!;
    assert.deepEqual([...image.regions].sort(), ['ams3', 'nyc3', 'sfo3']);
    assert.equal((await cli('image', 'delete', `db@${latest}`, '--yes')).code, 0);
    assert.ok(![...emulator.cloud.images.values()].some((i) => i.name === latest && i.status !== 'deleted'), 'the snapshot is gone');
    writeFileSync(file, readFileSync(file, 'utf8').replace('    regions: [ams3, sfo3]\n', ''));
  });

  it('transient faults (429 bursts, 500, 503, a slow snapshot) end in success', async () => {
    emulator.faults.set({
      http: [
        { status: 429, count: 3, retryAfter: 1 },
        { status: 500, count: 2, match: 'GET /v2/droplets' },
        { status: 503, count: 2, match: 'POST /v2/droplets' },
      ],
      actions: [{ type: 'snapshot', outcome: 'slow', extraMs: 2000 }],
    });
    const r = await cli('image', 'create', 'db');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(emulator.faults.fired.http >= 7, `faults fired: ${JSON.stringify(emulator.faults.fired)}`);
    assertNoBuildLeftovers();
  });

  it('persistent faults end in a clear error and leave nothing behind', async () => {
    emulator.faults.clear();
    emulator.faults.set({ actions: [{ type: 'snapshot', outcome: 'errored' }] });
    const errored = await cli('image', 'create', 'db');
    assert.equal(errored.code, 1, errored.stderr);
    assert.match(errored.stdout, /snapshot .* ended errored/);
    assertNoBuildLeftovers();

    emulator.faults.set({ noAddress: 1 });
    const noAddress = await cli('image', 'create', 'db');
    assert.equal(noAddress.code, 1);
    assert.match(noAddress.stdout, /not active with an address after 30 s/);
    assertNoBuildLeftovers();

    emulator.faults.set({ http: [{ status: 503, count: -1, match: 'POST /v2/droplets' }] });
    const down = await cli('image', 'create', 'db');
    assert.equal(down.code, 1);
    assert.match(down.stdout, /create droplet .* failed: .*HTTP 503/);
    emulator.faults.clear();
    assertNoBuildLeftovers();

    emulator.faults.set({ sshDrop: { afterMs: 500 } });
    project.write('config/provisional/db/scripts/20-long.sh', '#!/bin/sh\nsleep 5\n', 0o755);
    const dropped = await cli('image', 'create', 'db');
    assert.equal(dropped.code, 1);
    assert.match(dropped.stdout, /connection|closed|dropped/i);
    assertNoBuildLeftovers();
  });
});
