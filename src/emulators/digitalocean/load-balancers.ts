/**
 * The emulated account's load balancers: each is a real listener on a loopback address of its own
 * (its `ip`), one port per forwarding rule, forwarding TCP round robin to the member droplets its
 * health check found healthy, on the rule's target port (shared/balancer.ts). Members are droplet ids or a tag. Taking a
 * member out stops new connections to it; open ones finish.
 * https://docs.digitalocean.com/reference/api/digitalocean/#tag/Load-Balancers
 */
import { randomUUID } from 'node:crypto';
import { claimAddress, releaseAddress } from '../machines/addresses.js';
import type { BackgroundWork } from '../shared/background.js';
import { Balancer, type BalancedMember, type BalancedService } from '../shared/balancer.js';
import { unprocessable } from './http.js';
import type { Droplet } from './model.js';

export interface ForwardingRule {
  entry_protocol: string;
  entry_port: number;
  target_protocol: string;
  target_port: number;
  certificate_id?: string;
  tls_passthrough?: boolean;
}

export interface HealthCheck {
  protocol: 'http' | 'https' | 'tcp';
  port: number;
  path: string;
  check_interval_seconds: number;
  response_timeout_seconds: number;
  unhealthy_threshold: number;
  healthy_threshold: number;
}

export interface LoadBalancer {
  id: string;
  name: string;
  region: string;
  ip: string;
  status: 'new' | 'active' | 'errored';
  createdAt: string;
  forwardingRules: ForwardingRule[];
  healthCheck: HealthCheck;
  stickySessions: { type: 'none' | 'cookies'; cookie_name?: string; cookie_ttl_seconds?: number };
  dropletIds: number[];
  tag: string;
  vpcUuid: string;
  projectId: string;
  sizeUnit: number;
  redirectHttpToHttps: boolean;
  enableProxyProtocol: boolean;
  enableBackendKeepalive: boolean;
  httpIdleTimeoutSeconds: number;
  disableLetsEncryptDnsRecords: boolean;
}

const PROTOCOLS = ['http', 'https', 'http2', 'tcp'];

export const DEFAULT_HEALTH_CHECK: HealthCheck = { protocol: 'http', port: 80, path: '/', check_interval_seconds: 10, response_timeout_seconds: 5, unhealthy_threshold: 5, healthy_threshold: 3 };

/** What the load balancers need of the account. */
export interface LoadBalancerHost {
  droplet(id: number): Droplet | undefined;
  liveDroplets(): Droplet[];
}

interface Running {
  lb: LoadBalancer;
  balancer: Balancer;
  stopped: boolean;
}

export function parseForwardingRules(value: unknown): ForwardingRule[] {
  if (!Array.isArray(value) || value.length === 0) throw unprocessable('forwarding_rules must be a non-empty array');
  return value.map((raw, i) => {
    const r = (raw ?? {}) as Record<string, unknown>;
    const where = `forwarding_rules[${i}]`;
    if (typeof r.entry_protocol !== 'string' || !PROTOCOLS.includes(r.entry_protocol)) throw unprocessable(`${where}.entry_protocol must be one of ${PROTOCOLS.join(', ')} (udp and http3 are not emulated)`);
    if (typeof r.target_protocol !== 'string' || !PROTOCOLS.includes(r.target_protocol)) throw unprocessable(`${where}.target_protocol must be one of ${PROTOCOLS.join(', ')}`);
    for (const port of ['entry_port', 'target_port'] as const) {
      if (!Number.isInteger(r[port]) || (r[port] as number) < 1 || (r[port] as number) > 65535) throw unprocessable(`${where}.${port} must be a port number`);
    }
    const rule: ForwardingRule = { entry_protocol: r.entry_protocol, entry_port: r.entry_port as number, target_protocol: r.target_protocol, target_port: r.target_port as number };
    if (typeof r.certificate_id === 'string' && r.certificate_id) rule.certificate_id = r.certificate_id;
    if (typeof r.tls_passthrough === 'boolean') rule.tls_passthrough = r.tls_passthrough;
    return rule;
  });
}

export function parseHealthCheck(value: unknown, base: HealthCheck = DEFAULT_HEALTH_CHECK): HealthCheck {
  if (value === undefined || value === null) return { ...base };
  if (typeof value !== 'object' || Array.isArray(value)) throw unprocessable('health_check must be an object');
  const h = value as Record<string, unknown>;
  const check = { ...base };
  if (h.protocol !== undefined) {
    if (h.protocol !== 'http' && h.protocol !== 'https' && h.protocol !== 'tcp') throw unprocessable('health_check.protocol must be http, https or tcp');
    check.protocol = h.protocol;
  }
  if (h.path !== undefined) {
    if (typeof h.path !== 'string' || !h.path.startsWith('/')) throw unprocessable('health_check.path must start with /');
    check.path = h.path;
  }
  // DigitalOcean's documented bounds.
  const bounded = (key: keyof HealthCheck, min: number, max: number) => {
    if (h[key] === undefined) return;
    if (!Number.isInteger(h[key]) || (h[key] as number) < min || (h[key] as number) > max) throw unprocessable(`health_check.${key} must be an integer from ${min} to ${max}`);
    (check as unknown as Record<string, number>)[key] = h[key] as number;
  };
  bounded('port', 1, 65535);
  bounded('check_interval_seconds', 3, 300);
  bounded('response_timeout_seconds', 3, 300);
  bounded('unhealthy_threshold', 2, 10);
  bounded('healthy_threshold', 2, 10);
  return check;
}

