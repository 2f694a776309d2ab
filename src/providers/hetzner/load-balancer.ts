/**
 * An endpoint as a Hetzner Cloud load balancer, found by its name (kit/endpoints.ts endpointName)
 * and labelled with project, environment and image. One HTTP service forwards the spec's port to
 * the servers' target port; its health check is the image's HTTP check (else a TCP connect).
 * Servers join and leave as `server` targets by id, never by label selector, so that a server
 * joins only once deploy found it healthy; Hetzner reports each target's health per service, so a
 * join is waited until the load balancer's own check passes it.
 * https://docs.hetzner.cloud/#load-balancers, #load-balancer-actions
 */
import { z } from 'zod';
import { ProviderError } from '../../core/errors.js';
import { poll, TimeoutError } from '../../core/wait.js';
import { drain, endpointName, refLabels } from '../kit/endpoints.js';
import type { EndpointMember, EndpointRef, EndpointStatus, HttpHealthCheck, Machine, Server } from '../types.js';
import type { HetznerActions } from './actions.js';
import type { HetznerApi } from './api.js';
import { toLabels } from './labels.js';

const healthCheckSchema = z.looseObject({ protocol: z.string(), port: z.number(), http: z.looseObject({ path: z.string(), status_codes: z.array(z.string()) }).nullable().optional() });
const serviceSchema = z.looseObject({ protocol: z.string(), listen_port: z.number(), destination_port: z.number(), health_check: healthCheckSchema });
const targetSchema = z.looseObject({
  type: z.string(),
  server: z.looseObject({ id: z.number() }).nullable().optional(),
  health_status: z.array(z.looseObject({ listen_port: z.number(), status: z.string() })).optional(),
});
export const loadBalancerSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  public_net: z.looseObject({ ipv4: z.looseObject({ ip: z.string().nullable().optional() }) }),
  services: z.array(serviceSchema),
  targets: z.array(targetSchema),
  labels: z.record(z.string(), z.string()),
});
export type LoadBalancer = z.output<typeof loadBalancerSchema>;
const lbAnswer = z.looseObject({ load_balancer: loadBalancerSchema });

export interface LoadBalancerSpec {
  port: number;
  targetPort: number;
  type: string;
  healthCheck?: HttpHealthCheck;
}

/** Fast checks: deploy's own health check gated the server already; this one only confirms it. */
const CHECK = { interval: 3, timeout: 2, retries: 2 };
const ACTION_TIMEOUT_MS = 120_000;
/** How long a new target may take to pass the load balancer's check. */
const JOIN_TIMEOUT_MS = 120_000;

function service(spec: LoadBalancerSpec) {
  const http = spec.healthCheck;
  const health_check = http
    ? { protocol: 'http', port: http.port, ...CHECK, http: { path: http.path, status_codes: [String(http.status)] } }
    : { protocol: 'tcp', port: spec.targetPort, ...CHECK };
  return { protocol: 'http', listen_port: spec.port, destination_port: spec.targetPort, health_check };
}

/** Whether the load balancer's service already is the one wanted. */
function matches(lb: LoadBalancer, wanted: ReturnType<typeof service>): boolean {
  const s = lb.services.find((x) => x.listen_port === wanted.listen_port);
  const h = s?.health_check;
  const w = wanted.health_check as { protocol: string; port: number; http?: { path: string; status_codes: string[] } };
  return !!s && lb.services.length === 1 && s.protocol === wanted.protocol && s.destination_port === wanted.destination_port && h!.protocol === w.protocol && h!.port === w.port
    && (w.protocol !== 'http' || (h!.http?.path === w.http!.path && JSON.stringify(h!.http?.status_codes) === JSON.stringify(w.http!.status_codes)));
}

/** A target's standing over every service: healthy only when every service's check passes it. */
function memberState(statuses: { status: string }[] | undefined): EndpointMember['state'] {
  if (!statuses?.length) return 'unknown';
  if (statuses.every((s) => s.status === 'healthy')) return 'healthy';
  return statuses.some((s) => s.status === 'unhealthy') ? 'unhealthy' : 'joining';
}

export class HetznerLoadBalancers {
  constructor(
    private readonly api: HetznerApi,
    private readonly actions: HetznerActions,
    private readonly location: string,
  ) {}

  /** The project's load balancers (by their labels). */
  ofProject(project: string, signal: AbortSignal): Promise<LoadBalancer[]> {
    return this.api.list('/load_balancers', 'load_balancers', { operation: 'list load balancers', query: { label_selector: `provisional-project=${toLabels({ 'provisional-project': project })['provisional-project']}` }, signal, schema: loadBalancerSchema });
  }

  async find(ref: EndpointRef, signal: AbortSignal): Promise<LoadBalancer | undefined> {
    const name = endpointName(ref);
    return (await this.api.list('/load_balancers', 'load_balancers', { operation: 'find the load balancer', query: { name }, signal, schema: loadBalancerSchema })).find((lb) => lb.name === name);
  }

