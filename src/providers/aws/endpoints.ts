/**
 * AWS's endpoints (types.ts `Endpoints`): an ELBv2 target group (target-group.ts) or an Elastic IP
 * (elastic-ip.ts), by the spec's kind. A target group's members are the endpoint's instances
 * registered in it, with the state ELBv2 reports; targets that are not ours are not shown.
 */
import { endpointServers, readSpec, refOf, type ListServers } from '../kit/endpoints.js';
import type { EndpointRef, Endpoints, EndpointStatus, Machine, Server } from '../types.js';
import type { Ec2, Ec2Target } from './client.js';
import { ElasticIps } from './elastic-ip.js';
import { awsEndpointSchema } from './endpoint-spec.js';
import { TargetGroups, type TargetGroupView } from './target-group.js';

export class AwsEndpoints implements Endpoints {
  private readonly groups: TargetGroups;
  private readonly ips: ElasticIps;

  constructor(
    ec2: Ec2,
    elbv2: Ec2Target,
    private readonly listServers: ListServers,
  ) {
    this.groups = new TargetGroups(elbv2);
    this.ips = new ElasticIps(ec2);
  }

  /** The target group's ARN, or undefined for an Elastic IP. */
  private groupOf(spec: unknown): string | undefined {
    const parsed = readSpec(awsEndpointSchema, spec, 'aws');
    return 'target-group' in parsed ? parsed['target-group'] : undefined;
  }

  /**
   * Without a spec (cleanup, destroy of an endpoint no longer configured): the target groups that
   * have the machines (or the ref's servers) as targets.
   */
  private async groupsWith(ids: string[], signal: AbortSignal): Promise<string[]> {
    const found: string[] = [];
    for (const arn of await this.groups.arns(signal)) {
      if ((await this.groups.view(arn, signal)).targets.some((t) => ids.includes(t.id))) found.push(arn);
    }
    return found;
  }

  private servers(ref: EndpointRef, signal: AbortSignal): Promise<Server[]> {
    return endpointServers(this.listServers, ref, signal);
  }

  private groupStatus(view: TargetGroupView, servers: Server[]): EndpointStatus {
    const members = view.targets.flatMap((t) => {
      const server = servers.find((s) => s.id === t.id);
      return server ? [{ machineId: t.id, name: server.name, state: t.state }] : [];
    });
    return { kind: 'target-group', address: view.address, members };
  }

  async ensure(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<EndpointStatus> {
    const arn = this.groupOf(spec);
    // The target group is the user's: ensure checks it exists and reads where it answers.
    if (arn) return this.groupStatus(await this.groups.view(arn, signal), await this.servers(ref, signal));
    return this.ips.status(await this.ips.ensure(ref, signal));
  }

  async attach(ref: EndpointRef, spec: unknown, machines: Machine[], signal: AbortSignal): Promise<void> {
    const arn = this.groupOf(spec);
    if (arn) return this.groups.register(arn, machines, signal);
    return this.ips.attach(ref, machines, signal);
  }

  async detach(ref: EndpointRef, spec: unknown, machines: Pick<Machine, 'id' | 'name'>[], drainMs: number, signal: AbortSignal): Promise<void> {
    if (spec === undefined) {
      for (const arn of await this.groupsWith(machines.map((m) => m.id), signal)) await this.groups.deregister(arn, machines, drainMs > 0, signal);
      return this.ips.detach(ref, machines, await this.servers(ref, signal), drainMs, signal);
    }
    const arn = this.groupOf(spec);
    // ELBv2 drains for the group's deregistration delay (its own setting), reported as `draining`;
    // no drain asked (a dead server leaving): not waited.
    if (arn) return this.groups.deregister(arn, machines, drainMs > 0, signal);
    return this.ips.detach(ref, machines, await this.servers(ref, signal), drainMs, signal);
  }

  async status(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<EndpointStatus | undefined> {
    const arn = spec === undefined ? undefined : this.groupOf(spec);
    if (arn) return this.groupStatus(await this.groups.view(arn, signal), await this.servers(ref, signal));
    const address = await this.ips.find(ref, signal);
    return address && this.ips.status(address);
  }

  /** An Elastic IP is released; a target group (the user's) only loses our instances. */
  async remove(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<void> {
    const servers = await this.servers(ref, signal);
    const arns = spec === undefined ? await this.groupsWith(servers.map((s) => s.id), signal) : [this.groupOf(spec)].filter((a): a is string => !!a);
    for (const arn of arns) await this.groups.deregister(arn, servers, false, signal);
    if (spec === undefined || arns.length === 0) await this.ips.remove(ref, signal);
  }

  /** The project's Elastic IPs by their tags, and every target group with instances of the project. */
  async list(project: string, signal: AbortSignal): Promise<(EndpointRef & EndpointStatus)[]> {
    const out = await this.ips.list(project, signal);
    const servers = await this.listServers({ project }, signal);
    if (servers.length === 0) return out;
    for (const arn of await this.groups.arns(signal)) {
      const view = await this.groups.view(arn, signal);
      const refs = new Map<string, EndpointRef>();
      // A draining target is already on its way out (a removed endpoint's last members).
      for (const t of view.targets.filter((t) => t.state !== 'draining')) {
        const ref = refOf(servers.find((s) => s.id === t.id)?.labels ?? {});
        if (ref) refs.set(JSON.stringify(ref), ref);
      }
      for (const ref of refs.values()) {
        const mine = servers.filter((s) => JSON.stringify(refOf(s.labels)) === JSON.stringify(ref));
        out.push({ ...ref, ...this.groupStatus(view, mine) });
      }
    }
    return out;
  }

  close(): void {
    this.groups.close();
  }
}
