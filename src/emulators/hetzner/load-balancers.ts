/**
 * The emulated project's load balancers: each is a real listener on a loopback address of its own
 * (its public IPv4), one port per service, forwarding round robin to the targets that service's
 * health check found healthy (shared/balancer.ts). Targets are servers (by id) or a label
 * selector; their health is reported per service, as the API does. Requests are read and checked
 * here with the reference's defaults and errors.
 * https://docs.hetzner.cloud/#load-balancers, #load-balancer-actions
 */
import { claimAddress, releaseAddress } from '../machines/addresses.js';
import type { BackgroundWork } from '../shared/background.js';
import { Balancer, type BalancedMember, type BalancedService } from '../shared/balancer.js';
import { LOAD_BALANCER_TYPES, LOCATIONS, type LoadBalancerTypeSpec, type LocationSpec } from './catalog.js';
import { HcloudError, invalidInput } from './http.js';
import { parseLabelSelector, type Labels } from './labels.js';
import type { Server } from './model.js';

export interface HealthCheck {
  protocol: 'tcp' | 'http';
  port: number;
  interval: number;
  timeout: number;
  retries: number;
  http: { domain: string | null; path: string; response: string; status_codes: string[]; tls: boolean } | null;
}

export interface Service {
  protocol: 'tcp' | 'http';
  listen_port: number;
  destination_port: number;
  proxyprotocol: boolean;
  http: { cookie_name: string; cookie_lifetime: number; certificates: number[]; redirect_http: boolean; sticky_sessions: boolean; timeout_idle: number } | null;
  health_check: HealthCheck;
}

export type Target = { type: 'server'; serverId: number } | { type: 'label_selector'; selector: string };

export interface LoadBalancer {
  id: number;
  name: string;
  created: string;
  location: LocationSpec;
  type: LoadBalancerTypeSpec;
  algorithm: 'round_robin' | 'least_connections';
  labels: Labels;
  services: Service[];
  targets: Target[];
  ip: string;
  balancer: Balancer;
}

/** What the load balancers need of the project. */
export interface LoadBalancerHost {
  servers: Map<number, Server>;
  liveServers(): Server[];
}

type Body = Record<string, unknown>;

const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

function field<T>(body: Body, key: string, where: string, check: (v: unknown) => v is T, message: string, fallback: T): T {
  const value = body[key];
  if (value === undefined || value === null) return fallback;
  if (!check(value)) throw invalidInput(`${where}${key}`, message);
  return value;
}

const isInt = (min: number, max: number) => (v: unknown): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isString = (v: unknown): v is string => typeof v === 'string';
const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseProtocol(value: unknown, where: string): 'tcp' | 'http' {
  if (value === 'https') throw invalidInput(where, 'https services need certificates, which the emulator does not have');
  if (value !== 'tcp' && value !== 'http') throw invalidInput(where, 'protocol must be one of tcp, http, https');
  return value;
}

