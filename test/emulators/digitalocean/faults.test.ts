/**
 * Faults and limits a client must survive: 429 bursts and the real rate limits, 500 and 503,
 * errored and slow actions, a droplet that never gets an address, SSH dropped mid-script.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair, type KeyPair } from '../machines/test-support.js';
import { OpenApiValidator } from './openapi.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../../src/emulators/digitalocean/server.js';
import { apiClient, until } from './test-client.js';

describe('DigitalOcean emulator faults', { timeout: 300_000 }, () => {
  let emu: DigitalOceanEmulator;
  let api: ReturnType<typeof apiClient>;
  let key: KeyPair;
  let keyId: number;
  let validator: OpenApiValidator;

  before(async () => {
    [emu, key, validator] = await Promise.all([
      startDigitalOceanEmulator({ token: ['main-token', 'limited-token'], delays: { create: 300, shutdown: 100, power_off: 100, snapshot: 300 }, rateLimits: { keysListPerMinute: 3 } }),
      makeKeyPair(),
      OpenApiValidator.load(),
    ]);
    api = apiClient(emu.url, emu.token);
    keyId = (await api('POST', '/v2/account/keys', { name: 'k', public_key: key.publicKey })).body.ssh_key.id;
  });

  after(async () => {
    await emu.close();
    await key.cleanup();
  });

  const createActive = async (name: string) => {
    const created = await api('POST', '/v2/droplets', { name, size: 's-1vcpu-1gb', image: 'debian-12-x64', ssh_keys: [keyId] });
    assert.equal(created.status, 202);
    return until(`${name} active`, async () => {
      const d = (await api('GET', `/v2/droplets/${created.body.droplet.id}`)).body.droplet;
      return d?.status === 'active' ? d : undefined;
    }, 30_000, 150);
  };

  test('injected 503, 500 and a 429 burst (with retry-after), then normal answers', async () => {
    emu.faults.set({ http: [{ status: 503, count: 2, match: 'GET /v2/regions' }, { status: 500, match: 'GET /v2/sizes' }, { status: 429, count: 2, retryAfter: 3 }] });
    const a = await api('GET', '/v2/regions');
    assert.equal(a.status, 503);
    assert.equal(a.body.id, 'service_unavailable');
    assert.equal((await api('GET', '/v2/regions')).status, 503);
    assert.equal((await api('GET', '/v2/sizes')).status, 500);
    const limited = await api('GET', '/v2/account');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.id, 'too_many_requests');
    assert.equal(limited.headers.get('retry-after'), '3');
    assert.ok(limited.headers.get('ratelimit-remaining'));
    assert.equal((await api('GET', '/v2/account')).status, 429);
    assert.equal((await api('GET', '/v2/account')).status, 200);
    assert.equal((await api('GET', '/v2/regions')).status, 200);
  });

  test('the same faults over the control endpoint', async () => {
    const set = await fetch(`${emu.url}/_emulator/faults`, { method: 'POST', body: JSON.stringify({ http: [{ status: 503, match: 'GET /v2/account' }] }) });
    assert.equal(set.status, 200);
    assert.equal((await api('GET', '/v2/account')).status, 503);
    assert.equal((await api('GET', '/v2/account')).status, 200);
    const counts = (await (await fetch(`${emu.url}/_emulator/requests`)).json()) as { counts: Record<string, number> };
    assert.ok(counts.counts['GET /v2/account']! >= 2);
  });

  test('rate limits are per token: GET /v2/account/keys has its own; the per-minute limit answers 429 with retry-after', async () => {
    const limited = { token: 'limited-token' };
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await api('GET', '/v2/account/keys', undefined, limited)).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    let allowed = 0;
    let last = await api('GET', '/v2/account', undefined, limited);
    while (last.status === 200 && allowed < 300) {
      allowed++;
      last = await api('GET', '/v2/account', undefined, limited);
    }
    assert.equal(3 + allowed, 250, 'the 250th request of the minute was the last one allowed');
    assert.equal(last.status, 429);
    const retry = Number(last.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`);
    assert.equal(last.headers.get('ratelimit-limit'), '5000');
    // The other token is not limited by this one's use.
    assert.equal((await api('GET', '/v2/account')).status, 200);
  });

  test('an errored snapshot action, a slow shutdown, a droplet that never gets an address', async () => {
    const droplet = await createActive('faulty');
    emu.faults.set({ actions: [{ type: 'shutdown', outcome: 'slow', extraMs: 1500 }, { type: 'snapshot', outcome: 'errored' }] });
    const t = Date.now();
    const shutdown = (await api('POST', `/v2/droplets/${droplet.id}/actions`, { type: 'shutdown' })).body.action;
    await until('shutdown', async () => (await api('GET', `/v2/actions/${shutdown.id}`)).body.action.status === 'completed', 30_000);
    assert.ok(Date.now() - t >= 1500, 'the slow shutdown took its extra time');
    const snap = (await api('POST', `/v2/droplets/${droplet.id}/actions`, { type: 'snapshot', name: 'doomed' })).body.action;
    const ended = await until('snapshot', async () => {
      const a = (await api('GET', `/v2/actions/${snap.id}`)).body.action;
      return a.status !== 'in-progress' ? a : undefined;
    }, 30_000);
    assert.equal(ended.status, 'errored');
    assert.equal((await api('GET', `/v2/droplets/${droplet.id}`)).body.droplet.locked, false);
    assert.equal((await api('GET', `/v2/droplets/${droplet.id}/snapshots`)).body.meta.total, 0);
    assert.ok(!(await api('GET', '/v2/images?private=true')).body.images.some((i: any) => i.name === 'doomed'));
    // Without the fault, the snapshot works.
    const again = (await api('POST', `/v2/droplets/${droplet.id}/actions`, { type: 'snapshot', name: 'fine' })).body.action;
    await until('snapshot 2', async () => (await api('GET', `/v2/actions/${again.id}`)).body.action.status === 'completed', 30_000);
    assert.equal((await api('DELETE', `/v2/droplets/${droplet.id}`)).status, 204);

    emu.faults.set({ noAddress: 1 });
    const lost = await createActive('no-address');
    assert.deepEqual(lost.networks.v4, []);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual((await api('GET', `/v2/droplets/${lost.id}`)).body.droplet.networks.v4, []);
    assert.equal((await api('DELETE', `/v2/droplets/${lost.id}`)).status, 204);
    assert.equal(emu.faults.fired.noAddress, 1);
  });

  test('SSH dropped mid-script: the session dies before the script ends, and a new one works', async () => {
    emu.faults.set({ sshDrop: { afterMs: 700 } });
    const droplet = await createActive('dropper');
    const endpoint = { host: droplet.networks.v4[0].ip_address, port: emu.sshPort, user: 'root' };
    const ssh = await waitForSsh(endpoint, key.privateKey, 30_000);
    const closed = new Promise<void>((resolve) => ssh.once('close', () => resolve()));
    const t = Date.now();
    const result = await sshExec(ssh, 'echo started; sleep 20; echo finished', 30_000).catch((err: Error) => ({ code: null, stdout: '', stderr: err.message }));
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
    assert.ok(Date.now() - t < 15_000, 'the script was cut off');
    assert.notEqual(result.code, 0);
    assert.ok(!result.stdout.includes('finished'));
    assert.equal(emu.faults.fired.sshDrop, 1);
    const again = await waitForSsh(endpoint, key.privateKey, 30_000);
    assert.equal((await sshExec(again, 'echo back')).stdout.trim(), 'back');
    again.end();
    assert.equal((await api('DELETE', `/v2/droplets/${droplet.id}`)).status, 204);
  });

  test('every answer, faults included, conforms to the OpenAPI description', () => {
    assert.deepEqual(validator.validateAll(emu.requests.entries), []);
  });
});
