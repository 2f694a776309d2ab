/**
 * The answers the Hetzner emulator must give, described from hcloud-go's schema package
 * (github.com/hetznercloud/hcloud-go, hcloud/schema/*.go): one zod object per Go struct, with the
 * same JSON field names; Go pointers are nullable, int fields are integers, time.Time is an
 * RFC 3339 string. There is no OpenAPI file for Hetzner Cloud, so this is what the emulator's
 * tests check every logged answer against (`validateLogged`).
 */
import { z } from 'zod';
import type { LoggedRequest } from '../../../src/emulators/shared/request-log.js';

const int = z.number().int();
const time = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
const labels = z.record(z.string(), z.string());
const deprecation = z.object({ announced: time, unavailable_after: time }).nullable();
const price = z.object({ net: z.string(), gross: z.string() });

// action.go
const action = z.object({
  id: int, status: z.enum(['running', 'success', 'error']), command: z.string(), progress: int, started: time, finished: time.nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  resources: z.array(z.object({ id: int, type: z.string() })),
});
// location.go, datacenter.go
const location = z.object({ id: int, name: z.string(), description: z.string(), country: z.string(), city: z.string(), latitude: z.number(), longitude: z.number(), network_zone: z.string() });
const datacenter = z.object({
  id: int, name: z.string(), description: z.string(), location,
  server_types: z.object({ supported: z.array(int), available_for_migration: z.array(int), available: z.array(int) }).optional(),
});
// server_type.go, pricing.go
const serverType = z.object({
  id: int, name: z.string(), description: z.string(), category: z.string(), cores: int, memory: z.number(), disk: int,
  storage_type: z.string(), cpu_type: z.string(), architecture: z.string(), included_traffic: int,
  prices: z.array(z.object({ location: z.string(), price_hourly: price, price_monthly: price, included_traffic: int, price_per_tb_traffic: price })),
  deprecated: z.boolean(), deprecation,
  locations: z.array(z.object({ id: int, name: z.string(), recommended: z.boolean(), available: z.boolean(), deprecation })),
});
// image.go
const image = z.object({
  id: int, status: z.string(), type: z.string(), name: z.string().nullable(), description: z.string(), image_size: z.number().nullable(),
  disk_size: z.number(), created: time.nullable(), created_from: z.object({ id: int, name: z.string() }).nullable(), bound_to: int.nullable(),
  os_flavor: z.string(), os_version: z.string().nullable(), architecture: z.string(), rapid_deploy: z.boolean(),
  protection: z.object({ delete: z.boolean() }), deprecated: time.nullable(), deleted: time.nullable(), labels,
});
// server.go
const server = z.object({
  id: int, name: z.string(), status: z.enum(['running', 'initializing', 'starting', 'stopping', 'off', 'deleting', 'migrating', 'rebuilding', 'unknown']),
  created: time,
  public_net: z.object({
    ipv4: z.object({ id: int, ip: z.string(), blocked: z.boolean(), dns_ptr: z.string() }),
    ipv6: z.object({ id: int, ip: z.string(), blocked: z.boolean(), dns_ptr: z.array(z.object({ ip: z.string(), dns_ptr: z.string() })) }),
    floating_ips: z.array(int),
    firewalls: z.array(z.object({ id: int, status: z.string() })),
  }),
  private_net: z.array(z.object({ network: int, ip: z.string(), alias_ips: z.array(z.string()), mac_address: z.string() })),
  server_type: serverType, included_traffic: int, outgoing_traffic: int.nullable(), ingoing_traffic: int.nullable(),
  backup_window: z.string().nullable(), rescue_enabled: z.boolean(), iso: z.object({}).passthrough().nullable(), locked: z.boolean(),
  location, datacenter, image: image.nullable(), protection: z.object({ delete: z.boolean(), rebuild: z.boolean() }), labels,
  volumes: z.array(int), primary_disk_size: int, placement_group: z.object({}).passthrough().nullable(), load_balancers: z.array(int),
});
// ssh_key.go
const sshKey = z.object({ id: int, name: z.string(), fingerprint: z.string(), public_key: z.string(), labels, created: time });
// load_balancer_type.go
const loadBalancerType = z.object({
  id: int, name: z.string(), description: z.string(), max_connections: int, max_services: int, max_targets: int, max_assigned_certificates: int,
  prices: z.array(z.object({ location: z.string(), price_hourly: price, price_monthly: price, included_traffic: int, price_per_tb_traffic: price })),
  deprecated: time.nullable(), deprecation,
});
// load_balancer.go
const healthStatus = z.array(z.object({ listen_port: int, status: z.enum(['healthy', 'unhealthy', 'unknown']) }));
const lbServerTarget = z.object({ type: z.literal('server'), server: z.object({ id: int }), health_status: healthStatus, use_private_ip: z.boolean() });
const loadBalancer = z.object({
  id: int, name: z.string(),
  public_net: z.object({ enabled: z.boolean(), ipv4: z.object({ ip: z.string(), dns_ptr: z.string() }), ipv6: z.object({ ip: z.string(), dns_ptr: z.string() }) }),
  private_net: z.array(z.object({ network: int, ip: z.string() })),
  location, load_balancer_type: loadBalancerType, protection: z.object({ delete: z.boolean() }), labels, created: time,
  services: z.array(z.object({
    protocol: z.enum(['tcp', 'http', 'https']), listen_port: int, destination_port: int, proxyprotocol: z.boolean(),
    http: z.object({ cookie_name: z.string(), cookie_lifetime: int, certificates: z.array(int), redirect_http: z.boolean(), sticky_sessions: z.boolean(), timeout_idle: int }).nullable(),
    health_check: z.object({
      protocol: z.enum(['tcp', 'http', 'https']), port: int, interval: int, timeout: int, retries: int,
      http: z.object({ domain: z.string().nullable(), path: z.string(), response: z.string(), status_codes: z.array(z.string()), tls: z.boolean() }).nullable(),
    }),
  })),
  targets: z.array(z.union([
    lbServerTarget,
    z.object({ type: z.literal('label_selector'), label_selector: z.object({ selector: z.string() }), use_private_ip: z.boolean(), targets: z.array(lbServerTarget) }),
  ])),
  algorithm: z.object({ type: z.enum(['round_robin', 'least_connections']) }),
  included_traffic: int, outgoing_traffic: int.nullable(), ingoing_traffic: int.nullable(),
});
// floating_ip.go
const floatingIp = z.object({
  id: int, name: z.string(), description: z.string().nullable(), created: time, ip: z.string(), type: z.enum(['ipv4', 'ipv6']), server: int.nullable(),
  dns_ptr: z.array(z.object({ ip: z.string(), dns_ptr: z.string() })), home_location: location, blocked: z.boolean(), protection: z.object({ delete: z.boolean() }), labels,
});
// meta.go: previous_page and next_page are null at the ends (Go reads null as 0)
const meta = z.object({
  pagination: z.object({ page: int, per_page: int, previous_page: int.nullable(), next_page: int.nullable(), last_page: int, total_entries: int }),
});
// error.go
const error = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown() }) });

