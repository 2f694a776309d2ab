/**
 * The API subset, one handler per operation, keyed by the reference's path templates (so that
 * the request log speaks the same names). https://docs.hetzner.cloud/
 */
import { RouteTable } from '../shared/routes.js';
import { DATACENTERS, LOCATIONS, SERVER_TYPES } from './catalog.js';
import type { Cloud } from './cloud.js';
import { HcloudError, invalidInput, linkHeader, notFound, paginate } from './http.js';
import { parseLabelSelector, validLabels, type Labels } from './labels.js';
import type { Server } from './model.js';
import { registerNetworkRoutes } from './network-routes.js';
import { actionView, datacenterView, imageView, locationView, serverTypeView, serverView, sshKeyView } from './views.js';

export interface RouteContext {
  cloud: Cloud;
  url: URL;
  params: Record<string, string>;
  body: unknown;
}

export interface RouteResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (ctx: RouteContext) => RouteResult | Promise<RouteResult>;
const routes = new RouteTable<Handler>();
const route = (method: string, template: string, handle: Handler) => routes.add(method, template, handle);
export const matchRoute = (method: string, path: string) => routes.match(method, path);

export const ok = (body: unknown, status = 200): RouteResult => ({ status, body });

interface Listable {
  id: number;
  name?: string | null;
  created?: string;
  labels?: Labels;
}

/** The common list filters (label_selector, sort) and pagination, then the page rendered. */
export function list<T extends Listable>(ctx: RouteContext, key: string, items: T[], view: (item: T) => unknown): RouteResult {
  const q = ctx.url.searchParams;
  const selector = q.get('label_selector');
  if (selector !== null) {
    const matches = parseLabelSelector(selector);
    items = items.filter((i) => matches(i.labels ?? {}));
  }
  for (const sort of q.getAll('sort').reverse()) {
    const [field, dir = 'asc'] = sort.split(':');
    if (!['id', 'name', 'created'].includes(field!) || !['asc', 'desc'].includes(dir)) throw invalidInput('sort', `invalid sort "${sort}"`);
    const sign = dir === 'desc' ? -1 : 1;
    items = [...items].sort((a, b) => {
      const x = a[field as keyof Listable] ?? '';
      const y = b[field as keyof Listable] ?? '';
      return sign * (x < y ? -1 : x > y ? 1 : 0);
    });
  }
  const page = paginate(items, q);
  return { status: 200, body: { [key]: page.items.map(view), meta: { pagination: page.pagination } }, headers: { link: linkHeader(ctx.url, page.pagination) } };
}

