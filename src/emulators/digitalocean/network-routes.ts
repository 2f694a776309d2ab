/**
 * Load balancers and reserved IPs (registered into routes.ts's table), rendered as the OpenAPI
 * description's `load_balancer`, `reserved_ip` and `action` schemas.
 * https://docs.digitalocean.com/reference/api/digitalocean/#tag/Load-Balancers
 * https://docs.digitalocean.com/reference/api/digitalocean/#tag/Reserved-IPs
 */
import { REGIONS } from './catalog.js';
import type { Cloud } from './cloud.js';
import { badRequest, notFound, paginate, unprocessable } from './http.js';
import { DEFAULT_HEALTH_CHECK, parseForwardingRules, parseHealthCheck, type LoadBalancer } from './load-balancers.js';
import type { Droplet } from './model.js';
import type { ReservedIp } from './reserved-ips.js';
import type { Handler, RouteContext, RouteResult } from './routes.js';
import { actionView, regionView } from './views.js';

type Register = (method: string, template: string, handle: Handler) => void;
type Body = Record<string, unknown>;

const ok = (body: unknown, status = 200): RouteResult => ({ status, body });
const noContent: RouteResult = { status: 204 };

function object(body: unknown): Body {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  return body as Body;
}

function list<T>(ctx: RouteContext, key: string, items: T[], view: (item: T) => unknown): RouteResult {
  const page = paginate(items, ctx.url, ctx.baseUrl);
  return ok({ [key]: page.items.map(view), links: page.links, meta: page.meta });
}

function dropletIds(cloud: Cloud, value: unknown, where = 'droplet_ids'): number[] {
  if (!Array.isArray(value) || value.some((v) => !Number.isInteger(v))) throw unprocessable(`${where} must be an array of droplet ids`);
  for (const id of value as number[]) {
    const d = cloud.droplets.get(id);
    if (!d || d.deleted) throw unprocessable(`Droplet ${id} was not found.`);
  }
  return [...new Set(value as number[])];
}

function lbView(cloud: Cloud, lb: LoadBalancer) {
  const members = lb.tag ? cloud.liveDroplets().filter((d) => d.tags.includes(lb.tag)).map((d) => d.id) : lb.dropletIds;
  return {
    id: lb.id,
    name: lb.name,
    project_id: lb.projectId,
    ip: lb.status === 'active' ? lb.ip : '',
    size_unit: lb.sizeUnit,
    size: 'lb-small',
    algorithm: 'round_robin',
    status: lb.status,
    created_at: lb.createdAt,
    forwarding_rules: lb.forwardingRules,
    health_check: lb.healthCheck,
    sticky_sessions: lb.stickySessions,
    redirect_http_to_https: lb.redirectHttpToHttps,
    enable_proxy_protocol: lb.enableProxyProtocol,
    enable_backend_keepalive: lb.enableBackendKeepalive,
    http_idle_timeout_seconds: lb.httpIdleTimeoutSeconds,
    vpc_uuid: lb.vpcUuid,
    disable_lets_encrypt_dns_records: lb.disableLetsEncryptDnsRecords,
    network: 'EXTERNAL',
    network_stack: 'IPV4',
    type: 'REGIONAL',
    tls_cipher_policy: 'DEFAULT',
    region: regionView(lb.region),
    droplet_ids: members,
    tag: lb.tag,
  };
}

