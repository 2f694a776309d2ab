/**
 * The Elastic Load Balancing v2 endpoint through the AWS CLI (`aws elbv2`), on real machines: a
 * target group whose health check probes two instances running a small HTTP responder, a load
 * balancer and listener forwarding real requests to the healthy targets, deregistration draining
 * for the group's delay; every answer matched against botocore's elbv2 model.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { makeKeyPair, type KeyPair } from '../machines/test-support.js';
import { DEBIAN_OWNER_ID } from '../../../src/emulators/aws/cloud.js';
import { ELBV2_OPERATIONS } from '../../../src/emulators/aws/elbv2-operations.js';
import { startEc2Emulator, type Ec2Emulator } from '../../../src/emulators/aws/server.js';
import { checkQueryAnswer, checkQueryAnswers, loadModel } from './botocore-model.js';
import { awsCli, waitFor, type CliResult } from './test-support.js';
import { answers, holdRequest, runOn, startResponder } from '../traffic.js';

const WEB = 8080;
const LISTENER = 8090;

function ok(result: CliResult, what: string): any {
  assert.equal(result.code, 0, `${what} failed (exit ${result.code}): ${result.stderr}`);
  return result.json ?? {};
}

function fails(result: CliResult, code: string): void {
  assert.notEqual(result.code, 0, `expected ${code}, but it succeeded`);
  assert.match(result.stderr, new RegExp(`\\(${code}\\)`), result.stderr);
}

describe('ELBv2 endpoint of the EC2 emulator through the AWS CLI', { timeout: 300_000 }, () => {
  let emu: Ec2Emulator;
  let key: KeyPair;
  const elb = (args: string[], timeoutMs?: number) => awsCli(emu, args, { service: 'elbv2', timeoutMs });
  const servers: { id: string; ip: string; hostname: string }[] = [];

  before(async () => {
    [emu, key] = await Promise.all([
      startEc2Emulator({ accessKeyId: 'AKIDELBTEST', secretAccessKey: 'elb/test+secret', recordResponses: true, delays: { instancePendingMs: 300 } }),
      makeKeyPair(),
    ]);
    const pubPath = join(dirname(key.privateKeyPath), 'key.pub');
    await writeFile(pubPath, `${key.publicKey}\n`);
    ok(await awsCli(emu, ['import-key-pair', '--key-name', 'elb-key', '--public-key-material', `fileb://${pubPath}`]), 'import-key-pair');
    const images = ok(await awsCli(emu, ['describe-images', '--owners', DEBIAN_OWNER_ID, '--filters', 'Name=name,Values=debian-12-amd64-*']), 'describe-images').Images;
    const launched = ok(await awsCli(emu, ['run-instances', '--image-id', images[0].ImageId, '--count', '2', '--instance-type', 't3.micro', '--key-name', 'elb-key']), 'run-instances');
    for (const instance of launched.Instances) {
      const running = await waitFor('running', 90_000, async () => {
        const i = ok(await awsCli(emu, ['describe-instances', '--instance-ids', instance.InstanceId]), 'describe-instances').Reservations[0].Instances[0];
        return i.State.Name === 'running' && i.PublicIpAddress ? i : undefined;
      });
      const hostname = (await runOn(running.PublicIpAddress, emu.sshPort, key.privateKey, 'cat /etc/hostname')).trim();
      await startResponder(running.PublicIpAddress, emu.sshPort, key.privateKey, WEB);
      servers.push({ id: instance.InstanceId, ip: running.PublicIpAddress, hostname });
    }
  });

  after(async () => {
    await emu?.close();
    await key?.cleanup();
  });

  test('target group, load balancer, listener: healthy targets take real requests in turn, a deregistered one drains, the health check sees a stopped server', async () => {
    const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
    const vpcId = ok(await awsCli(emu, ['describe-vpcs']), 'describe-vpcs').Vpcs[0].VpcId;
    const group = ok(
      await elb(['create-target-group', '--name', 'web', '--protocol', 'HTTP', '--port', String(WEB), '--vpc-id', vpcId, '--health-check-path', '/', '--health-check-interval-seconds', '5', '--healthy-threshold-count', '2', '--unhealthy-threshold-count', '2']),
      'create-target-group',
    ).TargetGroups[0];
    assert.match(group.TargetGroupArn, /^arn:aws:elasticloadbalancing:us-east-1:\d{12}:targetgroup\/web\/[0-9a-f]{16}$/);
    assert.equal(group.HealthCheckPort, 'traffic-port');
    fails(await elb(['create-target-group', '--name', 'web', '--protocol', 'HTTP', '--port', '81', '--vpc-id', vpcId]), 'DuplicateTargetGroupName');
    const attrs = ok(await elb(['modify-target-group-attributes', '--target-group-arn', group.TargetGroupArn, '--attributes', 'Key=deregistration_delay.timeout_seconds,Value=3']), 'modify-target-group-attributes');
    assert.ok(attrs.Attributes.some((x: any) => x.Key === 'deregistration_delay.timeout_seconds' && x.Value === '3'));

    const lb = ok(await elb(['create-load-balancer', '--name', 'web-lb', '--type', 'application']), 'create-load-balancer').LoadBalancers[0];
    assert.equal(lb.State.Code, 'provisioning');
    assert.equal(lb.AvailabilityZones.length, 3);
    await waitFor('active', 10_000, async () => (ok(await elb(['describe-load-balancers', '--names', 'web-lb']), 'describe-load-balancers').LoadBalancers[0].State.Code === 'active' ? true : undefined));
    const listener = ok(await elb(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTP', '--port', String(LISTENER), '--default-actions', `Type=forward,TargetGroupArn=${group.TargetGroupArn}`]), 'create-listener').Listeners[0];
    assert.deepEqual(ok(await elb(['describe-listeners', '--load-balancer-arn', lb.LoadBalancerArn]), 'describe-listeners').Listeners.map((l: any) => l.ListenerArn), [listener.ListenerArn]);
    assert.deepEqual(ok(await elb(['describe-target-groups', '--names', 'web']), 'describe-target-groups').TargetGroups[0].LoadBalancerArns, [lb.LoadBalancerArn]);

    ok(await elb(['register-targets', '--target-group-arn', group.TargetGroupArn, '--targets', `Id=${a.id}`, `Id=${b.id}`]), 'register-targets');
    fails(await elb(['register-targets', '--target-group-arn', group.TargetGroupArn, '--targets', 'Id=i-0123456789abcdef0']), 'InvalidTarget');
    ok(await elb(['wait', 'target-in-service', '--target-group-arn', group.TargetGroupArn], 60_000), 'wait target-in-service');
    const health = ok(await elb(['describe-target-health', '--target-group-arn', group.TargetGroupArn]), 'describe-target-health').TargetHealthDescriptions;
    assert.deepEqual(health.map((h: any) => [h.Target.Id, h.Target.Port, h.TargetHealth.State]).sort(), [[a.id, WEB, 'healthy'], [b.id, WEB, 'healthy']].sort());

    const four = await answers(lb.DNSName, LISTENER, 4);
    assert.deepEqual([...four].sort(), [a.hostname, a.hostname, b.hostname, b.hostname].sort());
    assert.notEqual(four[0], four[1], 'round robin');

    // Deregistering: draining for the delay (open connections finish, no new ones), then gone.
    const held = [await holdRequest(lb.DNSName, LISTENER), await holdRequest(lb.DNSName, LISTENER)];
    ok(await elb(['deregister-targets', '--target-group-arn', group.TargetGroupArn, '--targets', `Id=${a.id}`]), 'deregister-targets');
    const draining = ok(await elb(['describe-target-health', '--target-group-arn', group.TargetGroupArn, '--targets', `Id=${a.id}`]), 'describe-target-health').TargetHealthDescriptions[0];
    assert.equal(draining.TargetHealth.State, 'draining');
    assert.deepEqual(await answers(lb.DNSName, LISTENER, 3), [b.hostname, b.hostname, b.hostname]);
    assert.deepEqual((await Promise.all(held.map((h) => h.finish()))).sort(), [a.hostname, b.hostname].sort(), 'the connection open to the draining target finished');
    await waitFor('a gone after the delay', 10_000, async () => {
      const left = ok(await elb(['describe-target-health', '--target-group-arn', group.TargetGroupArn]), 'describe-target-health').TargetHealthDescriptions;
      return left.length === 1 && left[0].Target.Id === b.id ? true : undefined;
    });

    // The health check probes for real.
    await runOn(b.ip, emu.sshPort, key.privateKey, "systemctl stop 'web-*'");
    await waitFor('b unhealthy', 30_000, async () => {
      const h = ok(await elb(['describe-target-health', '--target-group-arn', group.TargetGroupArn]), 'describe-target-health').TargetHealthDescriptions[0];
      return h.TargetHealth.State === 'unhealthy' ? true : undefined;
    }, 500);

    fails(await elb(['delete-target-group', '--target-group-arn', group.TargetGroupArn]), 'ResourceInUse');
    ok(await elb(['delete-listener', '--listener-arn', listener.ListenerArn]), 'delete-listener');
    assert.deepEqual(await answers(lb.DNSName, LISTENER, 1), ['!ECONNREFUSED']);
    ok(await elb(['delete-load-balancer', '--load-balancer-arn', lb.LoadBalancerArn]), 'delete-load-balancer');
    ok(await elb(['delete-target-group', '--target-group-arn', group.TargetGroupArn]), 'delete-target-group');
    fails(await elb(['describe-load-balancers', '--names', 'web-lb']), 'LoadBalancerNotFound');
    fails(await elb(['describe-target-groups', '--names', 'web']), 'TargetGroupNotFound');
  });

  test("every ELBv2 answer matched botocore's elbv2 model; the check is not blind", () => {
    const model = loadModel('elbv2', '2015-12-01');
    const entries = emu.requests.entries.filter((e) => Object.hasOwn(ELBV2_OPERATIONS, e.action));
    assert.ok(entries.length > 20);
    assert.deepEqual(checkQueryAnswers(model, entries), []);
    const bad = checkQueryAnswer(model, 'DescribeTargetHealth', '<DescribeTargetHealthResponse><DescribeTargetHealthResult><TargetHealthDescriptions><item><Target><Id>i-1</Id></Target></item></TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></DescribeTargetHealthResponse>');
    assert.ok(bad.some((p) => p.includes('holds <member>')), bad.join('\n'));
  });
});