function parseHealthCheck(value: unknown, service: { protocol: 'tcp' | 'http'; destination_port: number }, base?: HealthCheck): HealthCheck {
  const where = 'health_check.';
  const h = value === undefined || value === null ? {} : value;
  if (!isObject(h)) throw invalidInput('health_check', 'health_check must be an object');
  const protocol = h.protocol === undefined ? (base?.protocol ?? service.protocol) : parseProtocol(h.protocol, `${where}protocol`);
  const check: HealthCheck = {
    protocol,
    port: field(h, 'port', where, isPort, 'port must be a port number', base?.port ?? service.destination_port),
    interval: field(h, 'interval', where, isInt(3, 60), 'interval must be 3 to 60 seconds', base?.interval ?? 15),
    timeout: field(h, 'timeout', where, isInt(1, 60), 'timeout must be 1 to 60 seconds', base?.timeout ?? 10),
    retries: field(h, 'retries', where, isInt(0, 5), 'retries must be 0 to 5', base?.retries ?? 3),
    http: null,
  };
  if (protocol === 'http') {
    const raw = h.http === undefined || h.http === null ? {} : h.http;
    if (!isObject(raw)) throw invalidInput(`${where}http`, 'http must be an object');
    const before = base?.http;
    const codes = field(raw, 'status_codes', `${where}http.`, (v): v is string[] => Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === 'string' && /^[1-5][0-9?]{2}$/.test(c)), 'status_codes must be codes such as 200 or 2??', before?.status_codes ?? ['2??', '3??']);
    const path = field(raw, 'path', `${where}http.`, isString, 'path must be a string', before?.path ?? '/');
    if (!path.startsWith('/')) throw invalidInput(`${where}http.path`, 'path must start with /');
    check.http = {
      domain: raw.domain === undefined ? (before?.domain ?? null) : (raw.domain as string | null),
      path,
      response: field(raw, 'response', `${where}http.`, isString, 'response must be a string', before?.response ?? ''),
      status_codes: codes,
      tls: field(raw, 'tls', `${where}http.`, isBool, 'tls must be a boolean', before?.tls ?? false),
    };
  }
  return check;
}

/** A service as the request gives it, with the reference's defaults; `base` is the service it updates. */
export function parseService(value: unknown, base?: Service): Service {
  if (!isObject(value)) throw invalidInput('services', 'a service must be an object');
  const protocol = value.protocol === undefined && base ? base.protocol : parseProtocol(value.protocol, 'protocol');
  const listenDefault = base?.listen_port ?? (protocol === 'http' ? 80 : undefined);
  const listen_port = value.listen_port === undefined && listenDefault ? listenDefault : value.listen_port;
  if (!isPort(listen_port)) throw invalidInput('listen_port', protocol === 'tcp' ? 'listen_port is required for tcp services' : 'listen_port must be a port number');
  const destDefault = base?.destination_port ?? (protocol === 'http' ? 80 : listen_port);
  const destination_port = field(value, 'destination_port', '', isPort, 'destination_port must be a port number', destDefault);
  const proxyprotocol = field(value, 'proxyprotocol', '', isBool, 'proxyprotocol must be a boolean', base?.proxyprotocol ?? false);
  if (proxyprotocol) throw invalidInput('proxyprotocol', 'the PROXY protocol is not emulated');
  let http: Service['http'] = null;
  if (protocol === 'http') {
    const raw = value.http === undefined || value.http === null ? {} : value.http;
    if (!isObject(raw)) throw invalidInput('http', 'http must be an object');
    const b = base?.http;
    http = {
      cookie_name: field(raw, 'cookie_name', 'http.', isString, 'cookie_name must be a string', b?.cookie_name ?? 'HCLBSTICKY'),
      cookie_lifetime: field(raw, 'cookie_lifetime', 'http.', isInt(1, 86_400), 'cookie_lifetime must be a number of seconds', b?.cookie_lifetime ?? 300),
      certificates: [],
      redirect_http: false,
      sticky_sessions: field(raw, 'sticky_sessions', 'http.', isBool, 'sticky_sessions must be a boolean', b?.sticky_sessions ?? false),
      timeout_idle: field(raw, 'timeout_idle', 'http.', isInt(1, 3600), 'timeout_idle must be a number of seconds', b?.timeout_idle ?? 60),
    };
  }
  const shape = { protocol, destination_port };
  return { protocol, listen_port, destination_port, proxyprotocol, http, health_check: parseHealthCheck(value.health_check, shape, base && base.protocol === protocol ? base.health_check : undefined) };
}

