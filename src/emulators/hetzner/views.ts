/** Resources rendered as the API answers them (field names and types from hcloud-go's schema package). */
import { DATACENTERS, LOCATIONS, SERVER_TYPES, type LocationSpec, type ServerTypeSpec } from './catalog.js';
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
  const price = (net: string) => ({ net, gross: (Number(net) * 1.19).toFixed(10) });
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

export function serverView(s: Server, image: Image | undefined) {
  return {
    id: s.id,
    name: s.name,
    status: s.status,
    created: s.created,
    public_net: {
      ipv4: { id: s.id + 50_000_000, ip: s.ip, blocked: false, dns_ptr: `static.${s.ip.split('.').reverse().join('.')}.clients.your-server.de` },
      ipv6: { id: s.id + 60_000_000, ip: ipv6Net(s.ip), blocked: false, dns_ptr: [] },
      floating_ips: [],
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
    load_balancers: [],
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
