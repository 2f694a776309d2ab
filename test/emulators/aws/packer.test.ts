/**
 * Conformance with a real client: Packer 1.6.6's amazon-ebs builder (Debian's `packer`) with a
 * minimal template (no vpc_id, no subnet_id, no key pair: Packer makes its own temporary key pair
 * and security group in the default VPC) builds an AMI against the emulator with no error in any
 * step, cleanup included. Its shell provisioner really runs on the instance over SSH (with the
 * private key CreateKeyPair answered), and an instance run from the AMI shows what it wrote.
 * Every answer Packer got is checked against botocore's model.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair } from '../machines/test-support.js';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { startEc2Emulator } from '../../../src/emulators/aws/server.js';
import { checkAnswers, loadModel } from './botocore-model.js';
import { awsCli, waitFor, type CliResult } from './test-support.js';
import { runPacker } from '../run-packer.js';

function ok(result: CliResult, what: string): any {
  assert.equal(result.code, 0, `${what} failed (exit ${result.code}): ${result.stderr}`);
  return result.json;
}

test("Packer 1.6.6 (amazon-ebs, minimal template) builds an AMI against the emulator; an instance from it shows the provisioner's file", { timeout: 480_000 }, async () => {
  const [emu, key] = await Promise.all([
    startEc2Emulator({
      accessKeyId: 'AKIDPACKER',
      secretAccessKey: 'packer/test+secret',
      recordResponses: true,
      delays: { instancePendingMs: 500, instanceStoppingMs: 300, instanceShuttingDownMs: 300, imagePendingMs: 1500 },
    }),
    makeKeyPair(),
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'packer-aws-'));
  try {
    const template = {
      builders: [
        {
          type: 'amazon-ebs',
          access_key: emu.accessKeyId,
          secret_key: emu.secretAccessKey,
          region: 'us-east-1',
          custom_endpoint_ec2: emu.url,
          source_ami_filter: { owners: [DEBIAN_OWNER_ID], filters: { name: 'debian-12-amd64-*' }, most_recent: true },
          instance_type: 't3.micro',
          ssh_username: 'root',
          ...(emu.sshPort !== 22 ? { ssh_port: emu.sshPort } : {}),
          ssh_timeout: '2m',
          ami_name: 'packer-conformance-{{timestamp}}',
          aws_polling: { delay_seconds: 1, max_attempts: 180 },
        },
      ],
      provisioners: [{ type: 'shell', inline: ['echo packer-was-here > /root/packer-marker', 'sync'] }],
    };
    await writeFile(join(dir, 'template.json'), JSON.stringify(template, null, 2));
    const started = Date.now();
    // No AWS_* variables nor config files: the template alone says where and who.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    const { code, output } = await runPacker(['build', '-color=false', 'template.json'], dir, 360_000, {}, env);
    const seconds = (Date.now() - started) / 1000;
    const log = await readFile(join(dir, 'packer.log'), 'utf8').catch(() => '');
    assert.equal(code, 0, `packer failed:\n${output}\n--- requests: ${JSON.stringify(emu.requests.counts())}`);
    // No step reported an error, cleanup included (Packer prints those and still exits 0).
    const errors = output.split('\n').filter((l) => /error/i.test(l));
    assert.deepEqual(errors, [], `Packer reported errors:\n${output}`);
    assert.deepEqual(
      emu.requests.entries.filter((e) => e.errorCode).map((e) => `${e.action}: ${e.errorCode}`),
      [],
      `every request answered without error\n${log.slice(-4000)}`,
    );
    // Its cleanup looked the builder's root volume up and found it gone with the instance.
    assert.match(output, /No volumes to clean up, skipping/);
    const m = /us-east-1: (ami-[0-9a-f]{17})/.exec(output);
    assert.ok(m, `no artifact line in Packer's output:\n${output}`);
    const amiId = m[1];
    // Every answer Packer got matches botocore's model.
    assert.deepEqual(checkAnswers(loadModel(), emu.requests.entries), []);
    console.log(`packer build: ${seconds.toFixed(1)} s, ${emu.requests.count()} API requests: ${JSON.stringify(emu.requests.counts())}`);
    for (const action of ['CreateKeyPair', 'CreateSecurityGroup', 'AuthorizeSecurityGroupIngress', 'RunInstances', 'StopInstances', 'CreateImage', 'TerminateInstances', 'DescribeVolumes', 'DeleteSecurityGroup', 'DeleteKeyPair']) {
      assert.ok(emu.requests.count(action) > 0, `Packer called ${action}`);
    }

    // Packer cleaned up: its instance terminated, its key pair and security group gone; the AMI is ours.
    const instances = ok(await awsCli(emu, ['describe-instances']), 'describe-instances');
    assert.deepEqual(instances.Reservations.flatMap((r: any) => r.Instances.map((i: any) => i.State.Name)), ['terminated']);
    assert.deepEqual(ok(await awsCli(emu, ['describe-key-pairs']), 'describe-key-pairs').KeyPairs, []);
    const groups = ok(await awsCli(emu, ['describe-security-groups']), 'describe-security-groups').SecurityGroups;
    assert.deepEqual(groups.map((g: any) => g.GroupName), ['default']);
    assert.deepEqual(ok(await awsCli(emu, ['describe-volumes']), 'describe-volumes').Volumes, [], 'the builder\'s root volume went with it');
    const image = ok(await awsCli(emu, ['describe-images', '--image-ids', amiId]), 'describe-images').Images[0];
    assert.equal(image.State, 'available');
    assert.match(image.Name, /^packer-conformance-\d+$/);

    // An instance from the AMI shows what the provisioner wrote.
    const pubPath = join(dir, 'check.pub');
    await writeFile(pubPath, `${key.publicKey}\n`);
    ok(await awsCli(emu, ['import-key-pair', '--key-name', 'check', '--public-key-material', `fileb://${pubPath}`]), 'import-key-pair');
    const run = ok(await awsCli(emu, ['run-instances', '--image-id', amiId, '--instance-type', 't3.micro', '--key-name', 'check']), 'run-instances');
    const id: string = run.Instances[0].InstanceId;
    const server = await waitFor('the instance from the AMI to run', 120_000, async () => {
      const i = ok(await awsCli(emu, ['describe-instances', '--instance-ids', id]), 'describe-instances').Reservations[0].Instances[0];
      return i.State.Name === 'running' ? i : undefined;
    }, 500);
    const ssh = await waitForSsh({ host: server.PublicIpAddress, port: emu.sshPort, user: 'root' }, key.privateKey, 60_000);
    const r = await sshExec(ssh, 'cat /root/packer-marker');
    ssh.end();
    assert.equal(r.stdout.trim(), 'packer-was-here');
  } finally {
    await emu.close();
    await key.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