/** A target as add_target (or create's `targets`) gives it; servers must exist. */
export function parseTarget(value: unknown, host: LoadBalancerHost): Target {
  if (!isObject(value)) throw invalidInput('targets', 'a target must be an object');
  if (value.use_private_ip === true) throw new HcloudError(422, 'load_balancer_not_attached_to_network', 'the load balancer is not attached to a network');
  switch (value.type) {
    case 'server': {
      const id = isObject(value.server) ? value.server.id : undefined;
      if (!Number.isInteger(id)) throw invalidInput('server.id', 'server.id is required for a server target');
      if (!host.servers.get(id as number)) throw invalidInput('server.id', `server ${String(id)} not found`);
      return { type: 'server', serverId: id as number };
    }
    case 'label_selector': {
      const selector = isObject(value.label_selector) ? value.label_selector.selector : undefined;
      if (typeof selector !== 'string') throw invalidInput('label_selector.selector', 'label_selector.selector is required');
      parseLabelSelector(selector);
      return { type: 'label_selector', selector };
    }
    case 'ip': {
      const ip = isObject(value.ip) ? value.ip.ip : undefined;
      if (host.liveServers().some((s) => s.ip === ip)) throw new HcloudError(422, 'cloud_resource_ip_not_allowed', 'the IP belongs to a Hetzner Cloud resource');
      throw new HcloudError(422, 'ip_not_owned', 'the IP is not owned by the owner of the project');
    }
    default:
      throw invalidInput('type', 'type must be one of server, label_selector, ip');
  }
}

const sameTarget = (a: Target, b: Target) => (a.type === 'server' && b.type === 'server' ? a.serverId === b.serverId : a.type === 'label_selector' && b.type === 'label_selector' && a.selector === b.selector);

function balanced(s: Service): BalancedService {
  const h = s.health_check;
  const patterns = (h.http?.status_codes ?? []).map((c) => new RegExp(`^${c.replace(/\?/g, '\\d')}$`));
  const passes = Math.max(1, h.retries);
  return {
    listenPort: s.listen_port,
    destinationPort: s.destination_port,
    http: s.protocol === 'http',
    check: {
      protocol: h.protocol, port: h.port, path: h.http?.path ?? '/', timeoutMs: h.timeout * 1000, intervalMs: h.interval * 1000,
      statusOk: (status) => patterns.some((p) => p.test(String(status))), healthy: passes, unhealthy: passes,
    },
  };
}

export class LoadBalancers {
  readonly all = new Map<number, LoadBalancer>();
  private nextId = 400_001;

  constructor(
    private readonly host: LoadBalancerHost,
    private readonly work: BackgroundWork,
  ) {}

  /** The servers a target stands for now (a label selector's are the servers matching it). */
  serversOf(target: Target): Server[] {
    if (target.type === 'server') {
      const s = this.host.servers.get(target.serverId);
      return s ? [s] : [];
    }
    const matches = parseLabelSelector(target.selector);
    return this.host.liveServers().filter((s) => matches(s.labels));
  }

  private members(lb: LoadBalancer): BalancedMember[] {
    const seen = new Map<number, BalancedMember>();
    for (const t of lb.targets) for (const s of this.serversOf(t)) seen.set(s.id, { id: s.id, host: s.ip, up: s.status === 'running' });
    return [...seen.values()];
  }

