/** Traffic end to end on Hetzner Cloud (emulator): a load balancer, and a Floating IP, through a deploy, a rollback and destroy. */
import assert from 'node:assert/strict';
import { startHetznerEmulator, type HetznerEmulator } from '../../src/emulators/hetzner/server.js';
import { trafficOnEmulator, WEB_PORT } from './traffic-flow.js';

function trafficOn(kind: string, endpointYaml: string, servers: number, assertGone: (emulator: HetznerEmulator) => void): void {
  trafficOnEmulator(`traffic end to end on Hetzner Cloud (emulator): ${kind}`, { prefix: 'hetzner', baseImage: 'debian-12', servers }, async (stateDir) => {
    const emulator = await startHetznerEmulator({ delays: { create: 300, shutdown: 200, poweroff: 200, create_image: 500 } });
    return {
      env: { HCLOUD_TOKEN: emulator.token, HCLOUD_ENDPOINT: emulator.endpoint, PROVISIONAL_STATE_DIR: stateDir },
      providerYaml: `  name: hetzner\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
      endpointYaml,
      assertGone: async () => {
        assertGone(emulator);
        assert.deepEqual(emulator.cloud.liveServers().map((s) => s.name), [], 'no server left');
      },
      close: () => emulator.close(),
    };
  });
}

trafficOn('load balancer', `{ load-balancer: { port: 80, target-port: ${WEB_PORT} } }`, 2, (emulator) => {
  assert.deepEqual([...emulator.cloud.loadBalancers.all.values()].map((lb) => lb.name), [], 'no load balancer left');
});

// One server: the Floating IP moves from the old server to the new one (it forwards the app's port).
trafficOn('Floating IP', '{ floating-ip: true }', 1, (emulator) => {
  assert.deepEqual([...emulator.cloud.floatingIps.all.values()].map((ip) => ip.ip), [], 'no Floating IP left');
});
