/**
 * The Hetzner emulator's API, as a client sees it: auth, the catalogue, SSH keys, servers on real
 * machines, server actions, snapshots, images, label selectors, pagination, errors, rate limits
 * and faults; every logged answer checked against hcloud-go's schema (hcloud-schema.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair, nspawnPids, overlayMountsBelow, type KeyPair } from '../machines/test-support.js';
import { apiClient, until } from '../digitalocean/test-client.js';
import { parseLabelSelector } from '../../../src/emulators/hetzner/labels.js';
import { startHetznerEmulator, type HetznerEmulator } from '../../../src/emulators/hetzner/server.js';
import { validateLogged } from './hcloud-schema.js';

const DELAYS = { create: 400, shutdown: 100, poweroff: 100, poweron: 300, reboot: 300, create_image: 500, delete: 100 };

test('label selectors: =, ==, !=, presence, absence, in, notin, commas as AND; bad ones are invalid_input', () => {
  const l = { app: 'web', env: 'prod', tier: 'front' };
  const yes = ['app=web', 'app==web', 'app!=db', 'app', '!missing', 'env in (prod,staging)', 'env notin (dev, staging)', 'missing notin (x)', 'app=web,env=prod', 'app=web, tier in (front,back), !x'];
  const no = ['app=db', 'app!=web', 'missing', '!app', 'env in (dev,staging)', 'env notin (prod)', 'app=web,env=dev', 'missing=x'];
  for (const s of yes) assert.equal(parseLabelSelector(s)(l), true, s);
  for (const s of no) assert.equal(parseLabelSelector(s)(l), false, s);
  for (const bad of ['', 'a=b=c', 'in (x)', 'a in x', '=x', 'a,,b']) {
    assert.throws(() => parseLabelSelector(bad), (e: any) => e.code === 'invalid_input' && e.status === 400, bad);
  }
});

describe('Hetzner emulator API', { timeout: 300_000 }, () => {
  let emu: HetznerEmulator;
  let api: ReturnType<typeof apiClient>;
  let key: KeyPair;
  let keyId: number;

  before(async () => {
    [emu, key] = await Promise.all([startHetznerEmulator({ delays: DELAYS }), makeKeyPair()]);
    api = apiClient(emu.endpoint, emu.token);
  });

  after(async () => {
    const problems = validateLogged(emu.requests.entries);
    const runDir = emu.pool.runDir;
    await emu.close();
    await key.cleanup();
    assert.deepEqual(problems, [], 'every answer has hcloud-go\'s shape');
    assert.equal(existsSync(runDir), false, 'the emulator left its run directory');
    assert.deepEqual(await nspawnPids(runDir), []);
    assert.deepEqual(await overlayMountsBelow(runDir), []);
  });

  test('a wrong or missing token is a 401 in Hetzner\'s error format; unknown paths 404', async () => {
    const wrong = await api('GET', '/servers', undefined, { token: 'nope' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, { error: { code: 'unauthorized', message: 'unable to authenticate', details: null } });
    assert.equal((await fetch(`${emu.endpoint}/servers`)).status, 401);
    const nowhere = await api('GET', '/nowhere');
    assert.equal(nowhere.status, 404);
    assert.equal(nowhere.body.error.code, 'not_found');
    const badJson = await fetch(`${emu.endpoint}/ssh_keys`, { method: 'POST', headers: { authorization: `Bearer ${emu.token}` }, body: '{nope' });
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as any).error.code, 'json_error');
  });

  test('catalogue: locations, datacenters, server types, the debian-12 system image; name filters', async () => {
    const locations = await api('GET', '/locations');
    assert.equal(locations.status, 200);
    assert.ok(locations.body.locations.some((l: any) => l.name === 'fsn1' && l.network_zone === 'eu-central'));
    assert.equal(locations.headers.get('ratelimit-limit'), '3600');
    assert.ok(Number(locations.headers.get('ratelimit-remaining')) < 3600);
    assert.ok(Number(locations.headers.get('ratelimit-reset')) > Date.now() / 1000);
    assert.equal((await api('GET', '/locations?name=hel1')).body.locations.length, 1);
    assert.equal((await api('GET', '/datacenters?name=fsn1-dc14')).body.datacenters[0].location.name, 'fsn1');
    const types = await api('GET', '/server_types?name=cx22');
    assert.equal(types.body.server_types[0].cores, 2);
    assert.equal((await api('GET', `/server_types/${types.body.server_types[0].id}`)).body.server_type.name, 'cx22');
    assert.equal((await api('GET', '/server_types/999999')).status, 404);
    const system = await api('GET', '/images?type=system&name=debian-12');
    assert.equal(system.body.images.length, 1);
    assert.equal(system.body.images[0].os_flavor, 'debian');
    assert.equal((await api('DELETE', `/images/${system.body.images[0].id}`)).status, 403);
  });

  test('SSH keys: create, same key or name is a 409 uniqueness_error, a bad key a 400 invalid_input, labels, filters, delete', async () => {
    const created = await api('POST', '/ssh_keys', { name: 'test', public_key: key.publicKey, labels: { owner: 'tests' } });
    assert.equal(created.status, 201);
    keyId = created.body.ssh_key.id;
    assert.match(created.body.ssh_key.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    const dup = await api('POST', '/ssh_keys', { name: 'again', public_key: key.publicKey });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.code, 'uniqueness_error');
    const bad = await api('POST', '/ssh_keys', { name: 'bad', public_key: 'ssh-rsa nonsense' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_input');
    assert.deepEqual(bad.body.error.details.fields[0].name, 'public_key');
    const badLabel = await api('POST', '/ssh_keys', { name: 'bad', public_key: key.publicKey, labels: { 'no spaces': 'x' } });
    assert.equal(badLabel.status, 400);
    assert.equal((await api('GET', '/ssh_keys?name=test')).body.ssh_keys[0].id, keyId);
    assert.equal((await api('GET', `/ssh_keys?fingerprint=${created.body.ssh_key.fingerprint}`)).body.ssh_keys.length, 1);
    assert.equal((await api('GET', '/ssh_keys?label_selector=owner=tests')).body.ssh_keys.length, 1);
    assert.equal((await api('GET', '/ssh_keys?label_selector=owner=other')).body.ssh_keys.length, 0);
    assert.equal((await api('PUT', `/ssh_keys/${keyId}`, { name: 'renamed' })).body.ssh_key.name, 'renamed');
    const other = await makeKeyPair();
    const second = await api('POST', '/ssh_keys', { name: 'second', public_key: other.publicKey });
    await other.cleanup();
    assert.equal((await api('DELETE', `/ssh_keys/${second.body.ssh_key.id}`)).status, 204);
    assert.equal((await api('GET', `/ssh_keys/${second.body.ssh_key.id}`)).status, 404);
  });

  test('servers: create on a real machine (address at once), actions to running, SSH, labels, selectors, pagination', async () => {
    const bad = await api('POST', '/servers', { name: 'x', server_type: 'cx999', image: 'debian-12' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.fields[0].name, 'server_type');
    assert.equal((await api('POST', '/servers', { name: 'x', server_type: 'cx22', image: 'ubuntu-99' })).body.error.details.fields[0].name, 'image');
    assert.equal((await api('POST', '/servers', { name: 'not a hostname', server_type: 'cx22', image: 'debian-12' })).status, 400);

    const ids: number[] = [];
    const actions: number[] = [];
    for (const [i, tier] of ['front', 'front', 'back'].entries()) {
      const created = await api('POST', '/servers', { name: `srv${i}`, server_type: 'cx22', image: 'debian-12', location: 'nbg1', ssh_keys: [keyId], labels: { app: 'api-test', tier } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const s = created.body.server;
      assert.equal(s.status, 'initializing');
      assert.match(s.public_net.ipv4.ip, /^127\.\d+\.\d+\.\d+$/);
      assert.equal(s.location.name, 'nbg1');
      assert.equal(created.body.action.command, 'create_server');
      assert.equal(created.body.action.status, 'running');
      assert.equal(created.body.next_actions[0].command, 'start_server');
      ids.push(s.id);
      actions.push(created.body.action.id, created.body.next_actions[0].id);
    }
    const dupName = await api('POST', '/servers', { name: 'srv0', server_type: 'cx22', image: 'debian-12' });
    assert.equal(dupName.status, 409);
    // A locked (initializing) server refuses actions with 423.
    const early = await api('POST', `/servers/${ids[0]}/actions/reboot`);
    assert.equal(early.status, 423);
    assert.equal(early.body.error.code, 'locked');

    // Actions: polled one at a time or all at once (?id=...&id=...), as hcloud-go does.
    const query = actions.map((id) => `id=${id}`).join('&');
    await until('all create actions succeeded', async () => {
      const r = await api('GET', `/actions?${query}`);
      return r.body.actions.length === 6 && r.body.actions.every((a: any) => a.status === 'success' && a.progress === 100 && a.finished);
    }, 30_000);
    assert.equal((await api('GET', `/actions/${actions[0]}`)).body.action.resources[0].id, ids[0]);
    assert.equal((await api('GET', `/servers/${ids[0]}/actions`)).body.actions.length, 2);
    assert.equal((await api('GET', '/actions/1')).status, 404);

    const front = await api('GET', '/servers?label_selector=app=api-test,tier=front');
    assert.deepEqual(front.body.servers.map((s: any) => s.id), ids.slice(0, 2));
    assert.equal((await api('GET', '/servers?label_selector=tier in (front,back)')).body.servers.length, 3);
    assert.equal((await api('GET', '/servers?label_selector=tier notin (front)')).body.servers.length, 1);
    assert.equal((await api('GET', '/servers?label_selector=!tier')).body.servers.length, 0);
    assert.equal((await api('GET', '/servers?label_selector=tier!=front')).body.servers[0].id, ids[2]);
    assert.equal((await api('GET', '/servers?label_selector=a=b=c')).status, 400);
    assert.equal((await api('GET', '/servers?name=srv1')).body.servers[0].id, ids[1]);
    assert.equal((await api('GET', '/servers?status=running')).body.servers.length, 3);
    assert.deepEqual((await api('GET', '/servers?sort=id:desc')).body.servers.map((s: any) => s.id), [...ids].reverse());

    const page2 = await api('GET', '/servers?per_page=2&page=2');
    assert.deepEqual(page2.body.meta.pagination, { page: 2, per_page: 2, previous_page: 1, next_page: null, last_page: 2, total_entries: 3 });
    assert.equal(page2.body.servers.length, 1);
    const page1 = await api('GET', '/servers?per_page=2');
    assert.equal(page1.body.meta.pagination.next_page, 2);
    assert.equal(page1.body.meta.pagination.previous_page, null);
    assert.match(page1.headers.get('link') ?? '', /per_page=2&page=2>; rel="next"/);
    assert.equal((await api('GET', '/servers?per_page=500')).body.meta.pagination.per_page, 50);
    assert.equal((await api('GET', '/servers?page=0')).status, 400);

    const updated = await api('PUT', `/servers/${ids[2]}`, { labels: { app: 'api-test', tier: 'db' } });
    assert.deepEqual(updated.body.server.labels, { app: 'api-test', tier: 'db' });

    const s = (await api('GET', `/servers/${ids[0]}`)).body.server;
    const ssh = await waitForSsh({ host: s.public_net.ipv4.ip, port: emu.sshPort, user: 'root' }, key.privateKey, 30_000);
    assert.equal((await sshExec(ssh, 'hostname')).stdout.trim(), 'srv0');
    await sshExec(ssh, 'echo from-api-test > /root/marker && sync');
    ssh.end();

    for (const id of ids.slice(1)) assert.equal((await api('DELETE', `/servers/${id}`)).body.action.command, 'delete_server');
    assert.equal((await api('GET', `/servers/${ids[1]}`)).status, 404);
  });

  test('server actions: shutdown (guest powers off), poweron, reboot, poweroff; create_image with labels; the image boots', async () => {
    const server = (await api('GET', '/servers?name=srv0')).body.servers[0];
    const waitAction = (id: number) => until(`action ${id}`, async () => {
      const a = (await api('GET', `/actions/${id}`)).body.action;
      return a.status !== 'running' ? a : undefined;
    }, 60_000);
    const status = (want: string) => until(`server ${want}`, async () => (await api('GET', `/servers/${server.id}`)).body.server.status === want, 60_000);

    const shutdown = await api('POST', `/servers/${server.id}/actions/shutdown`);
    assert.equal(shutdown.status, 201);
    assert.equal(shutdown.body.action.command, 'shutdown_server');
    assert.equal((await waitAction(shutdown.body.action.id)).status, 'success');
    await status('off');
    assert.equal((await waitAction((await api('POST', `/servers/${server.id}/actions/poweron`)).body.action.id)).status, 'success');
    await status('running');
    const reboot = await api('POST', `/servers/${server.id}/actions/reboot`);
    assert.equal((await api('POST', `/servers/${server.id}/actions/poweroff`)).status, 423, 'locked while rebooting');
    assert.equal((await waitAction(reboot.body.action.id)).status, 'success');
    assert.equal((await waitAction((await api('POST', `/servers/${server.id}/actions/poweroff`)).body.action.id)).command, 'stop_server');
    await status('off');

    assert.equal((await api('POST', `/servers/${server.id}/actions/create_image`, { type: 'bogus' })).status, 400);
    const made = await api('POST', `/servers/${server.id}/actions/create_image`, { type: 'snapshot', description: 'web-20260101000000', labels: { app: 'api-test', version: '20260101000000' } });
    assert.equal(made.status, 201);
    assert.equal(made.body.image.status, 'creating');
    assert.equal(made.body.image.name, null);
    assert.equal(made.body.action.command, 'create_image');
    assert.equal((await waitAction(made.body.action.id)).status, 'success');
    const imageId = made.body.image.id;
    const image = (await api('GET', `/images/${imageId}`)).body.image;
    assert.equal(image.status, 'available');
    assert.ok(image.image_size > 0);
    assert.deepEqual(image.created_from, { id: server.id, name: 'srv0' });

    // Image filters: type, label_selector, status; update description and labels.
    assert.deepEqual((await api('GET', '/images?type=snapshot&label_selector=app=api-test')).body.images.map((i: any) => i.id), [imageId]);
    assert.equal((await api('GET', '/images?type=snapshot&status=creating')).body.images.length, 0);
    assert.equal((await api('GET', '/images?type=system&label_selector=app')).body.images.length, 0);
    const renamed = await api('PUT', `/images/${imageId}`, { description: 'renamed', labels: { app: 'api-test', version: '2' } });
    assert.equal(renamed.body.image.description, 'renamed');
    assert.equal(renamed.body.image.labels.version, '2');

    // A server from the snapshot runs what was written before it was taken.
    const fromImage = await api('POST', '/servers', { name: 'from-image', server_type: 'cx22', image: imageId, ssh_keys: [keyId] });
    assert.equal(fromImage.status, 201);
    await until('from-image running', async () => (await api('GET', `/servers/${fromImage.body.server.id}`)).body.server.status === 'running', 30_000);
    const ssh = await waitForSsh({ host: fromImage.body.server.public_net.ipv4.ip, port: emu.sshPort, user: 'root' }, key.privateKey, 30_000);
    const marker = await sshExec(ssh, 'hostname; cat /root/marker');
    assert.equal(marker.stdout.trim(), 'from-image\nfrom-api-test', JSON.stringify(marker));
    ssh.end();
    await api('DELETE', `/servers/${fromImage.body.server.id}`);
    assert.equal((await api('DELETE', `/images/${imageId}`)).status, 204);
    assert.equal((await api('GET', `/images/${imageId}`)).status, 404);
  });

  test('faults: HTTP answers in Hetzner\'s format; an errored create_image leaves no image; a slow guest shutdown', async () => {
    const server = (await api('GET', '/servers?name=srv0')).body.servers[0];
    emu.faults.set({ http: [{ status: 503, match: 'GET /v1/servers' }, { status: 429, match: 'GET /v1/images', retryAfter: 2 }] });
    const unavailable = await api('GET', '/servers');
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.body.error.code, 'unavailable');
    const limited = await api('GET', '/images');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'rate_limit_exceeded');
    assert.equal(limited.headers.get('retry-after'), '2');
    assert.equal((await api('GET', '/servers')).status, 200, 'the fault fired once');

    emu.faults.set({ actions: [{ type: 'create_image', outcome: 'errored' }] });
    const before = (await api('GET', '/images?type=snapshot')).body.images.length;
    const made = await api('POST', `/servers/${server.id}/actions/create_image`, { description: 'doomed' });
    const action = await until('create_image ends', async () => {
      const a = (await api('GET', `/actions/${made.body.action.id}`)).body.action;
      return a.status !== 'running' ? a : undefined;
    }, 30_000);
    assert.equal(action.status, 'error');
    assert.equal(action.error.code, 'action_failed');
    assert.equal((await api('GET', '/images?type=snapshot')).body.images.length, before);

    // A guest that reacts late to ACPI: the action succeeds at once, the server stays running, poweroff stops it.
    await until('server unlocked', async () => !(await api('GET', `/servers/${server.id}`)).body.server.locked, 10_000);
    const on = await api('POST', `/servers/${server.id}/actions/poweron`);
    await until('poweron done', async () => (await api('GET', `/actions/${on.body.action.id}`)).body.action.status === 'success', 30_000);
    emu.faults.set({ actions: [{ type: 'shutdown_server', outcome: 'slow', extraMs: 60_000 }] });
    const shutdown = await api('POST', `/servers/${server.id}/actions/shutdown`);
    await until('shutdown delivered', async () => (await api('GET', `/actions/${shutdown.body.action.id}`)).body.action.status === 'success', 10_000);
    assert.equal((await api('GET', `/servers/${server.id}`)).body.server.status, 'running');
    const off = await api('POST', `/servers/${server.id}/actions/poweroff`);
    await until('powered off', async () => (await api('GET', `/actions/${off.body.action.id}`)).body.action.status === 'success', 30_000);
    assert.equal((await api('GET', `/servers/${server.id}`)).body.server.status, 'off');
    assert.equal(emu.faults.fired.actions, 2);
  });

  test('rate limit: a bucket per token that refills each second; an empty one answers 429 rate_limit_exceeded', async () => {
    const small = await startHetznerEmulator({ pool: emu.pool, rateLimit: { limit: 3, perSecond: 1 }, token: ['t1', 't2'] });
    try {
      const t1 = apiClient(small.endpoint, 't1');
      const remaining = [];
      for (let i = 0; i < 3; i++) remaining.push((await t1('GET', '/locations')).headers.get('ratelimit-remaining'));
      assert.deepEqual(remaining, ['2', '1', '0']);
      const refused = await t1('GET', '/locations');
      assert.equal(refused.status, 429);
      assert.equal(refused.body.error.code, 'rate_limit_exceeded');
      assert.ok(Number(refused.headers.get('ratelimit-reset')) >= Math.floor(Date.now() / 1000) + 2);
      assert.equal((await apiClient(small.endpoint, 't2')('GET', '/locations')).status, 200, 'another token has its own bucket');
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await t1('GET', '/locations')).status, 200, 'one request back after a second');
      assert.deepEqual(validateLogged(small.requests.entries), []);
    } finally {
      await small.close();
    }
  });

  test('base drift: POST /_emulator/base-images publishes a new image id behind the same system image name', async () => {
    const before = (await api('GET', '/images?type=system&name=debian-12')).body.images[0];
    const res = await fetch(`${emu.url}/_emulator/base-images`, { method: 'POST', body: JSON.stringify({ ref: 'debian-12' }) });
    assert.equal(res.status, 200);
    const published = (await res.json()) as { ref: string; previous: string; current: string };
    assert.deepEqual([published.ref, published.previous], ['debian-12', String(before.id)]);
    assert.notEqual(published.current, published.previous);
    const after = await api('GET', '/images?type=system&name=debian-12');
    assert.deepEqual(after.body.images.map((i: any) => String(i.id)), [published.current], 'the name resolves to the new image only');
    assert.equal((await api('GET', `/images/${before.id}`)).status, 404);
    const unknown = await fetch(`${emu.url}/_emulator/base-images`, { method: 'POST', body: JSON.stringify({ ref: 'debian-99' }) });
    assert.equal(unknown.status, 400);
  });
});