const list = <T extends z.ZodType>(key: string, item: T) => z.object({ [key]: z.array(item), meta });

/** The answer schema of each operation (by `METHOD template`), from the *Response structs. */
export const RESPONSES: Record<string, z.ZodType> = {
  'GET /v1/servers': list('servers', server),
  'POST /v1/servers': z.object({ server, action, next_actions: z.array(action), root_password: z.string().nullable() }),
  'GET /v1/servers/{id}': z.object({ server }),
  'PUT /v1/servers/{id}': z.object({ server }),
  'DELETE /v1/servers/{id}': z.object({ action }),
  'GET /v1/servers/{id}/actions': list('actions', action),
  'POST /v1/servers/{id}/actions/create_image': z.object({ image, action }),
  'GET /v1/images': list('images', image),
  'GET /v1/images/{id}': z.object({ image }),
  'PUT /v1/images/{id}': z.object({ image }),
  'GET /v1/ssh_keys': list('ssh_keys', sshKey),
  'POST /v1/ssh_keys': z.object({ ssh_key: sshKey }),
  'GET /v1/ssh_keys/{id}': z.object({ ssh_key: sshKey }),
  'PUT /v1/ssh_keys/{id}': z.object({ ssh_key: sshKey }),
  'GET /v1/actions': list('actions', action),
  'GET /v1/actions/{id}': z.object({ action }),
  'GET /v1/server_types': list('server_types', serverType),
  'GET /v1/server_types/{id}': z.object({ server_type: serverType }),
  'GET /v1/locations': list('locations', location),
  'GET /v1/locations/{id}': z.object({ location }),
  'GET /v1/datacenters': list('datacenters', datacenter),
  'GET /v1/datacenters/{id}': z.object({ datacenter }),
  'GET /v1/load_balancers': list('load_balancers', loadBalancer),
  'POST /v1/load_balancers': z.object({ load_balancer: loadBalancer, action }),
  'GET /v1/load_balancers/{id}': z.object({ load_balancer: loadBalancer }),
  'PUT /v1/load_balancers/{id}': z.object({ load_balancer: loadBalancer }),
  'GET /v1/load_balancers/{id}/actions': list('actions', action),
  'GET /v1/load_balancer_types': list('load_balancer_types', loadBalancerType),
  'GET /v1/load_balancer_types/{id}': z.object({ load_balancer_type: loadBalancerType }),
  'GET /v1/floating_ips': list('floating_ips', floatingIp),
  'POST /v1/floating_ips': z.object({ floating_ip: floatingIp, action: action.nullable() }),
  'GET /v1/floating_ips/{id}': z.object({ floating_ip: floatingIp }),
  'PUT /v1/floating_ips/{id}': z.object({ floating_ip: floatingIp }),
  'GET /v1/floating_ips/{id}/actions': list('actions', action),
};
for (const c of ['add_target', 'remove_target', 'add_service', 'update_service', 'delete_service']) RESPONSES[`POST /v1/load_balancers/{id}/actions/${c}`] = z.object({ action });
for (const c of ['assign', 'unassign']) RESPONSES[`POST /v1/floating_ips/{id}/actions/${c}`] = z.object({ action });
for (const c of ['poweron', 'poweroff', 'shutdown', 'reboot', 'reset']) RESPONSES[`POST /v1/servers/{id}/actions/${c}`] = z.object({ action });

/** Problems with logged answers: each error against error.go, each success against its operation's schema. */
export function validateLogged(entries: LoggedRequest[]): string[] {
  const problems: string[] = [];
  for (const e of entries) {
    const where = `${e.method} ${e.path}${e.query} -> ${e.status}`;
    if (e.status === 204) {
      if (e.responseBody !== undefined) problems.push(`${where}: a 204 with a body`);
      continue;
    }
    const schema = e.status >= 400 ? error : RESPONSES[`${e.method} ${e.template}`];
    if (!schema) {
      problems.push(`${where}: no schema for ${e.method} ${e.template}`);
      continue;
    }
    const result = schema.safeParse(e.responseBody);
    if (!result.success) problems.push(`${where}: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    for (const h of ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) {
      if (!/^\d+$/.test(e.responseHeaders[h] ?? '')) problems.push(`${where}: no ${h} header`);
    }
  }
  return problems;
}