/** A create or PUT body: PUT replaces the whole load balancer, as DigitalOcean's does. */
function lbInput(cloud: Cloud, body: Body, existing?: LoadBalancer) {
  if (typeof body.name !== 'string' || !body.name) throw unprocessable('name is required');
  const region = body.region ?? existing?.region;
  if (typeof region !== 'string' || !REGIONS.some((r) => r.slug === region)) throw unprocessable('region must be a valid region slug');
  if (existing && region !== existing.region) throw unprocessable('The region of a load balancer cannot be changed.');
  if (body.droplet_ids !== undefined && body.tag !== undefined && body.tag !== '') throw unprocessable('Specify droplet_ids or tag, not both.');
  const ids = body.droplet_ids === undefined ? [] : dropletIds(cloud, body.droplet_ids);
  if (body.tag !== undefined && typeof body.tag !== 'string') throw unprocessable('tag must be a string');
  const sticky = (body.sticky_sessions ?? { type: 'none' }) as LoadBalancer['stickySessions'];
  if (sticky.type !== 'none' && sticky.type !== 'cookies') throw unprocessable('sticky_sessions.type must be none or cookies');
  const idle = body.http_idle_timeout_seconds ?? 60;
  if (!Number.isInteger(idle) || (idle as number) < 30 || (idle as number) > 600) throw unprocessable('http_idle_timeout_seconds must be from 30 to 600');
  const sizeUnit = body.size_unit ?? existing?.sizeUnit ?? 1;
  if (!Number.isInteger(sizeUnit) || (sizeUnit as number) < 1 || (sizeUnit as number) > 100) throw unprocessable('size_unit must be from 1 to 100');
  const flag = (key: string) => body[key] === true;
  return {
    name: body.name,
    region,
    forwardingRules: parseForwardingRules(body.forwarding_rules),
    healthCheck: parseHealthCheck(body.health_check, DEFAULT_HEALTH_CHECK),
    stickySessions: sticky.type === 'cookies' ? { type: 'cookies' as const, cookie_name: sticky.cookie_name ?? 'DO-LB', cookie_ttl_seconds: sticky.cookie_ttl_seconds ?? 300 } : { type: 'none' as const },
    dropletIds: ids,
    tag: typeof body.tag === 'string' ? body.tag : '',
    vpcUuid: typeof body.vpc_uuid === 'string' ? body.vpc_uuid : (existing?.vpcUuid ?? '5a4981aa-9653-4bd1-bef5-d6bff52042e4'),
    projectId: typeof body.project_id === 'string' ? body.project_id : (existing?.projectId ?? cloud.reservedIps.projectId),
    sizeUnit: sizeUnit as number,
    redirectHttpToHttps: flag('redirect_http_to_https'),
    enableProxyProtocol: flag('enable_proxy_protocol'),
    enableBackendKeepalive: flag('enable_backend_keepalive'),
    httpIdleTimeoutSeconds: idle as number,
    disableLetsEncryptDnsRecords: flag('disable_lets_encrypt_dns_records'),
  };
}

