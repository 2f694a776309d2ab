/**
 * Load balancers and Floating IPs (registered into routes.ts's table), answered as hcloud-go's
 * schema package reads them: creates are 201 with the object and its action, changes are actions
 * (201 {action}) polled through /v1/actions/{id}, deletes 204.
 * https://docs.hetzner.cloud/#load-balancers, #load-balancer-actions, #floating-ips, #floating-ip-actions
 */
import { LOAD_BALANCER_TYPES, LOCATIONS } from './catalog.js';
import { HcloudError, invalidInput } from './http.js';
import { validLabels } from './labels.js';
import type { FloatingIp } from './floating-ips.js';
import { parseService, parseTarget, type LoadBalancer } from './load-balancers.js';
import { byId, list, object, ok, type Handler, type RouteContext } from './routes.js';
import { actionView, floatingIpView, loadBalancerTypeView, loadBalancerView } from './views.js';

type Register = (method: string, template: string, handle: Handler) => void;

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00');
const named = <T extends { name: string }>(ctx: RouteContext, items: T[]) => {
  const name = ctx.url.searchParams.get('name');
  return (name === null ? items : items.filter((i) => i.name === name)).sort((a, b) => (a as unknown as { id: number }).id - (b as unknown as { id: number }).id);
};
const actionsOf = (ctx: RouteContext, type: string, id: number) => [...ctx.cloud.actions.values()].filter((a) => a.resources.some((r) => r.type === type && r.id === id));

