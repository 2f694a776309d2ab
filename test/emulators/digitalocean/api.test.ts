/**
 * The DigitalOcean emulator's API, as a client sees it: auth, keys, droplets on real machines,
 * actions, snapshots, images, pagination; every answer checked against the OpenAPI description.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair, nspawnPids, overlayMountsBelow, type KeyPair } from '../machines/test-support.js';
import { OpenApiValidator } from './openapi.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../../src/emulators/digitalocean/server.js';
import { apiClient, until } from './test-client.js';

const DELAYS = { create: 400, shutdown: 300, power_off: 100, power_on: 300, reboot: 300, snapshot: 500, transfer: 300 };

describe('DigitalOcean emulator API', { timeout: 300_000 }, () => {
  let emu: DigitalOceanEmulator;
  let api: ReturnType<typeof apiClient>;
  let key: KeyPair;
  let keyId: number;
  let validator: OpenApiValidator;

  before(async () => {
    [emu, key, validator] = await Promise.all([startDigitalOceanEmulator({ delays: DELAYS }), makeKeyPair(), OpenApiValidator.load()]);
    api = apiClient(emu.url, emu.token);
  });

  after(async () => {
    const runDir = emu.pool.runDir;
    await emu.close();
    await key.cleanup();
    assert.equal(existsSync(runDir), false, 'the emulator left its run directory');
    assert.deepEqual(await nspawnPids(runDir), []);
    assert.deepEqual(await overlayMountsBelow(runDir), []);
  });

  test('a wrong or missing token is a 401 with an error body and a request id', async () => {
    const wrong = await api('GET', '/v2/account', undefined, { token: 'nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.id, 'unauthorized');
    assert.match(wrong.body.request_id, /^[0-9a-f-]{36}$/);
    const res = await fetch(`${emu.url}/v2/droplets`);
    assert.equal(res.status, 401);
  });

  test('account, regions, sizes, distribution images; type=snapshot is a 422', async () => {
    const account = await api('GET', '/v2/account');
    assert.equal(account.status, 200);
    assert.equal(account.body.account.status, 'active');
    assert.equal(account.headers.get('ratelimit-limit'), '5000');
    assert.ok(Number(account.headers.get('ratelimit-remaining')) < 5000);
    const regions = await api('GET', '/v2/regions');
    assert.ok(regions.body.regions.some((r: any) => r.slug === 'nyc3'));
    const sizes = await api('GET', '/v2/sizes');
    assert.ok(sizes.body.sizes.some((s: any) => s.slug === 's-1vcpu-1gb'));
    const dists = await api('GET', '/v2/images?type=distribution');
    assert.deepEqual(dists.body.images.map((i: any) => i.slug), ['debian-12-x64']);
    assert.equal((await api('GET', '/v2/images?type=application')).body.images.length, 0);
    const bySlug = await api('GET', '/v2/images/debian-12-x64');
    assert.equal(bySlug.body.image.type, 'base');
    const snapshotType = await api('GET', '/v2/images?type=snapshot');
    assert.equal(snapshotType.status, 422);
    assert.equal(snapshotType.body.id, 'unprocessable_entity');
    assert.equal((await api('GET', '/v2/nowhere')).status, 404);
  });

  test('SSH keys: create, duplicate, invalid, get by id and fingerprint, rename, delete', async () => {
    const created = await api('POST', '/v2/account/keys', { name: 'test', public_key: key.publicKey });
    assert.equal(created.status, 201);
    keyId = created.body.ssh_key.id;
    assert.match(created.body.ssh_key.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    assert.equal((await api('POST', '/v2/account/keys', { name: 'again', public_key: key.publicKey })).status, 422);
    assert.equal((await api('POST', '/v2/account/keys', { name: 'bad', public_key: 'ssh-rsa nonsense' })).status, 422);
    assert.equal((await api('GET', `/v2/account/keys/${created.body.ssh_key.fingerprint}`)).body.ssh_key.id, keyId);
    assert.equal((await api('PUT', `/v2/account/keys/${keyId}`, { name: 'renamed' })).body.ssh_key.name, 'renamed');
    const other = await makeKeyPair();
    const second = await api('POST', '/v2/account/keys', { name: 'second', public_key: other.publicKey });
    await other.cleanup();
    assert.equal((await api('GET', '/v2/account/keys')).body.meta.total, 2);
    assert.equal((await api('DELETE', `/v2/account/keys/${second.body.ssh_key.id}`)).status, 204);
    assert.equal((await api('GET', `/v2/account/keys/${second.body.ssh_key.id}`)).status, 404);
  });

  test('a droplet: 202 with links.actions, new -> active with an address, real SSH, shutdown (locked), snapshot, and a droplet from the snapshot shows the file', async () => {
    const created = await api('POST', '/v2/droplets', { name: 'builder-1', region: 'nyc3', size: 's-1vcpu-1gb', image: 'debian-12-x64', ssh_keys: [keyId], tags: ['run:a1'] });
    assert.equal(created.status, 202);
    const droplet = created.body.droplet;
    assert.equal(droplet.status, 'new');
    assert.deepEqual(droplet.networks.v4, []);
    const link = created.body.links.actions[0];
    assert.equal(link.rel, 'create');
    assert.equal(link.href, `${emu.url}/v2/actions/${link.id}`);
    assert.equal((await api('GET', link.href)).body.action.status, 'in-progress');

    const active = await until('droplet active', async () => {
      const d = (await api('GET', `/v2/droplets/${droplet.id}`)).body.droplet;
      return d.status === 'active' ? d : undefined;
    }, 30_000);
    assert.equal((await api('GET', `/v2/actions/${link.id}`)).body.action.status, 'completed');
    const ip = active.networks.v4.find((n: any) => n.type === 'public').ip_address;
    const ssh = await waitForSsh({ host: ip, port: emu.sshPort, user: 'root' }, key.privateKey, 30_000);
    const r = await sshExec(ssh, 'hostname && echo from-the-script > /root/provisioned');
    ssh.end();
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), 'builder-1');

    const shutdown = await api('POST', `/v2/droplets/${droplet.id}/actions`, { type: 'shutdown' });
    assert.equal(shutdown.status, 201);
    assert.equal(shutdown.body.action.status, 'in-progress');
    assert.equal((await api('GET', `/v2/droplets/${droplet.id}`)).body.droplet.locked, true);
    const busy = await api('POST', `/v2/droplets/${droplet.id}/actions`, { type: 'power_off' });
    assert.equal(busy.status, 422);
    await until('shutdown completed', async () => (await api('GET', `/v2/droplets/${droplet.id}/actions/${shutdown.body.action.id}`)).body.action.status === 'completed', 30_000);
    const off = (await api('GET', `/v2/droplets/${droplet.id}`)).body.droplet;
    assert.equal(off.status, 'off');
    assert.equal(off.locked, false);

    const snap = await api('POST', `/v2/droplets/${droplet.id}/actions`, { type: 'snapshot', name: 'app-20260101000000' });
    assert.equal(snap.status, 201);
    const done = await until('snapshot action', async () => {
      const a = (await api('GET', `/v2/actions/${snap.body.action.id}`)).body.action;
      return a.status !== 'in-progress' ? a : undefined;
    }, 60_000);
    assert.equal(done.status, 'completed');
    const snaps = (await api('GET', `/v2/droplets/${droplet.id}/snapshots`)).body.snapshots;
    assert.equal(snaps.length, 1);
    const imageId = snaps[0].id;
    const image = (await api('GET', `/v2/images/${imageId}`)).body.image;
    assert.equal(image.type, 'snapshot');
    assert.equal(image.name, 'app-20260101000000');
    assert.deepEqual(image.regions, ['nyc3']);
    assert.equal(image.min_disk_size, 25);
    assert.ok(image.size_gigabytes > 0);
    assert.ok((await api('GET', '/v2/images?private=true')).body.images.some((i: any) => i.id === imageId));
    assert.ok((await api('GET', '/v2/snapshots?resource_type=droplet')).body.snapshots.some((s: any) => s.id === String(imageId)));
    assert.equal((await api('GET', `/v2/snapshots/${imageId}`)).body.snapshot.resource_id, String(droplet.id));
    // PUT changes the description (where Provisional keeps a version's metadata and marks), keeping the rest.
    const updated = await api('PUT', `/v2/images/${imageId}`, { description: 'provisional:{"revoked":1}' });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.image.description, 'provisional:{"revoked":1}');
    assert.equal(updated.body.image.name, 'app-20260101000000');
    assert.equal((await api('GET', `/v2/images/${imageId}`)).body.image.description, 'provisional:{"revoked":1}');

    const transfer = await api('POST', `/v2/images/${imageId}/actions`, { type: 'transfer', region: 'ams3' });
    assert.equal(transfer.status, 201);
    await until('transfer', async () => (await api('GET', `/v2/images/${imageId}/actions/${transfer.body.action.id}`)).body.action.status === 'completed', 30_000);
    assert.deepEqual((await api('GET', `/v2/images/${imageId}`)).body.image.regions, ['nyc3', 'ams3']);

    assert.equal((await api('DELETE', `/v2/droplets/${droplet.id}`)).status, 204);
    assert.equal((await api('GET', `/v2/droplets/${droplet.id}`)).status, 404);

    const fromSnapshot = await api('POST', '/v2/droplets', { name: 'app1.staging', region: 'ams3', size: 's-1vcpu-1gb', image: imageId, ssh_keys: [key.publicKey.length ? keyId : 0] });
    assert.equal(fromSnapshot.status, 202);
    const server = await until('server active', async () => {
      const d = (await api('GET', `/v2/droplets/${fromSnapshot.body.droplet.id}`)).body.droplet;
      return d.status === 'active' ? d : undefined;
    }, 30_000);
    const ssh2 = await waitForSsh({ host: server.networks.v4[0].ip_address, port: emu.sshPort, user: 'root' }, key.privateKey, 30_000);
    const r2 = await sshExec(ssh2, 'hostname; cat /root/provisioned');
    ssh2.end();
    assert.deepEqual(r2.stdout.trim().split('\n'), ['app1.staging', 'from-the-script']);
    assert.equal((await api('DELETE', `/v2/droplets/${server.id}`)).status, 204);
    assert.equal((await api('DELETE', `/v2/images/${imageId}`)).status, 204);
    assert.equal((await api('GET', `/v2/images/${imageId}`)).status, 404);
    assert.equal((await api('DELETE', '/v2/images/debian-12-x64')).status, 403);
  });

  test('multi-create (up to 10 names), list by tag with pagination links back at the emulator, delete by tag', async () => {
    const names = ['web1.staging', 'web2.staging', 'web3.staging'];
    const created = await api('POST', '/v2/droplets', { names, region: 'fra1', size: 's-1vcpu-1gb', image: 'debian-12-x64', ssh_keys: [keyId], tags: ['env:staging', 'batch'] });
    assert.equal(created.status, 202);
    assert.deepEqual(created.body.droplets.map((d: any) => d.name), names);
    assert.equal(created.body.links.actions.length, 3);
    const eleven = await api('POST', '/v2/droplets', { names: Array.from({ length: 11 }, (_, i) => `n${i}`), size: 's-1vcpu-1gb', image: 'debian-12-x64' });
    assert.equal(eleven.status, 422);
    assert.equal((await api('POST', '/v2/droplets', { name: 'bad_name!', size: 's-1vcpu-1gb', image: 'debian-12-x64' })).status, 422);
    assert.equal((await api('POST', '/v2/droplets', { name: 'x', size: 'huge', image: 'debian-12-x64' })).status, 422);

    const page1 = await api('GET', '/v2/droplets?tag_name=batch&per_page=2');
    assert.equal(page1.body.meta.total, 3);
    assert.equal(page1.body.droplets.length, 2);
    assert.equal(page1.body.links.pages.first, undefined);
    const next = page1.body.links.pages.next as string;
    assert.ok(next.startsWith(`${emu.url}/v2/droplets?`));
    assert.match(next, /tag_name=batch/);
    const page2 = await api('GET', next);
    assert.equal(page2.body.droplets.length, 1);
    assert.ok(page2.body.links.pages.first && page2.body.links.pages.prev);
    assert.equal(page2.body.links.pages.next, undefined);
    assert.deepEqual((await api('GET', '/v2/droplets?tag_name=batch')).body.links, {});

    await until('all active', async () => (await api('GET', '/v2/droplets?tag_name=batch')).body.droplets.every((d: any) => d.status === 'active'), 30_000);
    const ips = new Set((await api('GET', '/v2/droplets?tag_name=batch')).body.droplets.map((d: any) => d.networks.v4[0].ip_address));
    assert.equal(ips.size, 3, 'each droplet has its own address');
    assert.equal((await api('DELETE', '/v2/droplets?tag_name=batch')).status, 204);
    assert.equal((await api('GET', '/v2/droplets?tag_name=batch')).body.meta.total, 0);
    await until('machines gone', async () => emu.pool.list().length === 0, 30_000);
  });

  test('power_off and power_on; a poweroff inside the machine turns the droplet off', async () => {
    const created = await api('POST', '/v2/droplets', { name: 'power', size: 's-1vcpu-1gb', image: 'debian-12-x64', ssh_keys: [keyId] });
    const id = created.body.droplet.id;
    const active = await until('active', async () => {
      const d = (await api('GET', `/v2/droplets/${id}`)).body.droplet;
      return d.status === 'active' ? d : undefined;
    }, 30_000);
    const off = await api('POST', `/v2/droplets/${id}/actions`, { type: 'power_off' });
    await until('off', async () => (await api('GET', `/v2/actions/${off.body.action.id}`)).body.action.status === 'completed', 30_000);
    assert.equal((await api('GET', `/v2/droplets/${id}`)).body.droplet.status, 'off');
    const on = await api('POST', `/v2/droplets/${id}/actions`, { type: 'power_on' });
    await until('on', async () => (await api('GET', `/v2/actions/${on.body.action.id}`)).body.action.status === 'completed', 30_000);
    const ssh = await waitForSsh({ host: active.networks.v4[0].ip_address, port: emu.sshPort, user: 'root' }, key.privateKey, 30_000);
    void sshExec(ssh, 'systemctl poweroff', 5000).catch(() => undefined);
    await until('off by itself', async () => (await api('GET', `/v2/droplets/${id}`)).body.droplet.status === 'off', 30_000);
    ssh.end();
    const actions = (await api('GET', `/v2/droplets/${id}/actions`)).body.actions.map((a: any) => a.type);
    assert.deepEqual(actions.sort(), ['create', 'power_off', 'power_on']);
    assert.equal((await api('DELETE', `/v2/droplets/${id}`)).status, 204);
  });

  test('every answer of this file conforms to the OpenAPI description', () => {
    assert.ok(emu.requests.total > 50);
    const problems = validator.validateAll(emu.requests.entries);
    assert.deepEqual(problems, []);
  });

  test('the validator is not blind: it rejects a droplet without its required fields', () => {
    const problems = validator.validate({ method: 'GET', template: '/v2/droplets/{droplet_id}', path: '/v2/droplets/1', status: 200, responseBody: { droplet: { id: 1 } }, responseHeaders: {} });
    assert.ok(problems.some((p) => p.includes("required property 'name'")));
    assert.ok(problems.some((p) => p.includes('ratelimit-limit')));
  });
});
