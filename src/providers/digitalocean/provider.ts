/**
 * The DigitalOcean provider: builders and servers are droplets, versions are snapshots.
 *   build:  temporary SSH key -> droplet (tagged with the run) -> active -> [scripts] -> off
 *           (shutdown, then power_off if it does not stop in time) -> snapshot action -> image
 *           with our metadata in its description -> droplet and key destroyed.
 *   deploy: droplets tagged with project, environment, image and version; found again by tag.
 * Labels become tags `key:value` (DigitalOcean tags allow letters, digits, `:`, `-` and `_`).
 */
import { ConfigError, ProviderError, UserFacingError, throwIfAborted } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { TimeoutError } from '../../core/wait.js';
import { Durations, waitExpected } from '../../core/durations.js';
import {
  LABELS,
  type BaseImage,
  type ImageVersion,
  type ImageVersionMetadata,
  type LaunchRequest,
  type Machine,
  type Provider,
  type ProviderContext,
  type Server,
  type SourceImage,
} from '../types.js';
import { DigitalOceanApi } from './api.js';
import { resolveToken, TOKEN_VARIABLES, type DigitalOceanSettings } from './settings.js';
import { z } from 'zod';
import { actionSchema, dropletSchema, imageSchema, sshKeySchema, type Action, type Droplet, type Image } from './types.js';

const DEFAULT_API = 'https://api.digitalocean.com';
/** Images whose description starts with this carry our metadata as JSON after it. */
const META_PREFIX = 'provisional:';
/** Label on a Machine (not a tag) holding the temporary key's id, removed with a builder. */
const KEY_LABEL = 'provisional-key-id';

export class DigitalOceanProvider implements Provider {
  readonly name = 'digitalocean';
  readonly api: DigitalOceanApi;
  private readonly baseUrl: string;

  constructor(
    private readonly settings: DigitalOceanSettings,
    private readonly ctx: ProviderContext,
  ) {
    const token = resolveToken(settings);
    if (!token) {
      throw new ConfigError(
        [{ file: 'config/provisional/config.yml', path: 'provider.token', message: `no DigitalOcean API token: set ${TOKEN_VARIABLES.join(', or ')}, or token: \${DIGITALOCEAN_TOKEN}` }],
      );
    }
    this.baseUrl = settings['api-url'] ?? process.env.DIGITALOCEAN_API_URL ?? DEFAULT_API;
    this.api = new DigitalOceanApi({ baseUrl: this.baseUrl, token, events: ctx.events, budget: settings['api-budget'] });
  }

  private get events(): EventSink {
    return this.ctx.events;
  }

  async describe(): Promise<string> {
    return `DigitalOcean (${this.baseUrl}, region ${this.settings.region})`;
  }

  async listBaseImages(signal: AbortSignal): Promise<BaseImage[]> {
    const images = await this.api.list('/v2/images', 'images', { operation: 'list distribution images', query: { type: 'distribution' }, signal, schema: imageSchema });
    return images
      .filter((i) => i.slug)
      .map((i) => ({ ref: i.slug!, description: `${i.distribution} ${i.name}`.trim(), ready: i.status === undefined || i.status === 'available' }))
      .sort((a, b) => a.ref.localeCompare(b.ref));
  }

