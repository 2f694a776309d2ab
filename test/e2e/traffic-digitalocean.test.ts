/** Traffic end to end on DigitalOcean (emulator): a load balancer, and a reserved IP, through a deploy, a rollback and destroy. */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';
import { trafficFlow, WEB_PORT } from './traffic-flow.js';

function trafficOn(kind: string, endpointYaml: string, servers: number, assertGone: (emulator: DigitalOceanEmulator) => void): void {
  let project: TempProject;
  let stateDir: string;
  let emulator: DigitalOceanEmulator;
  let env: NodeJS.ProcessEnv;

  describe(`traffic end to end on DigitalOcean (emulator): ${kind}`, { timeout: 20 * 60_000 }, () => {
    before(async () => {
      emulator = await startDigitalOceanEmulator({ delays: { create: 300, shutdown: 200, power_off: 200, snapshot: 500 } });
      project = tempProject('provisional-traffic-do-');
      stateDir = mkdtempSync(join(tmpdir(), 'provisional-traffic-do-state-'));
      env = { DIGITALOCEAN_TOKEN: emulator.token, PROVISIONAL_STATE_DIR: stateDir, DO_API_URL: emulator.url };
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
      providerYaml: () => `  name: digitalocean\n  api-url: \${DO_API_URL}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
      baseImage: 'debian-12-x64',
      endpointYaml: () => endpointYaml,
      servers,
      assertGone: async () => {
        assertGone(emulator);
        assert.deepEqual([...emulator.cloud.droplets.values()].filter((d) => !d.deleted).map((d) => d.name), [], 'no droplet left');
      },
    });
  });
}

trafficOn('load balancer', `{ load-balancer: { port: 80, target-port: ${WEB_PORT} } }`, 2, (emulator) => {
  assert.deepEqual(emulator.cloud.loadBalancers.list().map((lb) => lb.name), [], 'no load balancer left');
});

// One server: the reserved IP moves from the old droplet to the new one (it forwards the app's port).
trafficOn('reserved IP', '{ reserved-ip: true }', 1, (emulator) => {
  assert.deepEqual(emulator.cloud.reservedIps.list().map((r) => r.ip), [], 'no reserved IP left');
});
