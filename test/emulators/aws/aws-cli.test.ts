/**
 * Conformance with a real client: the AWS CLI (botocore) against the emulator, with no config
 * files, signatures checked. The first test runs on real machines: what a script writes over SSH
 * on an instance is in the AMI made from it, and in an instance run from that AMI.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair, nspawnPids, overlayMountsBelow } from '../machines/test-support.js';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { startEc2Emulator, type Ec2Emulator } from '../../../src/emulators/aws/server.js';
import { checkAnswers, loadModel } from './botocore-model.js';
import { awsCli, waitFor, type CliResult } from './test-support.js';

const CLI_TIMEOUT = 60_000;

function ok(result: CliResult, what: string): any {
  assert.equal(result.code, 0, `${what} failed (exit ${result.code}): ${result.stderr}`);
  return result.json;
}

async function instanceState(emu: Ec2Emulator, id: string): Promise<any> {
  const out = ok(await awsCli(emu, ['describe-instances', '--instance-ids', id]), 'describe-instances');
  return out.Reservations[0].Instances[0];
}

async function newestDebian(emu: Ec2Emulator): Promise<{ ImageId: string; Name: string }> {
  const out = ok(
    await awsCli(emu, ['describe-images', '--owners', DEBIAN_OWNER_ID, '--filters', 'Name=name,Values=debian-12-amd64-*']),
    'describe-images --owners 136693071363',
  );
  assert.ok(out.Images.length >= 2, 'several Debian 12 amd64 AMIs');
  for (const image of out.Images) assert.match(image.Name, /^debian-12-amd64-/);
  return out.Images.sort((a: any, b: any) => b.CreationDate.localeCompare(a.CreationDate))[0];
}

test(
  'AWS CLI on real machines: run-instances, describe-instances, create-image, wait image-available, describe-images --owners self, deregister-image, terminate-instances',
  { timeout: 300_000 },
  async () => {
    const key = await makeKeyPair();
    const emu = await startEc2Emulator({
      accessKeyId: 'AKIDCLITEST',
      secretAccessKey: 'cli/test+secret',
      delays: { instancePendingMs: 300, instanceStoppingMs: 300, instanceShuttingDownMs: 300, imagePendingMs: 1000 },
    });
    const pool = (emu.cloud.backend as { pool?: { runDir: string; list(): unknown[] } }).pool!;
    const timings: Record<string, number> = {};
    const timed = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
      const t = Date.now();
      try {
        return await work();
      } finally {
        timings[what] = Date.now() - t;
      }
    };
    try {
      const debian = await newestDebian(emu);
      const pubPath = join(dirname(key.privateKeyPath), 'key.pub');
      await writeFile(pubPath, `${key.publicKey}\n`);
      ok(await awsCli(emu, ['import-key-pair', '--key-name', 'cli-key', '--public-key-material', `fileb://${pubPath}`]), 'import-key-pair');

      const launched = ok(
        await awsCli(emu, [
          'run-instances',
          '--image-id',
          debian.ImageId,
          '--count',
          '1',
          '--instance-type',
          't3.micro',
          '--key-name',
          'cli-key',
          '--tag-specifications',
          'ResourceType=instance,Tags=[{Key=Name,Value=builder}]',
        ]),
        'run-instances',
      );
      const builderId: string = launched.Instances[0].InstanceId;
      assert.equal(launched.Instances[0].State.Name, 'pending');
      const builder = await timed('builder running', () =>
        waitFor('the builder to run', 90_000, async () => {
          const i = await instanceState(emu, builderId);
          return i.State.Name === 'running' ? i : undefined;
        }, 300),
      );
      assert.match(builder.PublicIpAddress, /^127\./);
      assert.deepEqual(builder.Tags, [{ Key: 'Name', Value: 'builder' }]);

      const endpoint = { host: builder.PublicIpAddress, port: emu.sshPort, user: 'root' };
      const ssh = await timed('builder ssh', () => waitForSsh(endpoint, key.privateKey, 60_000));
      const wrote = await sshExec(ssh, 'echo built-by-script > /etc/provisional-marker && sync');
      ssh.end();
      assert.equal(wrote.code, 0, wrote.stderr);

      // A running instance: the emulator shuts it down, captures its disk and boots it again.
      const created = ok(
        await awsCli(emu, [
          'create-image',
          '--instance-id',
          builderId,
          '--name',
          'web-20240201120000',
          '--tag-specifications',
          'ResourceType=image,Tags=[{Key=provisional-image,Value=web}]',
          'ResourceType=snapshot,Tags=[{Key=provisional-image,Value=web}]',
        ]),
        'create-image',
      );
      const amiId: string = created.ImageId;
      assert.match(amiId, /^ami-[0-9a-f]{17}$/);
      // botocore's waiter polls every 15 s: the image is pending at its first look.
      await timed('wait image-available', async () =>
        ok(await awsCli(emu, ['wait', 'image-available', '--image-ids', amiId], { timeoutMs: 120_000 }), 'wait image-available'),
      );
      const mine = ok(await awsCli(emu, ['describe-images', '--owners', 'self']), 'describe-images --owners self');
      assert.deepEqual(
        mine.Images.map((i: any) => [i.ImageId, i.Name, i.State, i.Tags]),
        [[amiId, 'web-20240201120000', 'available', [{ Key: 'provisional-image', Value: 'web' }]]],
      );
      const snapshotId: string = mine.Images[0].BlockDeviceMappings[0].Ebs.SnapshotId;

      const fromAmi = ok(await awsCli(emu, ['run-instances', '--image-id', amiId, '--count', '1', '--key-name', 'cli-key']), 'run-instances from the AMI');
      const serverId: string = fromAmi.Instances[0].InstanceId;
      const server = await timed('server running', () =>
        waitFor('the server to run', 90_000, async () => {
          const i = await instanceState(emu, serverId);
          return i.State.Name === 'running' ? i : undefined;
        }, 300),
      );
      assert.notEqual(server.PublicIpAddress, builder.PublicIpAddress);
      const ssh2 = await timed('server ssh', () => waitForSsh({ ...endpoint, host: server.PublicIpAddress }, key.privateKey, 60_000));
      const read = await sshExec(ssh2, 'cat /etc/provisional-marker');
      ssh2.end();
      assert.equal(read.stdout.trim(), 'built-by-script', 'the AMI captured what the script wrote');

      // The builder came back after the capture.
      assert.equal((await instanceState(emu, builderId)).State.Name, 'running');
      const ssh3 = await waitForSsh(endpoint, key.privateKey, 60_000);
      assert.equal((await sshExec(ssh3, 'cat /etc/provisional-marker')).stdout.trim(), 'built-by-script');
      ssh3.end();

      ok(await awsCli(emu, ['deregister-image', '--image-id', amiId]), 'deregister-image');
      assert.deepEqual(ok(await awsCli(emu, ['describe-images', '--owners', 'self']), 'describe-images').Images, []);
      ok(await awsCli(emu, ['delete-snapshot', '--snapshot-id', snapshotId]), 'delete-snapshot');
      const terminated = ok(await awsCli(emu, ['terminate-instances', '--instance-ids', builderId, serverId]), 'terminate-instances');
      assert.deepEqual(
        terminated.TerminatingInstances.map((c: any) => c.CurrentState.Name),
        ['shutting-down', 'shutting-down'],
      );
      await timed('terminated', () =>
        waitFor('both instances to terminate', 60_000, async () => {
          const out = ok(await awsCli(emu, ['describe-instances', '--instance-ids', builderId, serverId]), 'describe-instances');
          const states = out.Reservations.flatMap((r: any) => r.Instances.map((i: any) => i.State.Name));
          return states.every((s: string) => s === 'terminated') ? true : undefined;
        }, 300),
      );
      assert.equal(pool.list().length, 0, 'no machine left');
      ok(await awsCli(emu, ['delete-key-pair', '--key-name', 'cli-key']), 'delete-key-pair');
      console.log(`timings (ms): ${JSON.stringify(timings)}; requests: ${JSON.stringify(emu.requests.counts())}`);
    } finally {
      await emu.close();
      await key.cleanup();
    }
    assert.equal(existsSync(pool.runDir), false, 'run directory removed');
    assert.deepEqual(await nspawnPids(pool.runDir), []);
    assert.deepEqual(await overlayMountsBelow(pool.runDir), []);
  },
);

test('AWS CLI: pagination followed by the CLI, error codes and exit status', { timeout: 120_000 }, async () => {
  const emu = await startEc2Emulator({ backend: 'memory', secretAccessKey: 'cli-secret', delays: { instancePendingMs: 10 } });
  try {
    const debian = await newestDebian(emu);
    const run = ok(await awsCli(emu, ['run-instances', '--image-id', debian.ImageId, '--count', '12']), 'run-instances --count 12');
    assert.equal(run.Instances.length, 12);
    const all = ok(await awsCli(emu, ['describe-instances', '--page-size', '5']), 'describe-instances --page-size 5');
    assert.equal(all.Reservations.flatMap((r: any) => r.Instances).length, 12);
    assert.equal(emu.requests.count('DescribeInstances'), 3, 'three pages of 5, 5 and 2');

    const missing = await awsCli(emu, ['describe-instances', '--instance-ids', 'i-0123456789abcdef0']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /InvalidInstanceID\.NotFound.*i-0123456789abcdef0/);

    const eu = await awsCli(emu, ['describe-images', '--owners', 'self'], { region: 'eu-west-1' });
    assert.deepEqual(ok(eu, 'describe-images in eu-west-1').Images, []);

    emu.faults.throttle = 1;
    ok(await awsCli(emu, ['describe-regions']), 'describe-regions after a throttle (retried by botocore)');
    assert.equal(emu.requests.count('DescribeRegions', 'RequestLimitExceeded'), 1);
  } finally {
    await emu.close();
  }
});

test('provisional-emulator aws prints its endpoint and credentials, serves the AWS CLI, stops on SIGTERM', { timeout: 120_000 }, async () => {
  const bin = join(dirname(fileURLToPath(import.meta.url)), '../../../../bin/provisional-emulator.js');
  const child = spawn(process.execPath, [bin, 'aws', '--port', '0', '--access-key-id', 'AKIDSUBCOMMAND'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const exportLine = await waitFor('the export line', 60_000, async () => stdout.split('\n').find((l) => l.includes('export AWS_ENDPOINT_URL_EC2=')));
    const url = /AWS_ENDPOINT_URL_EC2=(\S+)/.exec(exportLine)![1];
    const accessKeyId = /AWS_ACCESS_KEY_ID=(\S+)/.exec(exportLine)![1];
    const secretAccessKey = /AWS_SECRET_ACCESS_KEY='([^']+)'/.exec(exportLine)![1];
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(accessKeyId, 'AKIDSUBCOMMAND');
    const emu = { url, accessKeyId, secretAccessKey } as Ec2Emulator;
    const images = ok(await awsCli(emu, ['describe-images', '--owners', DEBIAN_OWNER_ID, '--filters', 'Name=name,Values=debian-12-*']), 'describe-images');
    assert.ok(images.Images.length > 0);
    const wrongKey = await awsCli({ ...emu, accessKeyId: 'AKIDOTHER' }, ['describe-regions']);
    assert.match(wrongKey.stderr, /AuthFailure/);
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, `exit ${code}; stderr: ${stderr}`);
  }
});

/** The CLI's error for a failed call: its exit status is not 0 and stderr names the code. */
function fails(result: CliResult, code: string, message?: RegExp): void {
  assert.notEqual(result.code, 0, `expected ${code}, got success: ${result.stdout}`);
  assert.match(result.stderr, new RegExp(`\\(${code.replace(/\./g, '\\.')}\\)`));
  if (message) assert.match(result.stderr, message);
}