  async listImageVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    const images = await this.api.list('/v2/images', 'images', { operation: 'list snapshots', query: { private: 'true' }, signal, schema: imageSchema });
    return images.flatMap((image) => {
      const version = this.toVersion(image);
      return version ? [version] : [];
    });
  }

  private toVersion(image: Image): ImageVersion | undefined {
    if (image.type !== 'snapshot' || !image.description?.startsWith(META_PREFIX)) return undefined;
    let meta: ImageVersionMetadata & { project?: string };
    try {
      meta = JSON.parse(image.description.slice(META_PREFIX.length)) as ImageVersionMetadata & { project?: string };
    } catch {
      return undefined;
    }
    if (meta.project !== this.ctx.project || meta.version !== image.name) return undefined;
    const { project: _project, ...rest } = meta;
    return {
      ...rest,
      id: String(image.id),
      status: image.status === 'available' || image.status === undefined ? 'available' : image.status === 'pending' || image.status === 'NEW' ? 'pending' : 'failed',
      sizeBytes: typeof image.size_gigabytes === 'number' ? Math.round(image.size_gigabytes * 1024 ** 3) : undefined,
      regions: image.regions,
    };
  }

  async prepareBase(ref: string, signal: AbortSignal): Promise<SourceImage> {
    try {
      const { body } = await this.api.request('GET', `/v2/images/${encodeURIComponent(ref)}`, { operation: `find image ${ref}`, signal, schema: z.looseObject({ image: imageSchema }) });
      return { kind: 'base', ref, id: String(body.image.id) };
    } catch (err) {
      if (err instanceof ProviderError && err.status === 404) {
        throw new UserFacingError(`DigitalOcean has no image "${ref}"`, { exitCode: 2, hint: 'see the base images in: provisional image list' });
      }
      throw err;
    }
  }

  async launchMachine(req: LaunchRequest, signal: AbortSignal): Promise<Machine> {
    const [machine] = await this.launchMachines([req], signal);
    return machine!;
  }

  /**
   * Droplets in batches: the multi-create form takes up to 10 names a request, and their state is
   * polled with one list call by tag for the whole batch, not one call per droplet.
   */
  async launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]> {
    if (!reqs.length) return [];
    const keyIds = await this.keysFor(reqs[0]!, signal);
    const batchTag = `provisional-batch:${Math.random().toString(36).slice(2, 10)}`;
    const created: Droplet[] = [];
    const groups = groupBy(reqs, (r) => JSON.stringify([sourceImage(r.source), r.options?.size, r.options?.region, r.labels]));
    try {
      for (const group of groups) {
        for (let i = 0; i < group.length; i += 10) {
          throwIfAborted(signal);
          created.push(...(await this.createDroplets(group.slice(i, i + 10), keyIds, batchTag, signal)));
        }
      }
      throwIfAborted(signal);
      const first = reqs[0]!;
      const size = (first.options?.size as string | undefined) ?? this.settings.size;
      const region = (first.options?.region as string | undefined) ?? this.settings.region;
      const active = await this.waitActive(created.map((d) => d.id), batchTag, size, region, signal);
      return reqs.map((req) => {
        const droplet = active.find((d) => d.name === req.name && created.some((c) => c.id === d.id))!;
        return this.toMachine(droplet, keyIds.temporary ? { [KEY_LABEL]: String(keyIds.temporary) } : {});
      });
    } catch (err) {
      // Whatever this call created goes, so that a failed launch bills nothing.
      await Promise.all(created.map((d) => this.deleteDroplet(d.id, AbortSignal.timeout(60_000)).catch(() => undefined)));
      if (keyIds.temporary) await this.deleteKey(keyIds.temporary, AbortSignal.timeout(60_000)).catch(() => undefined);
      throw err;
    }
  }

  private async createDroplets(group: LaunchRequest[], keyIds: { ids: number[] }, batchTag: string, signal: AbortSignal): Promise<Droplet[]> {
    const first = group[0]!;
    const body = {
      ...(group.length === 1 ? { name: first.name } : { names: group.map((r) => r.name) }),
      region: (first.options?.region as string | undefined) ?? this.settings.region,
      size: (first.options?.size as string | undefined) ?? this.settings.size,
      image: sourceImage(first.source),
      ssh_keys: keyIds.ids,
      tags: [...labelsToTags(first.labels), batchTag],
    };
    // Not cut short by the signal: a create aborted after DigitalOcean took it would make droplets
    // nobody knows the ids of, so nothing would remove them. The caller checks the signal after.
    const { body: answer } = await this.api.request('POST', '/v2/droplets', {
      operation: group.length === 1 ? `create droplet ${first.name}` : `create ${group.length} droplets`,
      body,
      signal: AbortSignal.timeout(120_000),
      schema: z.looseObject({ droplet: dropletSchema.optional(), droplets: z.array(dropletSchema).optional() }),
    });
    return answer.droplets ?? (answer.droplet ? [answer.droplet] : []);
  }

  /** Droplets are polled against how long a create of this size and region took before. */
  private async waitActive(ids: number[], batchTag: string, size: string, region: string, signal: AbortSignal): Promise<Droplet[]> {
    const timeout = this.settings['create-timeout'];
    let mine: Droplet[] = [];
    let ready: Droplet[] = [];
    try {
      return await waitExpected(
        async () => {
          const droplets = await this.api.list('/v2/droplets', 'droplets', { operation: 'poll droplets', query: { tag_name: batchTag }, signal, schema: dropletSchema });
          mine = droplets.filter((d) => ids.includes(d.id));
          ready = mine.filter((d) => d.status === 'active' && publicAddress(d));
          if (ready.length === ids.length) return ready;
          if (mine.length < ids.length) {
            const gone = ids.filter((id) => !mine.some((d) => d.id === id));
            throw new ProviderError({ provider: 'digitalocean', operation: 'wait for droplets', message: `droplet${gone.length > 1 ? 's' : ''} ${gone.join(', ')} vanished while starting` });
          }
          return undefined;
        },
        { what: 'droplets', key: `digitalocean:create:${size}:${region}`, durations: await this.durations(), startedAt: performance.now(), timeoutMs: timeout * 1000, signal, maxMs: 5000 },
      );
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      const late = mine.filter((d) => !ready.includes(d)).map((d) => `${d.name} (${d.status}${publicAddress(d) ? '' : ', no address'})`);
      throw new ProviderError({ provider: 'digitalocean', operation: 'wait for droplets', message: `not active with an address after ${timeout} s: ${late.join(', ')}` });
    }
  }

  private durationsLoaded?: Promise<Durations>;
  private durations(): Promise<Durations> {
    return (this.durationsLoaded ??= Durations.load());
  }

  /** Builders get a temporary key; servers get the project's keys, registered once and reused. */
  private async keysFor(req: LaunchRequest, signal: AbortSignal): Promise<{ ids: number[]; temporary?: number }> {
    const keys = req.authorizedKey.split('\n').map((k) => k.trim()).filter(Boolean);
    if (req.labels[LABELS.role] === 'builder') {
      // Not cut short either (see createDroplets): launchMachines removes it if the signal came meanwhile.
      const { body } = await this.api.request('POST', '/v2/account/keys', {
        operation: 'add the build key',
        body: { name: `provisional-build-${req.labels[LABELS.run] ?? 'run'}`, public_key: keys[0] },
        signal: AbortSignal.timeout(120_000),
        schema: z.looseObject({ ssh_key: sshKeySchema }),
      });
      return { ids: [body.ssh_key.id], temporary: body.ssh_key.id };
    }
    const existing = await this.api.list('/v2/account/keys', 'ssh_keys', { operation: 'list SSH keys', signal, schema: sshKeySchema });
    const ids: number[] = [];
    for (const [i, key] of keys.entries()) {
      const body = key.split(/\s+/).slice(0, 2).join(' ');
      const found = existing.find((k) => k.public_key.split(/\s+/).slice(0, 2).join(' ') === body);
      if (found) ids.push(found.id);
      else {
        const { body: created } = await this.api.request('POST', '/v2/account/keys', {
          operation: 'add a deploy key',
          body: { name: `provisional-${this.ctx.project}-${i}`, public_key: key },
          signal,
          schema: z.looseObject({ ssh_key: sshKeySchema }),
        });
        ids.push(created.ssh_key.id);
      }
    }
    return { ids };
  }

  private toMachine(droplet: Droplet, extraLabels: Record<string, string> = {}): Machine {
    return {
      id: String(droplet.id),
      name: droplet.name,
      ssh: { host: publicAddress(droplet) ?? '', port: this.settings['ssh-port'], user: this.settings['ssh-user'] },
      labels: { ...tagsToLabels(droplet.tags ?? []), ...extraLabels },
    };
  }

  async stopMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    // The pipeline asked the guest to power off; give it a moment, then ask the API, then force.
    if (await this.waitStatus(machine.id, 'off', 30_000, signal)) return;
    await this.runAction(machine.id, { type: 'shutdown' }, 'shut down', this.settings['shutdown-timeout'] * 1000, signal).catch((err) => {
      this.events.emit({ type: 'debug', message: `shutdown did not complete (${(err as Error).message}); powering off` });
    });
    if (await this.waitStatus(machine.id, 'off', 5_000, signal)) return;
    await this.runAction(machine.id, { type: 'power_off' }, 'power off', 120_000, signal);
  }

  private async waitStatus(id: string, status: Droplet['status'], timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const probe = async () => {
      const { body } = await this.api.request('GET', `/v2/droplets/${id}`, { operation: 'get droplet', signal, schema: z.looseObject({ droplet: dropletSchema }) });
      return body.droplet.status === status ? true : undefined;
    };
    return waitExpected(probe, { what: `droplet ${status}`, key: `digitalocean:status:${status}`, durations: await this.durations(), startedAt: performance.now(), timeoutMs, signal }).catch((err) => {
      if (err instanceof TimeoutError) return false;
      throw err;
    });
  }

  /** Start a droplet action and wait until it completes; an errored action is an error. */
  private async runAction(dropletId: string, body: Record<string, unknown>, what: string, timeoutMs: number, signal: AbortSignal): Promise<Action> {
    const { body: started } = await this.api.request('POST', `/v2/droplets/${dropletId}/actions`, { operation: what, body, signal, schema: z.looseObject({ action: actionSchema }) });
    return this.waitAction(started.action, what, timeoutMs, signal);
  }

  /** Actions are polled against how long the same kind of action took before. */
  private async waitAction(action: Action, what: string, timeoutMs: number, signal: AbortSignal): Promise<Action> {
    const startedAt = performance.now();
    let current = action;
    if (current.status === 'in-progress') {
      current = await waitExpected(
        async () => {
          const { body } = await this.api.request('GET', `/v2/actions/${action.id}`, { operation: `wait for ${what}`, signal, schema: z.looseObject({ action: actionSchema }) });
          return body.action.status === 'in-progress' ? undefined : body.action;
        },
        { what, key: `digitalocean:action:${action.type}`, durations: await this.durations(), startedAt, timeoutMs, signal, maxMs: 10_000 },
      ).catch((err) => {
        if (err instanceof TimeoutError) {
          throw new ProviderError({ provider: 'digitalocean', operation: what, message: `action ${action.id} still in progress after ${Math.round(timeoutMs / 1000)} s` });
        }
        throw err;
      });
    }
    if (current.status !== 'completed') {
      throw new ProviderError({ provider: 'digitalocean', operation: what, message: `action ${action.id} ended ${current.status}` });
    }
    return current;
  }

  async snapshotMachine(machine: Machine, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    const since = Date.now();
    const what = `snapshot ${meta.version}`;
    let image: Image | undefined;
    let action: Action | undefined;
    try {
      // Started even if the signal comes meanwhile (see createDroplets): an action we lost track of
      // would still make a snapshot, and nothing would remove it.
      const { body: started } = await this.api.request('POST', `/v2/droplets/${machine.id}/actions`, {
        operation: what,
        body: { type: 'snapshot', name: meta.version },
        signal: AbortSignal.timeout(120_000),
        schema: z.looseObject({ action: actionSchema }),
      });
      action = started.action;
      await this.waitAction(action, what, 60 * 60_000, signal);
      const found = await this.findSnapshot(machine.id, meta.version, signal);
      if (!found) throw new ProviderError({ provider: 'digitalocean', operation: 'find the snapshot', message: `the snapshot action completed but no snapshot ${meta.version} exists` });
      image = { ...found, type: 'snapshot' };
      // The metadata goes with the image at the provider, so that `image list` needs no local state.
      const description = `${META_PREFIX}${JSON.stringify({ ...meta, project: this.ctx.project })}`;
      const { body: updated } = await this.api.request('PUT', `/v2/images/${found.id}`, {
        operation: `record metadata on ${meta.version}`,
        body: { name: meta.version, description },
        signal,
        schema: z.looseObject({ image: imageSchema }),
      });
      const version = this.toVersion({ ...updated.image, description });
      if (!version) throw new ProviderError({ provider: 'digitalocean', operation: 'record metadata', message: 'the metadata did not stick to the image' });
      this.events.emit({ type: 'debug', message: `snapshot ${meta.version} took ${Math.round((Date.now() - since) / 1000)} s` });
      return version;
    } catch (err) {
      if (!image && action) {
        // Interrupted or failed while the action runs: it goes on at DigitalOcean (also once the
        // droplet is destroyed), so wait for it and remove the snapshot it makes.
        const settle = AbortSignal.timeout(10 * 60_000);
        await this.waitAction(action, what, 10 * 60_000, settle).catch(() => undefined);
        image = await this.findSnapshot(machine.id, meta.version, settle).catch(() => undefined);
      }
      // No half-made version: a snapshot without its metadata is removed.
      if (image) await this.api.request('DELETE', `/v2/images/${image.id}`, { operation: 'remove the incomplete snapshot', signal: AbortSignal.timeout(60_000) }).catch(() => undefined);
      throw err;
    }
  }

  private async findSnapshot(dropletId: string, name: string, signal: AbortSignal): Promise<Image | undefined> {
    const { body } = await this.api.request('GET', `/v2/droplets/${dropletId}/snapshots`, {
      operation: 'find the snapshot',
      signal,
      schema: z.looseObject({ snapshots: z.array(imageSchema) }),
    });
    const found = body.snapshots.find((s) => s.name === name);
    return found && { ...found, type: 'snapshot' };
  }

  /** Transfer actions to every region at once; the image id stays the same everywhere. */
  async distributeVersion(version: ImageVersion, regions: string[], signal: AbortSignal): Promise<ImageVersion> {
    await Promise.all(
      regions.map(async (region) => {
        const { body } = await this.api.request('POST', `/v2/images/${version.id}/actions`, {
          operation: `transfer ${version.version} to ${region}`,
          body: { type: 'transfer', region },
          signal,
          schema: z.looseObject({ action: actionSchema }),
        });
        await this.waitAction(body.action, `transfer ${version.version} to ${region}`, 60 * 60_000, signal);
      }),
    );
    const { body } = await this.api.request('GET', `/v2/images/${version.id}`, { operation: `read ${version.version}`, signal, schema: z.looseObject({ image: imageSchema }) });
    return this.toVersion(body.image) ?? { ...version, regions: [...new Set([...(version.regions ?? []), ...regions])] };
  }

  async destroyMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    await this.deleteDroplet(Number(machine.id), signal);
    const keyId = machine.labels[KEY_LABEL];
    if (keyId) await this.deleteKey(Number(keyId), signal);
  }

  private async deleteDroplet(id: number, signal: AbortSignal): Promise<void> {
    await this.api.request('DELETE', `/v2/droplets/${id}`, { operation: `destroy droplet ${id}`, signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }

  private async deleteKey(id: number, signal: AbortSignal): Promise<void> {
    await this.api.request('DELETE', `/v2/account/keys/${id}`, { operation: 'remove the build key', signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }

  async deleteImageVersion(version: ImageVersion, signal: AbortSignal): Promise<void> {
    await refuseIfBuiltOn(version, await this.listImageVersions(signal));
    // One snapshot image is one id in every region it was transferred to: deleting it removes all.
    await this.api.request('DELETE', `/v2/images/${version.id}`, { operation: `delete ${version.version}`, signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }

  async removeRunResources(runId: string, opts: { dryRun: boolean; signal: AbortSignal; snapshots?: string[] }): Promise<string[]> {
    const found: string[] = [];
    const keys = await this.api.list('/v2/account/keys', 'ssh_keys', { operation: 'list SSH keys', signal: opts.signal, schema: sshKeySchema });
    for (const key of keys.filter((k) => k.name === `provisional-build-${runId}`)) {
      found.push(`SSH key ${key.name} (${key.id})`);
      if (!opts.dryRun) await this.deleteKey(key.id, opts.signal);
    }
    if (opts.snapshots?.length) {
      // A snapshot whose metadata was never written is not a version: it is a leftover.
      const images = await this.api.list('/v2/images', 'images', { operation: 'list snapshots', query: { private: 'true' }, signal: opts.signal, schema: imageSchema });
      for (const image of images.filter((i) => opts.snapshots!.includes(i.name) && !this.toVersion(i))) {
        found.push(`half-made snapshot ${image.name} (${image.id})`);
        if (!opts.dryRun) await this.api.request('DELETE', `/v2/images/${image.id}`, { operation: `delete ${image.name}`, signal: opts.signal });
      }
    }
    return found;
  }

  async listServers(filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal): Promise<Server[]> {
    const droplets = await this.api.list('/v2/droplets', 'droplets', {
      operation: 'list droplets',
      query: { tag_name: tag(LABELS.project, filter.project ?? this.ctx.project) },
      signal,
      schema: dropletSchema,
    });
    return droplets
      .map((d) => ({ droplet: d, machine: this.toMachine(d) }))
      .filter(({ machine }) => Object.entries(filter).every(([k, v]) => machine.labels[LABELS[k as keyof typeof LABELS]] === v))
      .map(({ droplet, machine }) => ({
        ...machine,
        state: droplet.status === 'active' ? 'running' : droplet.status === 'new' ? 'starting' : droplet.status === 'off' || droplet.status === 'archive' ? 'stopped' : 'unknown',
        address: publicAddress(droplet),
      }));
  }
}

/**
 * Snapshots do not depend on each other at DigitalOcean, but a version's metadata names its
 * parent: deleting a parent would leave versions whose history points nowhere.
 */
export async function refuseIfBuiltOn(version: ImageVersion, all: ImageVersion[]): Promise<void> {
  const children = all.filter((v) => v.parent.kind === 'image' && v.parent.version === version.version);
  if (children.length) {
    throw new UserFacingError(`cannot delete ${version.version}: ${children.map((c) => c.version).join(', ')} ${children.length > 1 ? 'are' : 'is'} built on it`, {
      hint: 'delete those versions first',
    });
  }
}

function sourceImage(source: SourceImage): string | number {
  return source.kind === 'base' ? source.ref : Number(source.version.id);
}

function publicAddress(d: Droplet): string | undefined {
  return d.networks?.v4?.find((n) => n.type === 'public')?.ip_address;
}

/** Tags allow letters, digits, `:`, `-`, `_`: a label `k=v` is the tag `k:v`, other characters made `_`. */
export function tag(key: string, value: string): string {
  return `${key}:${value.replace(/[^A-Za-z0-9:_-]/g, '_')}`.slice(0, 255);
}

export function labelsToTags(labels: Record<string, string>): string[] {
  return Object.entries(labels)
    .filter(([k]) => k.startsWith('provisional-') && k !== KEY_LABEL)
    .map(([k, v]) => tag(k, v));
}

export function tagsToLabels(tags: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const t of tags) {
    const i = t.indexOf(':');
    if (i > 0 && t.startsWith('provisional-')) labels[t.slice(0, i)] = t.slice(i + 1);
  }
  return labels;
}

function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return [...groups.values()];
}
