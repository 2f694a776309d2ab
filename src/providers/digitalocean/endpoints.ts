/**
 * DigitalOcean's endpoints (types.ts `Endpoints`): a load balancer (load-balancer.ts) or a reserved
 * IP (reserved-ip.ts), by the spec's kind. Members are the endpoint's droplets; DigitalOcean does
 * not report a member's health, so an active droplet we added (healthy by deploy's own check, and
 * waited in by the load balancer's) counts as healthy.
 */
import type { HttpHealthCheck, EndpointMember, EndpointRef, Endpoints, EndpointStatus, Machine, Server } from '../types.js';
import { byEndpoint, endpointName, endpointServers, readSpec, refOf, type ListServers } from '../kit/endpoints.js';
import type { Actions } from './actions.js';
import type { DigitalOceanApi } from './api.js';
import { digitalOceanEndpointSchema, type DigitalOceanEndpoint } from './endpoint-spec.js';
import { DigitalOceanLoadBalancers, type LoadBalancerSpec } from './load-balancer.js';
import { DigitalOceanReservedIps } from './reserved-ip.js';
import { tagsToLabels } from './tags.js';

function lbSpec(spec: DigitalOceanEndpoint, healthCheck?: HttpHealthCheck): LoadBalancerSpec | undefined {
  return 'load-balancer' in spec ? { port: spec['load-balancer'].port, targetPort: spec['load-balancer']['target-port'], healthCheck } : undefined;
}

export class DigitalOceanEndpoints implements Endpoints {
  private readonly lbs: DigitalOceanLoadBalancers;
  private readonly ips: DigitalOceanReservedIps;

  constructor(
    api: DigitalOceanApi,
    actions: Actions,
    region: string,
    createTimeoutMs: number,
    private readonly listServers: ListServers,
  ) {
    this.lbs = new DigitalOceanLoadBalancers(api, region, createTimeoutMs);
    this.ips = new DigitalOceanReservedIps(api, actions);
  }

  private spec(spec: unknown): DigitalOceanEndpoint {
    return readSpec(digitalOceanEndpointSchema, spec, 'digitalocean');
  }

  /** Without a spec (cleanup, destroy of an endpoint no longer configured): whichever kind the ref has. */
  private async kindOf(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<'load-balancer' | 'reserved-ip' | undefined> {
    if (spec !== undefined) return lbSpec(this.spec(spec)) ? 'load-balancer' : 'reserved-ip';
    if (await this.lbs.find(ref, signal)) return 'load-balancer';
    return (await this.ips.find(ref, signal)) ? 'reserved-ip' : undefined;
  }

  private servers(ref: EndpointRef, signal: AbortSignal): Promise<Server[]> {
    return endpointServers(this.listServers, ref, signal);
  }

  private members(ids: number[], servers: Server[]): EndpointMember[] {
    return ids.map((id) => {
      const server = servers.find((s) => s.id === String(id));
      return { machineId: String(id), name: server?.name, state: server?.state === 'running' ? 'healthy' : 'unknown' };
    });
  }

  async ensure(ref: EndpointRef, spec: unknown, signal: AbortSignal, opts?: { health?: HttpHealthCheck }): Promise<EndpointStatus> {
    const lb = lbSpec(this.spec(spec), opts?.health);
    if (!lb) return this.ips.status(await this.ips.find(ref, signal)); // created by the first attach (reserved-ip.ts)
    const found = await this.lbs.ensure(ref, lb, signal);
    return this.lbs.status(found, this.members(found.droplet_ids ?? [], await this.servers(ref, signal)));
  }

  async attach(ref: EndpointRef, spec: unknown, machines: Machine[], signal: AbortSignal): Promise<void> {
    if (!lbSpec(this.spec(spec))) return this.ips.attach(ref, machines, signal);
    await this.lbs.attach(await this.lbs.get(ref, signal), machines, signal);
  }

  async detach(ref: EndpointRef, spec: unknown, machines: Pick<Machine, 'id' | 'name'>[], drainMs: number, signal: AbortSignal): Promise<void> {
    const kind = await this.kindOf(ref, spec, signal);
    if (kind === 'reserved-ip') return this.ips.detach(ref, machines, await this.servers(ref, signal), drainMs, signal);
    const found = await this.lbs.find(ref, signal);
    if (found) await this.lbs.detach(found, machines, drainMs, signal);
  }

  async status(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<EndpointStatus | undefined> {
    if ((await this.kindOf(ref, spec, signal)) === 'reserved-ip') {
      const ip = await this.ips.find(ref, signal);
      return ip && this.ips.status(ip);
    }
    const found = await this.lbs.find(ref, signal);
    return found && this.lbs.status(found, this.members(found.droplet_ids ?? [], await this.servers(ref, signal)));
  }

  async remove(ref: EndpointRef, spec: unknown, signal: AbortSignal): Promise<void> {
    const kind = await this.kindOf(ref, spec, signal);
    if (kind === 'reserved-ip') return this.ips.remove(ref, signal);
    const found = await this.lbs.find(ref, signal);
    if (found) await this.lbs.remove(found, signal);
  }

  /**
   * The project's endpoints: load balancers by the names its servers' (project, env, image) give,
   * reserved IPs by the droplets holding them.
   */
  async list(project: string, signal: AbortSignal): Promise<(EndpointRef & EndpointStatus)[]> {
    const out: (EndpointRef & EndpointStatus)[] = [];
    const lbs = await this.lbs.all(signal);
    for (const { ref, servers: mine } of byEndpoint(await this.listServers({ project }, signal))) {
      const lb = lbs.find((l) => l.name === endpointName(ref));
      if (lb) out.push({ ...ref, ...this.lbs.status(lb, this.members(lb.droplet_ids ?? [], mine)) });
    }
    for (const ip of await this.ips.assigned(signal)) {
      const ref = refOf(tagsToLabels(ip.droplet!.tags ?? []));
      if (ref && ref.project === project) out.push({ ...ref, ...this.ips.status(ip) });
    }
    return out;
  }
}
