/**
 * The whole CLI on Hetzner Cloud, through the API emulator (servers are real machines with real
 * SSH): init, images from images, list, cold deploy, update, warm deploy, rollback, prune,
 * destroy; then faults: transient ones end in success, persistent ones in a clear error with
 * Hetzner's error code, and never a server, key or half-made snapshot left behind.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serverRows, versionNames } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startHetznerEmulator, type HetznerEmulator } from '../../src/emulators/hetzner/server.js';

let project: TempProject;
let stateDir: string;
let emulator: HetznerEmulator;
let env: NodeJS.ProcessEnv;
const cli = (...args: string[]) => runCli(args, { cwd: project.dir, env });

const servers = () => serverRows('staging', { cwd: project.dir, env });
const versionsOf = (image: string) => versionNames(image, { cwd: project.dir, env });

/** Nothing of a build is left: servers other than the deployed ones, build keys, snapshots that are not versions. */
function assertNoBuildLeftovers() {
  assert.deepEqual(emulator.cloud.liveServers().filter((s) => !/\.staging$/.test(s.name)).map((s) => s.name), [], 'builder servers left');
  assert.deepEqual([...emulator.cloud.keys.values()].filter((k) => k.name.startsWith('provisional-build-')).map((k) => k.name), [], 'build keys left');
  const snapshots = [...emulator.cloud.images.values()].filter((i) => i.type === 'snapshot' && (i.status !== 'available' || !i.description.startsWith('provisional:')));
  assert.deepEqual(snapshots.map((s) => s.id), [], 'snapshots that are not versions left');
}

