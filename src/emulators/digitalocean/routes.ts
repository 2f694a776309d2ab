/**
 * The API subset, one handler per operation, keyed by the OpenAPI description's path templates
 * (so that the request log and the conformance tests speak the same names).
 * https://docs.digitalocean.com/reference/api/digitalocean/
 */
import { RouteTable } from '../shared/routes.js';
import { REGIONS, SIZES } from './catalog.js';
import type { Cloud, CreateDropletInput } from './cloud.js';
import { ApiError, badRequest, notFound, paginate, unprocessable } from './http.js';
import type { Droplet } from './model.js';
import { registerNetworkRoutes } from './network-routes.js';
import { actionView, dropletSnapshotView, dropletView, imageView, keyView, regionView, sizeView, snapshotView } from './views.js';

export interface RouteContext {
  cloud: Cloud;
  url: URL;
  /** The emulator's own base URL, for links. */
  baseUrl: string;
  params: Record<string, string>;
  body: unknown;
}

export interface RouteResult {
  status: number;
  body?: unknown;
}

export type Handler = (ctx: RouteContext) => RouteResult | Promise<RouteResult>;
const routes = new RouteTable<Handler>();
const route = (method: string, template: string, handle: Handler) => routes.add(method, template, handle);
export const matchRoute = (method: string, path: string) => routes.match(method, path);

const ok = (body: unknown, status = 200): RouteResult => ({ status, body });
const noContent: RouteResult = { status: 204 };

function list<T>(ctx: RouteContext, key: string, items: T[], view: (item: T) => unknown): RouteResult {
  const page = paginate(items, ctx.url, ctx.baseUrl);
  return ok({ [key]: page.items.map(view), links: page.links, meta: page.meta });
}

