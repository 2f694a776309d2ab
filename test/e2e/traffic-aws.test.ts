/**
 * Traffic end to end on AWS (EC2 emulator with its ELBv2 endpoint) through a deploy, a rollback and
 * destroy: instances registered in and deregistered from the user's target group (made here, behind
 * a load balancer's listener, as a user would); and one server's Elastic IP.
 */
import assert from 'node:assert/strict';
import { DescribeAddressesCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import * as elb from '@aws-sdk/client-elastic-load-balancing-v2';
import { userTargetGroup } from '../helpers/elbv2.js';
import { startEc2Emulator } from '../../src/emulators/aws/server.js';
import { trafficOnEmulator, WEB_PORT } from './traffic-flow.js';
import { awsCliEnv, AWS_PROVIDER_SETTINGS } from '../helpers/aws-env.js';

function trafficOn(kind: 'target group' | 'Elastic IP'): void {
  const servers = kind === 'target group' ? 2 : 1;
  trafficOnEmulator(`traffic end to end on AWS (emulator): ${kind}`, { prefix: 'aws', baseImage: '136693071363/debian-12-amd64-*', servers }, async (stateDir) => {
    const emulator = await startEc2Emulator({ accessKeyId: 'AKIDTRAFFIC', secretAccessKey: 'traffic-secret-key', delays: { imagePendingMs: 500 } });
    const groupArn = kind === 'target group' ? await userTargetGroup(emulator, { name: 'traffic', port: WEB_PORT, listenerPort: 80, deregistrationDelayS: 2 }) : '';
    return {
      env: awsCliEnv(emulator, stateDir),
      providerYaml: AWS_PROVIDER_SETTINGS,
      endpointYaml: groupArn ? `{ target-group: ${groupArn} }` : '{ elastic-ip: true }',
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
      close: () => emulator.close(),
    };
  });
}

trafficOn('target group');
trafficOn('Elastic IP');