  async create(input: { name: unknown; type: unknown; location: unknown; networkZone: unknown; algorithm: unknown; labels: Labels; services: unknown; targets: unknown; created: string }): Promise<LoadBalancer> {
    if (typeof input.name !== 'string' || !/^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(input.name)) throw invalidInput('name', 'name must be 1 to 63 letters, digits, periods, hyphens or underscores');
    if ([...this.all.values()].some((l) => l.name === input.name)) throw new HcloudError(409, 'uniqueness_error', 'name is already used');
    const type = LOAD_BALANCER_TYPES.find((t) => t.name === input.type || t.id === input.type);
    if (!type) throw invalidInput('load_balancer_type', `load balancer type ${String(input.type)} not found`);
    if (input.location === undefined && input.networkZone === undefined) throw invalidInput('location', 'one of location or network_zone is required');
    const location = input.location === undefined ? LOCATIONS.find((l) => l.network_zone === input.networkZone) : LOCATIONS.find((l) => l.name === input.location || l.id === input.location);
    if (!location) throw invalidInput(input.location === undefined ? 'network_zone' : 'location', 'location not found');
    const algorithm = input.algorithm === undefined ? 'round_robin' : (input.algorithm as { type?: unknown })?.type;
    if (algorithm !== 'round_robin' && algorithm !== 'least_connections') throw invalidInput('algorithm.type', 'algorithm must be round_robin or least_connections');
    const services = input.services === undefined ? [] : Array.isArray(input.services) ? input.services.map((s) => parseService(s)) : (() => { throw invalidInput('services', 'services must be a list'); })();
    this.checkServices(services, type);
    const targets: Target[] = [];
    for (const t of input.targets === undefined ? [] : Array.isArray(input.targets) ? input.targets : [null]) this.addTo(targets, parseTarget(t, this.host), type);
    const ip = await claimAddress(services.map((s) => s.listen_port));
    const lb = { id: this.nextId++, name: input.name, created: input.created, location, type, algorithm, labels: input.labels, services, targets, ip } as LoadBalancer;
    try {
      lb.balancer = await Balancer.open(ip, services.map(balanced), () => this.members(lb), this.work);
    } catch (err) {
      await releaseAddress(ip);
      throw err;
    }
    this.all.set(lb.id, lb);
    return lb;
  }

  private checkServices(services: Service[], type: LoadBalancerTypeSpec): void {
    const ports = services.map((s) => s.listen_port);
    if (new Set(ports).size !== ports.length) throw new HcloudError(422, 'source_port_already_used', 'the source port you are trying to add is already in use');
    if (services.length > type.max_services) throw new HcloudError(422, 'resource_limit_exceeded', `a ${type.name} has at most ${type.max_services} services`);
  }

  private addTo(targets: Target[], target: Target, type: LoadBalancerTypeSpec): void {
    if (targets.some((t) => sameTarget(t, target))) throw new HcloudError(422, 'target_already_defined', 'the load balancer target you are trying to define is already defined');
    if (targets.length >= type.max_targets) throw new HcloudError(422, 'resource_limit_exceeded', `a ${type.name} has at most ${type.max_targets} targets`);
    targets.push(target);
  }

  addTarget(lb: LoadBalancer, target: Target): void {
    this.addTo(lb.targets, target, lb.type);
  }

  removeTarget(lb: LoadBalancer, target: Target): void {
    const at = lb.targets.findIndex((t) => sameTarget(t, target));
    if (at < 0) throw new HcloudError(404, 'not_found', 'target not found');
    lb.targets.splice(at, 1);
  }

  /** Replaces the services (add, update or delete one): new listeners open before the answer. */
  async setServices(lb: LoadBalancer, services: Service[]): Promise<void> {
    this.checkServices(services, lb.type);
    await lb.balancer.setServices(services.map(balanced)).catch(() => {
      throw new HcloudError(422, 'source_port_already_used', `a listen port cannot be opened on ${lb.ip}`);
    });
    lb.services = services;
  }

  /** Every target's health per service, as `health_status` reports it. */
  health(lb: LoadBalancer, serverId: number): { listen_port: number; status: string }[] {
    return lb.services.map((s) => ({ listen_port: s.listen_port, status: lb.balancer.status(s.listen_port, serverId) }));
  }

  /** The load balancers a server is a target of (a server's `load_balancers`). */
  of(serverId: number): number[] {
    return [...this.all.values()].filter((lb) => lb.targets.some((t) => this.serversOf(t).some((s) => s.id === serverId))).map((lb) => lb.id);
  }

  /** A deleted server is no longer a target. */
  serverDeleted(serverId: number): void {
    for (const lb of this.all.values()) lb.targets = lb.targets.filter((t) => t.type !== 'server' || t.serverId !== serverId);
  }

  async delete(lb: LoadBalancer): Promise<void> {
    if (!this.all.delete(lb.id)) return;
    await lb.balancer.close();
    await releaseAddress(lb.ip);
  }

  async close(): Promise<void> {
    for (const lb of [...this.all.values()]) await this.delete(lb);
  }
}
