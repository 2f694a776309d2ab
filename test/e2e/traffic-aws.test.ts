/**
 * Traffic end to end on AWS (EC2 emulator with its ELBv2 endpoint) through a deploy, a rollback and
 * destroy: instances registered in and deregistered from the user's target group (made here, behind
 * a load balancer's listener, as a user would); and one server's Elastic IP.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeAddressesCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import * as elb from '@aws-sdk/client-elastic-load-balancing-v2';
import { runCli } from '../helpers/cli.js';
import { userTargetGroup } from '../helpers/elbv2.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startEc2Emulator, type Ec2Emulator } from '../../src/emulators/aws/server.js';
import { trafficFlow, WEB_PORT } from './traffic-flow.js';
import { awsCliEnv, AWS_PROVIDER_SETTINGS } from '../helpers/aws-env.js';

function trafficOn(kind: 'target group' | 'Elastic IP'): void {
  let project: TempProject;
  let stateDir: string;
  let emulator: Ec2Emulator;
  let env: NodeJS.ProcessEnv;
  let groupArn = '';

  describe(`traffic end to end on AWS (emulator): ${kind}`, { timeout: 20 * 60_000 }, () => {
    before(async () => {
      emulator = await startEc2Emulator({ accessKeyId: 'AKIDTRAFFIC', secretAccessKey: 'traffic-secret-key', delays: { imagePendingMs: 500 } });
      project = tempProject('provisional-traffic-aws-');
      stateDir = mkdtempSync(join(tmpdir(), 'provisional-traffic-aws-state-'));
      env = awsCliEnv(emulator, stateDir);
      if (kind === 'target group') groupArn = await userTargetGroup(emulator, { name: 'traffic', port: WEB_PORT, listenerPort: 80, deregistrationDelayS: 2 });
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
      providerYaml: () => AWS_PROVIDER_SETTINGS,
      baseImage: '136693071363/debian-12-amd64-*',
      endpointYaml: () => (kind === 'target group' ? `{ target-group: ${groupArn} }` : '{ elastic-ip: true }'),
      servers: kind === 'target group' ? 2 : 1,
      assertGone: async () => {
        const credentials = { accessKeyId: emulator.accessKeyId, secretAccessKey: emulator.secretAccessKey };
        const ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.url, credentials });
        const client = new elb.ElasticLoadBalancingV2Client({ region: 'us-east-1', endpoint: emulator.url, credentials });
        try {
          if (groupArn) {
            const health = (await client.send(new elb.DescribeTargetHealthCommand({ TargetGroupArn: groupArn }))).TargetHealthDescriptions ?? [];
            assert.deepEqual(health.filter((h) => h.TargetHealth?.State !== 'draining').map((h) => h.Target?.Id), [], 'no target left taking connections');
          }
          assert.deepEqual(((await ec2.send(new DescribeAddressesCommand({}))).Addresses ?? []).map((a) => a.PublicIp), [], 'no Elastic IP left');
          const reservations = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }))).Reservations ?? [];
          assert.deepEqual(reservations.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId), [], 'no instance left');
        } finally {
          client.destroy();
          ec2.destroy();
        }
      },
    });
  });
}

trafficOn('target group');
trafficOn('Elastic IP');
