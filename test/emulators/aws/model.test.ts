/**
 * Every answer of the emulator, checked against botocore's EC2 service model (the contract AWS
 * publishes for its SDKs): each element must be a member of its shape under its locationName,
 * lists hold `item`s, leaves have the shape's type, enum values are among the model's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CopyImageCommand,
  CreateImageCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceStatusCommand,
  DescribeInstanceTypesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeRegionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeTagsCommand,
  DescribeVolumesCommand,
  DescribeVpcsCommand,
  DisassociateAddressCommand,
  ImportKeyPairCommand,
  ModifyImageAttributeCommand,
  ReleaseAddressCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  waitUntilImageAvailable,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilInstanceTerminated,
} from '@aws-sdk/client-ec2';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { OPERATIONS, startEc2Emulator, type Ec2Emulator } from '../../../src/emulators/aws/server.js';
import { ec2Client } from './test-support.js';
import { checkAnswer, checkAnswers, loadModel, type Model } from './botocore-model.js';

let model: Model;
let emu: Ec2Emulator;

before(async () => {
  model = loadModel();
  emu = await startEc2Emulator({
    backend: 'memory',
    recordResponses: true,
    delays: { instancePendingMs: 20, instanceStoppingMs: 20, instanceShuttingDownMs: 20, imagePendingMs: 20, copyImageMs: 20 },
  });
});
after(async () => emu?.close());

test('the model is the EC2 Query protocol of 2016-11-15 and has every emulated operation', () => {
  assert.equal(model.metadata.protocol, 'ec2');
  assert.equal(model.metadata.apiVersion, '2016-11-15');
  for (const action of Object.keys(OPERATIONS)) assert.ok(model.operations[action], `${action} is not an EC2 operation`);
});

test('the checker catches a member that is not in the model, and a bad enum value', () => {
  const bad = `<DescribeRegionsResponse><requestId>x</requestId><regionInfo><item><regionName>a</regionName><colour>b</colour></item></regionInfo></DescribeRegionsResponse>`;
  assert.deepEqual(checkAnswer(model, 'DescribeRegions', bad), ['DescribeRegions: /DescribeRegionsResponse/regionInfo/item/colour: not a member of Region']);
  const state = `<DescribeImagesResponse><requestId>x</requestId><imagesSet><item><imageState>ready</imageState></item></imagesSet></DescribeImagesResponse>`;
  assert.equal(checkAnswer(model, 'DescribeImages', state).length, 1);
});

test('every answer of every emulated operation matches the botocore model', { timeout: 60_000 }, async () => {
  const ec2 = ec2Client(emu);
  const eu = ec2Client(emu, 'eu-west-1');
  const WAIT = { maxWaitTime: 20, minDelay: 1, maxDelay: 1 };
  try {
    const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: [DEBIAN_OWNER_ID], Filters: [{ Name: 'name', Values: ['debian-12-amd64-*'] }] }));
    await ec2.send(new ImportKeyPairCommand({ KeyName: 'k', PublicKeyMaterial: Buffer.from('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x') }));
    await ec2.send(new DescribeKeyPairsCommand({ IncludePublicKey: true }));
    const { GroupId } = await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'g', Description: 'd', TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'a', Value: 'b' }] }] }));
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] }));
    await ec2.send(new DescribeSecurityGroupsCommand({}));
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: Images![0].ImageId,
        MinCount: 1,
        MaxCount: 1,
        KeyName: 'k',
        SecurityGroupIds: [GroupId!],
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }],
      }),
    );
    const id = run.Instances![0].InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'c', Value: 'd' }] }));
    await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [id] }] }));
    await ec2.send(new DescribeInstanceStatusCommand({ IncludeAllInstances: true }));
    for (const Attribute of ['instanceType', 'userData', 'blockDeviceMapping', 'groupSet', 'disableApiTermination', 'kernel', 'enclaveOptions'] as const) {
      await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute }));
    }
    await ec2.send(new DescribeVolumesCommand({}));
    await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['t3.micro', 't4g.small', 'm1.small'] }));
    const eip = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: [{ Key: 'a', Value: 'b' }] }] }));
    const { AssociationId } = await ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, InstanceId: id }));
    await ec2.send(new DescribeAddressesCommand({}));
    await ec2.send(new DisassociateAddressCommand({ AssociationId }));
    await ec2.send(new ReleaseAddressCommand({ AllocationId: eip.AllocationId }));
    await ec2.send(new CreateKeyPairCommand({ KeyName: 'made', KeyType: 'ed25519', TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'a', Value: 'b' }] }] }));
    await ec2.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: 'c' }] }));
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceStopped({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    const { ImageId } = await ec2.send(new CreateImageCommand({ InstanceId: id, Name: 'img', TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'a', Value: 'b' }] }] }));
    await waitUntilImageAvailable({ client: ec2, ...WAIT }, { ImageIds: [ImageId!] });
    await ec2.send(new ModifyImageAttributeCommand({ ImageId, LaunchPermission: { Add: [{ UserId: '210987654321' }, { Group: 'all' }] } }));
    for (const Attribute of ['launchPermission', 'description', 'blockDeviceMapping', 'lastLaunchedTime', 'bootMode', 'productCodes'] as const) {
      await ec2.send(new DescribeImageAttributeCommand({ ImageId, Attribute }));
    }
    await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    const copy = await eu.send(new CopyImageCommand({ SourceImageId: ImageId, SourceRegion: 'us-east-1', Name: 'img', CopyImageTags: true }));
    await waitUntilImageAvailable({ client: eu, ...WAIT }, { ImageIds: [copy.ImageId!] });
    await eu.send(new DeregisterImageCommand({ ImageId: copy.ImageId, DeleteAssociatedSnapshots: true }));
    const { Snapshots } = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    await ec2.send(new DescribeInstancesCommand({}));
    await ec2.send(new DeregisterImageCommand({ ImageId }));
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: Snapshots![0].SnapshotId }));
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceTerminated({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId }));
    await ec2.send(new DeleteKeyPairCommand({ KeyName: 'k' }));
    await ec2.send(new DescribeVpcsCommand({}));
    await ec2.send(new DescribeSubnetsCommand({}));
    await ec2.send(new DescribeRegionsCommand({}));
    await ec2.send(new DescribeAvailabilityZonesCommand({}));
  } finally {
    ec2.destroy();
    eu.destroy();
  }
  const answered = new Set(emu.requests.entries.filter((e) => e.status === 200).map((e) => e.action));
  assert.deepEqual(Object.keys(OPERATIONS).filter((a) => !answered.has(a)), [], 'every operation was exercised');
  const problems = checkAnswers(model, emu.requests.entries);
  assert.deepEqual(problems, []);
});
