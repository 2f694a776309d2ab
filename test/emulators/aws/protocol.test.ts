/**
 * The EC2 emulator through the AWS SDK for JavaScript v3 (signatures checked), with bookkeeping
 * machines: state machines, waiters, pagination, filters, tags, regions, errors and faults.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AuthorizeSecurityGroupIngressCommand,
  CopyImageCommand,
  CreateImageCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeRegionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2ServiceException,
  ImportKeyPairCommand,
  paginateDescribeInstances,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  waitUntilImageAvailable,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilInstanceTerminated,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { generateKeyPairSync } from 'node:crypto';
import { memoryBackend } from '../../../src/emulators/aws/backend.js';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { startEc2Emulator, type Ec2Emulator } from '../../../src/emulators/aws/server.js';
import { ec2Client, rawRequest, waitFor } from './test-support.js';
import { child, parseXml } from '../../../src/emulators/aws/xml.js';

const FAST = { instancePendingMs: 50, instanceStoppingMs: 50, instanceShuttingDownMs: 50, imagePendingMs: 100, copyImageMs: 100 };
const WAIT = { maxWaitTime: 20, minDelay: 1, maxDelay: 1 };
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example';

async function rejectsWith(promise: Promise<unknown>, code: string, status?: number): Promise<EC2ServiceException> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof EC2ServiceException, `expected an EC2 error ${code}, got ${String(err)}`);
    assert.equal(err.name, code, err.message);
    if (status !== undefined) assert.equal(err.$metadata.httpStatusCode, status);
    return err;
  }
  assert.fail(`expected ${code}`);
}

async function newestDebian(ec2: EC2Client): Promise<string> {
  const { Images } = await ec2.send(
    new DescribeImagesCommand({ Owners: [DEBIAN_OWNER_ID], Filters: [{ Name: 'name', Values: ['debian-12-amd64-*'] }] }),
  );
  return Images!.sort((a, b) => b.CreationDate!.localeCompare(a.CreationDate!))[0].ImageId!;
}

describe('EC2 emulator through the AWS SDK v3', { timeout: 120_000 }, () => {
  let emu: Ec2Emulator;
  let ec2: EC2Client;
  const backend = memoryBackend();

  before(async () => {
    emu = await startEc2Emulator({ backend, accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret', delays: FAST });
    ec2 = ec2Client(emu);
  });
  after(async () => {
    ec2?.destroy();
    await emu?.close();
  });

  test('Debian AMIs resolve by owner and name pattern, in every region', async () => {
    const { Images } = await ec2.send(
      new DescribeImagesCommand({ Owners: [DEBIAN_OWNER_ID], Filters: [{ Name: 'name', Values: ['debian-12-amd64-*'] }] }),
    );
    assert.ok(Images!.length >= 2);
    for (const image of Images!) {
      assert.match(image.Name!, /^debian-12-amd64-\d{8}-\d+$/);
      assert.equal(image.OwnerId, DEBIAN_OWNER_ID);
      assert.equal(image.State, 'available');
      assert.equal(image.Public, true);
      assert.match(image.BlockDeviceMappings![0].Ebs!.SnapshotId!, /^snap-[0-9a-f]{17}$/);
    }
    const eu = ec2Client(emu, 'eu-west-1');
    const euNewest = await newestDebian(eu);
    eu.destroy();
    assert.notEqual(euNewest, await newestDebian(ec2), 'AMI ids differ per region');
    const { Images: none } = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    assert.deepEqual(none, []);
  });

  test('instances: run with tags, key and group, wait running, stop, start, terminate', async () => {
    const imageId = await newestDebian(ec2);
    await ec2.send(new ImportKeyPairCommand({ KeyName: 'k1', PublicKeyMaterial: Buffer.from(ED25519) }));
    const { GroupId } = await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'ssh-in', Description: 'ssh' }));
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        MinCount: 2,
        MaxCount: 2,
        InstanceType: 't3.micro',
        KeyName: 'k1',
        SecurityGroupIds: [GroupId!],
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'role', Value: 'web' }] }],
      }),
    );
    const ids = run.Instances!.map((i) => i.InstanceId!);
    assert.equal(ids.length, 2);
    assert.deepEqual(
      run.Instances!.map((i) => [i.State!.Name, i.State!.Code, i.AmiLaunchIndex]),
      [
        ['pending', 0, 0],
        ['pending', 0, 1],
      ],
    );
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: ids });
    const { Reservations } = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:role', Values: ['web'] }] }));
    assert.equal(Reservations!.length, 1);
    const [a, b] = Reservations![0].Instances!;
    assert.equal(a.State!.Name, 'running');
    assert.equal(a.State!.Code, 16);
    assert.match(a.PublicIpAddress!, /^10\./);
    assert.equal(a.PrivateIpAddress, a.PublicIpAddress);
    assert.notEqual(a.PublicIpAddress, b.PublicIpAddress);
    assert.equal(a.KeyName, 'k1');
    assert.equal(a.InstanceType, 't3.micro');
    assert.deepEqual(a.SecurityGroups!.map((g) => g.GroupName), ['ssh-in']);
    assert.deepEqual(a.Tags, [{ Key: 'role', Value: 'web' }]);
    assert.match(a.Placement!.AvailabilityZone!, /^us-east-1[a-c]$/);

    const stopped = await ec2.send(new StopInstancesCommand({ InstanceIds: [ids[0]] }));
    assert.equal(stopped.StoppingInstances![0].CurrentState!.Name, 'stopping');
    assert.equal(stopped.StoppingInstances![0].PreviousState!.Name, 'running');
    await waitUntilInstanceStopped({ client: ec2, ...WAIT }, { InstanceIds: [ids[0]] });
    const byState = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['stopped'] }] }));
    assert.deepEqual(byState.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId)), [ids[0]]);
    assert.equal(byState.Reservations![0].Instances![0].PublicIpAddress, undefined, 'a stopped instance has no public address');
    await rejectsWith(ec2.send(new DeleteSecurityGroupCommand({ GroupId })), 'DependencyViolation', 400);

    await ec2.send(new StartInstancesCommand({ InstanceIds: [ids[0]] }));
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [ids[0]] });
    const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    assert.deepEqual(term.TerminatingInstances!.map((c) => c.CurrentState!.Name), ['shutting-down', 'shutting-down']);
    await waitUntilInstanceTerminated({ client: ec2, ...WAIT }, { InstanceIds: ids });
    assert.equal(backend.machines.size, 0, 'every machine destroyed');
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId }));
    await ec2.send(new DeleteKeyPairCommand({ KeyName: 'k1' }));
    await rejectsWith(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })), 'InvalidInstanceID.NotFound', 400);
    await rejectsWith(ec2.send(new StopInstancesCommand({ InstanceIds: [ids[0]] })), 'IncorrectInstanceState');
  });

  test('DescribeInstances pages with MaxResults and NextToken', async () => {
    const imageId = await newestDebian(ec2);
    const run = await ec2.send(
      new RunInstancesCommand({ ImageId: imageId, MinCount: 12, MaxCount: 12, TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'batch', Value: 'p' }] }] }),
    );
    const pages: number[] = [];
    const seen: string[] = [];
    for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 5 }, { Filters: [{ Name: 'tag-key', Values: ['batch'] }] })) {
      const ids = page.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId!));
      pages.push(ids.length);
      seen.push(...ids);
    }
    assert.deepEqual(pages, [5, 5, 2]);
    assert.deepEqual(seen.sort(), run.Instances!.map((i) => i.InstanceId!).sort());
    await rejectsWith(ec2.send(new DescribeInstancesCommand({ MaxResults: 3 })), 'InvalidParameterValue');
    await rejectsWith(ec2.send(new DescribeInstancesCommand({ NextToken: 'bogus' })), 'InvalidParameterValue');
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: seen }));
    await waitUntilInstanceTerminated({ client: ec2, ...WAIT }, { InstanceIds: seen });
  });

  test('AMIs: create from a stopped instance with tags on image and snapshot, copy to a region, deregister, delete snapshots', async () => {
    const run = await ec2.send(new RunInstancesCommand({ ImageId: await newestDebian(ec2), MinCount: 1, MaxCount: 1 }));
    const instanceId = run.Instances![0].InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [instanceId] });
    await ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
    await waitUntilInstanceStopped({ client: ec2, ...WAIT }, { InstanceIds: [instanceId] });
    const layersBefore = backend.layers.size;
    const { ImageId } = await ec2.send(
      new CreateImageCommand({
        InstanceId: instanceId,
        Name: 'app-20240201120000',
        TagSpecifications: [
          { ResourceType: 'image', Tags: [{ Key: 'provisional-image', Value: 'app' }] },
          { ResourceType: 'snapshot', Tags: [{ Key: 'provisional-image', Value: 'app' }] },
        ],
      }),
    );
    const pending = await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }));
    assert.equal(pending.Images![0].State, 'pending');
    await rejectsWith(ec2.send(new CreateImageCommand({ InstanceId: instanceId, Name: 'app-20240201120000' })), 'InvalidAMIName.Duplicate');
    await waitUntilImageAvailable({ client: ec2, ...WAIT }, { ImageIds: [ImageId!] });
    assert.equal(backend.layers.size, layersBefore + 1, 'the disk was captured as a layer');

    const mine = await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'tag:provisional-image', Values: ['app'] }] }));
    assert.equal(mine.Images!.length, 1);
    const snapshotId = mine.Images![0].BlockDeviceMappings![0].Ebs!.SnapshotId!;
    const snaps = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    assert.deepEqual(
      snaps.Snapshots!.map((s) => [s.SnapshotId, s.State, s.Tags]),
      [[snapshotId, 'completed', [{ Key: 'provisional-image', Value: 'app' }]]],
    );

    const eu = ec2Client(emu, 'eu-west-1');
    try {
      const copy = await eu.send(new CopyImageCommand({ SourceImageId: ImageId, SourceRegion: 'us-east-1', Name: 'app-20240201120000', CopyImageTags: true }));
      await waitUntilImageAvailable({ client: eu, ...WAIT }, { ImageIds: [copy.ImageId!] });
      const copied = (await eu.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images!;
      assert.deepEqual(
        copied.map((i) => [i.ImageId, i.SourceImageId, i.SourceImageRegion, i.Tags]),
        [[copy.ImageId, ImageId, 'us-east-1', [{ Key: 'provisional-image', Value: 'app' }]]],
      );
      await rejectsWith(ec2.send(new DescribeImagesCommand({ ImageIds: [copy.ImageId!] })), 'InvalidAMIID.NotFound');

      // A snapshot cannot go while its AMI is registered; deregistering leaves it (the classic leak).
      await rejectsWith(ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })), 'InvalidSnapshot.InUse');
      await ec2.send(new DeregisterImageCommand({ ImageId }));
      assert.equal((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots!.length, 1);
      await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
      assert.equal(backend.layers.size, layersBefore + 1, 'the copy still holds the layer');
      const copySnapshot = copied[0].BlockDeviceMappings![0].Ebs!.SnapshotId!;
      const dereg = await eu.send(new DeregisterImageCommand({ ImageId: copy.ImageId, DeleteAssociatedSnapshots: true }));
      assert.deepEqual(dereg.DeleteSnapshotResults, [{ SnapshotId: copySnapshot, ReturnCode: 'success' }]);
      assert.equal(backend.layers.size, layersBefore, 'the layer went with the last snapshot');
    } finally {
      eu.destroy();
    }
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  });

  test('key pairs: ED25519 and RSA imported with EC2 fingerprints; duplicates and bad keys refused', async () => {
    const ed = await ec2.send(new ImportKeyPairCommand({ KeyName: 'ed', PublicKeyMaterial: Buffer.from(ED25519) }));
    assert.match(ed.KeyFingerprint!, /^[A-Za-z0-9+/]{43}=$/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const jwk = rsa.export({ format: 'jwk' });
    const mpint = (b: Buffer) => (b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
    const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, i) => (b.length >> (24 - 8 * i)) & 255)), b]);
    const blob = Buffer.concat([str(Buffer.from('ssh-rsa')), str(mpint(Buffer.from(jwk.e!, 'base64url'))), str(mpint(Buffer.from(jwk.n!, 'base64url')))]);
    const imported = await ec2.send(new ImportKeyPairCommand({ KeyName: 'rsa', PublicKeyMaterial: Buffer.from(`ssh-rsa ${blob.toString('base64')} me`) }));
    assert.match(imported.KeyFingerprint!, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    await rejectsWith(ec2.send(new ImportKeyPairCommand({ KeyName: 'ed', PublicKeyMaterial: Buffer.from(ED25519) })), 'InvalidKeyPair.Duplicate');
    await rejectsWith(ec2.send(new ImportKeyPairCommand({ KeyName: 'bad', PublicKeyMaterial: Buffer.from('not a key') })), 'InvalidKey.Format');
    const found = await ec2.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: ['ed'] }], IncludePublicKey: true }));
    assert.deepEqual(found.KeyPairs!.map((k) => [k.KeyName, k.KeyType, k.PublicKey]), [['ed', 'ed25519', ED25519]]);
    await rejectsWith(ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['nope'] })), 'InvalidKeyPair.NotFound');
    await ec2.send(new DeleteKeyPairCommand({ KeyName: 'ed' }));
    await ec2.send(new DeleteKeyPairCommand({ KeyPairId: imported.KeyPairId }));
    await ec2.send(new DeleteKeyPairCommand({ KeyName: 'never-existed' }));
    assert.deepEqual((await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs, []);
  });

  test('security groups, tags, VPCs, subnets, regions and zones', async () => {
    const { GroupId } = await ec2.send(
      new CreateSecurityGroupCommand({ GroupName: 'build', Description: 'SSH in', TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'run', Value: 'r1' }] }] }),
    );
    await rejectsWith(ec2.send(new CreateSecurityGroupCommand({ GroupName: 'build', Description: 'again' })), 'InvalidGroup.Duplicate');
    const rule = { GroupId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0', Description: 'ssh' }] }] };
    const auth = await ec2.send(new AuthorizeSecurityGroupIngressCommand(rule));
    assert.equal(auth.Return, true);
    assert.equal(auth.SecurityGroupRules![0].CidrIpv4, '0.0.0.0/0');
    await rejectsWith(ec2.send(new AuthorizeSecurityGroupIngressCommand(rule)), 'InvalidPermission.Duplicate');
    const groups = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:run', Values: ['r1'] }] }));
    assert.deepEqual(groups.SecurityGroups!.map((g) => [g.GroupName, g.IpPermissions![0].FromPort, g.IpPermissions![0].IpRanges![0].CidrIp]), [['build', 22, '0.0.0.0/0']]);

    await ec2.send(new CreateTagsCommand({ Resources: [GroupId!], Tags: [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }] }));
    await ec2.send(new DeleteTagsCommand({ Resources: [GroupId!], Tags: [{ Key: 'a' }, { Key: 'b', Value: 'other' }] }));
    const tagged = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [GroupId!] }));
    assert.deepEqual(tagged.SecurityGroups![0].Tags, [{ Key: 'run', Value: 'r1' }, { Key: 'b', Value: '2' }]);
    await rejectsWith(ec2.send(new CreateTagsCommand({ Resources: ['ami-0123456789abcdef0'], Tags: [{ Key: 'a', Value: '1' }] })), 'InvalidAMIID.NotFound');
    await rejectsWith(ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'no-such-filter', Values: ['x'] }] })), 'InvalidParameterValue');
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId }));
    await rejectsWith(ec2.send(new DeleteSecurityGroupCommand({ GroupName: 'default' })), 'CannotDelete');

    const vpcs = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }));
    assert.equal(vpcs.Vpcs!.length, 1);
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcs.Vpcs![0].VpcId!] }] }));
    assert.deepEqual(subnets.Subnets!.map((s) => s.AvailabilityZone), ['us-east-1a', 'us-east-1b', 'us-east-1c']);
    const regions = await ec2.send(new DescribeRegionsCommand({}));
    assert.ok(regions.Regions!.some((r) => r.RegionName === 'eu-west-1' && r.Endpoint === 'ec2.eu-west-1.amazonaws.com'));
    const zones = await ec2.send(new DescribeAvailabilityZonesCommand({}));
    assert.deepEqual(zones.AvailabilityZones!.map((z) => [z.ZoneName, z.ZoneId, z.State]), [
      ['us-east-1a', 'use1-az1', 'available'],
      ['us-east-1b', 'use1-az2', 'available'],
      ['us-east-1c', 'use1-az3', 'available'],
    ]);
  });

  test('faults: throttling is retried by the SDK; 500s, failed images, instances without an address', async () => {
    emu.requests.clear();
    emu.faults.throttle = 2;
    await ec2.send(new DescribeRegionsCommand({}));
    assert.equal(emu.requests.count('DescribeRegions', 'RequestLimitExceeded'), 2);
    assert.equal(emu.requests.count('DescribeRegions'), 3);
    assert.equal(emu.requests.entries[0].status, 503);

    const once = ec2Client(emu, 'us-east-1', 1);
    try {
      emu.faults.internalError = 1;
      emu.faults.actions = ['DescribeVpcs'];
      await once.send(new DescribeRegionsCommand({}));
      const err = await rejectsWith(once.send(new DescribeVpcsCommand({})), 'InternalError', 500);
      assert.match(err.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
      emu.faults.actions = undefined;

      emu.faults.rateLimit = { perSecond: 1, burst: 2 };
      await once.send(new DescribeRegionsCommand({}));
      await once.send(new DescribeRegionsCommand({}));
      await rejectsWith(once.send(new DescribeRegionsCommand({})), 'RequestLimitExceeded', 503);
      emu.faults.rateLimit = undefined;
    } finally {
      once.destroy();
    }

    emu.faults.noAddress = 1;
    emu.faults.failImages = 1;
    const run = await ec2.send(new RunInstancesCommand({ ImageId: await newestDebian(ec2), MinCount: 1, MaxCount: 1 }));
    const id = run.Instances![0].InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    const { Reservations } = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    assert.equal(Reservations![0].Instances![0].PublicIpAddress, undefined);
    assert.equal(Reservations![0].Instances![0].PrivateIpAddress, undefined);
    const { ImageId } = await ec2.send(new CreateImageCommand({ InstanceId: id, Name: 'doomed' }));
    const waited = await waitUntilImageAvailable({ client: ec2, ...WAIT }, { ImageIds: [ImageId!] }).catch((err: Error) => err);
    assert.ok(waited instanceof Error && /failed|FAILURE/i.test(String(waited.message) + JSON.stringify(waited)), String(waited));
    const failed = (await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0];
    assert.equal(failed.State, 'failed');
    assert.equal(failed.StateReason!.Code, 'Server.InternalError');
    const snapshotId = failed.BlockDeviceMappings![0].Ebs!.SnapshotId!;
    assert.equal((await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots![0].State, 'error');
    await ec2.send(new DeregisterImageCommand({ ImageId, DeleteAssociatedSnapshots: true }));
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceTerminated({ client: ec2, ...WAIT }, { InstanceIds: [id] });
  });

  test('RunInstances is idempotent on ClientToken; DryRun answers DryRunOperation', async () => {
    const imageId = await newestDebian(ec2);
    const input = { ImageId: imageId, MinCount: 1, MaxCount: 1, ClientToken: 'retry-token-1' };
    const first = await ec2.send(new RunInstancesCommand(input));
    const second = await ec2.send(new RunInstancesCommand(input));
    assert.equal(second.ReservationId, first.ReservationId);
    assert.equal(second.Instances![0].InstanceId, first.Instances![0].InstanceId);
    await rejectsWith(ec2.send(new RunInstancesCommand({ ...input, ClientToken: undefined, DryRun: true })), 'DryRunOperation', 412);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [first.Instances![0].InstanceId!] }));
  });

  test('instance types: unknown ones and an AMI of another architecture are refused as EC2 does; arm64 runs on t4g', async () => {
    const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: [DEBIAN_OWNER_ID], Filters: [{ Name: 'name', Values: ['debian-12-arm64-*'] }] }));
    const arm = Images![0].ImageId!;
    assert.equal(Images![0].Architecture, 'arm64');
    const amd = await newestDebian(ec2);
    const unknown = await rejectsWith(ec2.send(new RunInstancesCommand({ ImageId: amd, MinCount: 1, MaxCount: 1, InstanceType: 't3.gigantic' as never })), 'InvalidParameterValue', 400);
    assert.equal(unknown.message, "Invalid value 't3.gigantic' for InstanceType.");
    const mismatch = await rejectsWith(ec2.send(new RunInstancesCommand({ ImageId: arm, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro' })), 'InvalidParameterValue', 400);
    assert.match(mismatch.message, /^The architecture 'x86_64' of the specified instance type does not match the architecture 'arm64' of the specified AMI\. /);
    const other = await rejectsWith(ec2.send(new RunInstancesCommand({ ImageId: amd, MinCount: 1, MaxCount: 1, InstanceType: 'm7g.large' })), 'InvalidParameterValue');
    assert.match(other.message, /^The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64'/);
    assert.equal(emu.requests.count('RunInstances', 'InvalidParameterValue'), 3);

    const run = await ec2.send(new RunInstancesCommand({ ImageId: arm, MinCount: 1, MaxCount: 1, InstanceType: 't4g.micro' }));
    const id = run.Instances![0].InstanceId!;
    assert.equal(run.Instances![0].Architecture, 'arm64');
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    const { ImageId } = await ec2.send(new CreateImageCommand({ InstanceId: id, Name: 'arm-image' }));
    const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0];
    assert.equal(image.Architecture, 'arm64', 'an AMI has the architecture of the instance it was made from');
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await waitUntilImageAvailable({ client: ec2, ...WAIT }, { ImageIds: [ImageId!] });
    await ec2.send(new DeregisterImageCommand({ ImageId, DeleteAssociatedSnapshots: true }));
  });

  test('signatures: a wrong secret, another access key, no Authorization are refused with AuthFailure', async () => {
    const wrong = ec2Client({ ...emu, secretAccessKey: 'wrong' } as Ec2Emulator, 'us-east-1', 1);
    const stranger = ec2Client({ ...emu, accessKeyId: 'AKIDOTHER' } as Ec2Emulator, 'us-east-1', 1);
    const nowhere = ec2Client(emu, 'xx-nowhere-1', 1);
    try {
      await rejectsWith(wrong.send(new DescribeRegionsCommand({})), 'AuthFailure', 401);
      await rejectsWith(stranger.send(new DescribeRegionsCommand({})), 'AuthFailure', 401);
      await rejectsWith(nowhere.send(new DescribeRegionsCommand({})), 'AuthFailure', 401);
    } finally {
      wrong.destroy();
      stranger.destroy();
      nowhere.destroy();
    }
    const unsigned = await rawRequest(emu.url, { Action: 'DescribeRegions' }, { authorization: null });
    assert.equal(unsigned.status, 401);
    const doc = parseXml(unsigned.body);
    assert.equal(doc.name, 'Response');
    const error = child(child(child(doc, 'Errors')!, 'Error')!, 'Code')!;
    assert.equal(error.text, 'AuthFailure');
    assert.match(child(doc, 'RequestID')!.text, /^[0-9a-f-]{36}$/);
  });
});

async function debianAmi(emu: Ec2Emulator): Promise<string> {
  const { body } = await rawRequest(emu.url, { Action: 'DescribeImages', 'Owner.1': DEBIAN_OWNER_ID, 'Filter.1.Name': 'name', 'Filter.1.Value.1': 'debian-12-amd64-*' });
  return /<imageId>(ami-[0-9a-f]+)<\/imageId>/.exec(body)![1];
}

describe('EC2 emulator: raw Query requests', { timeout: 30_000 }, () => {
  let emu: Ec2Emulator;
  before(async () => {
    emu = await startEc2Emulator({ backend: 'memory', delays: FAST });
  });
  after(async () => emu?.close());

  test('answers are EC2 XML with the 2016-11-15 namespace and a requestId', async () => {
    const { status, body } = await rawRequest(emu.url, { Action: 'DescribeRegions', 'RegionName.1': 'us-west-2' });
    assert.equal(status, 200);
    assert.match(body, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<DescribeRegionsResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/">/);
    const doc = parseXml(body);
    assert.match(child(doc, 'requestId')!.text, /^[0-9a-f-]{36}$/);
    const items = child(doc, 'regionInfo')!.children;
    assert.deepEqual(items.map((i) => child(i, 'regionName')!.text), ['us-west-2']);
  });

  test('booleans are read as EC2 reads them: true and false in any case (libcloud sends NoReboot=True)', async () => {
    const run = await rawRequest(emu.url, { Action: 'RunInstances', ImageId: await debianAmi(emu), MinCount: '1', MaxCount: '1', InstanceType: 't3.micro' });
    assert.equal(run.status, 200, run.body);
    const id = /<instanceId>(i-[0-9a-f]+)<\/instanceId>/.exec(run.body)![1];
    await waitFor('running', 10_000, async () => {
      const { body } = await rawRequest(emu.url, { Action: 'DescribeInstances', 'InstanceId.1': id });
      return body.includes('<name>running</name>') ? true : undefined;
    });
    const created = await rawRequest(emu.url, { Action: 'CreateImage', InstanceId: id, Name: 'libcloud-style', NoReboot: 'True' });
    assert.equal(created.status, 200, created.body);
    const dry = await rawRequest(emu.url, { Action: 'DescribeRegions', DryRun: 'TRUE' });
    assert.equal(dry.status, 412, dry.body);
    assert.equal((await rawRequest(emu.url, { Action: 'DescribeKeyPairs', IncludePublicKey: 'False' })).status, 200);
    const bad = await rawRequest(emu.url, { Action: 'DescribeInstanceStatus', IncludeAllInstances: 'yes' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /<Code>InvalidParameterValue<\/Code><Message>Invalid value &apos;yes&apos; for IncludeAllInstances/);
  });

  test('unknown actions, missing parameters and malformed ids are client errors', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ Action: 'LaunchRockets' }, 'InvalidAction'],
      [{ Action: 'DescribeInstanceTypes', 'InstanceType.1': 't3.micro', 'InstanceType.2': 'x9.huge' }, 'InvalidInstanceType'],
      [{ Action: 'DescribeVolumes', 'VolumeId.1': 'vol-0123456789abcdef0' }, 'InvalidVolume.NotFound'],
      [{ Action: 'DescribeVolumes', 'VolumeId.1': 'volume-1' }, 'InvalidVolumeID.Malformed'],
      [{ Action: 'DescribeAddresses', 'PublicIp.1': '203.0.113.7' }, 'InvalidAddress.NotFound'],
      [{ Action: 'DescribeAddresses', 'Filter.1.Name': 'colour', 'Filter.1.Value.1': 'x' }, 'InvalidParameterValue'],
      [{ Action: 'DescribeTags', 'Filter.1.Name': 'colour', 'Filter.1.Value.1': 'x' }, 'InvalidParameterValue'],
      [{ Action: 'DescribeInstanceAttribute', InstanceId: 'i-0123456789abcdef0', Attribute: 'instanceType' }, 'InvalidInstanceID.NotFound'],
      [{ Action: 'DescribeImageAttribute', ImageId: 'ami-0123456789abcdef0', Attribute: 'description' }, 'InvalidAMIID.NotFound'],
      [{ Action: 'RunInstances', MinCount: '1', MaxCount: '1' }, 'MissingParameter'],
      [{ Action: 'DescribeInstances', 'InstanceId.1': 'nope' }, 'InvalidInstanceID.Malformed'],
      [{ Action: 'DescribeImages', 'ImageId.1': 'ami-0123456789abcdef0' }, 'InvalidAMIID.NotFound'],
      [{ Action: 'DescribeInstances', 'Filter.1.Name': 'instance-state-name', 'Filter.1.Value.1': 'running', MaxResults: 'x' }, 'InvalidParameterValue'],
    ];
    for (const [form, code] of cases) {
      const { status, body } = await rawRequest(emu.url, form);
      assert.equal(status, 400, `${form.Action}: ${body}`);
      assert.equal(child(child(child(parseXml(body), 'Errors')!, 'Error')!, 'Code')!.text, code);
    }
    assert.ok(emu.requests.count(undefined, 'InvalidAction') === 1);
  });
});
