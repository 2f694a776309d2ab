/** Releases (promotion, pins, runtime config, secrets) on DigitalOcean, through the API emulator. */
import { describe, before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';
import { releaseFlow } from './releases-flow.js';

let project: TempProject;
let stateDir: string;
let emulator: DigitalOceanEmulator;
let env: NodeJS.ProcessEnv;

describe('releases end to end on DigitalOcean (emulator)', { timeout: 20 * 60_000 }, () => {
  before(async () => {
    emulator = await startDigitalOceanEmulator({ delays: { create: 300, shutdown: 200, power_off: 200, snapshot: 500 } });
    project = tempProject('provisional-releases-do-');
    stateDir = mkdtempSync(join(tmpdir(), 'provisional-releases-do-state-'));
    env = { DIGITALOCEAN_TOKEN: emulator.token, PROVISIONAL_STATE_DIR: stateDir, DO_API_URL: emulator.url };
  });
  after(async () => {
    for (const e of ['staging', 'production']) await runCli(['destroy', e, '--yes'], { cwd: project.dir, env: { ...env, CANARY_TOKEN: 'x', DB_PASSWORD: 'x' } }).catch(() => undefined);
    await emulator.close();
    project.remove();
    rmSync(stateDir, { recursive: true, force: true });
  });

  releaseFlow({
    project: () => project,
    env: () => env,
    providerYaml: () => `  name: digitalocean\n  api-url: \${DO_API_URL}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
    baseImage: 'debian-12-x64',
    labelsText: async () => JSON.stringify([...emulator.cloud.droplets.values()].map((d) => d.tags)),
    machines: async () => [...emulator.cloud.droplets.values()].map((d) => d.name),
    localDirs: () => [stateDir],
    breadth: true,
  });
});
