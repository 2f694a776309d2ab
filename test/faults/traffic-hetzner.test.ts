/**
 * The fault matrix's traffic rows on Hetzner Cloud (emulator): a load balancer in front of 2 servers.
 * Signals at attach and drain, where the load balancer is changed; at launch and health a warm deploy
 * touches no endpoint (the DigitalOcean and AWS rows, and the Hetzner matrix's launch faults, cover them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHetznerEmulator } from '../../src/emulators/hetzner/server.js';
import { WEB_PORT } from '../e2e/traffic-flow.js';
import { trafficFaults } from './traffic.js';

trafficFaults('fault matrix, traffic: Hetzner Cloud (emulator) load balancer', { points: ['attach', 'drain'] }, async () => {
  const emulator = await startHetznerEmulator({ delays: { create: 300, shutdown: 200, poweroff: 200, create_image: 500 } });
  const stateDir = mkdtempSync(join(tmpdir(), 'provisional-traffic-faults-hetzner-'));
  return {
    providerYaml: `  name: hetzner\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
    baseImage: 'debian-12',
    env: { HCLOUD_TOKEN: emulator.token, HCLOUD_ENDPOINT: emulator.endpoint, PROVISIONAL_STATE_DIR: stateDir },
    endpointYaml: `{ load-balancer: { port: 80, target-port: ${WEB_PORT} } }`,
    servers: 2,
    drainShows: 'gone',
    // A target removed from a Hetzner load balancer is no longer listed (it has no draining state).
    providerMembers: async () => [...emulator.cloud.loadBalancers.all.values()].flatMap((lb) => lb.targets.flatMap((t) => (t.type === 'server' ? [{ id: String(t.serverId), draining: false }] : []))),
    assertClean: async (live) => {
      const ids = new Set(live.map((s) => s.id));
      const [lb, ...more] = emulator.cloud.loadBalancers.all.values();
      assert.equal(more.length, 0, 'one load balancer');
      assert.deepEqual(lb!.targets.flatMap((t) => (t.type === 'server' && !ids.has(String(t.serverId)) ? [t.serverId] : [])), [], 'no target of no live server');
      assert.deepEqual(emulator.cloud.liveServers().filter((s) => !ids.has(String(s.id))).map((s) => s.name), [], 'no server of the dead run');
      assert.deepEqual([...emulator.cloud.floatingIps.all.values()].map((ip) => ip.ip), [], 'no Floating IP');
    },
    close: async () => {
      await emulator.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
});
