/**
 * An endpoint as a DigitalOcean load balancer, found by its name (kit/endpoints.ts endpointName).
 * Droplets join and leave by id, never by tag: a droplet joins only once deploy found it healthy.
 * DigitalOcean does not report a member's health, so joining and draining are waited out by the
 * load balancer's own rules: its check passes `healthy_threshold` times, one interval apart.
 * https://docs.digitalocean.com/reference/api/digitalocean/#tag/Load-Balancers
 */
import { z } from 'zod';
import { ProviderError } from '../../core/errors.js';
import { poll, sleep, TimeoutError } from '../../core/wait.js';
import { drain, endpointName } from '../kit/endpoints.js';
import type { EndpointRef, EndpointStatus, HttpHealthCheck, Machine } from '../types.js';
import type { DigitalOceanApi } from './api.js';
import { loadBalancerSchema, type LoadBalancer } from './types.js';

const lbAnswer = z.looseObject({ load_balancer: loadBalancerSchema });

export interface LoadBalancerSpec {
  port: number;
  targetPort: number;
  healthCheck?: HttpHealthCheck;
}

/** Fast checks: deploy's own health check gated the droplet already; this one only confirms it. */
const CHECK = { check_interval_seconds: 3, response_timeout_seconds: 3, healthy_threshold: 2, unhealthy_threshold: 2 };

function healthCheck(spec: LoadBalancerSpec) {
  const http = spec.healthCheck;
  return http ? { protocol: 'http', port: http.port, path: http.path, ...CHECK } : { protocol: 'tcp', port: spec.targetPort, ...CHECK };
}

function forwardingRules(spec: LoadBalancerSpec) {
  return [{ entry_protocol: 'http', entry_port: spec.port, target_protocol: 'http', target_port: spec.targetPort }];
}

/** The rules and check as we want them, compared with what the load balancer has. */
function differs(lb: LoadBalancer, spec: LoadBalancer['forwarding_rules'], check: ReturnType<typeof healthCheck>): boolean {
  const rules = lb.forwarding_rules.map((r) => `${r.entry_protocol}:${r.entry_port}>${r.target_protocol}:${r.target_port}`).sort().join();
  const wanted = spec.map((r) => `${r.entry_protocol}:${r.entry_port}>${r.target_protocol}:${r.target_port}`).sort().join();
  const hc = lb.health_check;
  return rules !== wanted || !hc || hc.protocol !== check.protocol || hc.port !== check.port || (check.protocol === 'http' && hc.path !== (check as { path?: string }).path);
}

export class DigitalOceanLoadBalancers {
  constructor(
    private readonly api: DigitalOceanApi,
    private readonly region: string,
    private readonly createTimeoutMs: number,
  ) {}

  /** Every load balancer of the account (ours are told apart by name). */
  all(signal: AbortSignal): Promise<LoadBalancer[]> {
    return this.api.list('/v2/load_balancers', 'load_balancers', { operation: 'list load balancers', signal, schema: loadBalancerSchema });
  }

  async find(ref: EndpointRef, signal: AbortSignal): Promise<LoadBalancer | undefined> {
    const name = endpointName(ref);
    return (await this.all(signal)).find((lb) => lb.name === name);
  }

  status(lb: LoadBalancer, members: EndpointStatus['members']): EndpointStatus {
    const port = lb.forwarding_rules[0]?.entry_port ?? 80;
    return { kind: 'load-balancer', address: lb.ip ? `${lb.ip}:${port}` : '', members };
  }