export function object(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HcloudError(400, 'json_error', 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

export function byId<T>(map: Map<number, T>, raw: string | undefined, what: string): T {
  const item = raw && /^\d+$/.test(raw) ? map.get(Number(raw)) : undefined;
  if (!item) throw notFound(what);
  return item;
}

const server = (ctx: RouteContext): Server => byId(ctx.cloud.servers, ctx.params.id, 'server');
const renderServer = (ctx: RouteContext) => (s: Server) => serverView(s, ctx.cloud.images.get(s.imageId), { floatingIps: ctx.cloud.floatingIps.of(s.id), loadBalancers: ctx.cloud.loadBalancers.of(s.id) });
const named = <T extends { name?: string | null }>(ctx: RouteContext, items: T[]) => {
  const name = ctx.url.searchParams.get('name');
  return name === null ? items : items.filter((i) => i.name === name);
};

// --- servers ---

route('GET', '/v1/servers', (ctx) => {
  const statuses = ctx.url.searchParams.getAll('status');
  const servers = named(ctx, ctx.cloud.liveServers()).filter((s) => !statuses.length || statuses.includes(s.status));
  return list(ctx, 'servers', servers, renderServer(ctx));
});

route('POST', '/v1/servers', async (ctx) => {
  const b = object(ctx.body);
  if (b.server_type === undefined) throw invalidInput('server_type', 'server_type is required');
  if (b.image === undefined) throw invalidInput('image', 'image is required');
  if (b.ssh_keys !== undefined && !Array.isArray(b.ssh_keys)) throw invalidInput('ssh_keys', 'ssh_keys must be a list');
  const created = await ctx.cloud.createServer({
    name: b.name as string,
    serverType: b.server_type as string | number,
    image: b.image as string | number,
    location: (b.location as string | undefined) ?? (typeof b.datacenter === 'string' ? DATACENTERS.find((d) => d.name === b.datacenter)?.location : undefined),
    sshKeys: (b.ssh_keys as (string | number)[] | undefined) ?? [],
    labels: validLabels(b.labels),
    startAfterCreate: b.start_after_create !== false,
  });
  return ok({ server: renderServer(ctx)(created.server), action: actionView(created.action), next_actions: created.nextActions.map(actionView), root_password: null }, 201);
});

route('GET', '/v1/servers/{id}', (ctx) => ok({ server: renderServer(ctx)(server(ctx)) }));

route('PUT', '/v1/servers/{id}', (ctx) => {
  const s = server(ctx);
  const b = object(ctx.body);
  if (b.labels !== undefined) s.labels = validLabels(b.labels);
  if (typeof b.name === 'string' && b.name) s.name = b.name;
  return ok({ server: renderServer(ctx)(s) });
});

route('DELETE', '/v1/servers/{id}', (ctx) => ok({ action: actionView(ctx.cloud.deleteServer(server(ctx))) }));

route('GET', '/v1/servers/{id}/actions', (ctx) => {
  const id = server(ctx).id;
  const actions = [...ctx.cloud.actions.values()].filter((a) => a.resources.some((r) => r.type === 'server' && r.id === id));
  return list(ctx, 'actions', actions, actionView);
});

for (const command of ['poweron', 'poweroff', 'shutdown', 'reboot', 'reset', 'create_image']) {
  route('POST', `/v1/servers/{id}/actions/${command}`, (ctx) => {
    const body = object(ctx.body);
    if (command === 'create_image') body.labels = validLabels(body.labels);
    const result = ctx.cloud.serverAction(server(ctx), command, body);
    return ok(result.image ? { image: imageView(result.image), action: actionView(result.action) } : { action: actionView(result.action) }, 201);
  });
}

// --- images ---

route('GET', '/v1/images', (ctx) => {
  const q = ctx.url.searchParams;
  const types = q.getAll('type');
  const statuses = q.getAll('status');
  const architecture = q.get('architecture');
  const images = named(ctx, [...ctx.cloud.images.values()])
    .filter((i) => !types.length || types.includes(i.type))
    .filter((i) => !statuses.length || statuses.includes(i.status))
    .filter((i) => architecture === null || architecture === 'x86')
    .sort((a, b) => a.id - b.id);
  return list(ctx, 'images', images, imageView);
});

route('GET', '/v1/images/{id}', (ctx) => ok({ image: imageView(byId(ctx.cloud.images, ctx.params.id, 'image')) }));

route('PUT', '/v1/images/{id}', (ctx) => {
  const image = byId(ctx.cloud.images, ctx.params.id, 'image');
  const b = object(ctx.body);
  if (b.description !== undefined) {
    if (typeof b.description !== 'string') throw invalidInput('description', 'description must be a string');
    image.description = b.description;
  }
  if (b.labels !== undefined) image.labels = validLabels(b.labels);
  if (b.type !== undefined && b.type !== 'snapshot') throw invalidInput('type', 'an image can only be converted to a snapshot');
  return ok({ image: imageView(image) });
});

route('DELETE', '/v1/images/{id}', async (ctx) => {
  await ctx.cloud.deleteImage(byId(ctx.cloud.images, ctx.params.id, 'image'));
  return { status: 204 };
});

// --- SSH keys ---

route('GET', '/v1/ssh_keys', (ctx) => {
  const fp = ctx.url.searchParams.get('fingerprint');
  const keys = named(ctx, [...ctx.cloud.keys.values()]).filter((k) => fp === null || k.fingerprint === fp);
  return list(ctx, 'ssh_keys', keys, sshKeyView);
});

route('POST', '/v1/ssh_keys', (ctx) => {
  const b = object(ctx.body);
  if (typeof b.name !== 'string') throw invalidInput('name', 'name is required');
  if (typeof b.public_key !== 'string') throw invalidInput('public_key', 'public_key is required');
  return ok({ ssh_key: sshKeyView(ctx.cloud.addKey(b.name, b.public_key, validLabels(b.labels))) }, 201);
});

route('GET', '/v1/ssh_keys/{id}', (ctx) => ok({ ssh_key: sshKeyView(byId(ctx.cloud.keys, ctx.params.id, 'ssh_key')) }));

route('PUT', '/v1/ssh_keys/{id}', (ctx) => {
  const key = byId(ctx.cloud.keys, ctx.params.id, 'ssh_key');
  const b = object(ctx.body);
  if (typeof b.name === 'string' && b.name) key.name = b.name;
  if (b.labels !== undefined) key.labels = validLabels(b.labels);
  return ok({ ssh_key: sshKeyView(key) });
});

route('DELETE', '/v1/ssh_keys/{id}', (ctx) => {
  ctx.cloud.keys.delete(byId(ctx.cloud.keys, ctx.params.id, 'ssh_key').id);
  return { status: 204 };
});

// --- actions ---

route('GET', '/v1/actions', (ctx) => {
  const q = ctx.url.searchParams;
  const ids = q.getAll('id').map(Number);
  const statuses = q.getAll('status');
  const actions = [...ctx.cloud.actions.values()].filter((a) => (!ids.length || ids.includes(a.id)) && (!statuses.length || statuses.includes(a.status)));
  return list(ctx, 'actions', actions, actionView);
});

route('GET', '/v1/actions/{id}', (ctx) => ok({ action: actionView(byId(ctx.cloud.actions, ctx.params.id, 'action')) }));

// --- the catalogue ---

const catalog = <T extends { id: number; name: string }>(path: string, key: string, one: string, items: T[], view: (t: T) => unknown) => {
  route('GET', `/v1/${path}`, (ctx) => list(ctx, key, named(ctx, items), view));
  route('GET', `/v1/${path}/{id}`, (ctx) => ok({ [one]: view(byId(new Map(items.map((i) => [i.id, i])), ctx.params.id, one)) }));
};
catalog('server_types', 'server_types', 'server_type', SERVER_TYPES, serverTypeView);
catalog('locations', 'locations', 'location', LOCATIONS, locationView);
catalog('datacenters', 'datacenters', 'datacenter', DATACENTERS, (d) => datacenterView(d.location));

registerNetworkRoutes(route);
