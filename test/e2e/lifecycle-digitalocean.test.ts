/** Image lifecycle (provenance, base drift, prune by age) on DigitalOcean, through the API emulator. */
import { describe, before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';
import { lifecycleFlow } from './lifecycle-flow.js';

let project: TempProject;
let stateDir: string;
let emulator: DigitalOceanEmulator;
let env: NodeJS.ProcessEnv;

describe('image lifecycle end to end on DigitalOcean (emulator)', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    emulator = await startDigitalOceanEmulator({ delays: { create: 300, shutdown: 200, power_off: 200, snapshot: 500 } });
    project = tempProject('provisional-lifecycle-do-');
    stateDir = mkdtempSync(join(tmpdir(), 'provisional-lifecycle-do-state-'));
    env = { DIGITALOCEAN_TOKEN: emulator.token, PROVISIONAL_STATE_DIR: stateDir, DO_API_URL: emulator.url };
  });
  after(async () => {
    await runCli(['destroy', 'staging', '--yes'], { cwd: project.dir, env }).catch(() => undefined);
    await emulator.close();
    project.remove();
    rmSync(stateDir, { recursive: true, force: true });
  });

  lifecycleFlow({
    project: () => project,
    env: () => env,
    providerYaml: () => `  name: digitalocean\n  api-url: \${DO_API_URL}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 30`,
    baseImage: 'debian-12-x64',
    defaultSize: 's-1vcpu-1gb',
    // The emulator's control, over HTTP, as any client would call it.
    publishBase: async () => {
      const res = await fetch(`${emulator.url}/_emulator/base-images`, { method: 'POST', body: JSON.stringify({ ref: 'debian-12-x64' }) });
      if (!res.ok) throw new Error(`publish: HTTP ${res.status} ${await res.text()}`);
      return (await res.json()) as { previous: string; current: string };
    },
    forgetBaseId: async (version) => {
      const image = [...emulator.cloud.images.values()].find((i) => i.name === version)!;
      const meta = JSON.parse(image.description.slice('provisional:'.length)) as Record<string, unknown>;
      delete meta.baseId;
      image.description = `provisional:${JSON.stringify(meta)}`;
    },
  });
});