describe('AWS CLI: the actions other clients call (one emulator on real machines for every case)', { timeout: 400_000 }, () => {
  let emu: Ec2Emulator;
  let dir: string;
  let debian: { ImageId: string; Name: string };
  /** The instance launched with a CreateKeyPair key, and what the cases learn of it. */
  let instanceId: string;
  let address: string;
  let rsaKey: string;

  before(async () => {
    emu = await startEc2Emulator({
      accessKeyId: 'AKIDCLICASES',
      secretAccessKey: 'cli/cases+secret',
      recordResponses: true,
      delays: { instancePendingMs: 300, instanceStoppingMs: 300, instanceShuttingDownMs: 300, imagePendingMs: 1000, statusChecksMs: 600_000 },
    });
    dir = await mkdtemp(join(tmpdir(), 'aws-cli-cases-'));
    debian = await newestDebian(emu);
  });
  after(async () => {
    await emu?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('create-key-pair: RSA (PEM) and ED25519 (OpenSSH) keys, EC2 fingerprints, duplicates refused', async () => {
    const rsa = ok(await awsCli(emu, ['create-key-pair', '--key-name', 'made-rsa', '--tag-specifications', 'ResourceType=key-pair,Tags=[{Key=team,Value=ops}]']), 'create-key-pair');
    assert.match(rsa.KeyMaterial, /^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----$/);
    assert.match(rsa.KeyFingerprint, /^([0-9a-f]{2}:){19}[0-9a-f]{2}$/, 'SHA-1 of the private key');
    assert.match(rsa.KeyPairId, /^key-[0-9a-f]{17}$/);
    assert.deepEqual(rsa.Tags, [{ Key: 'team', Value: 'ops' }]);
    rsaKey = rsa.KeyMaterial;
    const ed = ok(await awsCli(emu, ['create-key-pair', '--key-name', 'made-ed25519', '--key-type', 'ed25519']), 'create-key-pair --key-type ed25519');
    assert.match(ed.KeyMaterial, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.match(ed.KeyFingerprint, /^[A-Za-z0-9+/]{43}=$/, 'base64 SHA-256 of the public key');
    const listed = ok(await awsCli(emu, ['describe-key-pairs', '--key-names', 'made-rsa', 'made-ed25519']), 'describe-key-pairs').KeyPairs;
    assert.deepEqual(
      listed.map((k: any) => [k.KeyName, k.KeyType, k.KeyFingerprint]),
      [
        ['made-rsa', 'rsa', rsa.KeyFingerprint],
        ['made-ed25519', 'ed25519', ed.KeyFingerprint],
      ],
    );
    fails(await awsCli(emu, ['create-key-pair', '--key-name', 'made-rsa']), 'InvalidKeyPair.Duplicate');
  });

  test('run-instances with the created key; unknown types and other architectures refused', async () => {
    fails(await awsCli(emu, ['run-instances', '--image-id', debian.ImageId, '--instance-type', 't3.enormous']), 'InvalidParameterValue', /Invalid value 't3\.enormous' for InstanceType/);
    fails(
      await awsCli(emu, ['run-instances', '--image-id', debian.ImageId, '--instance-type', 't4g.micro']),
      'InvalidParameterValue',
      /The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the specified AMI/,
    );
    const launched = ok(
      await awsCli(emu, [
        'run-instances',
        '--image-id',
        debian.ImageId,
        '--instance-type',
        't3.micro',
        '--key-name',
        'made-rsa',
        '--user-data',
        'hello',
        '--tag-specifications',
        'ResourceType=instance,Tags=[{Key=Name,Value=cases}]',
        'ResourceType=volume,Tags=[{Key=disk,Value=root}]',
      ]),
      'run-instances',
    );
    instanceId = launched.Instances[0].InstanceId;
    const running = await waitFor('the instance to run', 90_000, async () => {
      const i = await instanceState(emu, instanceId);
      return i.State.Name === 'running' ? i : undefined;
    }, 300);
    address = running.PublicIpAddress;
  });

  test('describe-instance-status and wait instance-status-ok: initializing, then ok', { timeout: 120_000 }, async () => {
    // The checks take statusChecksMs (10 min here) after running: the first look is during them.
    const first = ok(await awsCli(emu, ['describe-instance-status', '--instance-ids', instanceId]), 'describe-instance-status').InstanceStatuses;
    assert.equal(first.length, 1);
    assert.equal(first[0].InstanceState.Name, 'running');
    assert.deepEqual(first[0].InstanceStatus, { Status: 'initializing', Details: [{ Name: 'reachability', Status: 'initializing' }] });
    const started = Date.now();
    const before = emu.requests.entries.length;
    const polls = () => emu.requests.entries.slice(before).filter((e) => e.action === 'DescribeInstanceStatus');
    const waiting = awsCli(emu, ['wait', 'instance-status-ok', '--instance-ids', instanceId], { timeoutMs: 100_000 });
    // The waiter's first poll sees the checks initializing; then they pass (whatever the machine's load).
    await waitFor("the waiter's first poll", 60_000, async () => (polls().length > 0 ? true : undefined), 200);
    assert.match(polls()[0].body!, /<instanceStatus><status>initializing<\/status>/);
    emu.cloud.delays.statusChecksMs = 0;
    ok(await waiting, 'wait instance-status-ok');
    assert.ok(polls().length >= 2, 'the waiter polled until the checks passed');
    const status = ok(await awsCli(emu, ['describe-instance-status', '--instance-ids', instanceId]), 'describe-instance-status').InstanceStatuses[0];
    assert.deepEqual([status.InstanceStatus, status.SystemStatus], [
      { Status: 'ok', Details: [{ Name: 'reachability', Status: 'passed' }] },
      { Status: 'ok', Details: [{ Name: 'reachability', Status: 'passed' }] },
    ]);
    assert.match(status.AvailabilityZone, /^us-east-1[abc]$/);
    console.log(`wait instance-status-ok: ${Date.now() - started} ms`);
    const filtered = ok(await awsCli(emu, ['describe-instance-status', '--filters', 'Name=instance-status.status,Values=impaired']), 'describe-instance-status --filters');
    assert.deepEqual(filtered.InstanceStatuses, []);
  });

  test('the private half of the created key logs in over SSH', async () => {
    const ssh = await waitForSsh({ host: address, port: emu.sshPort, user: 'root' }, rsaKey, 60_000);
    const r = await sshExec(ssh, 'echo logged-in-with-create-key-pair');
    ssh.end();
    assert.equal(r.stdout.trim(), 'logged-in-with-create-key-pair');
  });

  test('describe-instance-attribute', async () => {
    const attribute = async (name: string) => ok(await awsCli(emu, ['describe-instance-attribute', '--instance-id', instanceId, '--attribute', name]), `describe-instance-attribute ${name}`);
    assert.deepEqual(await attribute('instanceType'), { InstanceId: instanceId, InstanceType: { Value: 't3.micro' } });
    assert.equal(Buffer.from((await attribute('userData')).UserData.Value, 'base64').toString(), 'hello');
    const devices = (await attribute('blockDeviceMapping')).BlockDeviceMappings;
    assert.equal(devices.length, 1);
    assert.equal(devices[0].DeviceName, '/dev/xvda');
    fails(await awsCli(emu, ['describe-instance-attribute', '--instance-id', 'i-0123456789abcdef0', '--attribute', 'instanceType']), 'InvalidInstanceID.NotFound');
  });

  test('describe-volumes: the root volume, attached, tagged, filtered; create-image snapshots name it', async () => {
    const volumes = ok(await awsCli(emu, ['describe-volumes', '--filters', `Name=attachment.instance-id,Values=${instanceId}`]), 'describe-volumes').Volumes;
    assert.equal(volumes.length, 1);
    const volume = volumes[0];
    const instance = await instanceState(emu, instanceId);
    assert.equal(volume.VolumeId, instance.BlockDeviceMappings[0].Ebs.VolumeId);
    assert.equal(volume.State, 'in-use');
    assert.equal(volume.AvailabilityZone, instance.Placement.AvailabilityZone);
    assert.deepEqual(volume.Tags, [{ Key: 'disk', Value: 'root' }]);
    assert.deepEqual(
      volume.Attachments.map((a: any) => [a.InstanceId, a.Device, a.State, a.DeleteOnTermination]),
      [[instanceId, '/dev/xvda', 'attached', true]],
    );
    const source = ok(await awsCli(emu, ['describe-images', '--image-ids', debian.ImageId]), 'describe-images').Images[0];
    assert.equal(volume.SnapshotId, source.BlockDeviceMappings[0].Ebs.SnapshotId, 'made from the AMI\'s snapshot');
    assert.equal(volume.Size, source.BlockDeviceMappings[0].Ebs.VolumeSize);
    for (const filter of ['Name=tag:disk,Values=root', `Name=volume-id,Values=${volume.VolumeId}`]) {
      assert.deepEqual(ok(await awsCli(emu, ['describe-volumes', '--filters', filter]), filter).Volumes.map((v: any) => v.VolumeId), [volume.VolumeId], filter);
    }
    assert.deepEqual(ok(await awsCli(emu, ['describe-volumes', '--filters', 'Name=status,Values=available']), 'describe-volumes').Volumes, []);
    fails(await awsCli(emu, ['describe-volumes', '--volume-ids', 'vol-0123456789abcdef0']), 'InvalidVolume.NotFound');

    const created = ok(await awsCli(emu, ['create-image', '--instance-id', instanceId, '--name', 'cases-image', '--no-reboot']), 'create-image --no-reboot');
    ok(await awsCli(emu, ['wait', 'image-available', '--image-ids', created.ImageId], { timeoutMs: 120_000 }), 'wait image-available');
    const snapshotId = ok(await awsCli(emu, ['describe-images', '--image-ids', created.ImageId]), 'describe-images').Images[0].BlockDeviceMappings[0].Ebs.SnapshotId;
    const snapshot = ok(await awsCli(emu, ['describe-snapshots', '--snapshot-ids', snapshotId]), 'describe-snapshots').Snapshots[0];
    assert.equal(snapshot.VolumeId, volume.VolumeId, 'the snapshot is of the instance\'s root volume');
    assert.equal(snapshot.VolumeSize, volume.Size);
  });

  test('describe-image-attribute and modify-image-attribute: description, launch permissions (shares and public)', async () => {
    const image = ok(await awsCli(emu, ['describe-images', '--owners', 'self', '--filters', 'Name=name,Values=cases-image']), 'describe-images').Images[0];
    const attribute = async (name: string) => ok(await awsCli(emu, ['describe-image-attribute', '--image-id', image.ImageId, '--attribute', name]), `describe-image-attribute ${name}`);
    assert.deepEqual((await attribute('launchPermission')).LaunchPermissions, []);
    ok(await awsCli(emu, ['modify-image-attribute', '--image-id', image.ImageId, '--launch-permission', 'Add=[{UserId=210987654321}]']), 'modify-image-attribute --launch-permission');
    assert.deepEqual((await attribute('launchPermission')).LaunchPermissions, [{ UserId: '210987654321' }]);
    const shared = ok(await awsCli(emu, ['describe-images', '--executable-users', '210987654321', '--filters', 'Name=name,Values=cases-image']), 'describe-images --executable-users');
    assert.deepEqual(shared.Images.map((i: any) => i.ImageId), [image.ImageId]);
    ok(await awsCli(emu, ['modify-image-attribute', '--image-id', image.ImageId, '--attribute', 'launchPermission', '--operation-type', 'add', '--user-groups', 'all']), 'modify-image-attribute --user-groups all');
    assert.equal(ok(await awsCli(emu, ['describe-images', '--image-ids', image.ImageId]), 'describe-images').Images[0].Public, true);
    ok(await awsCli(emu, ['modify-image-attribute', '--image-id', image.ImageId, '--launch-permission', 'Remove=[{Group=all},{UserId=210987654321}]']), 'modify-image-attribute Remove');
    assert.deepEqual((await attribute('launchPermission')).LaunchPermissions, []);
    assert.equal(ok(await awsCli(emu, ['describe-images', '--image-ids', image.ImageId]), 'describe-images').Images[0].Public, false);

    ok(await awsCli(emu, ['modify-image-attribute', '--image-id', image.ImageId, '--description', 'Value=built by the cases']), 'modify-image-attribute --description');
    assert.deepEqual((await attribute('description')).Description, { Value: 'built by the cases' });
    assert.equal((await attribute('blockDeviceMapping')).BlockDeviceMappings[0].Ebs.SnapshotId, image.BlockDeviceMappings[0].Ebs.SnapshotId);
    fails(await awsCli(emu, ['modify-image-attribute', '--image-id', image.ImageId, '--launch-permission', 'Add=[{UserId=not-an-account}]']), 'InvalidAMIAttributeItemValue');
    fails(await awsCli(emu, ['describe-image-attribute', '--image-id', debian.ImageId, '--attribute', 'launchPermission']), 'AuthFailure');
  });

  test('describe-tags: every resource type, filters resource-id, resource-type, key, value, pagination', async () => {
    ok(await awsCli(emu, ['create-tags', '--resources', instanceId, '--tags', ...Array.from({ length: 7 }, (_, n) => `Key=k${n},Value=v${n % 2}`)]), 'create-tags');
    const all = ok(await awsCli(emu, ['describe-tags']), 'describe-tags').Tags;
    const key = (t: any) => `${t.ResourceType}:${t.ResourceId}:${t.Key}=${t.Value}`;
    const volumeId = (await instanceState(emu, instanceId)).BlockDeviceMappings[0].Ebs.VolumeId;
    const keyPairId = ok(await awsCli(emu, ['describe-key-pairs', '--key-names', 'made-rsa']), 'describe-key-pairs').KeyPairs[0].KeyPairId;
    for (const expected of [`instance:${instanceId}:Name=cases`, `volume:${volumeId}:disk=root`, `key-pair:${keyPairId}:team=ops`, `instance:${instanceId}:k6=v0`]) {
      assert.ok(all.map(key).includes(expected), `${expected} in ${JSON.stringify(all.map(key))}`);
    }
    const filter = async (...filters: string[]) => ok(await awsCli(emu, ['describe-tags', '--filters', ...filters]), `describe-tags ${filters}`).Tags.map(key);
    assert.deepEqual(await filter('Name=resource-type,Values=volume'), [`volume:${volumeId}:disk=root`]);
    assert.equal((await filter(`Name=resource-id,Values=${instanceId}`)).length, 8);
    assert.deepEqual(await filter(`Name=resource-id,Values=${instanceId}`, 'Name=key,Values=k1,k2'), [`instance:${instanceId}:k1=v1`, `instance:${instanceId}:k2=v0`]);
    assert.equal((await filter('Name=value,Values=v1')).length, 3);
    // Elastic IPs are tagged resources too: at allocation, and by CreateTags on the allocation id.
    const eip = ok(await awsCli(emu, ['allocate-address', '--tag-specifications', 'ResourceType=elastic-ip,Tags=[{Key=role,Value=front}]']), 'allocate-address');
    ok(await awsCli(emu, ['create-tags', '--resources', eip.AllocationId, '--tags', 'Key=zone,Value=a']), 'create-tags on an Elastic IP');
    assert.deepEqual(await filter('Name=resource-type,Values=elastic-ip'), [`elastic-ip:${eip.AllocationId}:role=front`, `elastic-ip:${eip.AllocationId}:zone=a`]);
    ok(await awsCli(emu, ['release-address', '--allocation-id', eip.AllocationId]), 'release-address');
    const before = emu.requests.count('DescribeTags');
    const paged = ok(await awsCli(emu, ['describe-tags', '--filters', `Name=resource-id,Values=${instanceId}`, '--page-size', '5']), 'describe-tags --page-size 5').Tags;
    assert.equal(paged.length, 8);
    assert.equal(emu.requests.count('DescribeTags') - before, 2, 'two pages: 5 and 3');
  });

  test('describe-addresses: none in the account; filters and lookups checked', async () => {
    assert.deepEqual(ok(await awsCli(emu, ['describe-addresses', '--filters', `Name=instance-id,Values=${instanceId}`]), 'describe-addresses --filters').Addresses, []);
    fails(await awsCli(emu, ['describe-addresses', '--public-ips', address]), 'InvalidAddress.NotFound');
    fails(await awsCli(emu, ['describe-addresses', '--filters', 'Name=colour,Values=red']), 'InvalidParameterValue');
  });

  test('describe-instance-types: the table RunInstances checks against', async () => {
    const types = ok(await awsCli(emu, ['describe-instance-types', '--instance-types', 't3.micro', 't4g.micro']), 'describe-instance-types').InstanceTypes;
    assert.deepEqual(
      types.map((t: any) => [t.InstanceType, t.ProcessorInfo.SupportedArchitectures, t.VCpuInfo.DefaultVCpus, t.MemoryInfo.SizeInMiB]).sort(),
      [
        ['t3.micro', ['x86_64'], 2, 1024],
        ['t4g.micro', ['arm64'], 2, 1024],
      ],
    );
    const arm = ok(await awsCli(emu, ['describe-instance-types', '--filters', 'Name=processor-info.supported-architecture,Values=arm64', 'Name=instance-type,Values=t4g.*']), 'describe-instance-types --filters').InstanceTypes;
    assert.deepEqual(arm.map((t: any) => t.InstanceType).sort(), ['t4g.2xlarge', 't4g.large', 't4g.medium', 't4g.micro', 't4g.nano', 't4g.small', 't4g.xlarge']);
    const all = ok(await awsCli(emu, ['describe-instance-types']), 'describe-instance-types (every page)').InstanceTypes;
    assert.ok(all.length > 50 && all.some((t: any) => t.InstanceType === 'm1.small'));
    fails(await awsCli(emu, ['describe-instance-types', '--instance-types', 't3.micro', 'x9.huge']), 'InvalidInstanceType', /\[x9\.huge\]/);
  });

  test('terminate: the root volume goes with the instance; every answer matched botocore\'s model', async () => {
    const volumeId = (await instanceState(emu, instanceId)).BlockDeviceMappings[0].Ebs.VolumeId;
    ok(await awsCli(emu, ['terminate-instances', '--instance-ids', instanceId]), 'terminate-instances');
    ok(await awsCli(emu, ['wait', 'instance-terminated', '--instance-ids', instanceId], { timeoutMs: 120_000 }), 'wait instance-terminated');
    assert.deepEqual(ok(await awsCli(emu, ['describe-volumes', '--filters', `Name=volume-id,Values=${volumeId}`]), 'describe-volumes').Volumes, []);
    assert.deepEqual(ok(await awsCli(emu, ['describe-instance-status', '--instance-ids', instanceId]), 'describe-instance-status').InstanceStatuses, []);
    assert.equal(
      ok(await awsCli(emu, ['describe-instance-status', '--instance-ids', instanceId, '--include-all-instances']), 'describe-instance-status --include-all-instances').InstanceStatuses[0].InstanceStatus.Status,
      'not-applicable',
    );
    assert.deepEqual(checkAnswers(loadModel(), emu.requests.entries), []);
  });
});
