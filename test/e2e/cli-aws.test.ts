/**
 * The whole CLI on AWS, through the EC2 emulator (signed requests, instances that are real
 * machines): init, images from images, list, cold deploy, update, warm deploy, rollback, prune
 * with its snapshots, destroy; then faults, which end in success or in a clear error and never in
 * an instance, key pair, security group, AMI or snapshot left behind.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EC2Client,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
} from '@aws-sdk/client-ec2';
import { runCli, serverRows, versionNames } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startEc2Emulator, type Ec2Emulator } from '../../src/emulators/aws/server.js';
import { awsCliEnv } from '../helpers/aws-env.js';

let project: TempProject;
let stateDir: string;
let emulator: Ec2Emulator;
let ec2: EC2Client;
let env: NodeJS.ProcessEnv;
const cli = (...args: string[]) => runCli(args, { cwd: project.dir, env });

const servers = () => serverRows('staging', { cwd: project.dir, env });
const versionsOf = (image: string) => versionNames(image, { cwd: project.dir, env });

/** No builder instance, build key pair or security group; every EBS snapshot belongs to an AMI. */
async function assertNoBuildLeftovers() {
  const instances = ((await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] }))).Reservations ?? [])
    .flatMap((r) => r.Instances ?? [])
    .filter((i) => !i.Tags?.some((t) => t.Key === 'provisional-role' && t.Value === 'server'));
  assert.deepEqual(instances.map((i) => i.InstanceId), [], 'builder instances left');
  const keys = (await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? [];
  assert.deepEqual(keys.filter((k) => k.KeyName?.startsWith('provisional-build-')).map((k) => k.KeyName), [], 'build key pairs left');
  const groups = (await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? [];
  assert.deepEqual(groups.filter((g) => g.GroupName?.startsWith('provisional-build-')).map((g) => g.GroupName), [], 'build security groups left');
  const amis = (await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [];
  assert.deepEqual(amis.filter((a) => a.State !== 'available').map((a) => a.Name), [], 'half-made AMIs left');
  const used = new Set(amis.flatMap((a) => (a.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId)));
  const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [];
  assert.deepEqual(snapshots.filter((s) => !used.has(s.SnapshotId)).map((s) => s.SnapshotId), [], 'snapshots of no AMI left');
}

describe('CLI end to end on AWS (EC2 emulator)', { timeout: 30 * 60_000 }, () => {
  before(async () => {
    emulator = await startEc2Emulator({ accessKeyId: 'AKIDE2ETEST', secretAccessKey: 'e2e-secret-access-key', delays: { imagePendingMs: 500 } });
    project = tempProject('provisional-aws-');
    stateDir = mkdtempSync(join(tmpdir(), 'provisional-aws-state-'));
    env = awsCliEnv(emulator, stateDir);
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.url, credentials: { accessKeyId: emulator.accessKeyId, secretAccessKey: emulator.secretAccessKey } });
  });
  after(async () => {
    await cli('destroy', 'staging', '--yes').catch(() => undefined);
    ec2.destroy();
    await emulator.close();
    project.remove();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('init selects AWS; missing or rejected credentials are a clear error with exit 2', async () => {
    const r = await cli('init', '--provider', 'aws');
    assert.equal(r.code, 0, r.stderr);
    const file = join(project.dir, 'config/provisional/config.yml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('  name: aws\n', '  name: aws\n  region: us-east-1\n  endpoint: ${EC2_URL}\n  ssh-user: root\n  create-timeout: 20\n'),
    );
    const none = await runCli(['image', 'list'], { cwd: project.dir, env: { ...env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /no AWS credentials/);
    const wrong = await runCli(['image', 'list'], { cwd: project.dir, env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong-secret' } });
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /AuthFailure|SignatureDoesNotMatch/);
    assert.ok(!wrong.stderr.includes('wrong-secret') && !wrong.stdout.includes('wrong-secret'), 'the secret key leaked');
  });

  it('builds base, then app and db from it, tagging AMIs and snapshots', async () => {
    const r = await cli('image', 'update');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /app: built app-\d{14}/);
    const amis = (await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [];
    assert.equal(amis.length, 3);
    const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [];
    assert.ok(snapshots.every((s) => s.Tags?.some((t) => t.Key === 'provisional-input-hash')), 'snapshots carry the metadata tags');
    await assertNoBuildLeftovers();
  });

  it('cold deploy, update, warm deploy, rollback', async () => {
    assert.equal((await cli('deploy', 'staging', '--cold')).code, 0);
    const first = await servers();
    assert.deepEqual(first.map((s) => s.name), ['app1.staging', 'app2.staging', 'db1.staging']);
    // One deploy launches app and db together: each server must run its own image (issue 9: db1
    // once started from app's AMI), as its labels say and as the file its image's build wrote shows.
    for (const server of first) {
      assert.match(server.version, new RegExp(`^${server.image}-\\d{14}$`), `${server.name} is labelled with a version of its image`);
      const release = await cli('ssh', server.name, '--', 'cat', '/etc/provisional-release');
      assert.equal(release.code, 0, release.stderr);
      const other = server.image === 'app' ? 'db' : 'app';
      assert.match(release.stdout, new RegExp(`^${server.image}: built`, 'm'), `${server.name} runs the ${server.image} image`);
      assert.doesNotMatch(release.stdout, new RegExp(`^${other}: built`, 'm'), `${server.name} does not run the ${other} image`);
    }
    appendFileSync(join(project.dir, 'config/provisional/app/scripts/10-app.sh'), 'echo second > /etc/app-edition\n');
    assert.equal((await cli('image', 'update')).code, 0);
    const [newApp, oldApp] = await versionsOf('app');
    const warm = await cli('deploy', 'staging');
    assert.equal(warm.code, 0, warm.stderr);
    const apps = (await servers()).filter((s) => s.image === 'app');
    assert.ok(apps.length === 2 && apps.every((s) => s.version === newApp && !first.some((f) => f.id === s.id)));
    const edition = await cli('ssh', apps[0]!.name, '--', 'cat', '/etc/app-edition');
    assert.match(edition.stdout, /second/);
    assert.equal((await cli('rollback', 'staging')).code, 0);
    assert.ok((await servers()).filter((s) => s.image === 'app').every((s) => s.version === oldApp));
  });

  it('prune deletes old AMIs with their snapshots; destroy terminates every instance', async () => {
    const before = ((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? []).length;
    // app runs its old version; the new one is the newest: both stay, nothing of app goes. Build
    // another db so that the old db (which a server runs) stays and nothing else is in use.
    const prune = await cli('image', 'prune', '--keep', '1', '--json');
    assert.equal(prune.code, 0, prune.stderr);
    const deleted = JSON.parse(prune.stdout).deleted as string[];
    const after = ((await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? []).length;
    assert.equal(before - after, deleted.length, 'each deleted AMI took its snapshot with it');
    assert.equal((await cli('destroy', 'staging', '--yes')).code, 0);
    assert.deepEqual(await servers(), []);
    await assertNoBuildLeftovers();
  });

  it('regions: CopyImage to each region with tags; image list shows where; delete removes every copy and snapshot', async () => {
    const file = join(project.dir, 'config/provisional/config.yml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('  db:\n    base-image: base\n', '  db:\n    base-image: base\n    regions: [eu-west-1, us-west-2]\n'));
    const r = await cli('image', 'create', 'db');
    assert.equal(r.code, 0, r.stderr);
    const [latest] = await versionsOf('db');
    const list = await cli('image', 'list');
    assert.match(list.stdout, new RegExp(`${latest} .*available \\(us-east-1, eu-west-1, us-west-2\\)`));
    for (const region of ['eu-west-1', 'us-west-2']) {
      const client = new EC2Client({ region, endpoint: emulator.url, credentials: { accessKeyId: emulator.accessKeyId, secretAccessKey: emulator.secretAccessKey } });
      const copies = (await client.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [];
      assert.deepEqual(copies.map((i) => [i.Name, i.Tags?.find((t) => t.Key === 'provisional-version')?.Value]), [[latest, latest]], `copy in ${region}`);
      client.destroy();
    }
    assert.equal((await cli('image', 'delete', `db@${latest}`, '--yes')).code, 0);
    for (const region of ['eu-west-1', 'us-west-2']) {
      const client = new EC2Client({ region, endpoint: emulator.url, credentials: { accessKeyId: emulator.accessKeyId, secretAccessKey: emulator.secretAccessKey } });
      assert.deepEqual((await client.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [], [], `copy left in ${region}`);
      assert.deepEqual((await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [], [], `snapshot left in ${region}`);
      client.destroy();
    }
    writeFileSync(file, readFileSync(file, 'utf8').replace('    regions: [eu-west-1, us-west-2]\n', ''));
  });

  it('throttling and 500s are retried to success; failed images and missing addresses are clear errors that leave nothing', async () => {
    emulator.cloud.faults.throttle = 4;
    emulator.cloud.faults.internalError = 2;
    const ok = await cli('image', 'create', 'db');
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(emulator.requests.count(undefined, 'RequestLimitExceeded') >= 4);

    emulator.cloud.faults.failImages = 1;
    const failed = await cli('image', 'create', 'db');
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stdout, /db: FAILED: .*(failed|Failed)/);
    await assertNoBuildLeftovers();

    emulator.cloud.faults.noAddress = 1;
    const noAddress = await cli('image', 'create', 'db');
    assert.equal(noAddress.code, 1);
    assert.match(noAddress.stdout, /not running with an address after 20 s/);
    await assertNoBuildLeftovers();
  });
});