export function registerNetworkRoutes(route: Register): void {
  // --- load balancers ---
  const lb = (ctx: RouteContext): LoadBalancer => byId(ctx.cloud.loadBalancers.all, ctx.params.id, 'load_balancer');
  const view = (ctx: RouteContext) => (l: LoadBalancer) => loadBalancerView(ctx.cloud.loadBalancers, l);
  const lbAction = (ctx: RouteContext, l: LoadBalancer, command: string, effect?: () => void | Promise<void>) =>
    ok({ action: actionView(ctx.cloud.timedAction(command, [{ id: l.id, type: 'load_balancer' }], ctx.cloud.delays.load_balancer, effect)) }, 201);

  route('GET', '/v1/load_balancers', (ctx) => list(ctx, 'load_balancers', named(ctx, [...ctx.cloud.loadBalancers.all.values()]), view(ctx)));
  route('POST', '/v1/load_balancers', async (ctx) => {
    const b = object(ctx.body);
    if (b.network !== undefined) throw new HcloudError(404, 'not_found', 'network not found');
    if (b.public_interface === false) throw invalidInput('public_interface', 'a load balancer without a public interface needs a network, which the emulator does not have');
    const created = await ctx.cloud.loadBalancers.create({
      name: b.name, type: b.load_balancer_type, location: b.location, networkZone: b.network_zone, algorithm: b.algorithm,
      labels: validLabels(b.labels), services: b.services, targets: b.targets, created: now(),
    });
    const action = ctx.cloud.timedAction('create_load_balancer', [{ id: created.id, type: 'load_balancer' }], ctx.cloud.delays.load_balancer);
    return ok({ load_balancer: view(ctx)(created), action: actionView(action) }, 201);
  });
  route('GET', '/v1/load_balancers/{id}', (ctx) => ok({ load_balancer: view(ctx)(lb(ctx)) }));
  route('PUT', '/v1/load_balancers/{id}', (ctx) => {
    const l = lb(ctx);
    const b = object(ctx.body);
    if (b.name !== undefined) {
      if (typeof b.name !== 'string' || !b.name) throw invalidInput('name', 'name must be a non-empty string');
      if ([...ctx.cloud.loadBalancers.all.values()].some((x) => x.name === b.name && x.id !== l.id)) throw new HcloudError(409, 'uniqueness_error', 'name is already used');
      l.name = b.name;
    }
    if (b.labels !== undefined) l.labels = validLabels(b.labels);
    return ok({ load_balancer: view(ctx)(l) });
  });
  route('DELETE', '/v1/load_balancers/{id}', async (ctx) => {
    await ctx.cloud.loadBalancers.delete(lb(ctx));
    return { status: 204 };
  });
  route('GET', '/v1/load_balancers/{id}/actions', (ctx) => list(ctx, 'actions', actionsOf(ctx, 'load_balancer', lb(ctx).id), actionView));

  // Targets and services change when the request is answered (new connections follow at once);
  // the action says when the change is done, as a client waits for it.
  route('POST', '/v1/load_balancers/{id}/actions/add_target', (ctx) => {
    const l = lb(ctx);
    ctx.cloud.loadBalancers.addTarget(l, parseTarget(object(ctx.body), ctx.cloud));
    return lbAction(ctx, l, 'add_target');
  });
  route('POST', '/v1/load_balancers/{id}/actions/remove_target', (ctx) => {
    const l = lb(ctx);
    const b = object(ctx.body);
    // A removed server target need not exist any more: it is matched by id.
    const target = b.type === 'server' && typeof b.server === 'object' && b.server !== null && Number.isInteger((b.server as { id?: unknown }).id) ? { type: 'server' as const, serverId: (b.server as { id: number }).id } : parseTarget(b, ctx.cloud);
    ctx.cloud.loadBalancers.removeTarget(l, target);
    return lbAction(ctx, l, 'remove_target');
  });
  route('POST', '/v1/load_balancers/{id}/actions/add_service', async (ctx) => {
    const l = lb(ctx);
    const service = parseService(object(ctx.body));
    if (l.services.some((s) => s.listen_port === service.listen_port)) throw new HcloudError(422, 'source_port_already_used', 'the source port you are trying to add is already in use');
    await ctx.cloud.loadBalancers.setServices(l, [...l.services, service]);
    return lbAction(ctx, l, 'add_service');
  });
  route('POST', '/v1/load_balancers/{id}/actions/update_service', async (ctx) => {
    const l = lb(ctx);
    const b = object(ctx.body);
    const at = l.services.findIndex((s) => s.listen_port === b.listen_port);
    if (at < 0) throw invalidInput('listen_port', `no service listens on port ${String(b.listen_port)}`);
    const updated = parseService(b, l.services[at]);
    await ctx.cloud.loadBalancers.setServices(l, l.services.map((s, i) => (i === at ? updated : s)));
    return lbAction(ctx, l, 'update_service');
  });
  route('POST', '/v1/load_balancers/{id}/actions/delete_service', async (ctx) => {
    const l = lb(ctx);
    const port = object(ctx.body).listen_port;
    if (!l.services.some((s) => s.listen_port === port)) throw invalidInput('listen_port', `no service listens on port ${String(port)}`);
    await ctx.cloud.loadBalancers.setServices(l, l.services.filter((s) => s.listen_port !== port));
    return lbAction(ctx, l, 'delete_service');
  });
  route('GET', '/v1/load_balancer_types', (ctx) => list(ctx, 'load_balancer_types', named(ctx, LOAD_BALANCER_TYPES), loadBalancerTypeView));
  route('GET', '/v1/load_balancer_types/{id}', (ctx) => ok({ load_balancer_type: loadBalancerTypeView(byId(new Map(LOAD_BALANCER_TYPES.map((t) => [t.id, t])), ctx.params.id, 'load_balancer_type')) }));

  // --- Floating IPs ---
  const fip = (ctx: RouteContext): FloatingIp => byId(ctx.cloud.floatingIps.all, ctx.params.id, 'floating_ip');
  const server = (ctx: RouteContext, id: unknown) => {
    const s = Number.isInteger(id) ? ctx.cloud.servers.get(id as number) : undefined;
    if (!s) throw invalidInput('server', `server ${String(id)} not found`);
    return s;
  };
  /** Moves the address when the action ends; the Floating IP is locked until then. */
  const move = (ctx: RouteContext, f: FloatingIp, command: string, serverId: number | null) => {
    if (f.locked) throw new HcloudError(423, 'locked', 'the floating IP is locked');
    f.locked = true;
    const resources = [{ id: f.id, type: 'floating_ip' as const }, ...(serverId === null ? [] : [{ id: serverId, type: 'server' as const }])];
    return ctx.cloud.timedAction(command, resources, ctx.cloud.delays.floating_ip, () => void (f.serverId = serverId), () => void (f.locked = false));
  };

  route('GET', '/v1/floating_ips', (ctx) => list(ctx, 'floating_ips', named(ctx, [...ctx.cloud.floatingIps.all.values()]), floatingIpView));
  route('POST', '/v1/floating_ips', async (ctx) => {
    const b = object(ctx.body);
    if (b.type === 'ipv6') throw invalidInput('type', 'IPv6 Floating IPs are not emulated');
    if (b.type !== 'ipv4') throw invalidInput('type', 'type must be ipv4 or ipv6');
    if (b.server === undefined && b.home_location === undefined) throw invalidInput('home_location', 'one of server or home_location is required');
    const target = b.server === undefined ? undefined : server(ctx, b.server);
    const home = b.home_location === undefined ? target!.location : LOCATIONS.find((l) => l.name === b.home_location || l.id === b.home_location);
    if (!home) throw invalidInput('home_location', 'location not found');
    if (b.description !== undefined && b.description !== null && typeof b.description !== 'string') throw invalidInput('description', 'description must be a string');
    const id = ctx.cloud.floatingIps.all.size;
    const name = b.name === undefined ? undefined : b.name;
    if (name !== undefined && (typeof name !== 'string' || !name)) throw invalidInput('name', 'name must be a non-empty string');
    const created = await ctx.cloud.floatingIps.create({
      name: (name as string | undefined) ?? `floating-ip-${id + 1}-${Date.now().toString(36)}`,
      description: (b.description as string | null | undefined) ?? null, created: now(), homeLocation: home, serverId: null, labels: validLabels(b.labels),
    });
    // Created assigned: the address serves the server once the assign action ends.
    const action = target ? move(ctx, created, 'assign_floating_ip', target.id) : null;
    if (target) created.serverId = target.id;
    return ok({ floating_ip: floatingIpView(created), action: action && actionView(action) }, 201);
  });
  route('GET', '/v1/floating_ips/{id}', (ctx) => ok({ floating_ip: floatingIpView(fip(ctx)) }));
  route('PUT', '/v1/floating_ips/{id}', (ctx) => {
    const f = fip(ctx);
    const b = object(ctx.body);
    if (typeof b.description === 'string') f.description = b.description;
    if (typeof b.name === 'string' && b.name) f.name = b.name;
    if (b.labels !== undefined) f.labels = validLabels(b.labels);
    return ok({ floating_ip: floatingIpView(f) });
  });
  route('DELETE', '/v1/floating_ips/{id}', async (ctx) => {
    // Deleted while assigned: Hetzner unassigns it first.
    await ctx.cloud.floatingIps.delete(fip(ctx));
    return { status: 204 };
  });
  route('GET', '/v1/floating_ips/{id}/actions', (ctx) => list(ctx, 'actions', actionsOf(ctx, 'floating_ip', fip(ctx).id), actionView));
  route('POST', '/v1/floating_ips/{id}/actions/assign', (ctx) => {
    const f = fip(ctx);
    const s = server(ctx, object(ctx.body).server);
    if (f.serverId === s.id) throw new HcloudError(422, 'floating_ip_assigned', 'the floating IP is already assigned to this server');
    return ok({ action: actionView(move(ctx, f, 'assign_floating_ip', s.id)) }, 201);
  });
  route('POST', '/v1/floating_ips/{id}/actions/unassign', (ctx) => ok({ action: actionView(move(ctx, fip(ctx), 'unassign_floating_ip', null)) }, 201));
}
