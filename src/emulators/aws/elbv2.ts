/**
 * An Elastic Load Balancing v2 endpoint (target groups, targets and their health, load balancers,
 * listeners) served by the EC2 emulator's process. A load balancer is a real loopback address; each
 * listener a real TCP listener on it forwarding round robin to the healthy targets of its target
 * group, whose health check probes the instances for real. A deregistered target drains for the
 * group's deregistration delay: no new connections, open ones finish, then it is gone.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/
 */
import { randomBytes } from 'node:crypto';
import { claimAddress, releaseAddress } from '../machines/addresses.js';
import { MemberHealth, probe } from '../shared/health-probe.js';
import { TcpForwarder } from '../shared/tcp-forwarder.js';
import { ACCOUNT_ID, type Ec2Cloud } from './cloud.js';
import { Ec2Error } from './errors.js';
import type { Params } from './query.js';
import { members, memberStrings } from './elbv2-query.js';
import type { RegionState } from './resources.js';
import type { XmlValue } from './xml.js';

interface Target {
  id: string;
  port: number;
  health: MemberHealth;
  checked: boolean;
  drainingUntil?: number;
}

interface TargetGroup {
  arn: string;
  name: string;
  region: string;
  protocol: string;
  port: number;
  vpcId: string;
  check: { protocol: string; port: string; path: string; interval: number; timeout: number; healthy: number; unhealthy: number; matcher: string };
  deregistrationDelay: number;
  targets: Map<string, Target>;
  next: number;
}

interface LoadBalancer {
  arn: string;
  name: string;
  region: string;
  type: string;
  scheme: string;
  address: string;
  createdAt: Date;
  state: 'provisioning' | 'active';
  vpcId: string;
  subnets: string[];
}

interface Listener {
  arn: string;
  lbArn: string;
  port: number;
  protocol: string;
  groupArn: string;
  forwarder: TcpForwarder;
}

const err = (code: string, message: string, status = 400) => new Ec2Error(code, message, status);
const hex = (n: number) => randomBytes(n).toString('hex');

export class Elbv2 {
  readonly groups = new Map<string, TargetGroup>();
  readonly balancers = new Map<string, LoadBalancer>();
  readonly listeners = new Map<string, Listener>();
  /** How long a new load balancer is `provisioning`. */
  provisioningMs = 500;

  constructor(private readonly cloud: Ec2Cloud) {}

  private arn(region: string, kind: string, name: string) {
    return `arn:aws:elasticloadbalancing:${region}:${ACCOUNT_ID}:${kind}/${name}/${hex(8)}`;
  }

  group(region: RegionState, arn: string): TargetGroup {
    const g = this.groups.get(arn);
    if (!g || g.region !== region.name) throw err('TargetGroupNotFound', `Target groups '${arn}' not found`);
    return g;
  }

  private balancer(region: RegionState, arn: string): LoadBalancer {
    const lb = this.balancers.get(arn);
    if (!lb || lb.region !== region.name) throw err('LoadBalancerNotFound', `Load balancers '[${arn}]' not found`);
    return lb;
  }

  private inUse(g: TargetGroup): boolean {
    return [...this.listeners.values()].some((l) => l.groupArn === g.arn);
  }

  private instance(region: RegionState, id: string) {
    const i = region.instances.get(id);
    return i && i.state !== 'terminated' ? i : undefined;
  }

