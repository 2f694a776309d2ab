/** Image lifecycle (provenance, base drift, prune by age) on AWS, through the EC2 emulator. */
import { describe, before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startEc2Emulator, type Ec2Emulator } from '../../src/emulators/aws/server.js';
import { lifecycleFlow } from './lifecycle-flow.js';
import { awsCliEnv, AWS_PROVIDER_SETTINGS } from '../helpers/aws-env.js';

let project: TempProject;
let stateDir: string;
let emulator: Ec2Emulator;
let env: NodeJS.ProcessEnv;
const REGION = 'us-east-1';

describe('image lifecycle end to end on AWS (EC2 emulator)', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    emulator = await startEc2Emulator({ accessKeyId: 'AKIDLIFECYCLE', secretAccessKey: 'lifecycle-secret-access-key', delays: { imagePendingMs: 300 } });
    project = tempProject('provisional-lifecycle-aws-');
    stateDir = mkdtempSync(join(tmpdir(), 'provisional-lifecycle-aws-state-'));
    env = awsCliEnv(emulator, stateDir);
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
    providerYaml: () => AWS_PROVIDER_SETTINGS,
    baseImage: '136693071363/debian-12-amd64-*',
    defaultSize: 't3.micro',
    // The emulator's control, over HTTP: Debian publishes a newer AMI of the series in every region.
    publishBase: async () => {
      const res = await fetch(`${emulator.url}/_emulator/base-images`, { method: 'POST', body: JSON.stringify({ ref: '136693071363/debian-12-amd64-*' }) });
      if (!res.ok) throw new Error(`publish: HTTP ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { regions: Record<string, { previous: string; current: string }> };
      return body.regions[REGION]!;
    },
    forgetBaseId: async (version) => {
      const image = [...emulator.cloud.region(REGION).images.values()].find((i) => i.name === version)!;
      image.tags.delete('provisional-base-id');
    },
  });
});
