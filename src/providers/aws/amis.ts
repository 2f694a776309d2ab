/**
 * Versions as AMIs: the metadata in the AMI's tags (kit/metadata.ts), copies in other regions
 * recorded on the home AMI, and deletion of an AMI with its EBS snapshots (left-behind snapshots
 * are the classic cost leak).
 */
import { CopyImageCommand, CreateImageCommand, CreateTagsCommand, DeleteSnapshotCommand, DeleteTagsCommand, DeregisterImageCommand, waitUntilImageAvailable, type Image } from '@aws-sdk/client-ec2';
import { CancelledError, ProviderError, UsageError } from '../../core/errors.js';
import { waitExpected } from '../../core/durations.js';
import { creatingSignal, quietly, teardownSignal } from '../../core/teardown.js';
import { durations } from '../kit/wait.js';
import { labelChanges, metadataFromLabels, metadataToLabels, patchMetadata } from '../kit/metadata.js';
import { LABELS, type ImageVersion, type ImageVersionMetadata, type VersionMetadataPatch } from '../types.js';
import { isNotFound, tagMap, toTags, type Ec2 } from './client.js';
import { parseBaseRef } from './settings.js';

/** On the home AMI: `region=ami-id` of each copy, comma-separated. */
const COPIES_TAG = 'provisional-copies';

export class Amis {
  constructor(
    private readonly ec2: Ec2,
    private readonly project: string,
  ) {}

  /** An AMI id, or the newest AMI matching OWNER/NAME-PATTERN. */
  async resolve(ref: string, signal: AbortSignal): Promise<Image> {
    const parsed = parseBaseRef(ref);
    if (!parsed) throw new UsageError(`"${ref}" is not an AMI id nor OWNER/NAME-PATTERN`);
    const images =
      'amiId' in parsed
        ? await this.ec2.describeImages({ ImageIds: [parsed.amiId] }, `find ${ref}`, signal)
        : await this.ec2.describeImages({ Owners: [parsed.owner], Filters: [{ Name: 'name', Values: [parsed.pattern] }, { Name: 'state', Values: ['available'] }] }, `find ${ref}`, signal);
    const newest = images.sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
    if (!newest?.ImageId) throw new UsageError(`no AMI matches ${ref} in ${this.ec2.region}`);
    return newest;
  }

