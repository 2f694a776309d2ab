/** Traffic end to end on DigitalOcean (emulator): a load balancer, and a reserved IP, through a deploy, a rollback and destroy. */
import assert from 'node:assert/strict';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';
import { trafficOnEmulator, WEB_PORT } from './traffic-flow.js';

function trafficOn(kind: string, endpointYaml: string, servers: number, assertGone: (emulator: DigitalOceanEmulator) => void): void {
  trafficOnEmulator(`traffic end to end on DigitalOcean (emulator): ${kind}`, { prefix: 'do', baseImage: 'debian-12-x64', servers }, async (stateDir) => {
    const emulator = await startDigitalOceanEmulator({ delays: { create: 300, shutdown: 200, power_off: 200, snapshot: 500 } });
    return {
      env: { DIGITALOCEAN_TOKEN: emulator.token, PROVISIONAL_STATE_DIR: stateDir, DO_API_URL: emulator.url },
      providerYaml: `  name: digitalocean\n  api-url: \${DO_API_URL}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
      endpointYaml,
      assertGone: async () => {
        assertGone(emulator);
        assert.deepEqual([...emulator.cloud.droplets.values()].filter((d) => !d.deleted).map((d) => d.name), [], 'no droplet left');
      },
      close: () => emulator.close(),
    };
  });
}

trafficOn('load balancer', `{ load-balancer: { port: 80, target-port: ${WEB_PORT} } }`, 2, (emulator) => {
  assert.deepEqual(emulator.cloud.loadBalancers.list().map((lb) => lb.name), [], 'no load balancer left');
});

// One server: the reserved IP moves from the old droplet to the new one (it forwards the app's port).
trafficOn('reserved IP', '{ reserved-ip: true }', 1, (emulator) => {
  assert.deepEqual(emulator.cloud.reservedIps.list().map((r) => r.ip), [], 'no reserved IP left');
});
