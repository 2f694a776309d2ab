/**
 * An endpoint as an ELBv2 target group the user made (behind their load balancer's listener):
 * instances are registered once healthy and resolve attach when ELBv2's own check finds them
 * healthy; deregistered ones drain for the group's deregistration delay, which detach waits out by
 * polling their state. The group is the user's: remove only takes our instances out of it.
 * The ELBv2 SDK loads on first use, so that commands without a target group never pay for it.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/
 */
import type { ElasticLoadBalancingV2Client, TargetHealthDescription } from '@aws-sdk/client-elastic-load-balancing-v2';
import { ProviderError } from '../../core/errors.js';
import { sleep } from '../../core/wait.js';
import { waitDrained } from '../kit/endpoints.js';
import type { EndpointMember, Machine } from '../types.js';
import { awsCall, type Ec2Target } from './client.js';

type Sdk = typeof import('@aws-sdk/client-elastic-load-balancing-v2');

const STATES: Record<string, EndpointMember['state']> = { healthy: 'healthy', unhealthy: 'unhealthy', initial: 'joining', draining: 'draining' };

export interface TargetGroupView {
  arn: string;
  /** DNS name of the load balancer and its listener's port, or '' if no listener forwards to it. */
  address: string;
  targets: { id: string; state: EndpointMember['state'] }[];
}

export class TargetGroups {
  private loaded?: Promise<{ sdk: Sdk; client: ElasticLoadBalancingV2Client }>;

  constructor(private readonly target: Ec2Target) {}

  private open() {
    return (this.loaded ??= import('@aws-sdk/client-elastic-load-balancing-v2').then((sdk) => ({
      sdk,
      client: new sdk.ElasticLoadBalancingV2Client({ region: this.target.region, endpoint: this.target.endpoint, profile: this.target.profile, maxAttempts: 10, retryMode: 'standard' }),
    })));
  }

  private async call<T>(operation: string, fn: (sdk: Sdk, client: ElasticLoadBalancingV2Client, signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    const { sdk, client } = await this.open();
    return awsCall(operation, (s) => fn(sdk, client, s), signal);
  }

  /** Every target group of the region (for list). */
  async arns(signal: AbortSignal): Promise<string[]> {
    const arns: string[] = [];
    let Marker: string | undefined;
    do {
      const page = await this.call('list target groups', (sdk, c, s) => c.send(new sdk.DescribeTargetGroupsCommand({ Marker }), { abortSignal: s }), signal);
      arns.push(...(page.TargetGroups ?? []).map((g) => g.TargetGroupArn!));
      Marker = page.NextMarker;
    } while (Marker);
    return arns;
  }

  async view(arn: string, signal: AbortSignal): Promise<TargetGroupView> {
    const groups = await this.call('find the target group', (sdk, c, s) => c.send(new sdk.DescribeTargetGroupsCommand({ TargetGroupArns: [arn] }), { abortSignal: s }), signal);
    const group = groups.TargetGroups?.[0];
    if (!group) throw new ProviderError({ provider: 'aws', operation: 'find the target group', message: `no target group ${arn}` });
    let address = '';
    const lbArn = group.LoadBalancerArns?.[0];
    if (lbArn) {
      const [lbs, listeners] = await Promise.all([
        this.call('find the load balancer', (sdk, c, s) => c.send(new sdk.DescribeLoadBalancersCommand({ LoadBalancerArns: [lbArn] }), { abortSignal: s }), signal),
        this.call('find the listener', (sdk, c, s) => c.send(new sdk.DescribeListenersCommand({ LoadBalancerArn: lbArn }), { abortSignal: s }), signal),
      ]);
      const listener = listeners.Listeners?.find((l) => l.DefaultActions?.some((a) => a.TargetGroupArn === arn));
      const dns = lbs.LoadBalancers?.[0]?.DNSName;
      if (dns && listener?.Port) address = `${dns}:${listener.Port}`;
    }
    return { arn, address, targets: (await this.health(arn, undefined, signal)).map((d) => ({ id: d.Target!.Id!, state: STATES[d.TargetHealth?.State ?? ''] ?? 'unknown' })) };
  }

  private async health(arn: string, ids: string[] | undefined, signal: AbortSignal): Promise<TargetHealthDescription[]> {
    const answer = await this.call('read target health', (sdk, c, s) => c.send(new sdk.DescribeTargetHealthCommand({ TargetGroupArn: arn, Targets: ids?.map((Id) => ({ Id })) }), { abortSignal: s }), signal);
    return (answer.TargetHealthDescriptions ?? []).filter((d) => d.TargetHealth?.Reason !== 'Target.NotRegistered');
  }

  /** Registers the instances; resolves once ELBv2 finds each healthy (it sends them traffic then). */
  async register(arn: string, machines: Machine[], signal: AbortSignal): Promise<void> {
    const ids = machines.map((m) => m.id);
    await this.call('register targets', (sdk, c, s) => c.send(new sdk.RegisterTargetsCommand({ TargetGroupArn: arn, Targets: ids.map((Id) => ({ Id })) }), { abortSignal: s }), signal);
    const check = await this.checkTimes(arn, signal);
    const timeoutMs = check.joinMs + 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await this.health(arn, ids, signal);
      const unused = states.find((d) => d.TargetHealth?.State === 'unused' && d.TargetHealth.Reason === 'Target.NotInUse');
      if (unused) throw new ProviderError({ provider: 'aws', operation: 'register targets', message: `target group ${arn} is not used by a load balancer's listener: nothing would reach its targets` });
      const late = ids.filter((id) => states.find((d) => d.Target?.Id === id)?.TargetHealth?.State !== 'healthy');
      if (late.length === 0) return;
      if (Date.now() > deadline) {
        const described = late.map((id) => `${id} (${states.find((d) => d.Target?.Id === id)?.TargetHealth?.State ?? 'not registered'})`);
        throw new ProviderError({ provider: 'aws', operation: 'register targets', message: `not healthy in the target group after ${Math.round(timeoutMs / 1000)} s: ${described.join(', ')}` });
      }
      await sleep(Math.min(1000, check.intervalMs), signal);
    }
  }

