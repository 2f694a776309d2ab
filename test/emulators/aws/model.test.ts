/**
 * Every answer of the emulator, checked against botocore's EC2 service model (the contract AWS
 * publishes for its SDKs): each element must be a member of its shape under its locationName,
 * lists hold `item`s, leaves have the shape's type, enum values are among the model's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
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
  ImportKeyPairCommand,
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
import { parseXml, type XmlElement } from '../../../src/emulators/aws/xml.js';

interface ShapeRef {
  shape: string;
  locationName?: string;
}
interface Shape {
  type: string;
  members?: Record<string, ShapeRef>;
  member?: ShapeRef;
  enum?: string[];
}
interface Model {
  metadata: { apiVersion: string; protocol: string };
  operations: Record<string, { output?: ShapeRef }>;
  shapes: Record<string, Shape>;
}

/** botocore's data directory, from the Python that the AWS CLI runs on, or Debian's package. */
function loadModel(): Model {
  const dirs: string[] = [];
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      dirs.push(execFileSync(python, ['-c', 'import botocore, os; print(os.path.dirname(botocore.__file__))'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      // Not this interpreter.
    }
  }
  dirs.push('/usr/lib/python3/dist-packages/botocore');
  for (const dir of dirs) {
    const base = join(dir, 'data/ec2/2016-11-15/service-2.json');
    if (existsSync(`${base}.gz`)) return JSON.parse(gunzipSync(readFileSync(`${base}.gz`)).toString('utf8')) as Model;
    if (existsSync(base)) return JSON.parse(readFileSync(base, 'utf8')) as Model;
  }
  throw new Error(`botocore's EC2 model not found (looked in ${dirs.join(', ')}); apt-get install awscli`);
}

function checkElement(model: Model, element: XmlElement, shapeName: string, path: string, problems: string[]): void {
  const shape = model.shapes[shapeName];
  const where = `${path}/${element.name}`;
  switch (shape.type) {
    case 'structure':
      for (const c of element.children) {
        const entry = Object.entries(shape.members ?? {}).find(([name, ref]) => (ref.locationName ?? name) === c.name);
        if (!entry) problems.push(`${where}/${c.name}: not a member of ${shapeName}`);
        else checkElement(model, c, entry[1].shape, where, problems);
      }
      return;
    case 'list': {
      const itemName = shape.member!.locationName ?? 'member';
      for (const c of element.children) {
        if (c.name !== itemName) problems.push(`${where}/${c.name}: list ${shapeName} holds <${itemName}>`);
        else checkElement(model, c, shape.member!.shape, where, problems);
      }
      return;
    }
    default:
      if (element.children.length) problems.push(`${where}: ${shapeName} is a ${shape.type}, got child elements`);
  }
  const text = element.text;
  const ok: Record<string, (t: string) => boolean> = {
    boolean: (t) => t === 'true' || t === 'false',
    integer: (t) => /^-?\d+$/.test(t),
    long: (t) => /^-?\d+$/.test(t),
    timestamp: (t) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(t),
    string: () => true,
    blob: () => true,
  };
  if (!(ok[shape.type] ?? (() => false))(text)) problems.push(`${where}: '${text}' is not a ${shape.type}`);
  if (shape.enum && !shape.enum.includes(text)) problems.push(`${where}: '${text}' is not one of ${shapeName}'s values`);
}

/** Problems of one answer against the operation's output shape. */
function checkAnswer(model: Model, action: string, xml: string): string[] {
  const problems: string[] = [];
  const root = parseXml(xml);
  if (root.name !== `${action}Response`) return [`root element <${root.name}>, expected <${action}Response>`];
  const output = model.operations[action].output?.shape;
  for (const c of root.children) {
    if (c.name === 'requestId') continue;
    // Operations without an output shape answer <return>true</return>, as EC2 does.
    if (!output) {
      if (c.name !== 'return' || c.text !== 'true') problems.push(`${action}/${c.name}: ${action} has no output`);
      continue;
    }
    checkElement(model, { ...root, children: [c] }, output, '', problems);
  }
  return problems.map((p) => `${action}: ${p}`);
}

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
    await ec2.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: 'c' }] }));
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceStopped({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    const { ImageId } = await ec2.send(new CreateImageCommand({ InstanceId: id, Name: 'img', TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'a', Value: 'b' }] }] }));
    await waitUntilImageAvailable({ client: ec2, ...WAIT }, { ImageIds: [ImageId!] });
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
  const problems = emu.requests.entries.filter((e) => e.status === 200).flatMap((e) => checkAnswer(model, e.action, e.body!));
  assert.deepEqual(problems, []);
});