function object(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

function intParam(value: string | undefined): number {
  if (!value || !/^\d+$/.test(value)) throw notFound();
  return Number(value);
}

function droplet(ctx: RouteContext): Droplet {
  const d = ctx.cloud.droplets.get(intParam(ctx.params.droplet_id));
  if (!d || d.deleted) throw notFound();
  return d;
}

function renderDroplet(ctx: RouteContext, d: Droplet) {
  return dropletView(d, ctx.cloud.images.get(d.imageId) ?? ctx.cloud.findImage('debian-12-x64')!);
}

// --- account and keys ---

route('GET', '/v2/account', (ctx) =>
  ok({
    account: {
      droplet_limit: ctx.cloud.dropletLimit,
      floating_ip_limit: 3,
      email: 'emulator@provisional.invalid',
      name: 'Provisional emulator',
      uuid: ctx.cloud.accountUuid,
      email_verified: true,
      status: 'active',
      status_message: '',
    },
  }),
);

route('GET', '/v2/account/keys', (ctx) => list(ctx, 'ssh_keys', [...ctx.cloud.keys.values()], keyView));

route('POST', '/v2/account/keys', (ctx) => {
  const body = object(ctx.body);
  if (typeof body.public_key !== 'string' || typeof body.name !== 'string' || !body.name) throw unprocessable('name and public_key are required');
  return ok({ ssh_key: keyView(ctx.cloud.addKey(body.name, body.public_key)) }, 201);
});

const key = (ctx: RouteContext) => {
  const k = ctx.cloud.findKey(ctx.params.ssh_key_identifier!);
  if (!k) throw notFound();
  return k;
};
route('GET', '/v2/account/keys/{ssh_key_identifier}', (ctx) => ok({ ssh_key: keyView(key(ctx)) }));
route('PUT', '/v2/account/keys/{ssh_key_identifier}', (ctx) => {
  const k = key(ctx);
  const body = object(ctx.body);
  if (typeof body.name === 'string' && body.name) k.name = body.name;
  return ok({ ssh_key: keyView(k) });
});
route('DELETE', '/v2/account/keys/{ssh_key_identifier}', (ctx) => {
  ctx.cloud.keys.delete(key(ctx).id);
  return noContent;
});

// --- droplets ---

route('GET', '/v2/droplets', (ctx) => {
  const tag = ctx.url.searchParams.get('tag_name');
  const name = ctx.url.searchParams.get('name');
  const droplets = ctx.cloud.liveDroplets().filter((d) => (!tag || d.tags.includes(tag)) && (!name || d.name === name));
  return list(ctx, 'droplets', droplets, (d) => renderDroplet(ctx, d));
});

const NAME = /^[a-zA-Z0-9]?[a-z0-9A-Z.-]*[a-z0-9A-Z]$/;

route('POST', '/v2/droplets', (ctx) => {
  const body = object(ctx.body);
  let names: string[];
  if (typeof body.name === 'string' && body.names === undefined) names = [body.name];
  else if (Array.isArray(body.names) && body.name === undefined) {
    names = body.names as string[];
    if (names.length < 1 || names.length > 10) throw unprocessable('You may create between 1 and 10 droplets at a time.');
  } else throw unprocessable('Either name or names (not both) is required.');
  for (const n of names) if (typeof n !== 'string' || n.length > 255 || !NAME.test(n)) throw unprocessable(`Name is invalid: ${JSON.stringify(n)}. Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)`);
  if (typeof body.size !== 'string') throw unprocessable('size is required');
  if (typeof body.image !== 'string' && typeof body.image !== 'number') throw unprocessable('image is required');
  const sshKeys = (body.ssh_keys ?? []) as unknown[];
  if (!Array.isArray(sshKeys) || sshKeys.some((k) => typeof k !== 'string' && typeof k !== 'number')) throw unprocessable('ssh_keys must be an array of ids or fingerprints');
  const tags = (body.tags ?? []) as unknown[];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw unprocessable('tags must be an array of strings');
  const input: Omit<CreateDropletInput, 'name'> = {
    region: typeof body.region === 'string' ? body.region : 'nyc3',
    size: body.size,
    image: body.image,
    sshKeys: sshKeys as (string | number)[],
    tags: tags as string[],
    vpcUuid: typeof body.vpc_uuid === 'string' ? body.vpc_uuid : undefined,
  };
  const { droplets, actions } = ctx.cloud.createDroplets(names, input);
  const links = { actions: actions.map((a) => ({ id: a.id, rel: 'create', href: `${ctx.baseUrl}/v2/actions/${a.id}` })) };
  if (typeof body.name === 'string') return ok({ droplet: renderDroplet(ctx, droplets[0]!), links }, 202);
  return ok({ droplets: droplets.map((d) => renderDroplet(ctx, d)), links }, 202);
});

route('DELETE', '/v2/droplets', (ctx) => {
  const tag = ctx.url.searchParams.get('tag_name');
  if (!tag) throw badRequest('tag_name is required');
  for (const d of ctx.cloud.liveDroplets().filter((d) => d.tags.includes(tag))) ctx.cloud.deleteDroplet(d);
  return noContent;
});

route('GET', '/v2/droplets/{droplet_id}', (ctx) => ok({ droplet: renderDroplet(ctx, droplet(ctx)) }));
route('DELETE', '/v2/droplets/{droplet_id}', async (ctx) => {
  ctx.cloud.deleteDroplet(droplet(ctx));
  // The droplet goes at once; the answer comes after the delay (a client killed meanwhile has still destroyed it).
  if (ctx.cloud.delays.destroy) await new Promise((resolve) => setTimeout(resolve, ctx.cloud.delays.destroy));
  return noContent;
});

route('GET', '/v2/droplets/{droplet_id}/actions', (ctx) => {
  const d = droplet(ctx);
  return list(ctx, 'actions', d.actionIds.map((id) => ctx.cloud.getAction(id)), actionView);
});
route('POST', '/v2/droplets/{droplet_id}/actions', (ctx) => {
  const d = droplet(ctx);
  const body = object(ctx.body);
  if (typeof body.type !== 'string') throw unprocessable('type is required');
  return ok({ action: actionView(ctx.cloud.dropletAction(d, body.type, body)) }, 201);
});
route('GET', '/v2/droplets/{droplet_id}/actions/{action_id}', (ctx) => {
  const d = droplet(ctx);
  const id = intParam(ctx.params.action_id);
  if (!d.actionIds.includes(id)) throw notFound();
  return ok({ action: actionView(ctx.cloud.getAction(id)) });
});
route('GET', '/v2/droplets/{droplet_id}/snapshots', (ctx) => {
  const d = droplet(ctx);
  const images = d.snapshotIds.map((id) => ctx.cloud.images.get(id)).filter((i) => i !== undefined);
  return list(ctx, 'snapshots', images, dropletSnapshotView);
});

// --- actions ---

route('GET', '/v2/actions', (ctx) => list(ctx, 'actions', [...ctx.cloud.actions.values()].reverse(), actionView));
route('GET', '/v2/actions/{action_id}', (ctx) => ok({ action: actionView(ctx.cloud.getAction(intParam(ctx.params.action_id))) }));

// --- images ---

route('GET', '/v2/images', (ctx) => {
  const q = ctx.url.searchParams;
  const type = q.get('type');
  if (type !== null && type !== 'distribution' && type !== 'application') throw unprocessable('type must be one of: application, distribution');
  const priv = q.get('private') === 'true';
  const tag = q.get('tag_name');
  const images = [...ctx.cloud.images.values()]
    .filter((i) => i.status !== 'deleted')
    .filter((i) => (type === 'distribution' ? i.type === 'base' && i.public : type === 'application' ? false : true))
    .filter((i) => !priv || !i.public)
    .filter((i) => !tag || i.tags.includes(tag))
    .sort((a, b) => a.id - b.id);
  return list(ctx, 'images', images, imageView);
});

const image = (ctx: RouteContext) => {
  const i = ctx.cloud.findImage(ctx.params.image_id!);
  if (!i) throw notFound();
  return i;
};
route('GET', '/v2/images/{image_id}', (ctx) => ok({ image: imageView(image(ctx)) }));
route('PUT', '/v2/images/{image_id}', (ctx) => {
  const i = image(ctx);
  if (i.public) throw new ApiError(403, 'forbidden', 'You do not have access for the attempted action.');
  const body = object(ctx.body);
  if (typeof body.name === 'string' && body.name) i.name = body.name;
  if (typeof body.description === 'string') i.description = body.description;
  return ok({ image: imageView(i) });
});
route('DELETE', '/v2/images/{image_id}', async (ctx) => {
  const i = image(ctx);
  if (i.public) throw new ApiError(403, 'forbidden', 'You do not have access for the attempted action.');
  await ctx.cloud.deleteImage(i);
  return noContent;
});
route('GET', '/v2/images/{image_id}/actions', (ctx) => {
  const i = image(ctx);
  const actions = [...ctx.cloud.actions.values()].filter((a) => a.resourceType === 'image' && a.resourceId === i.id);
  return list(ctx, 'actions', actions, actionView);
});
route('POST', '/v2/images/{image_id}/actions', (ctx) => {
  const i = image(ctx);
  const body = object(ctx.body);
  if (body.type !== 'transfer') throw unprocessable(`The image action type ${JSON.stringify(body.type)} is not supported by this emulator.`);
  if (i.public) throw unprocessable('Public images are available in every region already.');
  if (typeof body.region !== 'string') throw unprocessable('region is required');
  return ok({ action: actionView(ctx.cloud.transferImage(i, body.region)) }, 201);
});
route('GET', '/v2/images/{image_id}/actions/{action_id}', (ctx) => {
  const i = image(ctx);
  const action = ctx.cloud.getAction(intParam(ctx.params.action_id));
  if (action.resourceType !== 'image' || action.resourceId !== i.id) throw notFound();
  return ok({ action: actionView(action) });
});

// --- snapshots ---

const snapshots = (ctx: RouteContext) => [...ctx.cloud.images.values()].filter((i) => i.type === 'snapshot' && i.status !== 'deleted').sort((a, b) => a.id - b.id);
route('GET', '/v2/snapshots', (ctx) => {
  const type = ctx.url.searchParams.get('resource_type');
  if (type !== null && type !== 'droplet' && type !== 'volume') throw unprocessable('resource_type must be one of: droplet, volume');
  return list(ctx, 'snapshots', type === 'volume' ? [] : snapshots(ctx), snapshotView);
});
const snapshot = (ctx: RouteContext) => {
  const found = snapshots(ctx).find((i) => String(i.id) === ctx.params.snapshot_id);
  if (!found) throw notFound();
  return found;
};
route('GET', '/v2/snapshots/{snapshot_id}', (ctx) => ok({ snapshot: snapshotView(snapshot(ctx)) }));
route('DELETE', '/v2/snapshots/{snapshot_id}', async (ctx) => {
  await ctx.cloud.deleteImage(snapshot(ctx));
  return noContent;
});

// --- catalog ---

route('GET', '/v2/regions', (ctx) => list(ctx, 'regions', REGIONS.map((r) => r.slug), regionView));
route('GET', '/v2/sizes', (ctx) => list(ctx, 'sizes', SIZES, sizeView));

// --- load balancers and reserved IPs ---

registerNetworkRoutes(route, renderDroplet);
