/** Resources rendered as the API answers them (field names and types from hcloud-go's schema package). */
import { DATACENTERS, LOCATIONS, SERVER_TYPES, type LoadBalancerTypeSpec, type LocationSpec, type ServerTypeSpec } from './catalog.js';
import type { FloatingIp } from './floating-ips.js';
import type { LoadBalancer, LoadBalancers } from './load-balancers.js';
import type { Action, Image, Server, SshKey } from './model.js';

export function locationView(l: LocationSpec) {
  return { ...l };
}

export function datacenterView(name: string) {
  const dc = DATACENTERS.find((d) => d.location === name)!;
  const ids = SERVER_TYPES.map((t) => t.id);
  return {
    id: dc.id,
    name: dc.name,
    description: dc.description,
    location: locationView(LOCATIONS.find((l) => l.name === name)!),
    server_types: { supported: ids, available: ids, available_for_migration: ids },
  };
}

export function serverTypeView(t: ServerTypeSpec) {
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    category: t.category,
    cores: t.cores,
    memory: t.memory,
    disk: t.disk,
    deprecated: false,
    deprecation: null,
    prices: LOCATIONS.map((l) => ({
      location: l.name,
      price_hourly: price(t.hourly),
      price_monthly: price(t.monthly),
      included_traffic: 21990232555520,
      price_per_tb_traffic: price('1.0000000000'),
    })),
    storage_type: 'local',
    cpu_type: t.cpu_type,
    architecture: 'x86',
    included_traffic: 0,
    locations: LOCATIONS.map((l) => ({ id: l.id, name: l.name, deprecation: null, recommended: l.name !== 'sin', available: true })),
  };
}

export function imageView(i: Image) {
  return {
    id: i.id,
    type: i.type,
    status: i.status,
    name: i.name,
    description: i.description,
    image_size: i.imageSize,
    disk_size: i.diskSize,
    created: i.created,
    created_from: i.createdFrom,
    bound_to: null,
    os_flavor: i.osFlavor,
    os_version: i.osVersion,
    rapid_deploy: i.type === 'system',
    protection: { delete: false },
    deprecated: null,
    deleted: null,
    labels: i.labels,
    architecture: 'x86',
  };
}

/** 127.0.0.N reads as a documentation-range IPv6 network of its own. */
function ipv6Net(ip: string): string {
  const [, , c, d] = ip.split('.').map(Number);
  return `2001:db8:${(c! * 256 + d!).toString(16)}::/64`;
}

export function serverView(s: Server, image: Image | undefined, attached: { floatingIps: number[]; loadBalancers: number[] } = { floatingIps: [], loadBalancers: [] }) {
  return {
    id: s.id,
    name: s.name,
    status: s.status,
    created: s.created,
    public_net: {
      ipv4: { id: s.id + 50_000_000, ip: s.ip, blocked: false, dns_ptr: `static.${s.ip.split('.').reverse().join('.')}.clients.your-server.de` },
      ipv6: { id: s.id + 60_000_000, ip: ipv6Net(s.ip), blocked: false, dns_ptr: [] },
      floating_ips: attached.floatingIps,
      firewalls: [],
    },
    private_net: [],
    server_type: serverTypeView(s.serverType),
    datacenter: datacenterView(s.location.name),
    location: locationView(s.location),
    image: image ? imageView(image) : null,
    iso: null,
    rescue_enabled: false,
    locked: s.locked,
    backup_window: null,
    outgoing_traffic: 0,
    ingoing_traffic: 0,
    included_traffic: 21990232555520,
    protection: { delete: false, rebuild: false },
    labels: s.labels,
    volumes: [],
    load_balancers: attached.loadBalancers,
    primary_disk_size: s.serverType.disk,
    placement_group: null,
  };
}

export function actionView(a: Action) {
  return { id: a.id, command: a.command, status: a.status, progress: a.progress, started: a.started, finished: a.finished, resources: a.resources, error: a.error };
}

export function sshKeyView(k: SshKey) {
  return { id: k.id, name: k.name, fingerprint: k.fingerprint, public_key: k.publicKey, labels: k.labels, created: k.created };
}

const price = (net: string) => ({ net, gross: (Number(net) * 1.19).toFixed(10) });

export function loadBalancerTypeView(t: LoadBalancerTypeSpec) {
  return {
    id: t.id, name: t.name, description: t.description, max_connections: t.max_connections, max_services: t.max_services, max_targets: t.max_targets,
    max_assigned_certificates: t.max_assigned_certificates, deprecated: null, deprecation: null,
    prices: LOCATIONS.map((l) => ({ location: l.name, price_hourly: price(t.hourly), price_monthly: price(t.monthly), included_traffic: 21990232555520, price_per_tb_traffic: price('1.0000000000') })),
  };
}

/** 127.0.0.N reads as its own documentation-range IPv6 address. */
const ipv6Of = (ip: string) => ipv6Net(ip).replace('/64', '1');

export function loadBalancerView(lbs: LoadBalancers, lb: LoadBalancer) {
  return {
    id: lb.id,
    name: lb.name,
    public_net: { enabled: true, ipv4: { ip: lb.ip, dns_ptr: `static.${lb.ip.split('.').reverse().join('.')}.clients.your-server.de` }, ipv6: { ip: ipv6Of(lb.ip), dns_ptr: '' } },
    private_net: [],
    location: locationView(lb.location),
    load_balancer_type: loadBalancerTypeView(lb.type),
    protection: { delete: false },
    labels: lb.labels,
    created: lb.created,
    services: lb.services,
    targets: lb.targets.map((t) => {
      if (t.type === 'server') return { type: 'server', server: { id: t.serverId }, health_status: lbs.health(lb, t.serverId), use_private_ip: false };
      const servers = lbs.serversOf(t);
      return {
        type: 'label_selector', label_selector: { selector: t.selector }, use_private_ip: false,
        targets: servers.map((s) => ({ type: 'server', server: { id: s.id }, health_status: lbs.health(lb, s.id), use_private_ip: false })),
      };
    }),
    algorithm: { type: lb.algorithm },
    outgoing_traffic: 0,
    ingoing_traffic: 0,
    included_traffic: 21990232555520,
  };
}

export function floatingIpView(f: FloatingIp) {
  return {
    id: f.id, name: f.name, description: f.description, created: f.created, ip: f.ip, type: 'ipv4', server: f.serverId,
    dns_ptr: [{ ip: f.ip, dns_ptr: `static.${f.ip.split('.').reverse().join('.')}.clients.your-server.de` }],
    home_location: locationView(f.homeLocation), blocked: false, protection: { delete: false }, labels: f.labels,
  };
}
