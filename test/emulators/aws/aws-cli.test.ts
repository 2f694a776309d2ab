/**
 * Conformance with a real client: the AWS CLI (botocore) against the emulator, with no config
 * files, signatures checked. The first test runs on real machines: what a script writes over SSH
 * on an instance is in the AMI made from it, and in an instance run from that AMI.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair, nspawnPids, overlayMountsBelow } from '../machines/test-support.js';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { startEc2Emulator, type Ec2Emulator } from '../../../src/emulators/aws/server.js';
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