  async listVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    const images = await this.ec2.describeImages({ Owners: ['self'], Filters: [{ Name: `tag:${LABELS.project}`, Values: [this.project] }] }, 'list AMIs', signal);
    return images.flatMap((image) => {
      const v = this.toVersion(image);
      return v ? [v] : [];
    });
  }

  toVersion(image: Image): ImageVersion | undefined {
    const tags = tagMap(image.Tags);
    const meta = metadataFromLabels(tags, this.project);
    if (!meta || !image.ImageId) return undefined;
    return {
      ...meta,
      createdAt: meta.createdAt || image.CreationDate || '',
      id: image.ImageId,
      status: image.State === 'available' ? 'available' : image.State === 'pending' ? 'pending' : 'failed',
      sizeBytes: image.BlockDeviceMappings?.reduce((n, m) => n + (m.Ebs?.VolumeSize ?? 0) * 1024 ** 3, 0) || undefined,
      regions: [this.ec2.region, ...Object.keys(parseCopies(tags[COPIES_TAG]))],
    };
  }

  /** CreateImage from a stopped instance, tagged with the metadata; resolves once available. */
  async create(instanceId: string, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    const tags = toTags(metadataToLabels(meta, this.project));
    // Not cut short by the signal (core/teardown.ts): the wait below is, and then the AMI goes.
    const created = await this.ec2.call(
      `create AMI ${meta.version}`,
      (sdk, s) =>
        sdk.send(
          new CreateImageCommand({
            InstanceId: instanceId,
            Name: meta.version,
            Description: `Provisional ${this.project}/${meta.image}`,
            TagSpecifications: [
              { ResourceType: 'image', Tags: tags },
              { ResourceType: 'snapshot', Tags: tags },
            ],
          }),
          { abortSignal: s },
        ),
      creatingSignal(),
    );
    const imageId = created.ImageId!;
    try {
      const image = await waitExpected(
        async () => {
          const [found] = await this.ec2.describeImages({ ImageIds: [imageId] }, 'wait for the AMI', signal);
          return found && found.State !== 'pending' ? found : undefined;
        },
        { what: `AMI ${meta.version}`, key: `aws:${this.ec2.region}:image`, durations: await durations(), startedAt: performance.now(), timeoutMs: 3600_000, signal, maxMs: 15_000 },
      );
      const version = image && this.toVersion(image);
      if (!version || version.status !== 'available') {
        throw new ProviderError({ provider: 'aws', operation: `create AMI ${meta.version}`, message: `the AMI ended ${image?.State ?? 'missing'}${image?.StateReason?.Message ? `: ${image.StateReason.Message}` : ''}` });
      }
      return version;
    } catch (err) {
      // No half-made version: the AMI and its snapshots go.
      await quietly(`AMI ${imageId}`, () => this.delete(imageId, teardownSignal()));
      if (err instanceof ProviderError || signal.aborted) throw signal.aborted ? new CancelledError() : err;
      throw new ProviderError({ provider: 'aws', operation: `create AMI ${meta.version}`, message: (err as Error).message, cause: err });
    }
  }

  /** CopyImage to every region at once (tags copied), each waited until available, recorded on the home AMI. */
  async distribute(version: ImageVersion, regions: string[], signal: AbortSignal): Promise<ImageVersion> {
    const copies: Record<string, string> = {};
    try {
      await Promise.all(
        regions.map(async (region) => {
          const there = this.ec2.inRegion(region);
          try {
            const { ImageId } = await there.call(
              `copy ${version.version} to ${region}`,
              (sdk, s) => sdk.send(new CopyImageCommand({ SourceImageId: version.id, SourceRegion: this.ec2.region, Name: version.version, CopyImageTags: true }), { abortSignal: s }),
              signal,
            );
            copies[region] = ImageId!;
            await waitUntilImageAvailable({ client: there.sdk, maxWaitTime: 3600, minDelay: 2, maxDelay: 15, abortSignal: signal }, { ImageIds: [ImageId!] });
          } finally {
            there.close();
          }
        }),
      );
      const value = Object.entries(copies).map(([r, id]) => `${r}=${id}`).join(',');
      await this.ec2.call('record the copies', (sdk, s) => sdk.send(new CreateTagsCommand({ Resources: [version.id], Tags: [{ Key: COPIES_TAG, Value: value }] }), { abortSignal: s }), signal);
      return { ...version, regions: [this.ec2.region, ...Object.keys(copies)] };
    } catch (err) {
      // A copy that half-happened is removed; the caller removes the version itself.
      await quietly(`the copies of ${version.version}`, () => this.deleteCopies(copies, teardownSignal()));
      throw err instanceof ProviderError || signal.aborted ? err : new ProviderError({ provider: 'aws', operation: `copy ${version.version}`, message: (err as Error).message, cause: err });
    }
  }

  /**
   * The marks as tags: CreateTags for what is set, DeleteTags for what is lifted, on the home AMI
   * and on each copy (they carry the tags they were copied with), read fresh from EC2 first.
   */
  async updateMetadata(version: ImageVersion, patch: VersionMetadataPatch, signal: AbortSignal): Promise<ImageVersion> {
    const [home] = await this.ec2.describeImages({ ImageIds: [version.id] }, `find ${version.version}`, signal).catch((err) => {
      if (isNotFound(err)) return [];
      throw err;
    });
    const before = home && metadataFromLabels(tagMap(home.Tags), this.project);
    if (!home || !before) throw new ProviderError({ provider: 'aws', operation: `mark ${version.version}`, status: 404, message: `AMI ${version.id} (${version.version}) no longer exists` });
    const { set, remove } = labelChanges(metadataToLabels(before, this.project), metadataToLabels(patchMetadata(before, patch), this.project));
    const copies = parseCopies(tagMap(home.Tags)[COPIES_TAG]);
    for (const [region, imageId] of [[this.ec2.region, version.id], ...Object.entries(copies)] as [string, string][]) {
      const there = region === this.ec2.region ? this.ec2 : this.ec2.inRegion(region);
      try {
        if (Object.keys(set).length) await there.call(`mark ${version.version}`, (sdk, s) => sdk.send(new CreateTagsCommand({ Resources: [imageId], Tags: toTags(set) }), { abortSignal: s }), signal);
        if (remove.length) await there.call(`unmark ${version.version}`, (sdk, s) => sdk.send(new DeleteTagsCommand({ Resources: [imageId], Tags: remove.map((Key) => ({ Key })) }), { abortSignal: s }), signal);
      } finally {
        if (there !== this.ec2) there.close();
      }
    }
    const [after] = await this.ec2.describeImages({ ImageIds: [version.id] }, `read ${version.version}`, signal);
    const updated = after && this.toVersion(after);
    if (!updated) throw new ProviderError({ provider: 'aws', operation: `mark ${version.version}`, message: 'the AMI lost its metadata' });
    return updated;
  }

  /** A version's AMI and its copies in other regions, with their snapshots. */
  async deleteVersion(version: ImageVersion, signal: AbortSignal): Promise<void> {
    // Only "no such AMI" means there is nothing to read: any other error must not skip the copies (they would leak).
    const [home] = await this.ec2.describeImages({ ImageIds: [version.id] }, `find ${version.version}`, signal).catch((err) => {
      if (isNotFound(err)) return [];
      throw err;
    });
    await this.deleteCopies(parseCopies(tagMap(home?.Tags)[COPIES_TAG]), signal);
    await this.delete(version.id, signal);
  }

  private async deleteCopies(copies: Record<string, string>, signal: AbortSignal): Promise<void> {
    for (const [region, imageId] of Object.entries(copies)) {
      const there = this.ec2.inRegion(region);
      try {
        await new Amis(there, this.project).delete(imageId, signal);
      } finally {
        there.close();
      }
    }
  }

  /** Deregister an AMI and delete its EBS snapshots. Idempotent. */
  async delete(imageId: string, signal: AbortSignal): Promise<void> {
    const images = await this.ec2.describeImages({ ImageIds: [imageId] }, `find ${imageId}`, signal).catch((err) => {
      if (isNotFound(err)) return [];
      throw err;
    });
    const image = images[0];
    if (!image) return;
    const snapshots = (image.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    await this.ec2.call(`deregister ${imageId}`, (sdk, s) => sdk.send(new DeregisterImageCommand({ ImageId: imageId }), { abortSignal: s }), signal);
    for (const snapshot of snapshots) {
      await this.ec2.call(`delete snapshot ${snapshot}`, (sdk, s) => sdk.send(new DeleteSnapshotCommand({ SnapshotId: snapshot }), { abortSignal: s }), signal).catch((err) => {
        if (!isNotFound(err, /^InvalidSnapshot\.NotFound$/)) throw err;
      });
    }
  }

  /** AMIs named in `names` that never became available (a crash during CreateImage). */
  async halfMade(names: string[], signal: AbortSignal): Promise<Image[]> {
    const amis = await this.ec2.describeImages({ Owners: ['self'], Filters: [{ Name: 'name', Values: names }] }, 'find half-made AMIs', signal);
    return amis.filter((a) => a.State !== 'available');
  }
}

function parseCopies(value: string | undefined): Record<string, string> {
  return Object.fromEntries(
    (value ?? '')
      .split(',')
      .map((pair) => pair.split('='))
      .filter((p): p is [string, string] => p.length === 2 && !!p[0] && !!p[1]),
  );
}
