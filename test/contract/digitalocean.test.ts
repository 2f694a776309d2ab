/**
 * The provider contract against the DigitalOcean provider, through the DigitalOcean API emulator
 * (src/emulators/digitalocean): real HTTP, droplets that are real machines reached by real SSH.
 */
import assert from 'node:assert/strict';
import digitalocean from '../../src/providers/digitalocean/index.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';
import { providerContract } from './provider-contract.js';

const project = 'contract-do';
let emulator: DigitalOceanEmulator | undefined;

providerContract(
  'digitalocean (emulator)',
  async () => {
    emulator = await startDigitalOceanEmulator({ delays: { create: 500, shutdown: 300, power_off: 300, snapshot: 1000 } });
    const provider = await digitalocean.create(
      digitalocean.settingsSchema.parse({ token: emulator.token, 'api-url': emulator.url, 'ssh-port': emulator.sshPort }),
      { project, projectDir: process.cwd(), events: { emit() {} } },
    );
    return {
      provider,
      cleanup: async () => {
        const left = await emulator!.cloud;
        assert.deepEqual([...left.droplets.values()].map((d) => d.name), [], 'no droplet left');
        assert.deepEqual([...left.keys.values()].filter((k) => k.name.startsWith('provisional-build-')).map((k) => k.name), [], 'no build key left');
        assert.deepEqual(left.loadBalancers.list().map((lb) => lb.name), [], 'no load balancer left');
        assert.deepEqual(left.reservedIps.list().map((ip) => ip.ip), [], 'no reserved IP left');
        await emulator!.close();
      },
    };
  },
  {
    baseRef: 'debian-12-x64',
    project,
    sshTimeoutMs: 60_000,
    prepareTimeoutMs: 10 * 60_000,
    sizes: [{ size: 's-1vcpu-1gb' }, { size: 's-1vcpu-2gb' }],
    endpoints: {
      webPort: 8080,
      kinds: [
        { kind: 'load-balancer', single: false, spec: { 'load-balancer': { port: 80, 'target-port': 8080 } }, health: { port: 8080, path: '/', status: 200 } },
        { kind: 'reserved-ip', single: true, spec: { 'reserved-ip': true } },
      ],
    },
    // The size slug the API (the emulator) records for the droplet.
    assertSize: async (machine, options) => {
      const droplet = (await emulator!.cloud).droplets.get(Number(machine.id));
      assert.equal(droplet?.size.slug, options.size, `${machine.name} is a ${options.size}`);
    },
  },
);