function reservedIpView(ctx: RouteContext, reserved: ReservedIp, render: (d: Droplet) => unknown) {
  const droplet = reserved.dropletId === null ? undefined : ctx.cloud.droplets.get(reserved.dropletId);
  return { ip: reserved.ip, region: regionView(reserved.region), droplet: droplet ? render(droplet) : null, locked: reserved.locked, project_id: reserved.projectId };
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export function registerNetworkRoutes(route: Register, renderDroplet: (ctx: RouteContext, d: Droplet) => unknown): void {
  // --- load balancers ---
  const lb = (ctx: RouteContext) => {
    const found = ctx.cloud.loadBalancers.get(ctx.params.lb_id!);
    if (!found) throw notFound();
    return found;
  };
  route('GET', '/v2/load_balancers', (ctx) => list(ctx, 'load_balancers', ctx.cloud.loadBalancers.list(), (l) => lbView(ctx.cloud, l)));
  route('POST', '/v2/load_balancers', async (ctx) => {
    const input = lbInput(ctx.cloud, object(ctx.body));
    return ok({ load_balancer: lbView(ctx.cloud, await ctx.cloud.loadBalancers.create({ ...input, createdAt: now() })) }, 202);
  });
  route('GET', '/v2/load_balancers/{lb_id}', (ctx) => ok({ load_balancer: lbView(ctx.cloud, lb(ctx)) }));
  route('PUT', '/v2/load_balancers/{lb_id}', async (ctx) => {
    const existing = lb(ctx);
    const input = lbInput(ctx.cloud, object(ctx.body), existing);
    return ok({ load_balancer: lbView(ctx.cloud, await ctx.cloud.loadBalancers.update(existing.id, input)) });
  });
  route('DELETE', '/v2/load_balancers/{lb_id}', async (ctx) => {
    await ctx.cloud.loadBalancers.delete(lb(ctx).id);
    return noContent;
  });
  const members = (ctx: RouteContext) => {
    const found = lb(ctx);
    if (found.tag) throw unprocessable('This load balancer selects its droplets by tag; add or remove the tag instead.');
    return { found, ids: dropletIds(ctx.cloud, object(ctx.body).droplet_ids) };
  };
  route('POST', '/v2/load_balancers/{lb_id}/droplets', (ctx) => {
    const { found, ids } = members(ctx);
    ctx.cloud.loadBalancers.addDroplets(found.id, ids);
    return noContent;
  });
  route('DELETE', '/v2/load_balancers/{lb_id}/droplets', (ctx) => {
    const found = lb(ctx);
    const ids = object(ctx.body).droplet_ids;
    if (!Array.isArray(ids) || ids.some((v) => !Number.isInteger(v))) throw unprocessable('droplet_ids must be an array of droplet ids');
    ctx.cloud.loadBalancers.removeDroplets(found.id, ids as number[]);
    return noContent;
  });
  route('POST', '/v2/load_balancers/{lb_id}/forwarding_rules', async (ctx) => {
    await ctx.cloud.loadBalancers.addRules(lb(ctx).id, parseForwardingRules(object(ctx.body).forwarding_rules));
    return noContent;
  });
  route('DELETE', '/v2/load_balancers/{lb_id}/forwarding_rules', async (ctx) => {
    await ctx.cloud.loadBalancers.removeRules(lb(ctx).id, parseForwardingRules(object(ctx.body).forwarding_rules));
    return noContent;
  });

  // --- reserved IPs ---
  const render = (ctx: RouteContext) => (d: Droplet) => renderDroplet(ctx, d);
  const reserved = (ctx: RouteContext) => {
    const found = ctx.cloud.reservedIps.get(ctx.params.reserved_ip!);
    if (!found) throw notFound();
    return found;
  };
  route('GET', '/v2/reserved_ips', (ctx) => list(ctx, 'reserved_ips', ctx.cloud.reservedIps.list(), (r) => reservedIpView(ctx, r, render(ctx))));
  route('POST', '/v2/reserved_ips', async (ctx) => {
    const body = object(ctx.body);
    if ((body.droplet_id === undefined) === (body.region === undefined)) throw unprocessable('Specify droplet_id or region (one of them).');
    if (body.region !== undefined) {
      if (typeof body.region !== 'string' || !REGIONS.some((r) => r.slug === body.region)) throw unprocessable('region must be a valid region slug');
      return ok({ reserved_ip: reservedIpView(ctx, await ctx.cloud.reservedIps.create(body.region), render(ctx)), links: {} }, 202);
    }
    const [dropletId] = dropletIds(ctx.cloud, [body.droplet_id], 'droplet_id');
    const droplet = ctx.cloud.droplets.get(dropletId!)!;
    if (droplet.status === 'new') throw unprocessable('Droplet already has a pending event.');
    const created = await ctx.cloud.reservedIps.create(droplet.region);
    const action = ctx.cloud.reservedIpAction(created, 'assign', droplet.id);
    return ok(
      {
        reserved_ip: reservedIpView(ctx, created, render(ctx)),
        links: {
          droplets: [{ id: droplet.id, rel: 'droplet', href: `${ctx.baseUrl}/v2/droplets/${droplet.id}` }],
          actions: [{ id: action.id, rel: 'assign_ip', href: `${ctx.baseUrl}/v2/actions/${action.id}` }],
        },
      },
      202,
    );
  });
  route('GET', '/v2/reserved_ips/{reserved_ip}', (ctx) => ok({ reserved_ip: reservedIpView(ctx, reserved(ctx), render(ctx)) }));
  route('DELETE', '/v2/reserved_ips/{reserved_ip}', async (ctx) => {
    const found = reserved(ctx);
    if (found.locked) throw unprocessable('The reserved IP has a pending event.');
    await ctx.cloud.reservedIps.delete(found.ip);
    return noContent;
  });
  route('GET', '/v2/reserved_ips/{reserved_ip}/actions', (ctx) => list(ctx, 'actions', reserved(ctx).actionIds.map((id) => ctx.cloud.getAction(id)), actionView));
  route('POST', '/v2/reserved_ips/{reserved_ip}/actions', (ctx) => {
    const found = reserved(ctx);
    const body = object(ctx.body);
    if (body.type !== 'assign' && body.type !== 'unassign') throw unprocessable('type must be assign or unassign');
    if (body.type === 'assign' && !Number.isInteger(body.droplet_id)) throw unprocessable('droplet_id is required to assign a reserved IP');
    const action = ctx.cloud.reservedIpAction(found, body.type, body.droplet_id as number | undefined);
    return ok({ action: { ...actionView(action), project_id: found.projectId } }, 201);
  });
  route('GET', '/v2/reserved_ips/{reserved_ip}/actions/{action_id}', (ctx) => {
    const found = reserved(ctx);
    const id = Number(ctx.params.action_id);
    if (!found.actionIds.includes(id)) throw notFound();
    return ok({ action: { ...actionView(ctx.cloud.getAction(id)), project_id: found.projectId } });
  });
}
