/** Traffic end to end on Hetzner Cloud (emulator): a load balancer, and a Floating IP, through a deploy, a rollback and destroy. */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startHetznerEmulator, type HetznerEmulator } from '../../src/emulators/hetzner/server.js';
import { trafficFlow, WEB_PORT } from './traffic-flow.js';

function trafficOn(kind: string, endpointYaml: string, servers: number, assertGone: (emulator: HetznerEmulator) => void): void {
  let project: TempProject;
  let stateDir: string;
  let emulator: HetznerEmulator;
  let env: NodeJS.ProcessEnv;

  describe(`traffic end to end on Hetzner Cloud (emulator): ${kind}`, { timeout: 20 * 60_000 }, () => {
    before(async () => {
      emulator = await startHetznerEmulator({ delays: { create: 300, shutdown: 200, poweroff: 200, create_image: 500 } });
      project = tempProject('provisional-traffic-hetzner-');
      stateDir = mkdtempSync(join(tmpdir(), 'provisional-traffic-hetzner-state-'));
      env = { HCLOUD_TOKEN: emulator.token, HCLOUD_ENDPOINT: emulator.endpoint, PROVISIONAL_STATE_DIR: stateDir };
    });
    after(async () => {
      await runCli(['destroy', 'staging', '--yes'], { cwd: project.dir, env }).catch(() => undefined);
      await emulator.close();
      project.remove();
      rmSync(stateDir, { recursive: true, force: true });
    });

    trafficFlow({
      project: () => project,
      env: () => env,
      providerYaml: () => `  name: hetzner\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
      baseImage: 'debian-12',
      endpointYaml: () => endpointYaml,
      servers,
      assertGone: async () => {
        assertGone(emulator);
        assert.deepEqual(emulator.cloud.liveServers().map((s) => s.name), [], 'no server left');
      },
    });
  });
}

trafficOn('load balancer', `{ load-balancer: { port: 80, target-port: ${WEB_PORT} } }`, 2, (emulator) => {
  assert.deepEqual([...emulator.cloud.loadBalancers.all.values()].map((lb) => lb.name), [], 'no load balancer left');
});

// One server: the Floating IP moves from the old server to the new one (it forwards the app's port).
trafficOn('Floating IP', '{ floating-ip: true }', 1, (emulator) => {
  assert.deepEqual([...emulator.cloud.floatingIps.all.values()].map((ip) => ip.ip), [], 'no Floating IP left');
});