/** A forwarding rule as the shared balancer serves it: every rule is checked by the load balancer's one health check. */
function services(lb: LoadBalancer): BalancedService[] {
  const c = lb.healthCheck;
  const check = { protocol: c.protocol, port: c.port, path: c.path, timeoutMs: c.response_timeout_seconds * 1000, intervalMs: c.check_interval_seconds * 1000, healthy: c.healthy_threshold, unhealthy: c.unhealthy_threshold };
  return lb.forwardingRules.map((r) => ({ listenPort: r.entry_port, destinationPort: r.target_port, http: r.entry_protocol !== 'tcp', check, group: 'load balancer' }));
}

export class LoadBalancers {
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly host: LoadBalancerHost,
    private readonly work: BackgroundWork,
    private readonly activateMs: () => number,
  ) {}

  list(): LoadBalancer[] {
    return [...this.running.values()].map((r) => r.lb).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): LoadBalancer | undefined {
    return this.running.get(id)?.lb;
  }

  /** The members now taking new connections, for tests. */
  healthyMembers(id: string): number[] {
    const run = this.running.get(id);
    if (!run) return [];
    return this.members(run.lb).filter((d) => run.balancer.status(run.lb.forwardingRules[0]!.entry_port, d.id) === 'healthy').map((d) => d.id);
  }

  async create(lb: Omit<LoadBalancer, 'id' | 'ip' | 'status'>, address?: string): Promise<LoadBalancer> {
    const ip = address ?? (await claimAddress(lb.forwardingRules[0]!.entry_port));
    const full: LoadBalancer = { ...lb, id: randomUUID(), ip, status: 'new' };
    let balancer: Balancer;
    try {
      balancer = await Balancer.open(ip, services(full), () => this.balanced(full), this.work);
    } catch {
      await releaseAddress(ip);
      throw unprocessable(`an entry port cannot be opened on the load balancer's address ${ip}`);
    }
    const run: Running = { lb: full, balancer, stopped: false };
    this.running.set(full.id, run);
    this.work.track(async () => {
      await this.work.sleep(this.activateMs());
      if (!run.stopped) full.status = 'active';
    });
    return full;
  }

  private members(lb: LoadBalancer): Droplet[] {
    if (lb.tag) return this.host.liveDroplets().filter((d) => d.tags.includes(lb.tag));
    return lb.dropletIds.map((id) => this.host.droplet(id)).filter((d): d is Droplet => !!d && !d.deleted);
  }

  private balanced(lb: LoadBalancer): BalancedMember[] {
    return this.members(lb).map((d) => ({ id: d.id, host: d.ip, up: d.status === 'active' }));
  }

  /** Applies the rules (and check) of `run.lb` to its listeners; on failure the rules before come back. */
  private async rebind(run: Running, before: ForwardingRule[]): Promise<void> {
    try {
      await run.balancer.setServices(services(run.lb));
    } catch {
      run.lb.forwardingRules = before;
      throw unprocessable(`an entry port cannot be opened on the load balancer's address ${run.lb.ip}`);
    }
  }

  async update(id: string, change: Omit<LoadBalancer, 'id' | 'ip' | 'status' | 'createdAt'>): Promise<LoadBalancer> {
    const run = this.running.get(id)!;
    const before = run.lb.forwardingRules;
    Object.assign(run.lb, change);
    await this.rebind(run, before);
    return run.lb;
  }

  addDroplets(id: string, dropletIds: number[]): void {
    const lb = this.running.get(id)!.lb;
    for (const d of dropletIds) if (!lb.dropletIds.includes(d)) lb.dropletIds.push(d);
  }

  removeDroplets(id: string, dropletIds: number[]): void {
    const run = this.running.get(id)!;
    run.lb.dropletIds = run.lb.dropletIds.filter((d) => !dropletIds.includes(d));
    for (const d of dropletIds) run.balancer.forget(d);
  }

  async addRules(id: string, rules: ForwardingRule[]): Promise<void> {
    const run = this.running.get(id)!;
    const before = run.lb.forwardingRules;
    const taken = new Set(before.map((r) => r.entry_port));
    run.lb.forwardingRules = [...before, ...rules.filter((r) => !taken.has(r.entry_port))];
    await this.rebind(run, before);
  }

  async removeRules(id: string, rules: ForwardingRule[]): Promise<void> {
    const run = this.running.get(id)!;
    const before = run.lb.forwardingRules;
    const left = before.filter((r) => !rules.some((x) => x.entry_port === r.entry_port && x.entry_protocol === r.entry_protocol && x.target_port === r.target_port && x.target_protocol === r.target_protocol));
    if (left.length === 0) throw unprocessable('A load balancer needs at least one forwarding rule.');
    run.lb.forwardingRules = left;
    await this.rebind(run, before);
  }

  /** A deleted droplet leaves every load balancer (as DigitalOcean does). */
  dropletDeleted(dropletId: number): void {
    for (const run of this.running.values()) {
      run.lb.dropletIds = run.lb.dropletIds.filter((d) => d !== dropletId);
      run.balancer.forget(dropletId);
    }
  }

  async delete(id: string): Promise<void> {
    const run = this.running.get(id);
    if (!run) return;
    run.stopped = true;
    this.running.delete(id);
    await run.balancer.close();
    await releaseAddress(run.lb.ip);
  }

  async close(): Promise<void> {
    for (const id of [...this.running.keys()]) await this.delete(id);
  }
}
