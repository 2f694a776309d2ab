/**
 * The provider contract against the Hetzner Cloud provider, through the Hetzner API emulator
 * (src/emulators/hetzner): real HTTP, servers that are real machines reached by real SSH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '../../src/ssh/client.js';
import { LABELS } from '../../src/providers/types.js';
import hetzner from '../../src/providers/hetzner/index.js';
import { startHetznerEmulator, type HetznerEmulator } from '../../src/emulators/hetzner/server.js';
import { providerContract } from './provider-contract.js';

const project = 'contract-hetzner';
let emulator: HetznerEmulator | undefined;

providerContract(
  'hetzner (emulator)',
  async () => {
    emulator = await startHetznerEmulator({ delays: { create: 500, shutdown: 200, poweroff: 200, create_image: 1000 } });
    const provider = await hetzner.create(
      hetzner.settingsSchema.parse({ token: emulator.token, 'api-url': emulator.endpoint, 'ssh-port': emulator.sshPort }),
      { project, projectDir: process.cwd(), events: { emit() {} } },
    );
    return {
      provider,
      cleanup: async () => {
        const cloud = emulator!.cloud;
        assert.deepEqual(cloud.liveServers().map((s) => s.name), [], 'no server left');
        assert.deepEqual([...cloud.keys.values()].filter((k) => k.name.startsWith('provisional-build-')).map((k) => k.name), [], 'no build key left');
        assert.deepEqual([...cloud.loadBalancers.all.values()].map((lb) => lb.name), [], 'no load balancer left');
        assert.deepEqual([...cloud.floatingIps.all.values()].map((ip) => ip.ip), [], 'no Floating IP left');
        await emulator!.close();
      },
    };
  },
  {
    baseRef: 'debian-12',
    project,
    sshTimeoutMs: 60_000,
    prepareTimeoutMs: 10 * 60_000,
    sizes: [{ size: 'cx22' }, { size: 'cx32' }],
    endpoints: {
      webPort: 8080,
      kinds: [
        { kind: 'load-balancer', single: false, spec: { 'load-balancer': { port: 80, 'target-port': 8080 } }, health: { port: 8080, path: '/', status: 200 } },
        { kind: 'floating-ip', single: true, spec: { 'floating-ip': true } },
      ],
    },
    // The server type the API (the emulator) records for the server.
    assertSize: async (machine, options) => {
      const server = emulator!.cloud.servers.get(Number(machine.id));
      assert.equal(server?.serverType.name, options.size, `${machine.name} is a ${options.size}`);
    },
  },
);

// Hetzner's own path: shutdown is only an ACPI request (its action succeeds once delivered); a guest
// that does not power off within shutdown-timeout is powered off.
test('hetzner: a guest that ignores the shutdown request is powered off after shutdown-timeout', { timeout: 180_000 }, async () => {
  const emu = await startHetznerEmulator({ delays: { create: 300, shutdown: 100, poweroff: 100 } });
  try {
    const provider = await hetzner.create(
      hetzner.settingsSchema.parse({ token: emu.token, 'api-url': emu.endpoint, 'ssh-port': emu.sshPort, 'shutdown-timeout': 2 }),
      { project, projectDir: process.cwd(), events: { emit() {} } },
    );
    const base = await provider.prepareBase('debian-12', AbortSignal.timeout(60_000));
    const key = generateKeyPair('stop-test');
    const machine = await provider.launchMachine({ name: 'stop-test', source: base, authorizedKey: key.publicKey, labels: { [LABELS.project]: project, [LABELS.role]: 'server' } }, AbortSignal.timeout(60_000));
    emu.faults.set({ actions: [{ type: 'shutdown_server', outcome: 'slow', extraMs: 600_000 }] });
    await provider.stopMachine(machine, AbortSignal.timeout(120_000));
    const counts = emu.requests.counts();
    assert.equal(counts['POST /v1/servers/{id}/actions/shutdown'], 1);
    assert.equal(counts['POST /v1/servers/{id}/actions/poweroff'], 1);
    assert.equal(emu.cloud.servers.get(Number(machine.id))?.status, 'off');
    await provider.destroyMachine(machine, AbortSignal.timeout(60_000));
  } finally {
    await emu.close();
  }
});

test('hetzner: a command slows to the rate limit\'s refill (RateLimit-* headers) instead of meeting 429s', { timeout: 120_000 }, async () => {
  const emu = await startHetznerEmulator({ rateLimit: { limit: 12, perSecond: 4 } });
  try {
    const provider = await hetzner.create(hetzner.settingsSchema.parse({ token: emu.token, 'api-url': emu.endpoint }), { project, projectDir: process.cwd(), events: { emit() {} } });
    const started = Date.now();
    for (let i = 0; i < 30; i++) await provider.listServers({}, AbortSignal.timeout(60_000));
    const seconds = (Date.now() - started) / 1000;
    assert.equal(emu.requests.statuses()[429] ?? 0, 0, 'no 429');
    assert.equal(emu.requests.total, 30);
    // 12 in the bucket, then 4 a second: the last 18 take about 4.5 s.
    assert.ok(seconds >= 3.5, `30 requests in ${seconds} s`);
  } finally {
    await emu.close();
  }
});

// Hetzner's own path: an existing load balancer takes a changed spec through its service actions
// (update_service for a new health check, add_service and delete_service for a new port), keeping
// its address; no server is needed for that.
test('hetzner: ensure brings an existing load balancer\'s service to the spec (health check, port), keeping its address', { timeout: 60_000 }, async () => {
  const emu = await startHetznerEmulator({ delays: { load_balancer: 50 } });
  try {
    const provider = await hetzner.create(hetzner.settingsSchema.parse({ token: emu.token, 'api-url': emu.endpoint, location: 'hel1' }), { project, projectDir: process.cwd(), events: { emit() {} } });
    const ref = { project, environment: 'ensure', image: 'app' };
    const signal = AbortSignal.timeout(50_000);
    const first = await provider.endpoints!.ensure(ref, { 'load-balancer': { port: 80, 'target-port': 8080, type: 'lb11' } }, signal, { health: { port: 8080, path: '/up', status: 200 } });
    const lb = () => [...emu.cloud.loadBalancers.all.values()];
    assert.equal(lb().length, 1);
    assert.equal(lb()[0]!.name, `${project}.ensure.app`);
    assert.equal(lb()[0]!.location.name, 'hel1', 'in the provider\'s location');
    assert.deepEqual(lb()[0]!.services.map((s) => [s.protocol, s.listen_port, s.destination_port, s.health_check.protocol, s.health_check.http?.path, s.health_check.http?.status_codes]), [['http', 80, 8080, 'http', '/up', ['200']]]);
    await provider.endpoints!.ensure(ref, { 'load-balancer': { port: 80, 'target-port': 8080, type: 'lb11' } }, signal, { health: { port: 8080, path: '/ready', status: 204 } });
    assert.deepEqual(lb()[0]!.services.map((s) => [s.listen_port, s.health_check.http?.path, s.health_check.http?.status_codes]), [[80, '/ready', ['204']]]);
    const moved = await provider.endpoints!.ensure(ref, { 'load-balancer': { port: 8081, 'target-port': 8080, type: 'lb11' } }, signal);
    assert.deepEqual(lb()[0]!.services.map((s) => [s.listen_port, s.health_check.protocol]), [[8081, 'tcp']], 'a TCP check without the image\'s HTTP one');
    assert.equal(moved.address, first.address.replace(/:80$/, ':8081'), 'the same load balancer');
    const counts = emu.requests.counts();
    assert.equal(counts['POST /v1/load_balancers'], 1);
    assert.equal(counts['POST /v1/load_balancers/{id}/actions/update_service'], 1);
    assert.equal(counts['POST /v1/load_balancers/{id}/actions/add_service'], 1);
    assert.equal(counts['POST /v1/load_balancers/{id}/actions/delete_service'], 1);
    await provider.endpoints!.remove(ref, undefined, signal);
    assert.equal(lb().length, 0);
  } finally {
    await emu.close();
  }
});
