/**
 * The Hetzner Cloud provider: builders and servers are servers, versions are snapshots.
 *   build:  temporary SSH key -> server labelled with the run -> running -> [scripts] -> off
 *           (shutdown, then poweroff if it does not stop in time) -> create_image of type
 *           snapshot, the metadata in its labels and description -> server and key deleted.
 *   deploy: servers labelled with project, environment, image and version, one create call
 *           each (the API has no multi-create); a batch is polled, listed, deleted by label selector.
 * Labels are real key/value pairs here, found again with label selectors (one request a page).
 */
import { createHash } from 'node:crypto';
import { ConfigError, ProviderError, UserFacingError } from '../../core/errors.js';
import { creatingSignal, quietly, teardownSignal } from '../../core/teardown.js';
import { TimeoutError } from '../../core/wait.js';
import { waitExpected } from '../../core/durations.js';
import { refuseIfBuiltOn } from '../../images/dependents.js';
import { z } from 'zod';
import { machineHandles } from '../kit/handle.js';
import { launchBatch, launchOne, shareKeyOf, type BatchLauncher } from '../kit/launch.js';
import { metadataFromDescription, metadataToDescription, patchMetadata } from '../kit/metadata.js';
import { readLaunchOptions } from '../kit/options.js';
import { durations, waitForBatch } from '../kit/wait.js';
import { LABELS, type BaseImage, type ImageVersion, type ImageVersionMetadata, type LaunchOptions, type LaunchRequest, type Machine, type Provider, type ProviderContext, type Server, type SourceImage, type VersionMetadataPatch } from '../types.js';
import { actionSchema, HetznerApi, imageSchema, serverSchema, sshKeySchema, type Action, type Image, type Server as HetznerServer } from './api.js';
import { hetznerLaunchOptionsSchema, resolveToken, TOKEN_VARIABLE, type HetznerSettings } from './settings.js';
import { HetznerActions } from './actions.js';
import { HetznerEndpoints } from './endpoints.js';
import { selector, toLabels } from './labels.js';
import { sharedResources } from '../kit/shared-resource.js';
import { authorizedKeyLines } from '../kit/cloud-config.js';

const DEFAULT_API = 'https://api.hetzner.cloud/v1';
/** Label of the servers of one launch batch: the whole batch is polled with one selector. */
const BATCH_LABEL = 'provisional-batch';
const handles = machineHandles<{ keyId?: number }>();

export class HetznerProvider implements Provider {
  readonly name = 'hetzner';
  readonly api: HetznerApi;
  readonly endpoints: HetznerEndpoints;
  private readonly actions: HetznerActions;
  private readonly shared = sharedResources();
  private readonly baseUrl: string;

  constructor(
    private readonly settings: HetznerSettings,
    private readonly ctx: ProviderContext,
  ) {
    const token = resolveToken(settings);
    if (!token) throw new ConfigError([{ file: 'config/provisional/config.yml', path: 'provider.token', message: `no Hetzner Cloud API token: set ${TOKEN_VARIABLE}, or token: \${${TOKEN_VARIABLE}}` }]);
    this.baseUrl = settings['api-url'] ?? (process.env.HCLOUD_ENDPOINT || DEFAULT_API);
    this.api = new HetznerApi({ baseUrl: this.baseUrl, token, events: ctx.events, budget: settings['api-budget'] });
    this.actions = new HetznerActions(this.api);
    this.endpoints = new HetznerEndpoints(this.api, this.actions, settings.location, (filter, signal) => this.listServers(filter, signal));
  }

  async describe(): Promise<string> {
    return `Hetzner Cloud (${this.baseUrl}, location ${this.settings.location}, ${this.settings['server-type']})`;
  }

  async listBaseImages(signal: AbortSignal): Promise<BaseImage[]> {
    const images = await this.api.list('/images', 'images', { operation: 'list system images', query: { type: 'system' }, signal, schema: imageSchema });
    return images.filter((i) => i.name).map((i) => ({ ref: i.name!, description: i.description, ready: i.status === 'available', id: String(i.id), createdAt: i.created })).sort((a, b) => a.ref.localeCompare(b.ref));
  }

