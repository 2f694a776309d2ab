/**
 * What a user of `endpoint: {target-group: ARN}` has made before: an ELBv2 target group (HTTP on
 * `port`, checked every 5 s, healthy after 2) behind a load balancer's listener on `listenerPort`,
 * here on the EC2 emulator. Returns the group's ARN.
 */
import { DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import * as elb from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Ec2Emulator } from '../../src/emulators/aws/server.js';

export async function userTargetGroup(emulator: Ec2Emulator, opts: { name: string; port: number; listenerPort: number; deregistrationDelayS: number }): Promise<string> {
  const credentials = { accessKeyId: emulator.accessKeyId, secretAccessKey: emulator.secretAccessKey };
  const ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.url, credentials });
  const client = new elb.ElasticLoadBalancingV2Client({ region: 'us-east-1', endpoint: emulator.url, credentials });
  try {
    const vpcId = (await ec2.send(new DescribeVpcsCommand({}))).Vpcs![0]!.VpcId!;
    const group = (
      await client.send(new elb.CreateTargetGroupCommand({ Name: `${opts.name}-web`, Protocol: 'HTTP', Port: opts.port, VpcId: vpcId, HealthCheckPath: '/', HealthCheckIntervalSeconds: 5, HealthyThresholdCount: 2, UnhealthyThresholdCount: 2 }))
    ).TargetGroups![0]!;
    await client.send(new elb.ModifyTargetGroupAttributesCommand({ TargetGroupArn: group.TargetGroupArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: String(opts.deregistrationDelayS) }] }));
    const lb = (await client.send(new elb.CreateLoadBalancerCommand({ Name: `${opts.name}-lb`, Type: 'application' }))).LoadBalancers![0]!;
    await client.send(new elb.CreateListenerCommand({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTP', Port: opts.listenerPort, DefaultActions: [{ Type: 'forward', TargetGroupArn: group.TargetGroupArn }] }));
    return group.TargetGroupArn!;
  } finally {
    client.destroy();
    ec2.destroy();
  }
}
