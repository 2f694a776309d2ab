/**
 * The DigitalOcean emulator's load balancers and reserved IPs: real listeners on loopback addresses
 * that forward real HTTP requests to droplets (each running a small responder that answers with its
 * own hostname); the load balancer's health check probes the members; every answer is checked
 * against the OpenAPI description.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ADDRESS_DIR } from '../../../src/emulators/machines/addresses.js';
import { makeKeyPair, type KeyPair } from '../machines/test-support.js';
import { OpenApiValidator } from './openapi.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../../src/emulators/digitalocean/server.js';
import { apiClient, until } from './test-client.js';
import { answers, holdRequest, runOn, startResponder, whoAnswers } from '../traffic.js';

const DELAYS = { create: 300, load_balancer: 300, reserved_ip: 300 };
const WEB = 8080;
const FAST_CHECK = { protocol: 'http', port: WEB, path: '/', check_interval_seconds: 3, response_timeout_seconds: 3, healthy_threshold: 2, unhealthy_threshold: 2 };

describe('DigitalOcean emulator: load balancers and reserved IPs', { timeout: 300_000 }, () => {
  let emu: DigitalOceanEmulator;
  let api: ReturnType<typeof apiClient>;
  let key: KeyPair;
  let validator: OpenApiValidator;
  const web: { id: number; name: string; ip: string }[] = [];
  /** Addresses still in use when the emulator closes: it must let them go. */
  const leftAtClose: { ip: string; port: number }[] = [];

  before(async () => {
    [emu, key, validator] = await Promise.all([startDigitalOceanEmulator({ delays: DELAYS }), makeKeyPair(), OpenApiValidator.load()]);
    api = apiClient(emu.url, emu.token);
    const keyId = (await api('POST', '/v2/account/keys', { name: 'k', public_key: key.publicKey })).body.ssh_key.id;
    const created = await api('POST', '/v2/droplets', { names: ['web1', 'web2'], region: 'nyc3', size: 's-1vcpu-1gb', image: 'debian-12-x64', ssh_keys: [keyId] });
    for (const d of created.body.droplets) {
      const active = await until('active', async () => {
        const got = (await api('GET', `/v2/droplets/${d.id}`)).body.droplet;
        return got.status === 'active' ? got : undefined;
      }, 60_000);
      web.push({ id: d.id, name: d.name, ip: active.networks.v4[0].ip_address });
    }
    await Promise.all(web.map((w) => startResponder(w.ip, emu.sshPort, key.privateKey, WEB)));
    assert.deepEqual(await Promise.all(web.map(async (w) => (await answers(w.ip, WEB, 1))[0])), ['web1', 'web2'], 'each droplet answers itself');
  });

  after(async () => {
    await emu.close();
    await key.cleanup();
    for (const { ip, port } of leftAtClose) {
      assert.equal(existsSync(join(ADDRESS_DIR, ip)), false, `the claim on ${ip} outlived the emulator`);
      assert.deepEqual(await answers(ip, port, 1), ['!ECONNREFUSED'], `${ip}:${port} still listens`);
    }
  });

  test('a load balancer: new then active at its own address, round robin over healthy members, members removed and added, health check, rules, delete', async () => {
    assert.equal((await api('POST', '/v2/load_balancers', { name: 'lb', region: 'nyc3' })).status, 422, 'forwarding rules are required');
    assert.equal((await api('POST', '/v2/load_balancers', { name: 'lb', region: 'nyc3', forwarding_rules: [{ entry_protocol: 'http', entry_port: 8081, target_protocol: 'http', target_port: WEB }], droplet_ids: [1] })).status, 422, 'an unknown droplet');
    const created = await api('POST', '/v2/load_balancers', {
      name: 'web-lb',
      region: 'nyc3',
      forwarding_rules: [{ entry_protocol: 'http', entry_port: 8081, target_protocol: 'http', target_port: WEB }],
      health_check: FAST_CHECK,
      droplet_ids: web.map((w) => w.id),
    });
    assert.equal(created.status, 202);
    const id = created.body.load_balancer.id;
    assert.equal(created.body.load_balancer.status, 'new');
    const lb = await until('active', async () => {
      const got = (await api('GET', `/v2/load_balancers/${id}`)).body.load_balancer;
      return got.status === 'active' ? got : undefined;
    }, 10_000);
    assert.match(lb.ip, /^127\./);
    assert.notEqual(lb.ip, web[0]!.ip);
    assert.deepEqual(lb.droplet_ids, web.map((w) => w.id));
    assert.equal(lb.health_check.healthy_threshold, 2);
    assert.deepEqual((await api('GET', '/v2/load_balancers')).body.load_balancers.map((l: any) => l.id), [id]);

    // Members join only once their health check passed: both answer, in turn.
    await until('both healthy', async () => emu.cloud.loadBalancers.healthyMembers(id).length === 2, 20_000);
    const six = await answers(lb.ip, 8081, 6);
    assert.deepEqual([...six].sort(), ['web1', 'web1', 'web1', 'web2', 'web2', 'web2']);
    assert.notEqual(six[0], six[1], 'round robin');

    // Removing a member: open connections finish, new ones go to the others.
    const held = [await holdRequest(lb.ip, 8081), await holdRequest(lb.ip, 8081)];
    assert.equal((await api('DELETE', `/v2/load_balancers/${id}/droplets`, { droplet_ids: [web[1]!.id] })).status, 204);
    assert.deepEqual((await Promise.all(held.map((h) => h.finish()))).sort(), ['web1', 'web2'], 'the connection open to the removed member finished');
    assert.deepEqual(await answers(lb.ip, 8081, 4), ['web1', 'web1', 'web1', 'web1']);
    assert.deepEqual((await api('GET', `/v2/load_balancers/${id}`)).body.load_balancer.droplet_ids, [web[0]!.id]);

    // Adding it back: it takes traffic once healthy again.
    assert.equal((await api('POST', `/v2/load_balancers/${id}/droplets`, { droplet_ids: [web[1]!.id] })).status, 204);
    await until('web2 back', async () => (await answers(lb.ip, 8081, 2)).includes('web2'), 20_000, 500);

    // The health check probes for real: a member whose server stops leaves the rotation.
    await runOn(web[0]!.ip, emu.sshPort, key.privateKey, "systemctl stop 'web-*'");
    await until('web1 unhealthy', async () => !emu.cloud.loadBalancers.healthyMembers(id).includes(web[0]!.id), 20_000, 500);
    assert.deepEqual(await answers(lb.ip, 8081, 4), ['web2', 'web2', 'web2', 'web2']);
    await startResponder(web[0]!.ip, emu.sshPort, key.privateKey, WEB);

    // Forwarding rules: one more entry port, then removed again.
    const rule = { entry_protocol: 'tcp', entry_port: 8082, target_protocol: 'tcp', target_port: WEB };
    assert.equal((await api('POST', `/v2/load_balancers/${id}/forwarding_rules`, { forwarding_rules: [rule] })).status, 204);
    assert.equal((await answers(lb.ip, 8082, 1))[0], 'web2');
    assert.equal((await api('DELETE', `/v2/load_balancers/${id}/forwarding_rules`, { forwarding_rules: [rule] })).status, 204);
    assert.deepEqual(await answers(lb.ip, 8082, 1), ['!ECONNREFUSED']);

    // PUT replaces it: a new name, a TCP health check, only web1.
    const put = await api('PUT', `/v2/load_balancers/${id}`, {
      name: 'web-lb-2',
      region: 'nyc3',
      forwarding_rules: [{ entry_protocol: 'http', entry_port: 8081, target_protocol: 'http', target_port: WEB }],
      health_check: { ...FAST_CHECK, protocol: 'tcp' },
      droplet_ids: [web[0]!.id],
    });
    assert.equal(put.status, 200);
    assert.equal(put.body.load_balancer.name, 'web-lb-2');
    assert.equal(put.body.load_balancer.health_check.protocol, 'tcp');
    await until('web1 healthy again', async () => emu.cloud.loadBalancers.healthyMembers(id).includes(web[0]!.id), 20_000, 500);
    assert.deepEqual(await answers(lb.ip, 8081, 3), ['web1', 'web1', 'web1']);

    // With no healthy member, an HTTP rule answers 503.
    assert.equal((await api('DELETE', `/v2/load_balancers/${id}/droplets`, { droplet_ids: [web[0]!.id] })).status, 204);
    assert.deepEqual(await answers(lb.ip, 8081, 1), ['HTTP 503']);

    assert.equal((await api('DELETE', `/v2/load_balancers/${id}`)).status, 204);
    assert.equal((await api('GET', `/v2/load_balancers/${id}`)).status, 404);
    assert.deepEqual(await answers(lb.ip, 8081, 1), ['!ECONNREFUSED']);
  });

  test('a reserved IP: reserved to a region, assigned and moved between droplets (HTTP and SSH follow), unassigned, created for a droplet, deleted', async () => {
    const created = await api('POST', '/v2/reserved_ips', { region: 'nyc3' });
    assert.equal(created.status, 202);
    const ip = created.body.reserved_ip.ip as string;
    assert.match(ip, /^127\./);
    assert.equal(created.body.reserved_ip.droplet, null);
    assert.match((await answers(ip, WEB, 1))[0]!, /^!/, 'unassigned: nothing answers');
    assert.equal((await api('POST', `/v2/reserved_ips/${ip}/actions`, { type: 'assign' })).status, 422, 'assign needs a droplet');
    assert.equal((await api('POST', `/v2/reserved_ips/${ip}/actions`, { type: 'unassign' })).status, 422, 'not assigned');

    const assign = async (dropletId: number) => {
      const action = await api('POST', `/v2/reserved_ips/${ip}/actions`, { type: 'assign', droplet_id: dropletId });
      assert.equal(action.status, 201);
      assert.equal(action.body.action.type, 'assign_ip');
      assert.equal(action.body.action.resource_type, 'reserved_ip');
      await until('assigned', async () => (await api('GET', `/v2/reserved_ips/${ip}/actions/${action.body.action.id}`)).body.action.status === 'completed', 10_000);
    };
    await assign(web[0]!.id);
    assert.equal((await api('GET', `/v2/reserved_ips/${ip}`)).body.reserved_ip.droplet.id, web[0]!.id);
    assert.deepEqual(await answers(ip, WEB, 2), ['web1', 'web1']);
    await assign(web[1]!.id);
    assert.deepEqual(await answers(ip, WEB, 2), ['web2', 'web2']);
    assert.equal((await runOn(ip, emu.sshPort, key.privateKey, 'cat /etc/hostname')).trim(), 'web2', 'SSH through the reserved IP reaches the droplet');

    const unassign = await api('POST', `/v2/reserved_ips/${ip}/actions`, { type: 'unassign' });
    assert.equal(unassign.status, 201);
    await until('unassigned', async () => (await api('GET', `/v2/reserved_ips/${ip}`)).body.reserved_ip.droplet === null, 10_000);
    assert.match((await answers(ip, WEB, 1))[0]!, /^!/);
    assert.deepEqual((await api('GET', `/v2/reserved_ips/${ip}/actions`)).body.actions.map((a: any) => a.type), ['assign_ip', 'assign_ip', 'unassign_ip']);

    const forDroplet = await api('POST', '/v2/reserved_ips', { droplet_id: web[0]!.id });
    assert.equal(forDroplet.status, 202);
    const second = forDroplet.body.reserved_ip.ip as string;
    assert.equal(forDroplet.body.links.actions[0].rel, 'assign_ip');
    await until('assigned at creation', async () => (await api('GET', `/v2/reserved_ips/${second}`)).body.reserved_ip.droplet?.id === web[0]!.id, 10_000);
    assert.deepEqual(await answers(second, WEB, 1), ['web1']);
    assert.deepEqual((await api('GET', '/v2/reserved_ips')).body.reserved_ips.map((r: any) => r.ip).sort(), [ip, second].sort());

    for (const address of [ip, second]) assert.equal((await api('DELETE', `/v2/reserved_ips/${address}`)).status, 204);
    assert.equal((await api('GET', `/v2/reserved_ips/${ip}`)).status, 404);
    assert.deepEqual(await answers(second, WEB, 1), ['!ECONNREFUSED']);
    assert.equal((await api('POST', '/v2/reserved_ips', { region: 'nowhere' })).status, 422);
  });

  test('a deleted droplet leaves its load balancer and its reserved IP', async () => {
    const lb = (await api('POST', '/v2/load_balancers', { name: 'gone', region: 'nyc3', forwarding_rules: [{ entry_protocol: 'tcp', entry_port: 8083, target_protocol: 'tcp', target_port: WEB }], health_check: FAST_CHECK, droplet_ids: web.map((w) => w.id) })).body.load_balancer;
    const reserved = (await api('POST', '/v2/reserved_ips', { droplet_id: web[1]!.id })).body.reserved_ip;
    await until('assigned', async () => (await api('GET', `/v2/reserved_ips/${reserved.ip}`)).body.reserved_ip.droplet !== null, 10_000);
    const lbIp = await until('active', async () => (await api('GET', `/v2/load_balancers/${lb.id}`)).body.load_balancer.ip || undefined, 10_000);
    leftAtClose.push({ ip: lbIp, port: 8083 }, { ip: reserved.ip, port: WEB });
    assert.equal(existsSync(join(ADDRESS_DIR, lbIp)), true, 'the load balancer holds a claim on its address');
    assert.equal((await api('DELETE', `/v2/droplets/${web[1]!.id}`)).status, 204);
    assert.deepEqual((await api('GET', `/v2/load_balancers/${lb.id}`)).body.load_balancer.droplet_ids, [web[0]!.id]);
    assert.equal((await api('GET', `/v2/reserved_ips/${reserved.ip}`)).body.reserved_ip.droplet, null);
  });

  test('every answer of this file conforms to the OpenAPI description', () => {
    const ours = emu.requests.entries.filter((e) => e.path.includes('load_balancers') || e.path.includes('reserved_ips'));
    assert.ok(ours.length > 40, `only ${ours.length} load balancer and reserved IP answers`);
    assert.deepEqual(validator.validateAll(emu.requests.entries), []);
  });

  test('the validator is not blind to these schemas', () => {
    const problems = validator.validate({ method: 'GET', template: '/v2/load_balancers/{lb_id}', path: '/v2/load_balancers/x', status: 200, responseBody: { load_balancer: { id: 'x', forwarding_rules: [] } }, responseHeaders: {} });
    assert.ok(problems.some((p) => p.includes('forwarding_rules')), problems.join('\n'));
    const ip = validator.validate({ method: 'GET', template: '/v2/reserved_ips/{reserved_ip}', path: '/v2/reserved_ips/x', status: 200, responseBody: { reserved_ip: { ip: 1, locked: 'no' } }, responseHeaders: {} });
    assert.ok(ip.some((p) => p.includes('/reserved_ip/locked')), ip.join('\n'));
  });
});