  async listImageVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    return (await this.snapshots(signal)).flatMap((i) => this.toVersion(i) ?? []);
  }

  private snapshots(signal: AbortSignal, extra: Record<string, string> = {}): Promise<Image[]> {
    const label_selector = selector({ [LABELS.project]: this.ctx.project, ...extra });
    return this.api.list('/images', 'images', { operation: 'list snapshots', query: { type: 'snapshot', label_selector }, signal, schema: imageSchema });
  }

  /** The metadata is the description's JSON (label values are too narrow for it); the labels must agree. */
  private toVersion(image: Image): ImageVersion | undefined {
    const meta = metadataFromDescription(image.description, this.ctx.project);
    if (!meta || image.labels[LABELS.version] !== meta.version) return undefined;
    const status = image.status === 'available' ? 'available' : image.status === 'creating' ? 'pending' : 'failed';
    return { ...meta, id: String(image.id), status, sizeBytes: image.image_size ? Math.round(image.image_size * 1024 ** 3) : undefined };
  }

  /** A system image name resolves to the image id behind it now (a new build of it is a new id). */
  async prepareBase(ref: string, signal: AbortSignal): Promise<SourceImage & { kind: 'base' }> {
    const id = await this.resolveBase(ref, signal);
    if (!id) throw new UserFacingError(`Hetzner Cloud has no system image "${ref}"`, { exitCode: 2, hint: 'see the base images in: provisional image list' });
    return { kind: 'base', ref, id, identity: id };
  }

  async resolveBase(ref: string, signal: AbortSignal): Promise<string | undefined> {
    const query = /^\d+$/.test(ref) ? { type: 'system' } : { type: 'system', name: ref };
    const found = (await this.api.list('/images', 'images', { operation: `find image ${ref}`, query, signal, schema: imageSchema })).find((i) => i.name === ref || String(i.id) === ref);
    return found ? String(found.id) : undefined;
  }

  sizeOf(options: LaunchOptions | undefined): string {
    return options?.size ?? this.settings['server-type'];
  }

  launchMachine(req: LaunchRequest, signal: AbortSignal): Promise<Machine> {
    return launchOne(req, (reqs, s) => this.launchMachines(reqs, s), signal);
  }

  launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]> {
    return launchBatch(reqs, this.launcher(), signal, this.ctx.events);
  }

  private where(req: LaunchRequest): { server_type: string; location: string } {
    const options = readLaunchOptions(hetznerLaunchOptionsSchema, req, 'hetzner');
    return { server_type: options.size ?? this.settings['server-type'], location: options.region ?? this.settings.location };
  }

  private launcher(): BatchLauncher<{ serverId: number; keyId?: number }> {
    const batch = Math.random().toString(36).slice(2, 10);
    return {
      perCall: 1,
      concurrency: 4,
      shareKey: (req) => shareKeyOf(sourceImage(req.source), this.where(req), req.labels, req.authorizedKey),
      create: async ([req], signal) => {
        const builder = req!.labels[LABELS.role] === 'builder';
        const keyId = builder ? await this.addKey(buildKeyName(req!.labels[LABELS.run]), firstKey(req!.authorizedKey)) : undefined;
        try {
          const ssh_keys = keyId ? [keyId] : await this.deployKeys(req!.authorizedKey, signal);
          // Not cut short by the signal (core/teardown.ts): a server nobody knows the id of would stay.
          const { body } = await this.api.call('POST', '/servers', {
            operation: `create server ${req!.name}`,
            body: { name: req!.name, image: sourceImage(req!.source), ...this.where(req!), ssh_keys, labels: { ...toLabels(req!.labels), [BATCH_LABEL]: batch } },
            signal: creatingSignal(),
            schema: z.looseObject({ server: serverSchema }),
          });
          return [{ serverId: body.server.id, keyId }];
        } catch (err) {
          if (keyId) await quietly('the build key', () => this.deleteKey(keyId, teardownSignal(60_000)), this.ctx.events);
          throw err;
        }
      },
      waitReady: async (created, reqs, signal) => {
        const { server_type, location } = this.where(reqs[0]!);
        const running = await waitForBatch<HetznerServer>({
          provider: 'hetzner',
          what: 'running',
          durationsKey: `hetzner:create:${server_type}:${location}`,
          timeoutMs: this.settings['create-timeout'] * 1000,
          signal,
          poll: async () => {
            const servers = await this.api.list('/servers', 'servers', { operation: 'poll servers', query: { label_selector: `${BATCH_LABEL}=${batch}` }, signal, schema: serverSchema });
            const mine = created.map((c) => servers.find((s) => s.id === c.serverId));
            const gone = created.filter((_, i) => !mine[i]).map((c) => c.serverId);
            if (gone.length) throw new ProviderError({ provider: 'hetzner', operation: 'wait for servers', message: `server ${gone.join(', ')} vanished while starting` });
            const late = mine.filter((s) => s!.status !== 'running' || !s!.public_net.ipv4?.ip).map((s) => `${s!.name} (${s!.status})`);
            return { ready: late.length ? undefined : (mine as HetznerServer[]), late };
          },
        });
        return running.map((s, i) => ({ ...this.toMachine(s), handle: handles.make({ keyId: created[i]!.keyId }) }));
      },
      remove: async (created, signal) => {
        await Promise.all(created.map((c) => quietly(`server ${c.serverId}`, () => this.deleteServer(c.serverId, signal), this.ctx.events)));
        for (const keyId of new Set(created.map((c) => c.keyId))) if (keyId) await this.deleteKey(keyId, signal);
      },
    };
  }

  private async addKey(name: string, public_key: string, signal = creatingSignal()): Promise<number> {
    const { body } = await this.api.call('POST', '/ssh_keys', { operation: `add SSH key ${name}`, body: { name, public_key }, signal, schema: z.looseObject({ ssh_key: sshKeySchema }) });
    return body.ssh_key.id;
  }

  /** Servers get the project's keys, registered once (by key) and reused (kit/shared-resource.ts). */
  private async deployKeys(authorizedKey: string, signal: AbortSignal): Promise<number[]> {
    return Promise.all(
      authorizedKeyLines(authorizedKey).map((key) =>
        this.shared.get(`ssh-key:${keyBody(key)}`, {
          find: async () => {
            const existing = await this.api.list('/ssh_keys', 'ssh_keys', { operation: 'list SSH keys', signal, schema: sshKeySchema });
            return existing.find((k) => keyBody(k.public_key) === keyBody(key))?.id;
          },
          create: () => this.addKey(`provisional-${this.ctx.project}-${createHash('sha256').update(keyBody(key)).digest('hex').slice(0, 12)}`, key, signal),
          // Another launch added it meanwhile: "SSH key with the same fingerprint already exists".
          conflict: (err) => err instanceof ProviderError && err.code === 'uniqueness_error',
        }),
      ),
    );
  }

  private toMachine(server: HetznerServer): Machine {
    const { [BATCH_LABEL]: _batch, ...labels } = server.labels;
    return { id: String(server.id), name: server.name, ssh: { host: server.public_net.ipv4?.ip ?? '', port: this.settings['ssh-port'], user: this.settings['ssh-user'] }, labels };
  }

  async stopMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    // The pipeline asked the guest to power off; give it a moment, then ACPI shutdown, then poweroff.
    if (await this.waitOff(machine.id, 30_000, signal)) return;
    await this.actions.run(`/servers/${machine.id}/actions/shutdown`, 'shut down', {}, 120_000, signal);
    if (await this.waitOff(machine.id, this.settings['shutdown-timeout'] * 1000, signal)) return;
    this.ctx.events.emit({ type: 'debug', message: `server ${machine.name} did not stop within ${this.settings['shutdown-timeout']} s; powering off` });
    await this.actions.run(`/servers/${machine.id}/actions/poweroff`, 'power off', {}, 120_000, signal);
  }

  private async waitOff(id: string, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const probe = async () => {
      const { body } = await this.api.call('GET', `/servers/${id}`, { operation: 'get server', signal, schema: z.looseObject({ server: serverSchema }) });
      return body.server.status === 'off' ? true : undefined;
    };
    return waitExpected(probe, { what: 'server off', key: 'hetzner:status:off', durations: await durations(), startedAt: performance.now(), timeoutMs, signal }).catch((err) => {
      if (err instanceof TimeoutError) return false;
      throw err;
    });
  }

  async snapshotMachine(machine: Machine, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    const what = `snapshot ${meta.version}`;
    const labels = toLabels({ ...machine.labels, [LABELS.project]: this.ctx.project, [LABELS.image]: meta.image, [LABELS.version]: meta.version, [LABELS.role]: 'version' });
    let made: { action: Action; image: Image } | undefined;
    const answer = z.looseObject({ action: actionSchema, image: imageSchema });
    try {
      // Started whatever the signal says (core/teardown.ts): an image we lost track of would stay.
      await this.actions.run(`/servers/${machine.id}/actions/create_image`, what, { type: 'snapshot', description: metadataToDescription(meta, this.ctx.project), labels }, 60 * 60_000, signal, (a) => (made = answer.parse(a)));
      const { body } = await this.api.call('GET', `/images/${made!.image.id}`, { operation: `read ${meta.version}`, signal, schema: z.looseObject({ image: imageSchema }) });
      const version = this.toVersion(body.image);
      if (!version) throw new ProviderError({ provider: 'hetzner', operation: 'record metadata', message: 'the metadata did not stick to the image' });
      return version;
    } catch (err) {
      if (made) {
        // The action goes on at Hetzner: let it end, then remove its image (no half-made version).
        const settle = teardownSignal();
        await this.actions.wait(made.action, what, 10 * 60_000, settle).catch(() => undefined);
        await quietly(`snapshot ${meta.version}`, () => this.deleteImage(made!.image.id, settle), this.ctx.events);
      }
      throw err;
    }
  }

  async destroyMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    await this.deleteServer(Number(machine.id), signal);
    const keyId = handles.read(machine)?.keyId;
    if (keyId) await this.deleteKey(keyId, signal);
  }

  private deleteServer = (id: number, signal: AbortSignal) => this.remove(`/servers/${id}`, `delete server ${id}`, signal);
  private deleteKey = (id: number, signal: AbortSignal) => this.remove(`/ssh_keys/${id}`, 'remove the build key', signal);
  private deleteImage = (id: number, signal: AbortSignal) => this.remove(`/images/${id}`, `delete image ${id}`, signal);

  /** A DELETE; what is already gone (404) is fine. */
  private async remove(path: string, operation: string, signal: AbortSignal): Promise<void> {
    await this.api.call('DELETE', path, { operation, signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }

  /** The marks live in the description's JSON with the rest: read it fresh, patch, PUT /images/{id}. */
  async updateVersionMetadata(version: ImageVersion, patch: VersionMetadataPatch, signal: AbortSignal): Promise<ImageVersion> {
    const answer = z.looseObject({ image: imageSchema });
    const { body } = await this.api.request('GET', `/images/${version.id}`, { operation: `read ${version.version}`, signal, schema: answer });
    const before = metadataFromDescription(body.image.description, this.ctx.project);
    if (!before) throw new ProviderError({ provider: 'hetzner', operation: `mark ${version.version}`, message: `image ${version.id} does not carry ${version.version}'s metadata` });
    const description = metadataToDescription(patchMetadata(before, patch), this.ctx.project);
    const { body: updated } = await this.api.request('PUT', `/images/${version.id}`, { operation: `mark ${version.version}`, body: { description }, signal, schema: answer });
    const result = this.toVersion(updated.image);
    if (!result) throw new ProviderError({ provider: 'hetzner', operation: `mark ${version.version}`, message: 'the metadata did not stick to the image' });
    return result;
  }

  async deleteImageVersion(version: ImageVersion, signal: AbortSignal): Promise<void> {
    refuseIfBuiltOn([version], await this.listImageVersions(signal));
    await this.deleteImage(Number(version.id), signal);
  }

  async removeRunResources(runId: string, opts: { dryRun: boolean; signal: AbortSignal; snapshots?: string[] }): Promise<string[]> {
    const found: string[] = [];
    const keys = await this.api.list('/ssh_keys', 'ssh_keys', { operation: 'list SSH keys', query: { name: buildKeyName(runId) }, signal: opts.signal, schema: sshKeySchema });
    for (const key of keys) {
      found.push(`SSH key ${key.name} (${key.id})`);
      if (!opts.dryRun) await this.deleteKey(key.id, opts.signal);
    }
    // A snapshot of the run that never became available is a leftover, not a version.
    for (const image of opts.snapshots?.length ? await this.snapshots(opts.signal, { [LABELS.run]: runId }) : []) {
      if (image.status === 'available' || !opts.snapshots!.includes(image.labels[LABELS.version] ?? '')) continue;
      found.push(`half-made snapshot ${image.labels[LABELS.version]} (${image.id})`);
      if (!opts.dryRun) await this.deleteImage(image.id, opts.signal);
    }
    return found;
  }

  async listServers(filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal): Promise<Server[]> {
    const wanted = Object.fromEntries(Object.entries({ project: this.ctx.project, ...filter }).map(([k, v]) => [LABELS[k as keyof typeof LABELS], v!]));
    const servers = await this.api.list('/servers', 'servers', { operation: 'list servers', query: { label_selector: selector(wanted) }, signal, schema: serverSchema });
    return servers.map((s) => ({ ...this.toMachine(s), state: STATES[s.status] ?? 'unknown', address: s.public_net.ipv4?.ip }));
  }
}

const STATES: Record<string, Server['state']> = { running: 'running', initializing: 'starting', starting: 'starting', stopping: 'stopped', off: 'stopped', deleting: 'dead' };

const buildKeyName = (runId: string | undefined) => `provisional-build-${runId ?? 'run'}`;
const firstKey = (authorizedKey: string) => authorizedKeyLines(authorizedKey)[0]!;
const keyBody = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(' ');
const sourceImage = (source: SourceImage): string | number => (source.kind === 'base' ? source.ref : Number(source.version.id));

