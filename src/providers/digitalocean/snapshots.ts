/**
 * Versions as snapshot images: the metadata in the image's description (kit/metadata.ts), one
 * image id in every region it was transferred to, and no half-made snapshot left behind.
 */
import { ProviderError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { creatingSignal, quietly, teardownSignal } from '../../core/teardown.js';
import { z } from 'zod';
import { metadataFromDescription, metadataToDescription, patchMetadata } from '../kit/metadata.js';
import type { ImageVersion, ImageVersionMetadata, VersionMetadataPatch } from '../types.js';
import type { Actions } from './actions.js';
import type { DigitalOceanApi } from './api.js';
import { imageSchema, type Action, type Image } from './types.js';

const imageAnswer = z.looseObject({ image: imageSchema });

export class Snapshots {
  constructor(
    private readonly api: DigitalOceanApi,
    private readonly actions: Actions,
    private readonly project: string,
    private readonly events: EventSink,
  ) {}

  /** Every private snapshot image (ours or not). */
  listImages(signal: AbortSignal): Promise<Image[]> {
    return this.api.list('/v2/images', 'images', { operation: 'list snapshots', query: { private: 'true' }, signal, schema: imageSchema });
  }

  async listVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    return (await this.listImages(signal)).flatMap((image) => {
      const version = this.toVersion(image);
      return version ? [version] : [];
    });
  }

  toVersion(image: Image): ImageVersion | undefined {
    if (image.type !== 'snapshot') return undefined;
    const meta = metadataFromDescription(image.description, this.project);
    if (!meta || meta.version !== image.name) return undefined;
    return {
      ...meta,
      id: String(image.id),
      status: image.status === 'available' || image.status === undefined ? 'available' : image.status === 'pending' || image.status === 'NEW' ? 'pending' : 'failed',
      sizeBytes: typeof image.size_gigabytes === 'number' ? Math.round(image.size_gigabytes * 1024 ** 3) : undefined,
      regions: image.regions,
    };
  }

  /** Snapshot action on a stopped droplet, then the metadata written into the image's description. */
  async create(dropletId: string, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    const since = Date.now();
    const what = `snapshot ${meta.version}`;
    let image: Image | undefined;
    let action: Action | undefined;
    try {
      // Started even if the signal comes meanwhile (core/teardown.ts): an action we lost track of
      // would still make a snapshot, and nothing would remove it.
      action = await this.actions.start(`/v2/droplets/${dropletId}`, { type: 'snapshot', name: meta.version }, what, creatingSignal());
      await this.actions.wait(action, what, 60 * 60_000, signal);
      const found = await this.find(dropletId, meta.version, signal);
      if (!found) throw new ProviderError({ provider: 'digitalocean', operation: 'find the snapshot', message: `the snapshot action completed but no snapshot ${meta.version} exists` });
      image = found;
      // The metadata goes with the image at the provider, so that `image list` needs no local state.
      const description = metadataToDescription(meta, this.project);
      const { body: updated } = await this.api.request('PUT', `/v2/images/${found.id}`, { operation: `record metadata on ${meta.version}`, body: { name: meta.version, description }, signal, schema: imageAnswer });
      const version = this.toVersion({ ...updated.image, type: 'snapshot', description });
      if (!version) throw new ProviderError({ provider: 'digitalocean', operation: 'record metadata', message: 'the metadata did not stick to the image' });
      this.events.emit({ type: 'debug', message: `snapshot ${meta.version} took ${Math.round((Date.now() - since) / 1000)} s` });
      return version;
    } catch (err) {
      if (!image && action) {
        // Interrupted or failed while the action runs: it goes on at DigitalOcean (also once the
        // droplet is destroyed), so wait for it and remove the snapshot it makes.
        const settle = teardownSignal(10 * 60_000);
        await this.actions.wait(action, what, 10 * 60_000, settle).catch(() => undefined);
        image = await this.find(dropletId, meta.version, settle).catch(() => undefined);
      }
      // No half-made version: a snapshot without its metadata is removed.
      const made = image;
      if (made) await quietly(`the incomplete snapshot ${made.id}`, () => this.delete(made.id, `remove the incomplete snapshot`, teardownSignal(60_000)), this.events);
      throw err;
    }
  }

  private async find(dropletId: string, name: string, signal: AbortSignal): Promise<Image | undefined> {
    const { body } = await this.api.request('GET', `/v2/droplets/${dropletId}/snapshots`, { operation: 'find the snapshot', signal, schema: z.looseObject({ snapshots: z.array(imageSchema) }) });
    const found = body.snapshots.find((s) => s.name === name);
    return found && { ...found, type: 'snapshot' };
  }

  /** The marks live in the description with the rest: read it fresh, patch, write it back (PUT /v2/images/{id}). */
  async updateMetadata(version: ImageVersion, patch: VersionMetadataPatch, signal: AbortSignal): Promise<ImageVersion> {
    const { body } = await this.api.request('GET', `/v2/images/${version.id}`, { operation: `read ${version.version}`, signal, schema: imageAnswer });
    const before = metadataFromDescription(body.image.description, this.project);
    if (!before) throw new ProviderError({ provider: 'digitalocean', operation: `mark ${version.version}`, message: `image ${version.id} does not carry ${version.version}'s metadata` });
    const description = metadataToDescription(patchMetadata(before, patch), this.project);
    const { body: updated } = await this.api.request('PUT', `/v2/images/${version.id}`, { operation: `mark ${version.version}`, body: { description }, signal, schema: imageAnswer });
    const result = this.toVersion({ ...updated.image, type: 'snapshot', description });
    if (!result) throw new ProviderError({ provider: 'digitalocean', operation: `mark ${version.version}`, message: 'the metadata did not stick to the image' });
    return result;
  }

  /** Transfer actions to every region at once; the image id stays the same everywhere. */
  async distribute(version: ImageVersion, regions: string[], signal: AbortSignal): Promise<ImageVersion> {
    await Promise.all(regions.map((region) => this.actions.run(`/v2/images/${version.id}`, { type: 'transfer', region }, `transfer ${version.version} to ${region}`, 60 * 60_000, signal)));
    const { body } = await this.api.request('GET', `/v2/images/${version.id}`, { operation: `read ${version.version}`, signal, schema: imageAnswer });
    return this.toVersion(body.image) ?? { ...version, regions: [...new Set([...(version.regions ?? []), ...regions])] };
  }

  /** One snapshot image is one id in every region it was transferred to: deleting it removes all. Idempotent. */
  async delete(id: string | number, what: string, signal: AbortSignal): Promise<void> {
    await this.api.request('DELETE', `/v2/images/${id}`, { operation: what, signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }
}