  /** Creates it (no droplets) if missing, or brings its rules and check to the spec; waits until active. */
  async ensure(ref: EndpointRef, spec: LoadBalancerSpec, signal: AbortSignal): Promise<LoadBalancer> {
    const rules = forwardingRules(spec);
    const check = healthCheck(spec);
    let lb = await this.find(ref, signal);
    if (!lb) {
      const { body } = await this.api.request('POST', '/v2/load_balancers', {
        operation: 'create the load balancer',
        body: { name: endpointName(ref), region: this.region, forwarding_rules: rules, health_check: check, droplet_ids: [] },
        signal,
        schema: lbAnswer,
      });
      lb = body.load_balancer;
    } else if (differs(lb, rules, check)) {
      // PUT replaces the whole load balancer: its droplets go along unchanged.
      const { body } = await this.api.request('PUT', `/v2/load_balancers/${lb.id}`, {
        operation: 'update the load balancer',
        body: { name: lb.name, region: this.region, forwarding_rules: rules, health_check: check, droplet_ids: lb.droplet_ids ?? [] },
        signal,
        schema: lbAnswer,
      });
      lb = body.load_balancer;
    }
    if (lb.status === 'active' && lb.ip) return lb;
    const id = lb.id;
    return poll(
      async () => {
        const { body } = await this.api.request('GET', `/v2/load_balancers/${id}`, { operation: 'wait for the load balancer', signal, schema: lbAnswer });
        if (body.load_balancer.status === 'errored') throw new ProviderError({ provider: 'digitalocean', operation: 'create the load balancer', message: `load balancer ${id} errored` });
        return body.load_balancer.status === 'active' && body.load_balancer.ip ? body.load_balancer : undefined;
      },
      { what: `load balancer ${lb.name} to become active`, timeoutMs: this.createTimeoutMs, signal, maxIntervalMs: 5000 },
    ).catch((err) => {
      if (err instanceof TimeoutError) throw new ProviderError({ provider: 'digitalocean', operation: 'create the load balancer', message: err.message });
      throw err;
    });
  }

  /** The endpoint's load balancer, which ensure made. */
  async get(ref: EndpointRef, signal: AbortSignal): Promise<LoadBalancer> {
    const lb = await this.find(ref, signal);
    if (!lb) throw new ProviderError({ provider: 'digitalocean', operation: 'attach to the load balancer', message: `there is no load balancer ${endpointName(ref)} (ensure makes it)` });
    return lb;
  }

  /** Adds the droplets by id; resolves once its check can have passed them (healthy_threshold intervals). */
  async attach(lb: LoadBalancer, machines: Machine[], signal: AbortSignal): Promise<void> {
    const ids = machines.map((m) => Number(m.id)).filter((id) => !(lb.droplet_ids ?? []).includes(id));
    if (ids.length === 0) return;
    await this.api.request('POST', `/v2/load_balancers/${lb.id}/droplets`, { operation: 'add droplets to the load balancer', body: { droplet_ids: ids }, signal });
    await sleep(joinMs(lb), signal);
  }

  /** Removes the droplets (no new connections), then gives their open connections `drainMs`. */
  async detach(lb: LoadBalancer, machines: Pick<Machine, 'id'>[], drainMs: number, signal: AbortSignal): Promise<void> {
    const ids = machines.map((m) => Number(m.id)).filter((id) => (lb.droplet_ids ?? []).includes(id));
    if (ids.length === 0) return;
    await this.api.request('DELETE', `/v2/load_balancers/${lb.id}/droplets`, { operation: 'remove droplets from the load balancer', body: { droplet_ids: ids }, signal });
    await drain(drainMs, signal);
  }

  async remove(lb: LoadBalancer, signal: AbortSignal): Promise<void> {
    await this.api.request('DELETE', `/v2/load_balancers/${lb.id}`, { operation: 'delete the load balancer', signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }
}

/**
 * How long until a new member gets traffic: the next check comes within one interval, and it must
 * pass healthy_threshold times in a row; a probe takes up to its timeout.
 */
function joinMs(lb: LoadBalancer): number {
  const hc = lb.health_check as { check_interval_seconds?: number; healthy_threshold?: number; response_timeout_seconds?: number } | undefined;
  const interval = hc?.check_interval_seconds ?? CHECK.check_interval_seconds;
  return (interval * (hc?.healthy_threshold ?? CHECK.healthy_threshold) + (hc?.response_timeout_seconds ?? 1)) * 1000;
}
