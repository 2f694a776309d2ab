/**
 * The provider contract against the AWS provider (AWS SDK v3), through the EC2 emulator
 * (src/emulators/aws): the Query protocol over real HTTP with checked signatures, instances that
 * are real machines reached by real SSH.
 */
import assert from 'node:assert/strict';
import aws from '../../src/providers/aws/index.js';
import { startEc2Emulator, type Ec2Emulator } from '../../src/emulators/aws/server.js';
import { providerContract } from './provider-contract.js';
import { userTargetGroup } from '../helpers/elbv2.js';

const project = 'contract-aws';
let emulator: Ec2Emulator | undefined;

providerContract(
  'aws (emulator)',
  async () => {
    emulator = await startEc2Emulator({ accessKeyId: 'AKIDCONTRACT', secretAccessKey: 'contract-secret-key', delays: { imagePendingMs: 500 } });
    process.env.AWS_ACCESS_KEY_ID = emulator.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = emulator.secretAccessKey;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    const provider = await aws.create(aws.settingsSchema.parse({ region: 'us-east-1', endpoint: emulator.url, 'ssh-user': 'root' }), {
      project,
      projectDir: process.cwd(),
      events: { emit() {} },
    });
    return {
      provider,
      cleanup: async () => {
        const { EC2Client, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, DescribeSnapshotsCommand } = await import('@aws-sdk/client-ec2');
        const ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator!.url });
        const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }))).Reservations ?? [];
        assert.deepEqual(instances.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId), [], 'no instance left');
        const keys = (await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? [];
        assert.deepEqual(keys.filter((k) => k.KeyName?.startsWith('provisional-build-')).map((k) => k.KeyName), [], 'no build key pair left');
        const groups = (await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? [];
        assert.deepEqual(groups.filter((g) => g.GroupName?.startsWith('provisional-build-')).map((g) => g.GroupName), [], 'no build security group left');
        const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [];
        assert.deepEqual(snapshots.map((s) => s.SnapshotId), [], 'no EBS snapshot left');
        const { DescribeAddressesCommand } = await import('@aws-sdk/client-ec2');
        const addresses = (await ec2.send(new DescribeAddressesCommand({}))).Addresses ?? [];
        assert.deepEqual(addresses.map((a) => a.PublicIp), [], 'no Elastic IP left');
        ec2.destroy();
        await emulator!.close();
      },
    };
  },
  {
    baseRef: '136693071363/debian-12-amd64-*',
    project,
    sshTimeoutMs: 60_000,
    prepareTimeoutMs: 10 * 60_000,
    sizes: [{ size: 't3.micro' }, { size: 't3.small' }],
    endpoints: {
      webPort: 8080,
      kinds: [
        // The target group is the user's: prepare makes it, behind a load balancer's listener, as a user would.
        { kind: 'target-group', single: false, userOwned: true, spec: { 'target-group': 'made by prepare' } },
        { kind: 'elastic-ip', single: true, spec: { 'elastic-ip': true } },
      ],
      prepare: async (kind) =>
        kind.kind === 'target-group' ? { ...kind, spec: { 'target-group': await userTargetGroup(emulator!, { name: 'contract', port: 8080, listenerPort: 8090, deregistrationDelayS: 3 }) } } : kind,
    },
    // The instance type EC2 (the emulator) records for the instance.
    assertSize: async (machine, options) => {
      const { EC2Client, DescribeInstancesCommand } = await import('@aws-sdk/client-ec2');
      const ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator!.url });
      try {
        const found = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [machine.id] }));
        assert.equal(found.Reservations?.[0]?.Instances?.[0]?.InstanceType, options.size, `${machine.name} is a ${options.size}`);
      } finally {
        ec2.destroy();
      }
    },
  },
);
