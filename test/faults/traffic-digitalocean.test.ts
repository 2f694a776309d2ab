/** The fault matrix's traffic rows on DigitalOcean (emulator): a load balancer in front of 2 droplets. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';
import { WEB_PORT } from '../e2e/traffic-flow.js';
import { trafficFaults } from './traffic.js';

trafficFaults('fault matrix, traffic: DigitalOcean (emulator) load balancer', {}, async () => {
  const emulator = await startDigitalOceanEmulator({ delays: { create: 300, shutdown: 200, power_off: 200, snapshot: 500 } });
  const stateDir = mkdtempSync(join(tmpdir(), 'provisional-traffic-faults-do-'));
  return {
    providerYaml: `  name: digitalocean\n  api-url: ${emulator.url}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
    baseImage: 'debian-12-x64',
    env: { DIGITALOCEAN_TOKEN: emulator.token, PROVISIONAL_STATE_DIR: stateDir },
    endpointYaml: `{ load-balancer: { port: 80, target-port: ${WEB_PORT} } }`,
    servers: 2,
    drainShows: 'gone',
    // A droplet removed from a DigitalOcean load balancer is no longer listed (it has no draining state).
    providerMembers: async () => emulator.cloud.loadBalancers.list().flatMap((lb) => lb.dropletIds.map((id) => ({ id: String(id), draining: false }))),
    assertClean: async (live) => {
      const ids = new Set(live.map((s) => s.id));
      const [lb, ...more] = emulator.cloud.loadBalancers.list();
      assert.equal(more.length, 0, 'one load balancer');
      assert.deepEqual(lb!.dropletIds.filter((id) => !ids.has(String(id))), [], 'no member of no live server');
      assert.deepEqual([...emulator.cloud.droplets.values()].filter((d) => !d.deleted && !ids.has(String(d.id))).map((d) => d.name), [], 'no droplet of the dead run');
      assert.deepEqual(emulator.cloud.reservedIps.list().map((r) => r.ip), [], 'no reserved IP');
    },
    close: async () => {
      await emulator.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
});
