/**
 * The DigitalOcean provider: builders and servers are droplets, versions are snapshots.
 *   build:  temporary SSH key -> droplet (tagged with the run) -> active -> [scripts] -> off
 *           (shutdown, then power_off if it does not stop in time: actions.ts) -> snapshot action
 *           -> image with our metadata in its description (snapshots.ts) -> droplet and key destroyed.
 *   deploy: droplets tagged with project, environment, image and version (tags.ts), created up to
 *           10 a request per group of requests sharing image, size, region, tags and keys
 *           (kit/launch.ts), polled with one list call by a batch tag; found again by tag.
 */
import { ConfigError, ProviderError, UserFacingError } from '../../core/errors.js';
import { creatingSignal, quietly, teardownSignal } from '../../core/teardown.js';
import { refuseIfBuiltOn } from '../../images/dependents.js';
import { z } from 'zod';
import { machineHandles } from '../kit/handle.js';
import { launchBatch, launchOne, shareKeyOf, type BatchLauncher } from '../kit/launch.js';
import { readLaunchOptions } from '../kit/options.js';
import { sharedResources } from '../kit/shared-resource.js';
import { waitForBatch } from '../kit/wait.js';
import {
  LABELS,
  type BaseImage,
  type ImageVersion,
  type ImageVersionMetadata,
  type LaunchOptions,
  type LaunchRequest,
  type Machine,
  type Provider,
  type ProviderContext,
  type Server,
  type SourceImage,
  type VersionMetadataPatch,
} from '../types.js';
import { Actions } from './actions.js';
import { DigitalOceanApi } from './api.js';
import { DigitalOceanEndpoints } from './endpoints.js';
import { digitalOceanLaunchOptionsSchema, resolveToken, TOKEN_VARIABLES, type DigitalOceanSettings } from './settings.js';
import { Snapshots } from './snapshots.js';
import { labelsToTags, publicAddress, tag, tagsToLabels } from './tags.js';
import { dropletSchema, imageSchema, sshKeySchema, type Droplet } from './types.js';
import { authorizedKeyLines } from '../kit/cloud-config.js';

const DEFAULT_API = 'https://api.digitalocean.com';

/** A builder's temporary SSH key, removed with it. */
const handles = machineHandles<{ keyId?: number }>();

interface Created {
  dropletId: number;
  keyId?: number;
}

export class DigitalOceanProvider implements Provider {
  readonly name = 'digitalocean';
  readonly api: DigitalOceanApi;
  private readonly baseUrl: string;
  private readonly actions: Actions;
  private readonly shared = sharedResources();
  private readonly snapshots: Snapshots;
  readonly endpoints: DigitalOceanEndpoints;

  constructor(
    private readonly settings: DigitalOceanSettings,
    private readonly ctx: ProviderContext,
  ) {
    const token = resolveToken(settings);
    if (!token) {
      throw new ConfigError([{ file: 'config/provisional/config.yml', path: 'provider.token', message: `no DigitalOcean API token: set ${TOKEN_VARIABLES.join(', or ')}, or token: \${DIGITALOCEAN_TOKEN}` }]);
    }
    this.baseUrl = settings['api-url'] ?? process.env.DIGITALOCEAN_API_URL ?? DEFAULT_API;
    this.api = new DigitalOceanApi({ baseUrl: this.baseUrl, token, events: ctx.events, budget: settings['api-budget'] });
    this.actions = new Actions(this.api);
    this.snapshots = new Snapshots(this.api, this.actions, ctx.project, ctx.events);
    this.endpoints = new DigitalOceanEndpoints(this.api, this.actions, settings.region, settings['create-timeout'] * 1000, (filter, signal) => this.listServers(filter, signal));
  }

  async describe(): Promise<string> {
    return `DigitalOcean (${this.baseUrl}, region ${this.settings.region})`;
  }

  async listBaseImages(signal: AbortSignal): Promise<BaseImage[]> {
    const images = await this.api.list('/v2/images', 'images', { operation: 'list distribution images', query: { type: 'distribution' }, signal, schema: imageSchema });
    return images
      .filter((i) => i.slug)
      .map((i) => ({ ref: i.slug!, description: `${i.distribution} ${i.name}`.trim(), ready: i.status === undefined || i.status === 'available', id: String(i.id), createdAt: i.created_at }))
      .sort((a, b) => a.ref.localeCompare(b.ref));
  }

  listImageVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    return this.snapshots.listVersions(signal);
  }

  /** A distribution slug resolves to the image id behind it now (DigitalOcean publishes a new image behind the slug for updates). */
  async prepareBase(ref: string, signal: AbortSignal): Promise<SourceImage & { kind: 'base' }> {
    const id = await this.resolveBase(ref, signal);
    if (!id) throw new UserFacingError(`DigitalOcean has no image "${ref}"`, { exitCode: 2, hint: 'see the base images in: provisional image list' });
    return { kind: 'base', ref, id, identity: id };
  }

  async resolveBase(ref: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      const { body } = await this.api.request('GET', `/v2/images/${encodeURIComponent(ref)}`, { operation: `find image ${ref}`, signal, schema: z.looseObject({ image: imageSchema }) });
      return String(body.image.id);
    } catch (err) {
      if (err instanceof ProviderError && err.status === 404) return undefined;
      throw err;
    }
  }

  sizeOf(options: LaunchOptions | undefined): string {
    return options?.size ?? this.settings.size;
  }

  launchMachine(req: LaunchRequest, signal: AbortSignal): Promise<Machine> {
    return launchOne(req, (reqs, s) => this.launchMachines(reqs, s), signal);
  }

  launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]> {
    return launchBatch(reqs, this.launcher(), signal, this.ctx.events);
  }

  private where(req: LaunchRequest): { size: string; region: string } {
    const options = readLaunchOptions(digitalOceanLaunchOptionsSchema, req, 'digitalocean');
    return { size: options.size ?? this.settings.size, region: options.region ?? this.settings.region };
  }

  /** The multi-create form takes up to 10 names a request; one list call by batch tag polls them all. */
  private launcher(): BatchLauncher<Created> {
    const batchTag = `provisional-batch:${Math.random().toString(36).slice(2, 10)}`;
    return {
      perCall: 10,
      shareKey: (req) => shareKeyOf(sourceImage(req.source), this.where(req), labelsToTags(req.labels), req.authorizedKey),
      create: async (group, signal) => {
        const first = group[0]!;
        const keys = await this.keysFor(first, signal);
        try {
          // Not cut short by the signal (core/teardown.ts): droplets nobody knows the ids of would stay.
          const { body: answer } = await this.api.request('POST', '/v2/droplets', {
            operation: group.length === 1 ? `create droplet ${first.name}` : `create ${group.length} droplets`,
            body: {
              ...(group.length === 1 ? { name: first.name } : { names: group.map((r) => r.name) }),
              ...this.where(first),
              image: sourceImage(first.source),
              ssh_keys: keys.ids,
              tags: [...labelsToTags(first.labels), batchTag],
            },
            signal: creatingSignal(),
            schema: z.looseObject({ droplet: dropletSchema.optional(), droplets: z.array(dropletSchema).optional() }),
          });
          const droplets = answer.droplets ?? (answer.droplet ? [answer.droplet] : []);
          // The answer lists droplets by name; each request gets the droplet of its own name.
          return group.map((req) => {
            const droplet = droplets.find((d) => d.name === req.name);
            if (!droplet) throw new ProviderError({ provider: 'digitalocean', operation: 'create droplets', message: `the answer has no droplet ${req.name}` });
            return { dropletId: droplet.id, keyId: keys.temporary };
          });
        } catch (err) {
          if (keys.temporary) await quietly('the build key', () => this.deleteKey(keys.temporary!, teardownSignal(60_000)), this.ctx.events);
          throw err;
        }
      },
      waitReady: async (created, reqs, signal) => {
        const ids = created.map((c) => c.dropletId);
        const { size, region } = this.where(reqs[0]!);
        const active = await waitForBatch<Droplet>({
          provider: 'digitalocean',
          what: 'active with an address',
          durationsKey: `digitalocean:create:${size}:${region}`,
          timeoutMs: this.settings['create-timeout'] * 1000,
          signal,
          poll: async () => {
            const droplets = await this.api.list('/v2/droplets', 'droplets', { operation: 'poll droplets', query: { tag_name: batchTag }, signal, schema: dropletSchema });
            const mine = ids.map((id) => droplets.find((d) => d.id === id));
            const gone = ids.filter((_, i) => !mine[i]);
            if (gone.length) throw new ProviderError({ provider: 'digitalocean', operation: 'wait for droplets', message: `droplet${gone.length > 1 ? 's' : ''} ${gone.join(', ')} vanished while starting` });
            const late = mine.filter((d) => !(d!.status === 'active' && publicAddress(d!))).map((d) => `${d!.name} (${d!.status}${publicAddress(d!) ? '' : ', no address'})`);
            return { ready: late.length ? undefined : (mine as Droplet[]), late };
          },
        });
        return active.map((droplet, i) => ({ ...this.toMachine(droplet), handle: handles.make({ keyId: created[i]!.keyId }) }));
      },
      remove: async (created, signal) => {
        await Promise.all(created.map((c) => quietly(`droplet ${c.dropletId}`, () => this.deleteDroplet(c.dropletId, signal), this.ctx.events)));
        for (const keyId of new Set(created.map((c) => c.keyId))) if (keyId) await this.deleteKey(keyId, signal);
      },
    };
  }

  /** Builders get a temporary key; servers get the project's keys, registered once and reused. */
  private async keysFor(req: LaunchRequest, signal: AbortSignal): Promise<{ ids: number[]; temporary?: number }> {
    const keys = authorizedKeyLines(req.authorizedKey);
    const keyAnswer = z.looseObject({ ssh_key: sshKeySchema });
    if (req.labels[LABELS.role] === 'builder') {
      // Not cut short either: the batch's create removes it if what follows fails.
      const { body } = await this.api.request('POST', '/v2/account/keys', {
        operation: 'add the build key',
        body: { name: buildKeyName(req.labels[LABELS.run]), public_key: keys[0] },
        signal: creatingSignal(),
        schema: keyAnswer,
      });
      return { ids: [body.ssh_key.id], temporary: body.ssh_key.id };
    }
    const body = (line: string) => line.split(/\s+/).slice(0, 2).join(' ');
    const ids = await Promise.all(
      keys.map((key, i) =>
        this.shared.get(`ssh-key:${body(key)}`, {
          find: async () => {
            const existing = await this.api.list('/v2/account/keys', 'ssh_keys', { operation: 'list SSH keys', signal, schema: sshKeySchema });
            return existing.find((k) => body(k.public_key) === body(key))?.id;
          },
          create: async () => {
            const { body: answer } = await this.api.request('POST', '/v2/account/keys', { operation: 'add a deploy key', body: { name: `provisional-${this.ctx.project}-${i}`, public_key: key }, signal, schema: keyAnswer });
            return answer.ssh_key.id;
          },
          // Another launch (of this deploy, or another command) added it meanwhile: "SSH Key is already in use" is a 422.
          conflict: (err) => err instanceof ProviderError && err.status === 422,
        }),
      ),
    );
    return { ids };
  }

  private toMachine(droplet: Droplet): Machine {
    return {
      id: String(droplet.id),
      name: droplet.name,
      ssh: { host: publicAddress(droplet) ?? '', port: this.settings['ssh-port'], user: this.settings['ssh-user'] },
      labels: tagsToLabels(droplet.tags ?? []),
    };
  }

  async stopMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    // The pipeline asked the guest to power off; give it a moment, then ask the API, then force.
    if (await this.actions.waitStatus(machine.id, 'off', 30_000, signal)) return;
    const droplet = `/v2/droplets/${machine.id}`;
    await this.actions.run(droplet, { type: 'shutdown' }, 'shut down', this.settings['shutdown-timeout'] * 1000, signal).catch((err) => {
      this.ctx.events.emit({ type: 'debug', message: `shutdown did not complete (${(err as Error).message}); powering off` });
    });
    if (await this.actions.waitStatus(machine.id, 'off', 5_000, signal)) return;
    await this.actions.run(droplet, { type: 'power_off' }, 'power off', 120_000, signal);
  }

  snapshotMachine(machine: Machine, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    return this.snapshots.create(machine.id, meta, signal);
  }

  distributeVersion(version: ImageVersion, regions: string[], signal: AbortSignal): Promise<ImageVersion> {
    return this.snapshots.distribute(version, regions, signal);
  }

  async destroyMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    await this.deleteDroplet(Number(machine.id), signal);
    const keyId = handles.read(machine)?.keyId;
    if (keyId) await this.deleteKey(keyId, signal);
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

  updateVersionMetadata(version: ImageVersion, patch: VersionMetadataPatch, signal: AbortSignal): Promise<ImageVersion> {
    return this.snapshots.updateMetadata(version, patch, signal);
  }

  async deleteImageVersion(version: ImageVersion, signal: AbortSignal): Promise<void> {
    refuseIfBuiltOn([version], await this.listImageVersions(signal));
    await this.snapshots.delete(version.id, `delete ${version.version}`, signal);
  }

  async removeRunResources(runId: string, opts: { dryRun: boolean; signal: AbortSignal; snapshots?: string[] }): Promise<string[]> {
    const found: string[] = [];
    const keys = await this.api.list('/v2/account/keys', 'ssh_keys', { operation: 'list SSH keys', signal: opts.signal, schema: sshKeySchema });
    for (const key of keys.filter((k) => k.name === buildKeyName(runId))) {
      found.push(`SSH key ${key.name} (${key.id})`);
      if (!opts.dryRun) await this.deleteKey(key.id, opts.signal);
    }
    if (opts.snapshots?.length) {
      // A snapshot whose metadata was never written is not a version: it is a leftover.
      const images = await this.snapshots.listImages(opts.signal);
      for (const image of images.filter((i) => opts.snapshots!.includes(i.name) && !this.snapshots.toVersion(i))) {
        found.push(`half-made snapshot ${image.name} (${image.id})`);
        if (!opts.dryRun) await this.snapshots.delete(image.id, `delete ${image.name}`, opts.signal);
      }
    }
    return found;
  }

  async listServers(filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal): Promise<Server[]> {
    const droplets = await this.api.list('/v2/droplets', 'droplets', { operation: 'list droplets', query: { tag_name: tag(LABELS.project, filter.project ?? this.ctx.project) }, signal, schema: dropletSchema });
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

function buildKeyName(runId: string | undefined): string {
  return `provisional-build-${runId ?? 'run'}`;
}

function sourceImage(source: SourceImage): string | number {
  return source.kind === 'base' ? source.ref : Number(source.version.id);
}
