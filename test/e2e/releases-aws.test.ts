/** Releases (promotion, pins, runtime config, secrets) on AWS, through the EC2 emulator. */
import { describe, before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EC2Client, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startEc2Emulator, type Ec2Emulator } from '../../src/emulators/aws/server.js';
import { releaseFlow } from './releases-flow.js';
import { awsCliEnv, AWS_PROVIDER_SETTINGS } from '../helpers/aws-env.js';

let project: TempProject;
let stateDir: string;
let emulator: Ec2Emulator;
let ec2: EC2Client;
let env: NodeJS.ProcessEnv;

describe('releases end to end on AWS (EC2 emulator)', { timeout: 20 * 60_000 }, () => {
  before(async () => {
    emulator = await startEc2Emulator({ accessKeyId: 'AKIDRELEASES', secretAccessKey: 'releases-secret-access-key', delays: { imagePendingMs: 300 } });
    project = tempProject('provisional-releases-aws-');
    stateDir = mkdtempSync(join(tmpdir(), 'provisional-releases-aws-state-'));
    env = awsCliEnv(emulator, stateDir);
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.url, credentials: { accessKeyId: emulator.accessKeyId, secretAccessKey: emulator.secretAccessKey } });
  });
  after(async () => {
    for (const e of ['staging', 'production']) await runCli(['destroy', e, '--yes'], { cwd: project.dir, env: { ...env, CANARY_TOKEN: 'x', DB_PASSWORD: 'x' } }).catch(() => undefined);
    ec2.destroy();
    await emulator.close();
    project.remove();
    rmSync(stateDir, { recursive: true, force: true });
  });

  releaseFlow({
    project: () => project,
    env: () => env,
    providerYaml: () => AWS_PROVIDER_SETTINGS,
    baseImage: '136693071363/debian-12-amd64-*',
    // Every tag of every instance, terminated ones included: a label is forever in CloudTrail.
    labelsText: async () => JSON.stringify(((await ec2.send(new DescribeInstancesCommand({}))).Reservations ?? []).flatMap((r) => (r.Instances ?? []).map((i) => i.Tags))),
    machines: async () =>
      ((await ec2.send(new DescribeInstancesCommand({}))).Reservations ?? [])
        .flatMap((r) => r.Instances ?? [])
        .filter((i) => i.State?.Name !== 'terminated')
        .map((i) => i.Tags?.find((tag) => tag.Key === 'Name')?.Value ?? i.InstanceId!),
    localDirs: () => [stateDir],
    breadth: true,
  });
});
