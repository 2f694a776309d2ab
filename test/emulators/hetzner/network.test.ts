/**
 * The Hetzner emulator's load balancers and Floating IPs, as a client sees them: their errors,
 * actions, targets' health per service, selectors and pagination, and real traffic through their
 * addresses to two servers that answer with their own hostname; every logged answer checked
 * against hcloud-go's schema (hcloud-schema.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { apiClient, until } from '../digitalocean/test-client.js';
import { makeKeyPair, type KeyPair } from '../machines/test-support.js';
import { answers, runOn, startResponder, whoAnswers } from '../traffic.js';
import { startHetznerEmulator, type HetznerEmulator } from '../../../src/emulators/hetzner/server.js';
import { validateLogged } from './hcloud-schema.js';

const DELAYS = { create: 300, delete: 100, load_balancer: 100, floating_ip: 100 };
const WEB = 8080;

describe('Hetzner emulator: load balancers and Floating IPs', { timeout: 300_000 }, () => {
  let emu: HetznerEmulator;
  let api: ReturnType<typeof apiClient>;
  let key: KeyPair;
  const servers: { id: number; name: string; ip: string }[] = [];
  let lbId = 0;
  let lbIp = '';

  const done = (id: number) => until(`action ${id}`, async () => ((await api('GET', `/actions/${id}`)).body.action.status === 'success' ? true : undefined), 10_000);
  const healthOf = async (serverId: number) => {
    const lb = (await api('GET', `/load_balancers/${lbId}`)).body.load_balancer;
    return lb.targets.find((t: any) => t.type === 'server' && t.server.id === serverId)?.health_status.map((h: any) => h.status).join();
  };
  const who = async (host: string, port: number, n: number) => new Set(await answers(host, port, n));

  before(async () => {
    [emu, key] = await Promise.all([startHetznerEmulator({ delays: DELAYS }), makeKeyPair()]);
    api = apiClient(emu.endpoint, emu.token);
    const keyId = (await api('POST', '/ssh_keys', { name: 'net', public_key: key.publicKey })).body.ssh_key.id;
    for (const [i, tier] of ['a', 'b'].entries()) {
      const created = await api('POST', '/servers', { name: `web-${tier}`, server_type: 'cx22', image: 'debian-12', ssh_keys: [keyId], labels: { web: tier } });
      await done(created.body.action.id);
      const s = created.body.server;
      servers[i] = { id: s.id, name: s.name, ip: s.public_net.ipv4.ip };
      await startResponder(s.public_net.ipv4.ip, emu.sshPort, key.privateKey, WEB);
    }
  });

  after(async () => {
    const problems = validateLogged(emu.requests.entries);
    await emu.close();
    await key.cleanup();
    assert.deepEqual(problems, [], "every answer has hcloud-go's shape");
  });

  test('create: bad requests are invalid_input naming the field; an https service is refused; duplicate ports are source_port_already_used', async () => {
    const field = async (body: unknown) => {
      const r = await api('POST', '/load_balancers', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      return r.body.error.details.fields[0].name;
    };
    assert.equal(await field({ load_balancer_type: 'lb11', location: 'fsn1' }), 'name');
    assert.equal(await field({ name: 'x', load_balancer_type: 'lb99', location: 'fsn1' }), 'load_balancer_type');
    assert.equal(await field({ name: 'x', load_balancer_type: 'lb11' }), 'location');
    assert.equal(await field({ name: 'x', load_balancer_type: 'lb11', location: 'fsn1', services: [{ protocol: 'https' }] }), 'protocol');
    assert.equal(await field({ name: 'x', load_balancer_type: 'lb11', location: 'fsn1', services: [{ protocol: 'tcp' }] }), 'listen_port');
    assert.equal(await field({ name: 'x', load_balancer_type: 'lb11', location: 'fsn1', services: [{ protocol: 'http', health_check: { protocol: 'http', interval: 1 } }] }), 'health_check.interval');
    const dup = await api('POST', '/load_balancers', { name: 'x', load_balancer_type: 'lb11', location: 'fsn1', services: [{ protocol: 'http' }, { protocol: 'tcp', listen_port: 80 }] });
    assert.equal(dup.status, 422);
    assert.equal(dup.body.error.code, 'source_port_already_used');
    assert.equal((await api('GET', '/load_balancers')).body.load_balancers.length, 0, 'nothing made by a refused create');
  });

  test('create: 201 with its action; defaults filled in; no target answers 503; the same name is a 409', async () => {
    const created = await api('POST', '/load_balancers', {
      name: 'web', load_balancer_type: 'lb11', location: 'nbg1', labels: { app: 'web' },
      services: [{ protocol: 'http', listen_port: 80, destination_port: WEB, health_check: { protocol: 'http', port: WEB, interval: 3, timeout: 2, retries: 1, http: { path: '/' } } }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.action.command, 'create_load_balancer');
    assert.deepEqual(created.body.action.resources, [{ id: created.body.load_balancer.id, type: 'load_balancer' }]);
    await done(created.body.action.id);
    const lb = created.body.load_balancer;
    lbId = lb.id;
    lbIp = lb.public_net.ipv4.ip;
    assert.match(lbIp, /^127\.\d+\.\d+\.\d+$/);
    assert.equal(lb.location.name, 'nbg1');
    assert.equal(lb.load_balancer_type.name, 'lb11');
    assert.deepEqual(lb.algorithm, { type: 'round_robin' });
    assert.deepEqual(lb.services[0].health_check.http.status_codes, ['2??', '3??']);
    assert.equal(lb.services[0].http.cookie_name, 'HCLBSTICKY');
    assert.deepEqual(lb.targets, []);
    assert.deepEqual(await whoAnswers(lbIp, 80), { status: 503, body: 'no healthy backends' });
    const again = await api('POST', '/load_balancers', { name: 'web', load_balancer_type: 'lb11', location: 'nbg1' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'uniqueness_error');
  });

  test('add_target by server id: an action; the target is unknown, then healthy, then takes every request; errors for a duplicate, a missing server, an IP, a private IP', async () => {
    const [a, b] = servers;
    const added = await api('POST', `/load_balancers/${lbId}/actions/add_target`, { type: 'server', server: { id: a!.id } });
    assert.equal(added.status, 201);
    assert.equal(added.body.action.command, 'add_target');
    assert.equal(await healthOf(a!.id), 'unknown', 'not yet checked');
    await done(added.body.action.id);
    await until('a is healthy', async () => ((await healthOf(a!.id)) === 'healthy' ? true : undefined), 20_000);
    assert.deepEqual(await who(lbIp, 80, 4), new Set([a!.name]));
    assert.deepEqual((await api('GET', `/servers/${a!.id}`)).body.server.load_balancers, [lbId]);
    const dup = await api('POST', `/load_balancers/${lbId}/actions/add_target`, { type: 'server', server: { id: a!.id } });
    assert.equal(dup.status, 422);
    assert.equal(dup.body.error.code, 'target_already_defined');
    assert.equal((await api('POST', `/load_balancers/${lbId}/actions/add_target`, { type: 'server', server: { id: 999 } })).status, 400);
    assert.equal((await api('POST', `/load_balancers/${lbId}/actions/add_target`, { type: 'ip', ip: { ip: b!.ip } })).body.error.code, 'cloud_resource_ip_not_allowed');
    assert.equal((await api('POST', `/load_balancers/${lbId}/actions/add_target`, { type: 'server', server: { id: b!.id }, use_private_ip: true })).body.error.code, 'load_balancer_not_attached_to_network');
  });

  test('a label selector target takes every matching server; both answer; removing it leaves a', async () => {
    const [a, b] = servers;
    const added = await api('POST', `/load_balancers/${lbId}/actions/add_target`, { type: 'label_selector', label_selector: { selector: 'web=b' } });
    await done(added.body.action.id);
    await until('b is healthy', async () => {
      const lb = (await api('GET', `/load_balancers/${lbId}`)).body.load_balancer;
      const sel = lb.targets.find((t: any) => t.type === 'label_selector');
      return sel.targets.length === 1 && sel.targets[0].server.id === b!.id && sel.targets[0].health_status[0].status === 'healthy' ? true : undefined;
    }, 20_000);
    assert.deepEqual(await who(lbIp, 80, 6), new Set([a!.name, b!.name]));
    await done((await api('POST', `/load_balancers/${lbId}/actions/remove_target`, { type: 'label_selector', label_selector: { selector: 'web=b' } })).body.action.id);
    assert.deepEqual(await who(lbIp, 80, 4), new Set([a!.name]));
  });

  test("update_service: a check the target fails makes it unhealthy (503), the check back makes it healthy; add_service opens another port; delete_service closes it", async () => {
    const [a] = servers;
    const update = (codes: string[]) => api('POST', `/load_balancers/${lbId}/actions/update_service`, { listen_port: 80, health_check: { http: { status_codes: codes } } });
    await done((await update(['404'])).body.action.id);
    await until('a is unhealthy', async () => ((await healthOf(a!.id)) === 'unhealthy' ? true : undefined), 20_000);
    assert.equal(((await whoAnswers(lbIp, 80)) as { status: number }).status, 503);
    await done((await update(['2??'])).body.action.id);
    await until('a is healthy again', async () => ((await healthOf(a!.id)) === 'healthy' ? true : undefined), 20_000);
    const lb = (await api('GET', `/load_balancers/${lbId}`)).body.load_balancer;
    assert.equal(lb.services[0].destination_port, WEB, 'the rest of the service stays');
    assert.equal((await api('POST', `/load_balancers/${lbId}/actions/update_service`, { listen_port: 81 })).status, 400);
    await done((await api('POST', `/load_balancers/${lbId}/actions/add_service`, { protocol: 'tcp', listen_port: 8081, destination_port: WEB, health_check: { protocol: 'tcp', port: WEB, interval: 3, timeout: 2, retries: 1 } })).body.action.id);
    await until('a answers on 8081', async () => ('status' in (await whoAnswers(lbIp, 8081)) ? true : undefined), 20_000);
    assert.equal((await api('POST', `/load_balancers/${lbId}/actions/add_service`, { protocol: 'tcp', listen_port: 8081 })).body.error.code, 'source_port_already_used');
    await done((await api('POST', `/load_balancers/${lbId}/actions/delete_service`, { listen_port: 8081 })).body.action.id);
    assert.ok('error' in (await whoAnswers(lbIp, 8081, 2000)), 'the port is closed');
  });

  test('list: name and label selector filters, pagination; PUT renames and relabels; load balancer types', async () => {
    const second = await api('POST', '/load_balancers', { name: 'other', load_balancer_type: 'lb21', network_zone: 'eu-central' });
    assert.equal(second.status, 201);
    assert.equal((await api('GET', '/load_balancers?name=web')).body.load_balancers[0].id, lbId);
    assert.equal((await api('GET', '/load_balancers?label_selector=app=web')).body.load_balancers.length, 1);
    const page = await api('GET', '/load_balancers?per_page=1&page=2');
    assert.equal(page.body.load_balancers[0].name, 'other');
    assert.equal(page.body.meta.pagination.total_entries, 2);
    assert.equal((await api('PUT', `/load_balancers/${second.body.load_balancer.id}`, { name: 'renamed', labels: { x: 'y' } })).body.load_balancer.name, 'renamed');
    assert.equal((await api('PUT', `/load_balancers/${second.body.load_balancer.id}`, { name: 'web' })).status, 409);
    assert.equal((await api('DELETE', `/load_balancers/${second.body.load_balancer.id}`)).status, 204);
    assert.equal((await api('GET', '/load_balancer_types?name=lb11')).body.load_balancer_types[0].max_targets, 25);
  });

  test('remove_target: no new requests reach a (503); removing it again is a 404; delete: 204, nothing listens, then 404', async () => {
    const [a] = servers;
    const removed = await api('POST', `/load_balancers/${lbId}/actions/remove_target`, { type: 'server', server: { id: a!.id } });
    assert.equal(removed.body.action.command, 'remove_target');
    await done(removed.body.action.id);
    assert.equal(((await whoAnswers(lbIp, 80)) as { status: number }).status, 503);
    assert.equal((await api('POST', `/load_balancers/${lbId}/actions/remove_target`, { type: 'server', server: { id: a!.id } })).status, 404);
    assert.equal((await api('GET', `/load_balancers/${lbId}/actions`)).body.actions.length >= 6, true);
    assert.equal((await api('DELETE', `/load_balancers/${lbId}`)).status, 204);
    assert.ok('error' in (await whoAnswers(lbIp, 80, 2000)), 'nothing listens on the deleted load balancer');
    assert.equal((await api('GET', `/load_balancers/${lbId}`)).status, 404);
  });

  // hcloud-python reads every answer into its domain objects and waits for actions its own way.
  test('hcloud-python (python3-hcloud, Hetzner\'s official client) drives a load balancer and a Floating IP; traffic follows', async () => {
    const [a, b] = servers;
    const judge = fileURLToPath(new URL('../../../../test/emulators/hetzner/hcloud-python-judge.py', import.meta.url));
    const { stdout } = await promisify(execFile)('/usr/bin/python3', [judge, emu.endpoint, emu.token, String(a!.id), String(b!.id), String(WEB)], { timeout: 120_000 });
    const seen = JSON.parse(stdout);
    assert.equal(seen.lb_type, 'lb11');
    assert.equal(seen.lb_location, 'fsn1');
    assert.deepEqual(seen.lb_services, [['tcp', 81, WEB, 'tcp']]);
    assert.deepEqual(seen.one_target, [a!.name]);
    assert.deepEqual(seen.targets, [a!.id, b!.id].sort((x, y) => x - y));
    assert.deepEqual(seen.two_targets, [a!.name, b!.name].sort());
    assert.deepEqual(seen.after_remove, [b!.name]);
    assert.deepEqual(seen.listed, ['judge']);
    assert.deepEqual(seen.actions, ['add_target', 'create_load_balancer', 'remove_target']);
    assert.deepEqual(seen.left, []);
    assert.equal(seen.fip_server, a!.id);
    assert.equal(seen.fip_home, 'fsn1');
    assert.deepEqual(seen.fip_on_a, [a!.name]);
    assert.equal(seen.a_floating_ips.length, 1);
    assert.deepEqual(seen.fip_on_b, [b!.name]);
    assert.equal(seen.fip_unassigned, null);
    assert.equal(seen.fips_left, 0);
  });

  test('Floating IPs: created assigned (its action), traffic to its server; moved by assign (locked meanwhile); unassign; a deleted server loses it; delete', async () => {
    const [a, b] = servers;
    assert.equal((await api('POST', '/floating_ips', { type: 'ipv4' })).body.error.details.fields[0].name, 'home_location');
    assert.equal((await api('POST', '/floating_ips', { type: 'ipv6', home_location: 'fsn1' })).status, 400);
    assert.equal((await api('POST', '/floating_ips', { type: 'ipv4', server: 999 })).body.error.details.fields[0].name, 'server');
    const created = await api('POST', '/floating_ips', { type: 'ipv4', server: a!.id, name: 'web-ip', labels: { app: 'web' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.action.command, 'assign_floating_ip');
    const f = created.body.floating_ip;
    assert.equal(f.server, a!.id);
    assert.equal(f.home_location.name, 'fsn1');
    await done(created.body.action.id);
    assert.deepEqual(await who(f.ip, WEB, 3), new Set([a!.name]));
    assert.deepEqual((await api('GET', `/servers/${a!.id}`)).body.server.public_net.floating_ips, [f.id]);
    assert.equal((await api('POST', `/floating_ips/${f.id}/actions/assign`, { server: a!.id })).body.error.code, 'floating_ip_assigned');
    const moving = await api('POST', `/floating_ips/${f.id}/actions/assign`, { server: b!.id });
    assert.equal(moving.body.action.command, 'assign_floating_ip');
    assert.equal((await api('POST', `/floating_ips/${f.id}/actions/unassign`)).status, 423, 'locked while it moves');
    await done(moving.body.action.id);
    assert.deepEqual(await who(f.ip, WEB, 3), new Set([b!.name]));
    assert.equal((await runOn(f.ip, emu.sshPort, key.privateKey, 'cat /etc/hostname')).trim(), b!.name, 'SSH to the address reaches its server');
    assert.equal((await api('GET', '/floating_ips?label_selector=app=web')).body.floating_ips[0].server, b!.id);
    await done((await api('POST', `/floating_ips/${f.id}/actions/unassign`)).body.action.id);
    assert.equal((await api('GET', `/floating_ips/${f.id}`)).body.floating_ip.server, null);
    assert.ok('error' in (await whoAnswers(f.ip, WEB, 2000)), 'an unassigned address forwards nowhere');
    await done((await api('POST', `/floating_ips/${f.id}/actions/assign`, { server: b!.id })).body.action.id);
    await done((await api('DELETE', `/servers/${b!.id}`)).body.action.id);
    assert.equal((await api('GET', `/floating_ips/${f.id}`)).body.floating_ip.server, null, 'a deleted server loses its Floating IP');
    assert.equal((await api('PUT', `/floating_ips/${f.id}`, { description: 'kept' })).body.floating_ip.description, 'kept');
    assert.equal((await api('GET', `/floating_ips/${f.id}/actions`)).body.actions.length, 4);
    assert.equal((await api('DELETE', `/floating_ips/${f.id}`)).status, 204);
    assert.equal((await api('GET', `/floating_ips/${f.id}`)).status, 404);
    assert.equal(emu.cloud.floatingIps.all.size, 0);
  });
});