describe('CLI end to end on Hetzner Cloud (emulator)', { timeout: 30 * 60_000 }, () => {
  before(async () => {
    emulator = await startHetznerEmulator({ delays: { create: 500, shutdown: 200, poweroff: 200, create_image: 1000 } });
    project = tempProject('provisional-hetzner-');
    stateDir = mkdtempSync(join(tmpdir(), 'provisional-hetzner-state-'));
    env = { HCLOUD_TOKEN: emulator.token, HCLOUD_ENDPOINT: emulator.endpoint, PROVISIONAL_STATE_DIR: stateDir };
  });
  after(async () => {
    await cli('destroy', 'staging', '--yes').catch(() => undefined);
    await emulator.close();
    project.remove();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('init writes a valid Hetzner sample; a rejected or missing token exits 2 and never shows the token', async () => {
    const r = await cli('init', '--provider', 'hetzner');
    assert.equal(r.code, 0, r.stderr);
    const file = join(project.dir, 'config/provisional/config.yml');
    assert.match(readFileSync(file, 'utf8'), /name: hetzner/);
    assert.match(readFileSync(file, 'utf8'), /debian-12/);
    const valid = await cli('validate');
    assert.equal(valid.code, 0, valid.stderr);
    writeFileSync(file, readFileSync(file, 'utf8').replace('  name: hetzner\n', `  name: hetzner\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30\n  shutdown-timeout: 5\n`));
    const wrong = 'wrong-token-0123456789abcdef';
    const bad = await runCli(['image', 'list'], { cwd: project.dir, env: { ...env, HCLOUD_TOKEN: wrong } });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /unable to authenticate.*unauthorized/);
    assert.match(bad.stderr, /HCLOUD_TOKEN/);
    assert.ok(!`${bad.stdout}${bad.stderr}`.includes(wrong), 'the token is never shown');
    const none = await runCli(['image', 'list'], { cwd: project.dir, env: { ...env, HCLOUD_TOKEN: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no Hetzner Cloud API token/);
  });

  it('builds base, then app and db from it, and lists them with the system images', async () => {
    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /base: built base-\d{14}/);
    assert.match(r.stdout, /app: built app-\d{14}/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(emulator.token));
    const list = await cli('image', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /debian-12/);
    assert.match(list.stdout, /app-\d{14} .* base-\d{14}/);
    // Version metadata at Hetzner: labels to select by, the full record in the description.
    const [app] = await versionsOf('app');
    const image = [...emulator.cloud.images.values()].find((i) => i.labels['provisional-version'] === app)!;
    assert.equal(image.labels['provisional-image'], 'app');
    assert.match(image.description, /^provisional:\{.*"parent":\{"kind":"image","image":"base"/);
    assertNoBuildLeftovers();
  });

  it('cold deploy, update, warm deploy, rollback; servers found by label', async () => {
    const cold = await cli('deploy', 'staging', '--cold');
    assert.equal(cold.code, 0, cold.stderr);
    const first = await servers();
    assert.deepEqual(first.map((s) => s.name), ['app1.staging', 'app2.staging', 'db1.staging']);
    const db = emulator.cloud.liveServers().find((s) => s.name === 'db1.staging')!;
    assert.equal(db.labels['provisional-env'], 'staging');
    assert.equal(db.labels['provisional-image'], 'db');
    const active = await cli('ssh', 'app1.staging', '--', 'systemctl', 'is-active', 'app.service');
    assert.equal(active.code, 0, active.stderr);

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

  it('prune keeps what runs, destroy removes every server', async () => {
    const running = new Set((await servers()).map((s) => s.version));
    const prune = await cli('image', 'prune', '--keep', '1', '--json');
    assert.equal(prune.code, 0, prune.stderr);
    for (const v of JSON.parse(prune.stdout).deleted as string[]) assert.ok(!running.has(v));
    const r = await cli('destroy', 'staging', '--yes');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await servers(), []);
    assert.equal(emulator.cloud.liveServers().length, 0);
  });

  it('transient faults (429s, 500, 503, a slow create_image) end in success', async () => {
    emulator.faults.set({
      http: [
        { status: 429, count: 3 },
        { status: 500, count: 2, match: 'GET /v1/servers' },
        { status: 503, count: 2, match: 'POST /v1/servers' },
      ],
      actions: [{ type: 'create_image', outcome: 'slow', extraMs: 2000 }],
    });
    const r = await cli('image', 'create', 'db', '--debug');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(emulator.faults.fired.http >= 7 && emulator.faults.fired.actions >= 1, `faults fired: ${JSON.stringify(emulator.faults.fired)}`);
    emulator.faults.clear();
    assertNoBuildLeftovers();
  });

  it('persistent faults end in a clear error (Hetzner\'s code and message) and leave nothing behind', async () => {
    emulator.faults.set({ actions: [{ type: 'create_image', outcome: 'errored' }] });
    const errored = await cli('image', 'create', 'db');
    assert.equal(errored.code, 1, errored.stderr);
    assert.match(errored.stdout, /snapshot db-\d{14} failed: Action create_image failed \(action_failed\)/);
    assertNoBuildLeftovers();

    emulator.faults.set({ http: [{ status: 503, count: -1, match: 'POST /v1/servers' }] });
    const down = await cli('image', 'create', 'db');
    assert.equal(down.code, 1);
    assert.match(down.stdout, /create server .* failed: .*\(unavailable, HTTP 503\)/);
    emulator.faults.clear();
    assertNoBuildLeftovers();

    const file = join(project.dir, 'config/provisional/config.yml');
    const config = readFileSync(file, 'utf8');
    writeFileSync(file, config.replace('  name: hetzner\n', '  name: hetzner\n  server-type: cx999\n'));
    const invalid = await cli('image', 'create', 'db');
    writeFileSync(file, config);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stdout, /invalid input in field 'server_type' \(server type cx999 not found\) \(invalid_input, HTTP 400\)/);
    assertNoBuildLeftovers();

    emulator.faults.set({ sshDrop: { afterMs: 500 } });
    project.write('config/provisional/db/scripts/20-long.sh', '#!/bin/sh\nsleep 5\n', 0o755);
    const dropped = await cli('image', 'create', 'db');
    assert.equal(dropped.code, 1);
    assert.match(dropped.stdout, /connection|closed|dropped/i);
    assertNoBuildLeftovers();
  });
});
