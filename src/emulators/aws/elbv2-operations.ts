/**
 * The Elastic Load Balancing v2 actions the emulator answers (Query protocol, 2015-12-01), each
 * reading its parameters as botocore sends them (`Names.member.1`, `Targets.member.1.Id`...).
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_Operations.html
 */
import type { Elbv2 } from './elbv2.js';
import { Ec2Error } from './errors.js';
import type { Params } from './query.js';
import { members, memberStrings } from './elbv2-query.js';
import type { RegionState } from './resources.js';
import type { XmlValue } from './xml.js';

type Result = Record<string, XmlValue>;
export type Elbv2Handler = (elb: Elbv2, region: RegionState, p: Params) => Result | Promise<Result>;

const notFound = (code: string, what: string, names: string[]) => new Ec2Error(code, `${what} '${names.join(', ')}' not found`);

export const ELBV2_OPERATIONS: Record<string, Elbv2Handler> = {
  CreateTargetGroup: (elb, region, p) => ({ TargetGroups: [elb.groupXml(elb.createTargetGroup(region, p))] }),

  DescribeTargetGroups: (elb, region, p) => {
    const arns = memberStrings(p, 'TargetGroupArns');
    const names = memberStrings(p, 'Names');
    const lbArn = p.str('LoadBalancerArn');
    let groups = [...elb.groups.values()].filter((g) => g.region === region.name);
    if (arns.length) {
      const missing = arns.filter((a) => !groups.some((g) => g.arn === a));
      if (missing.length) throw notFound('TargetGroupNotFound', 'Target groups', missing);
      groups = groups.filter((g) => arns.includes(g.arn));
    }
    if (names.length) {
      const missing = names.filter((n) => !groups.some((g) => g.name === n));
      if (missing.length) throw notFound('TargetGroupNotFound', 'One or more target groups', missing);
      groups = groups.filter((g) => names.includes(g.name));
    }
    if (lbArn) groups = groups.filter((g) => [...elb.listeners.values()].some((l) => l.lbArn === lbArn && l.groupArn === g.arn));
    return { TargetGroups: groups.map((g) => elb.groupXml(g)) };
  },

  DeleteTargetGroup: async (elb, region, p) => {
    await elb.deleteTargetGroup(region, p.required('TargetGroupArn'));
    return {};
  },

  DescribeTargetGroupAttributes: (elb, region, p) => {
    const g = elb.group(region, p.required('TargetGroupArn'));
    return { Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: String(g.deregistrationDelay) }, { Key: 'stickiness.enabled', Value: 'false' }] };
  },

  ModifyTargetGroupAttributes: (elb, region, p) => {
    const g = elb.group(region, p.required('TargetGroupArn'));
    for (const a of members(p, 'Attributes')) {
      const key = a.required('Key');
      const value = a.str('Value') ?? '';
      if (key !== 'deregistration_delay.timeout_seconds') throw new Ec2Error('ValidationError', `The emulator has only the attribute deregistration_delay.timeout_seconds, not '${key}'`);
      if (!/^\d+$/.test(value) || Number(value) > 3600) throw new Ec2Error('ValidationError', `'${value}' is not a valid deregistration delay (0-3600 seconds)`);
      g.deregistrationDelay = Number(value);
    }
    return { Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: String(g.deregistrationDelay) }, { Key: 'stickiness.enabled', Value: 'false' }] };
  },

  RegisterTargets: (elb, region, p) => {
    elb.register(region, elb.group(region, p.required('TargetGroupArn')), elb.targets(region, p));
    return {};
  },

  DeregisterTargets: (elb, region, p) => {
    elb.deregister(region, elb.group(region, p.required('TargetGroupArn')), elb.targets(region, p));
    return {};
  },

  DescribeTargetHealth: (elb, region, p) => {
    const g = elb.group(region, p.required('TargetGroupArn'));
    const asked = members(p, 'Targets').map((t) => t.required('Id'));
    const ids = asked.length ? asked : [...g.targets.keys()];
    return {
      TargetHealthDescriptions: ids.map((id) => {
        const t = g.targets.get(id);
        if (!t) return { Target: { Id: id }, TargetHealth: { State: 'unavailable', Reason: 'Target.NotRegistered', Description: 'Target is not registered to the target group' } };
        return { Target: { Id: id, Port: t.port }, HealthCheckPort: g.check.port === 'traffic-port' ? String(t.port) : g.check.port, TargetHealth: elb.targetState(region, g, t) };
      }),
    };
  },

  CreateLoadBalancer: async (elb, region, p) => ({ LoadBalancers: [elb.balancerXml(region, await elb.createLoadBalancer(region, p))] }),

  DescribeLoadBalancers: (elb, region, p) => {
    const arns = memberStrings(p, 'LoadBalancerArns');
    const names = memberStrings(p, 'Names');
    let lbs = [...elb.balancers.values()].filter((b) => b.region === region.name);
    const missing = [...arns.filter((a) => !lbs.some((b) => b.arn === a)), ...names.filter((n) => !lbs.some((b) => b.name === n))];
    if (missing.length) throw notFound('LoadBalancerNotFound', 'Load balancers', missing);
    if (arns.length) lbs = lbs.filter((b) => arns.includes(b.arn));
    if (names.length) lbs = lbs.filter((b) => names.includes(b.name));
    return { LoadBalancers: lbs.map((b) => elb.balancerXml(region, b)) };
  },

  DeleteLoadBalancer: async (elb, region, p) => {
    await elb.deleteLoadBalancer(region, p.required('LoadBalancerArn'));
    return {};
  },

  CreateListener: async (elb, region, p) => ({ Listeners: [elb.listenerXml(await elb.createListener(region, p))] }),

  DescribeListeners: (elb, region, p) => {
    const lbArn = p.str('LoadBalancerArn');
    const arns = memberStrings(p, 'ListenerArns');
    if (!lbArn && !arns.length) throw new Ec2Error('ValidationError', 'You must specify either listener ARNs or a load balancer ARN');
    if (lbArn && !elb.balancers.has(lbArn)) throw notFound('LoadBalancerNotFound', 'Load balancers', [lbArn]);
    const missing = arns.filter((a) => !elb.listeners.has(a));
    if (missing.length) throw notFound('ListenerNotFound', 'Listeners', missing);
    const listeners = [...elb.listeners.values()].filter((l) => (!lbArn || l.lbArn === lbArn) && (!arns.length || arns.includes(l.arn)));
    return { Listeners: listeners.map((l) => elb.listenerXml(l)) };
  },

  DeleteListener: async (elb, _region, p) => {
    await elb.deleteListener(p.required('ListenerArn'));
    return {};
  },
};