  /** Deregisters the instances that are targets and waits until ELBv2 finished draining them (the group's delay). */
  async deregister(arn: string, machines: Pick<Machine, 'id'>[], wait: boolean, signal: AbortSignal): Promise<void> {
    const registered = new Set((await this.health(arn, undefined, signal)).map((d) => d.Target!.Id!));
    const ids = machines.map((m) => m.id).filter((id) => registered.has(id));
    if (ids.length === 0) return;
    await this.call('deregister targets', (sdk, c, s) => c.send(new sdk.DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: ids.map((Id) => ({ Id })) }), { abortSignal: s }), signal);
    if (!wait) return;
    const delayMs = await this.deregistrationDelayMs(arn, signal);
    await waitDrained({
      provider: 'aws',
      draining: async () => (await this.health(arn, ids, signal)).filter((d) => d.TargetHealth?.State === 'draining').map((d) => d.Target!.Id!),
      timeoutMs: delayMs + 60_000,
      signal,
    });
  }

  private async deregistrationDelayMs(arn: string, signal: AbortSignal): Promise<number> {
    const answer = await this.call('read the target group', (sdk, c, s) => c.send(new sdk.DescribeTargetGroupAttributesCommand({ TargetGroupArn: arn }), { abortSignal: s }), signal);
    const value = answer.Attributes?.find((a) => a.Key === 'deregistration_delay.timeout_seconds')?.Value;
    return Number(value ?? 300) * 1000;
  }

  /** How long a healthy target takes to be found healthy: healthy_threshold intervals plus a probe. */
  private async checkTimes(arn: string, signal: AbortSignal): Promise<{ intervalMs: number; joinMs: number }> {
    const groups = await this.call('read the target group', (sdk, c, s) => c.send(new sdk.DescribeTargetGroupsCommand({ TargetGroupArns: [arn] }), { abortSignal: s }), signal);
    const g = groups.TargetGroups?.[0];
    const interval = g?.HealthCheckIntervalSeconds ?? 30;
    return { intervalMs: interval * 1000, joinMs: ((interval + (g?.HealthCheckTimeoutSeconds ?? 5)) * (g?.HealthyThresholdCount ?? 5)) * 1000 };
  }

  close(): void {
    void this.loaded?.then(({ client }) => client.destroy());
  }
}
