/**
 * Elastic IPs through the AWS CLI, on real machines: allocate, associate (and re-associate) with an
 * instance running a small HTTP responder, real requests and SSH through the address, disassociate,
 * release; every answer matched against botocore's model.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { makeKeyPair, type KeyPair } from '../machines/test-support.js';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { startEc2Emulator, type Ec2Emulator } from '../../../src/emulators/aws/server.js';
import { checkAnswers, loadModel } from './botocore-model.js';
import { awsCli, waitFor, type CliResult } from './test-support.js';
import { answers, runOn, startResponder } from '../traffic.js';

const WEB = 8080;

function ok(result: CliResult, what: string): any {
  assert.equal(result.code, 0, `${what} failed (exit ${result.code}): ${result.stderr}`);
  return result.json;
}

function fails(result: CliResult, code: string): void {
  assert.notEqual(result.code, 0, `expected ${code}, but it succeeded`);
  assert.match(result.stderr, new RegExp(`\\(${code.replaceAll('.', '\\.')}\\)`), result.stderr);
}

describe('EC2 emulator: Elastic IPs through the AWS CLI', { timeout: 300_000 }, () => {
  let emu: Ec2Emulator;
  let key: KeyPair;
  const servers: { id: string; ip: string; hostname: string }[] = [];

  before(async () => {
    [emu, key] = await Promise.all([
      startEc2Emulator({ accessKeyId: 'AKIDEIPTEST', secretAccessKey: 'eip/test+secret', recordResponses: true, delays: { instancePendingMs: 300, instanceShuttingDownMs: 300 } }),
      makeKeyPair(),
    ]);
    const pubPath = join(dirname(key.privateKeyPath), 'key.pub');
    await writeFile(pubPath, `${key.publicKey}\n`);
    ok(await awsCli(emu, ['import-key-pair', '--key-name', 'eip-key', '--public-key-material', `fileb://${pubPath}`]), 'import-key-pair');
    const images = ok(await awsCli(emu, ['describe-images', '--owners', DEBIAN_OWNER_ID, '--filters', 'Name=name,Values=debian-12-amd64-*']), 'describe-images').Images;
    const launched = ok(await awsCli(emu, ['run-instances', '--image-id', images[0].ImageId, '--count', '2', '--instance-type', 't3.micro', '--key-name', 'eip-key']), 'run-instances');
    for (const instance of launched.Instances) {
      const running = await waitFor('running', 90_000, async () => {
        const i = ok(await awsCli(emu, ['describe-instances', '--instance-ids', instance.InstanceId]), 'describe-instances').Reservations[0].Instances[0];
        return i.State.Name === 'running' && i.PublicIpAddress ? i : undefined;
      });
      const hostname = (await runOn(running.PublicIpAddress, emu.sshPort, key.privateKey, 'cat /etc/hostname')).trim();
      await startResponder(running.PublicIpAddress, emu.sshPort, key.privateKey, WEB);
      servers.push({ id: instance.InstanceId, ip: running.PublicIpAddress, hostname });
    }
    assert.notEqual(servers[0]!.hostname, servers[1]!.hostname);
  });

  after(async () => {
    await emu?.close();
    await key?.cleanup();
  });

  test('allocate, associate, move with --allow-reassociation (HTTP and SSH follow), disassociate, release', async () => {
    const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
    const allocated = ok(await awsCli(emu, ['allocate-address', '--domain', 'vpc', '--tag-specifications', 'ResourceType=elastic-ip,Tags=[{Key=env,Value=staging}]']), 'allocate-address');
    assert.match(allocated.AllocationId, /^eipalloc-[0-9a-f]{17}$/);
    const eip: string = allocated.PublicIp;
    assert.match(eip, /^127\./);
    assert.match((await answers(eip, WEB, 1))[0]!, /^!/, 'not associated: nothing answers');

    const first = ok(await awsCli(emu, ['associate-address', '--allocation-id', allocated.AllocationId, '--instance-id', a.id]), 'associate-address');
    assert.match(first.AssociationId, /^eipassoc-[0-9a-f]{17}$/);
    assert.deepEqual(await answers(eip, WEB, 2), [a.hostname, a.hostname]);
    fails(await awsCli(emu, ['associate-address', '--allocation-id', allocated.AllocationId, '--instance-id', b.id]), 'Resource.AlreadyAssociated');
    const moved = ok(await awsCli(emu, ['associate-address', '--allocation-id', allocated.AllocationId, '--instance-id', b.id, '--allow-reassociation']), 'associate-address --allow-reassociation');
    assert.deepEqual(await answers(eip, WEB, 2), [b.hostname, b.hostname]);
    assert.equal((await runOn(eip, emu.sshPort, key.privateKey, 'cat /etc/hostname')).trim(), b.hostname, 'SSH through the Elastic IP');

    const described = ok(await awsCli(emu, ['describe-addresses', '--filters', `Name=instance-id,Values=${b.id}`]), 'describe-addresses').Addresses;
    assert.deepEqual(
      described.map((x: any) => [x.PublicIp, x.AllocationId, x.InstanceId, x.AssociationId, x.PrivateIpAddress, x.Domain, x.Tags]),
      [[eip, allocated.AllocationId, b.id, moved.AssociationId, b.ip, 'vpc', [{ Key: 'env', Value: 'staging' }]]],
    );
    assert.deepEqual(ok(await awsCli(emu, ['describe-addresses', '--filters', `Name=instance-id,Values=${a.id}`]), 'describe-addresses').Addresses, []);
    fails(await awsCli(emu, ['release-address', '--allocation-id', allocated.AllocationId]), 'InvalidIPAddress.InUse');
    fails(await awsCli(emu, ['disassociate-address', '--association-id', first.AssociationId]), 'InvalidAssociationID.NotFound');

    ok(await awsCli(emu, ['disassociate-address', '--association-id', moved.AssociationId]), 'disassociate-address');
    assert.match((await answers(eip, WEB, 1))[0]!, /^!/);
    assert.equal(ok(await awsCli(emu, ['describe-addresses', '--public-ips', eip]), 'describe-addresses --public-ips').Addresses[0].InstanceId, undefined);
    ok(await awsCli(emu, ['release-address', '--allocation-id', allocated.AllocationId]), 'release-address');
    assert.deepEqual(await answers(eip, WEB, 1), ['!ECONNREFUSED']);
    fails(await awsCli(emu, ['describe-addresses', '--allocation-ids', allocated.AllocationId]), 'InvalidAllocationID.NotFound');
    fails(await awsCli(emu, ['release-address', '--allocation-id', 'eipalloc-nope']), 'InvalidAllocationID.Malformed');
  });

  test('a terminated instance loses its Elastic IP; every answer matched botocore\'s model', async () => {
    const [, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
    const allocated = ok(await awsCli(emu, ['allocate-address']), 'allocate-address');
    ok(await awsCli(emu, ['associate-address', '--allocation-id', allocated.AllocationId, '--instance-id', b.id]), 'associate-address');
    assert.deepEqual(await answers(allocated.PublicIp, WEB, 1), [b.hostname]);
    ok(await awsCli(emu, ['terminate-instances', '--instance-ids', b.id]), 'terminate-instances');
    ok(await awsCli(emu, ['wait', 'instance-terminated', '--instance-ids', b.id], { timeoutMs: 120_000 }), 'wait instance-terminated');
    const after = ok(await awsCli(emu, ['describe-addresses', '--allocation-ids', allocated.AllocationId]), 'describe-addresses').Addresses[0];
    assert.equal(after.InstanceId, undefined);
    ok(await awsCli(emu, ['release-address', '--public-ip', allocated.PublicIp]), 'release-address --public-ip');
    const model = loadModel();
    assert.deepEqual(checkAnswers(model, emu.requests.entries), []);
    assert.ok(emu.requests.count('AssociateAddress') >= 3 && emu.requests.count('DescribeAddresses') >= 4);
  });
});
