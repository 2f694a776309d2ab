/**
 * EC2 instances as real machines, through the SDK: a poweroff inside the guest stops the
 * instance (as the build pipeline does before StopInstances), StartInstances boots the same disk at
 * the same address, CreateImage with NoReboot copies a running disk, and nothing is left behind.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import {
  CreateImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
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
import { powerOff, sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair, nspawnPids, overlayMountsBelow } from '../machines/test-support.js';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { startEc2Emulator } from '../../../src/emulators/aws/server.js';
import { ec2Client } from './test-support.js';

const WAIT = { maxWaitTime: 60, minDelay: 1, maxDelay: 1 };

test('instances on real machines: guest poweroff stops, start keeps disk and address, live image, nothing left', { timeout: 240_000 }, async () => {
  const key = await makeKeyPair();
  const emu = await startEc2Emulator({ delays: { instancePendingMs: 200, instanceStoppingMs: 200, instanceShuttingDownMs: 200, imagePendingMs: 500 } });
  const pool = (emu.cloud.backend as { pool?: { runDir: string; list(): unknown[] } }).pool!;
  const ec2 = ec2Client(emu);
  try {
    const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: [DEBIAN_OWNER_ID], Filters: [{ Name: 'name', Values: ['debian-12-amd64-*'] }] }));
    await ec2.send(new ImportKeyPairCommand({ KeyName: 'k', PublicKeyMaterial: Buffer.from(key.publicKey) }));
    const run = await ec2.send(new RunInstancesCommand({ ImageId: Images![0].ImageId, MinCount: 1, MaxCount: 1, KeyName: 'k' }));
    const id = run.Instances![0].InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    const describe = async () => (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0].Instances![0];
    const first = await describe();
    const endpoint = { host: first.PublicIpAddress!, port: emu.sshPort, user: 'root' };

    const ssh = await waitForSsh(endpoint, key.privateKey, 60_000);
    assert.equal((await sshExec(ssh, 'echo kept > /root/marker && sync')).code, 0);
    await powerOff(ssh);
    await waitUntilInstanceStopped({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    const stopped = await describe();
    assert.equal(stopped.StateReason?.Code, 'Client.InstanceInitiatedShutdown');
    // The pipeline still sends StopInstances after the guest powered off: harmless.
    const again = await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    assert.equal(again.StoppingInstances![0].CurrentState!.Name, 'stopped');

    await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [id] });
    assert.equal((await describe()).PrivateIpAddress, first.PrivateIpAddress, 'same address after a restart');
    const ssh2 = await waitForSsh(endpoint, key.privateKey, 60_000);
    assert.equal((await sshExec(ssh2, 'cat /root/marker')).stdout.trim(), 'kept');

    const { ImageId } = await ec2.send(new CreateImageCommand({ InstanceId: id, Name: 'live', NoReboot: true }));
    await waitUntilImageAvailable({ client: ec2, ...WAIT }, { ImageIds: [ImageId!] });
    assert.equal((await sshExec(ssh2, 'echo still-up')).stdout.trim(), 'still-up', 'NoReboot: the machine kept running');
    ssh2.end();

    const fromLive = await ec2.send(new RunInstancesCommand({ ImageId, MinCount: 1, MaxCount: 1, KeyName: 'k' }));
    const liveId = fromLive.Instances![0].InstanceId!;
    await waitUntilInstanceRunning({ client: ec2, ...WAIT }, { InstanceIds: [liveId] });
    const live = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [liveId] }))).Reservations![0].Instances![0];
    const ssh3 = await waitForSsh({ ...endpoint, host: live.PublicIpAddress! }, key.privateKey, 60_000);
    assert.equal((await sshExec(ssh3, 'cat /root/marker')).stdout.trim(), 'kept');
    ssh3.end();

    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id, liveId] }));
    await waitUntilInstanceTerminated({ client: ec2, ...WAIT }, { InstanceIds: [id, liveId] });
    assert.equal(pool.list().length, 0);
    assert.deepEqual(emu.cloud.backgroundErrors, []);
  } finally {
    ec2.destroy();
    await emu.close();
    await key.cleanup();
  }
  assert.equal(existsSync(pool.runDir), false);
  assert.deepEqual(await nspawnPids(pool.runDir), []);
  assert.deepEqual(await overlayMountsBelow(pool.runDir), []);
});