  /** A target's state as DescribeTargetHealth reports it. */
  targetState(region: RegionState, g: TargetGroup, t: Target): { State: string; Reason?: string; Description?: string } {
    if (t.drainingUntil !== undefined) return { State: 'draining', Reason: 'Target.DeregistrationInProgress', Description: 'Target deregistration is in progress' };
    if (!this.inUse(g)) return { State: 'unused', Reason: 'Target.NotInUse', Description: 'Target group is not configured to receive traffic from the load balancer' };
    const i = this.instance(region, t.id);
    if (!i || i.state !== 'running') return { State: 'unused', Reason: 'Target.InvalidState', Description: 'Target is in the stopped state' };
    if (!t.checked) return { State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress' };
    return t.health.healthy ? { State: 'healthy' } : { State: 'unhealthy', Reason: 'Target.FailedHealthChecks', Description: 'Health checks failed' };
  }

  private pick(region: RegionState, g: TargetGroup) {
    const ready = [...g.targets.values()].filter((t) => this.targetState(region, g, t).State === 'healthy');
    if (ready.length === 0) return undefined;
    const t = ready[g.next++ % ready.length]!;
    return { host: this.instance(region, t.id)!.address!, port: t.port };
  }

  /** Probes every target of the group each interval, as long as the group exists. */
  private async checkHealth(region: RegionState, g: TargetGroup): Promise<void> {
    while (this.groups.has(g.arn) && !this.cloud.closed) {
      await Promise.all(
        [...g.targets.values()].map(async (t) => {
          const i = this.instance(region, t.id);
          if (!i || i.state !== 'running' || !i.address || t.drainingUntil !== undefined) return;
          const port = g.check.port === 'traffic-port' ? t.port : Number(g.check.port);
          const passed = await probe(i.address, { protocol: g.check.protocol === 'TCP' ? 'tcp' : 'http', port, path: g.check.path, timeoutMs: g.check.timeout * 1000, statusOk: httpCodeMatcher(g.check.matcher) });
          t.health.record(passed, { healthy: g.check.healthy, unhealthy: g.check.unhealthy });
          t.checked = true;
        }),
      );
      await this.cloud.sleep(g.check.interval * 1000).catch(() => undefined);
    }
  }

  createTargetGroup(region: RegionState, p: Params): TargetGroup {
    const name = p.required('Name');
    if (!/^[a-zA-Z0-9-]{1,32}$/.test(name) || name.startsWith('-') || name.endsWith('-')) throw err('ValidationError', `Target group name '${name}' can have a maximum of 32 characters, alphanumerics and hyphens, and cannot begin or end with a hyphen`);
    const existing = [...this.groups.values()].find((g) => g.region === region.name && g.name === name);
    if (existing) throw err('DuplicateTargetGroupName', 'A target group with the same name exists, but with different settings');
    const targetType = p.str('TargetType') ?? 'instance';
    if (targetType !== 'instance') throw err('ValidationError', `Target type '${targetType}' is not emulated; use instance`);
    const protocol = p.str('Protocol') ?? 'HTTP';
    if (!['HTTP', 'HTTPS', 'TCP'].includes(protocol)) throw err('ValidationError', `Protocol '${protocol}' is not emulated (HTTP, HTTPS, TCP)`);
    const port = p.int('Port');
    if (port === undefined || port < 1 || port > 65535) throw err('ValidationError', 'A port must be specified for target groups of type instance');
    const vpcId = p.required('VpcId');
    if (!region.vpcs.has(vpcId)) throw err('ValidationError', `The VPC ID '${vpcId}' is not found`);
    const http = protocol !== 'TCP';
    const checkProtocol = p.str('HealthCheckProtocol') ?? (http ? protocol : 'TCP');
    const g: TargetGroup = {
      arn: this.arn(region.name, 'targetgroup', name),
      name,
      region: region.name,
      protocol,
      port,
      vpcId,
      check: {
        protocol: checkProtocol,
        port: p.str('HealthCheckPort') ?? 'traffic-port',
        path: p.str('HealthCheckPath') ?? '/',
        interval: p.int('HealthCheckIntervalSeconds') ?? 30,
        timeout: p.int('HealthCheckTimeoutSeconds') ?? (http ? 5 : 10),
        healthy: p.int('HealthyThresholdCount') ?? 5,
        unhealthy: p.int('UnhealthyThresholdCount') ?? 2,
        matcher: p.sub('Matcher')?.str('HttpCode') ?? '200',
      },
      deregistrationDelay: 300,
      targets: new Map(),
      next: 0,
    };
    if (g.check.interval < 5 || g.check.interval > 300) throw err('ValidationError', 'Health check interval must be from 5 to 300 seconds');
    if (g.check.healthy < 2 || g.check.healthy > 10 || g.check.unhealthy < 2 || g.check.unhealthy > 10) throw err('ValidationError', 'Health check thresholds must be from 2 to 10');
    this.groups.set(g.arn, g);
    this.cloud.background(() => this.checkHealth(region, g));
    return g;
  }

  groupXml(g: TargetGroup): Record<string, XmlValue> {
    const lbs = [...new Set([...this.listeners.values()].filter((l) => l.groupArn === g.arn).map((l) => l.lbArn))];
    return {
      TargetGroupArn: g.arn,
      TargetGroupName: g.name,
      Protocol: g.protocol,
      Port: g.port,
      VpcId: g.vpcId,
      HealthCheckProtocol: g.check.protocol,
      HealthCheckPort: g.check.port,
      HealthCheckEnabled: true,
      HealthCheckIntervalSeconds: g.check.interval,
      HealthCheckTimeoutSeconds: g.check.timeout,
      HealthyThresholdCount: g.check.healthy,
      UnhealthyThresholdCount: g.check.unhealthy,
      HealthCheckPath: g.check.protocol === 'TCP' ? undefined : g.check.path,
      Matcher: g.check.protocol === 'TCP' ? undefined : { HttpCode: g.check.matcher },
      LoadBalancerArns: lbs,
      TargetType: 'instance',
      ProtocolVersion: g.protocol === 'TCP' ? undefined : 'HTTP1',
      IpAddressType: 'ipv4',
    };
  }

  async deleteTargetGroup(region: RegionState, arn: string): Promise<void> {
    const g = this.groups.get(arn);
    if (!g || g.region !== region.name) return; // EC2 ELB answers success for a group already gone.
    if (this.inUse(g)) throw err('ResourceInUse', `Target group '${arn}' is currently in use by a listener or a rule`);
    this.groups.delete(arn);
  }

  targets(region: RegionState, p: Params): { id: string; port?: number }[] {
    const list = members(p, 'Targets').map((t) => ({ id: t.required('Id'), port: t.int('Port') }));
    if (list.length === 0) throw err('ValidationError', 'Targets must contain at least one target');
    return list;
  }

  register(region: RegionState, g: TargetGroup, list: { id: string; port?: number }[]): void {
    for (const { id, port } of list) {
      const i = this.instance(region, id);
      if (!i) throw err('InvalidTarget', `The following targets are not in a running state and cannot be registered: '${id}'`);
    }
    for (const { id, port } of list) {
      const existing = g.targets.get(id);
      if (existing && existing.drainingUntil === undefined) continue;
      g.targets.set(id, { id, port: port ?? g.port, health: new MemberHealth(), checked: false });
    }
  }

  deregister(region: RegionState, g: TargetGroup, list: { id: string; port?: number }[]): void {
    for (const { id } of list) if (!g.targets.has(id)) throw err('InvalidTarget', `The following targets are not registered in target group: '${id}'`);
    for (const { id } of list) {
      const t = g.targets.get(id)!;
      if (t.drainingUntil !== undefined) continue;
      t.drainingUntil = Date.now() + g.deregistrationDelay * 1000;
      this.cloud.background(async () => {
        await this.cloud.sleep(g.deregistrationDelay * 1000);
        if (g.targets.get(id) === t) g.targets.delete(id);
      });
    }
  }

  async createLoadBalancer(region: RegionState, p: Params): Promise<LoadBalancer> {
    const name = p.required('Name');
    if (!/^[a-zA-Z0-9-]{1,32}$/.test(name) || name.startsWith('internal-')) throw err('ValidationError', `Load balancer name '${name}' is not valid`);
    if ([...this.balancers.values()].some((b) => b.region === region.name && b.name === name)) throw err('DuplicateLoadBalancerName', `A load balancer with the same name '${name}' exists`);
    const type = p.str('Type') ?? 'application';
    if (type !== 'application' && type !== 'network') throw err('ValidationError', `Load balancer type '${type}' is not emulated`);
    const subnetIds = memberStrings(p, 'Subnets');
    const subnets = subnetIds.length ? subnetIds : [...region.subnets.values()].filter((s) => s.isDefault).map((s) => s.id);
    for (const id of subnets) if (!region.subnets.has(id)) throw err('SubnetNotFound', `The subnet ID '${id}' is not valid`);
    if (type === 'application' && subnets.length < 2) throw err('ValidationError', 'At least two subnets in two different Availability Zones must be specified');
    const address = await claimAddress(80);
    const lb: LoadBalancer = {
      arn: this.arn(region.name, type === 'application' ? 'loadbalancer/app' : 'loadbalancer/net', name),
      name,
      region: region.name,
      type,
      scheme: p.str('Scheme') ?? 'internet-facing',
      address,
      createdAt: new Date(),
      state: 'provisioning',
      vpcId: region.subnets.get(subnets[0]!)!.vpcId,
      subnets,
    };
    this.balancers.set(lb.arn, lb);
    this.cloud.background(async () => {
      await this.cloud.sleep(this.provisioningMs);
      lb.state = 'active';
    });
    return lb;
  }

  balancerXml(region: RegionState, lb: LoadBalancer): Record<string, XmlValue> {
    return {
      LoadBalancerArn: lb.arn,
      // The emulator has no DNS: the name is the balancer's address, which clients can connect to.
      DNSName: lb.address,
      CanonicalHostedZoneId: 'Z35SXDOTRQ7X7K',
      CreatedTime: lb.createdAt,
      LoadBalancerName: lb.name,
      Scheme: lb.scheme,
      VpcId: lb.vpcId,
      State: { Code: lb.state },
      Type: lb.type,
      AvailabilityZones: lb.subnets.map((id) => ({ ZoneName: region.subnets.get(id)?.availabilityZone, SubnetId: id, LoadBalancerAddresses: lb.type === 'network' ? [{ IpAddress: lb.address }] : undefined })),
      SecurityGroups: lb.type === 'application' ? [...region.groups.values()].filter((g) => g.vpcId === lb.vpcId && g.name === 'default').map((g) => g.id) : undefined,
      IpAddressType: 'ipv4',
    };
  }

  async deleteLoadBalancer(region: RegionState, arn: string): Promise<void> {
    const lb = this.balancers.get(arn);
    if (!lb || lb.region !== region.name) return;
    for (const l of [...this.listeners.values()]) if (l.lbArn === arn) await this.deleteListener(l.arn);
    this.balancers.delete(arn);
    await releaseAddress(lb.address);
  }

  async createListener(region: RegionState, p: Params): Promise<Listener> {
    const lb = this.balancer(region, p.required('LoadBalancerArn'));
    const port = p.int('Port');
    if (port === undefined || port < 1 || port > 65535) throw err('ValidationError', 'A listener port must be specified');
    const protocol = p.str('Protocol') ?? (lb.type === 'application' ? 'HTTP' : 'TCP');
    const actions = members(p, 'DefaultActions');
    const forward = actions.find((a) => a.str('Type') === 'forward');
    if (actions.length !== 1 || !forward) throw err('ValidationError', 'The emulator supports one default action of type forward');
    const g = this.group(region, forward.required('TargetGroupArn'));
    if ([...this.listeners.values()].some((l) => l.lbArn === lb.arn && l.port === port)) throw err('DuplicateListener', 'A listener already exists on this port for this load balancer');
    const forwarder = await TcpForwarder.listen(lb.address, port, { pick: () => this.pick(region, g) }).catch(() => {
      throw err('ValidationError', `Port ${port} cannot be opened on the load balancer's address ${lb.address}`);
    });
    const listener: Listener = { arn: lb.arn.replace(':loadbalancer/', ':listener/') + `/${hex(8)}`, lbArn: lb.arn, port, protocol, groupArn: g.arn, forwarder };
    this.listeners.set(listener.arn, listener);
    return listener;
  }

  listenerXml(l: Listener): Record<string, XmlValue> {
    return { ListenerArn: l.arn, LoadBalancerArn: l.lbArn, Port: l.port, Protocol: l.protocol, DefaultActions: [{ Type: 'forward', TargetGroupArn: l.groupArn, Order: 1 }] };
  }

  async deleteListener(arn: string): Promise<void> {
    const l = this.listeners.get(arn);
    if (!l) throw err('ListenerNotFound', `Listener '${arn}' not found`);
    this.listeners.delete(arn);
    await l.forwarder.close();
  }

  async close(): Promise<void> {
    for (const arn of [...this.balancers.keys()]) {
      const lb = this.balancers.get(arn)!;
      await this.deleteLoadBalancer({ name: lb.region } as RegionState, arn);
    }
    this.groups.clear();
  }
}

/**
 * A target group's Matcher.HttpCode ("200", "200,202", "200-299"): the HTTP statuses its health
 * check takes as healthy. A target answering anything else is unhealthy (a 301 fails the default 200).
 */
export function httpCodeMatcher(httpCode: string): (status: number) => boolean {
  const ranges = httpCode.split(',').map((part) => {
    const [from, to] = part.trim().split('-').map(Number);
    return [from!, to ?? from!] as const;
  });
  return (status) => ranges.some(([from, to]) => status >= from && status <= to);
}