  status(lb: LoadBalancer, servers: Server[]): EndpointStatus {
    const port = lb.services[0]?.listen_port ?? 80;
    const members = lb.targets.flatMap((t) => (t.type === 'server' && t.server ? [{ machineId: String(t.server.id), name: servers.find((s) => s.id === String(t.server!.id))?.name, state: memberState(t.health_status) }] : []));
    return { kind: 'load-balancer', address: lb.public_net.ipv4.ip ? `${lb.public_net.ipv4.ip}:${port}` : '', members };
  }

  /** Creates it (no targets) if missing, or brings its service to the spec. */
  async ensure(ref: EndpointRef, spec: LoadBalancerSpec, signal: AbortSignal): Promise<LoadBalancer> {
    const wanted = service(spec);
    const lb = await this.find(ref, signal);
    if (!lb) {
      let made: LoadBalancer | undefined;
      const answer = z.looseObject({ load_balancer: loadBalancerSchema, action: z.looseObject({ id: z.number(), command: z.string(), status: z.enum(['running', 'success', 'error']) }) });
      const { body } = await this.api.call('POST', '/load_balancers', {
        operation: 'create the load balancer',
        body: { name: endpointName(ref), load_balancer_type: spec.type, location: this.location, labels: toLabels(refLabels(ref)), services: [wanted], targets: [] },
        signal,
        schema: answer,
      });
      made = body.load_balancer;
      await this.actions.wait(body.action, 'create the load balancer', ACTION_TIMEOUT_MS, signal);
      return made;
    }
    if (matches(lb, wanted)) return lb;
    const path = `/load_balancers/${lb.id}/actions`;
    if (lb.services.some((s) => s.listen_port === wanted.listen_port)) await this.actions.run(`${path}/update_service`, 'update the load balancer\'s service', wanted, ACTION_TIMEOUT_MS, signal);
    else await this.actions.run(`${path}/add_service`, 'add the load balancer\'s service', wanted, ACTION_TIMEOUT_MS, signal);
    for (const s of lb.services.filter((x) => x.listen_port !== wanted.listen_port)) {
      await this.actions.run(`${path}/delete_service`, 'remove an old service of the load balancer', { listen_port: s.listen_port }, ACTION_TIMEOUT_MS, signal);
    }
    return this.get(lb.id, signal);
  }

  private async get(id: number, signal: AbortSignal): Promise<LoadBalancer> {
    return (await this.api.call('GET', `/load_balancers/${id}`, { operation: 'read the load balancer', signal, schema: lbAnswer })).body.load_balancer;
  }

  /** Adds the servers as targets by id; resolves once the load balancer's check passes every one. */
  async attach(lb: LoadBalancer, machines: Machine[], signal: AbortSignal): Promise<void> {
    const isTarget = (id: string) => lb.targets.some((t) => t.type === 'server' && String(t.server?.id) === id);
    const joining = machines.filter((m) => !isTarget(m.id));
    for (const m of joining) {
      await this.actions.run(`/load_balancers/${lb.id}/actions/add_target`, `add ${m.name} to the load balancer`, { type: 'server', server: { id: Number(m.id) } }, ACTION_TIMEOUT_MS, signal);
    }
    if (joining.length === 0) return;
    const ids = new Set(joining.map((m) => m.id));
    await poll(
      async () => {
        const now = await this.get(lb.id, signal);
        const states = now.targets.filter((t) => t.type === 'server' && ids.has(String(t.server?.id))).map((t) => memberState(t.health_status));
        return states.length === ids.size && states.every((s) => s === 'healthy') ? true : undefined;
      },
      { what: `the load balancer's health check to pass ${joining.map((m) => m.name).join(', ')}`, timeoutMs: JOIN_TIMEOUT_MS, signal, maxIntervalMs: 1000 },
    ).catch((err) => {
      if (err instanceof TimeoutError) throw new ProviderError({ provider: 'hetzner', operation: 'attach to the load balancer', message: err.message });
      throw err;
    });
  }

  /** Removes the servers' targets (no new connections), then gives their open connections `drainMs`. */
  async detach(lb: LoadBalancer, machines: Pick<Machine, 'id' | 'name'>[], drainMs: number, signal: AbortSignal): Promise<void> {
    const leaving = machines.filter((m) => lb.targets.some((t) => t.type === 'server' && String(t.server?.id) === m.id));
    for (const m of leaving) {
      await this.actions.run(`/load_balancers/${lb.id}/actions/remove_target`, `take ${m.name} out of the load balancer`, { type: 'server', server: { id: Number(m.id) } }, ACTION_TIMEOUT_MS, signal);
    }
    if (leaving.length) await drain(drainMs, signal);
  }

  async remove(lb: LoadBalancer, signal: AbortSignal): Promise<void> {
    await this.api.call('DELETE', `/load_balancers/${lb.id}`, { operation: 'delete the load balancer', signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }
}
