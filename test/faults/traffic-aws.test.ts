/** The fault matrix's traffic rows on AWS (EC2 emulator): the user's ELBv2 target group with 2 instances. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeAddressesCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import * as elb from '@aws-sdk/client-elastic-load-balancing-v2';
import { startEc2Emulator } from '../../src/emulators/aws/server.js';
import { WEB_PORT } from '../e2e/traffic-flow.js';
import { trafficFaults } from './traffic.js';
import { userTargetGroup } from '../helpers/elbv2.js';

trafficFaults('fault matrix, traffic: AWS (emulator) ELBv2 target group', {}, async () => {
  const emulator = await startEc2Emulator({ accessKeyId: 'AKIDTRAFFICFAULT', secretAccessKey: 'traffic-fault-secret', delays: { imagePendingMs: 500 } });
  const stateDir = mkdtempSync(join(tmpdir(), 'provisional-traffic-faults-aws-'));
  const credentials = { accessKeyId: emulator.accessKeyId, secretAccessKey: emulator.secretAccessKey };
  const ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.url, credentials });
  const client = new elb.ElasticLoadBalancingV2Client({ region: 'us-east-1', endpoint: emulator.url, credentials });
  const groupArn = await userTargetGroup(emulator, { name: 'faults', port: WEB_PORT, listenerPort: 80, deregistrationDelayS: 3 });
  return {
    providerYaml: `  name: aws\n  region: us-east-1\n  endpoint: ${emulator.url}\n  ssh-user: root\n  create-timeout: 20`,
    baseImage: '136693071363/debian-12-amd64-*',
    env: { AWS_ACCESS_KEY_ID: emulator.accessKeyId, AWS_SECRET_ACCESS_KEY: emulator.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', PROVISIONAL_STATE_DIR: stateDir },
    endpointYaml: `{ target-group: ${groupArn} }`,
    servers: 2,
    drainShows: 'draining',
    providerMembers: async () => {
      const targets = (await client.send(new elb.DescribeTargetHealthCommand({ TargetGroupArn: groupArn }))).TargetHealthDescriptions ?? [];
      return targets.map((t) => ({ id: t.Target!.Id!, draining: t.TargetHealth?.State === 'draining' }));
    },
    assertClean: async (live) => {
      const ids = new Set(live.map((s) => s.id));
      const targets = (await client.send(new elb.DescribeTargetHealthCommand({ TargetGroupArn: groupArn }))).TargetHealthDescriptions ?? [];
      assert.deepEqual(targets.filter((t) => t.TargetHealth?.State !== 'draining' && !ids.has(t.Target!.Id!)).map((t) => t.Target!.Id), [], 'no target of no live server');
      const reservations = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }))).Reservations ?? [];
      assert.deepEqual(reservations.flatMap((r) => r.Instances ?? []).filter((i) => !ids.has(i.InstanceId!)).map((i) => i.InstanceId), [], 'no instance of the dead run');
      assert.deepEqual(((await ec2.send(new DescribeAddressesCommand({}))).Addresses ?? []).map((a) => a.PublicIp), [], 'no Elastic IP');
    },
    close: async () => {
      client.destroy();
      ec2.destroy();
      await emulator.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
});
