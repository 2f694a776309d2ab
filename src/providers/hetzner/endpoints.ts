/**
 * Hetzner Cloud's endpoints (types.ts `Endpoints`): a load balancer (load-balancer.ts) or a
 * Floating IP (floating-ip.ts), by the spec's kind. Both carry the endpoint's labels, so that they
 * are found without a spec (destroy, cleanup) and listed per project even before a server joined.
 * A load balancer's members are its server targets, in the health Hetzner reports for them.
 */
import type { EndpointRef, Endpoints, EndpointStatus, HttpHealthCheck, Machine } from '../types.js';
import { ProviderError } from '../../core/errors.js';
import { endpointName, endpointServers, readSpec, refOf, type ListServers } from '../kit/endpoints.js';
import type { HetznerActions } from './actions.js';
import type { HetznerApi } from './api.js';
import { hetznerEndpointSchema } from './endpoint-spec.js';
import { HetznerFloatingIps } from './floating-ip.js';
import { HetznerLoadBalancers, type LoadBalancerSpec } from './load-balancer.js';

export class HetznerEndpoints implements Endpoints {
  private readonly lbs: HetznerLoadBalancers;
  private readonly ips: HetznerFloatingIps;

  constructor(
    api: HetznerApi,
    actions: HetznerActions,
    location: string,
    private readonly listServers: ListServers,
  ) {
    this.lbs = new HetznerLoadBalancers(api, actions, location);
    this.ips = new HetznerFloatingIps(api, actions);
  }

  /** The load balancer's settings, or undefined for a Floating IP. */
  private lbSpec(spec: unknown, healthCheck?: HttpHealthCheck): LoadBalancerSpec | undefined {
    const parsed = readSpec(hetznerEndpointSchema, spec, 'hetzner');
    if (!('load-balancer' in parsed)) return undefined;
    const lb = parsed['load-balancer'];
    return { port: lb.port, targetPort: lb['target-port'], type: lb.type, healthCheck };
  }

  /** Without a spec (cleanup, destroy of an endpoint no longer configured): whichever kind the ref has. */
  private async kindOf(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<'load-balancer' | 'floating-ip' | undefined> {
    if (spec !== undefined) return this.lbSpec(spec) ? 'load-balancer' : 'floating-ip';
    if (await this.lbs.find(ref, signal)) return 'load-balancer';
    return (await this.ips.find(ref, signal)) ? 'floating-ip' : undefined;
  }

  async ensure(ref: EndpointRef, spec: unknown, signal: AbortSignal, opts?: { health?: HttpHealthCheck }): Promise<EndpointStatus> {
    const lb = this.lbSpec(spec, opts?.health);
    // A Floating IP is created by the first attach, assigned to its server (floating-ip.ts).
    if (!lb) return this.ips.status(await this.ips.find(ref, signal));
    return this.lbs.status(await this.lbs.ensure(ref, lb, signal), await endpointServers(this.listServers, ref, signal));
  }

  async attach(ref: EndpointRef, spec: unknown, machines: Machine[], signal: AbortSignal): Promise<void> {
    if (!this.lbSpec(spec)) return this.ips.attach(ref, machines, signal);
    const lb = await this.lbs.find(ref, signal);
    if (!lb) throw new ProviderError({ provider: 'hetzner', operation: 'attach to the load balancer', message: `there is no load balancer ${endpointName(ref)} (ensure makes it)` });
    await this.lbs.attach(lb, machines, signal);
  }

  async detach(ref: EndpointRef, spec: unknown, machines: Pick<Machine, 'id' | 'name'>[], drainMs: number, signal: AbortSignal): Promise<void> {
    const kind = await this.kindOf(ref, spec, signal);
    if (kind === 'floating-ip') return this.ips.detach(ref, machines, await endpointServers(this.listServers, ref, signal), drainMs, signal);
    const lb = await this.lbs.find(ref, signal);
    if (lb) await this.lbs.detach(lb, machines, drainMs, signal);
  }

  async status(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<EndpointStatus | undefined> {
    const kind = await this.kindOf(ref, spec, signal);
    if (kind === 'floating-ip') {
      const ip = await this.ips.find(ref, signal);
      return ip && this.ips.status(ip, await endpointServers(this.listServers, ref, signal));
    }
    const lb = await this.lbs.find(ref, signal);
    return lb && this.lbs.status(lb, await endpointServers(this.listServers, ref, signal));
  }

  async remove(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<void> {
    const kind = await this.kindOf(ref, spec, signal);
    if (kind === 'floating-ip') return this.ips.remove(ref, signal);
    const lb = await this.lbs.find(ref, signal);
    if (lb) await this.lbs.remove(lb, signal);
  }

  /** The project's load balancers and Floating IPs, by their labels. */
  async list(project: string, signal: AbortSignal): Promise<(EndpointRef & EndpointStatus)[]> {
    const servers = await this.listServers({ project }, signal);
    const out: (EndpointRef & EndpointStatus)[] = [];
    for (const lb of await this.lbs.ofProject(project, signal)) {
      const ref = refOf(lb.labels);
      if (ref) out.push({ ...ref, ...this.lbs.status(lb, servers) });
    }
    for (const ip of await this.ips.list(project, signal)) out.push({ ...ip, members: ip.members.map((m) => ({ ...m, name: servers.find((s) => s.id === m.machineId)?.name })) });
    return out;
  }
}
