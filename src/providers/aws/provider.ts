/**
 * The AWS provider, on the AWS SDK for JavaScript v3 and its default credential chain.
 *   build:  key pair (imported) + security group letting SSH in -> RunInstances (tagged) -> running
 *           -> [scripts] -> stopped -> CreateImage (AMI and EBS snapshots tagged with the metadata)
 *           -> available -> instance terminated, key pair and security group deleted.
 *   deploy: RunInstances in batches (MinCount/MaxCount), found again by tags, TerminateInstances.
 * The SDK retries throttling (RequestLimitExceeded) and 5xx with backoff; errors carry EC2's code.
 */
import {
  EC2Client,
  AuthorizeSecurityGroupIngressCommand,
  CopyImageCommand,
  CreateImageCommand,
  CreateTagsCommand,
  CreateSecurityGroupCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  ImportKeyPairCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  waitUntilImageAvailable,
  type Filter,
  type _InstanceType,
  type Image,
  type Instance,
  type Tag,
} from '@aws-sdk/client-ec2';
import { CancelledError, EXIT, ProviderError, UsageError, UserFacingError, throwIfAborted } from '../../core/errors.js';
import { TimeoutError } from '../../core/wait.js';
import { Durations, waitExpected } from '../../core/durations.js';
import { semaphore } from '../../core/semaphore.js';
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
import { parseBaseRef, type AwsSettings } from './settings.js';

/** Tags that carry a version's metadata on the AMI and its snapshots. */
const META = {
  parent: 'provisional-parent',
  inputHash: 'provisional-input-hash',
  /** On the home AMI: `region=ami-id` of each copy, comma-separated. */
  copies: 'provisional-copies',
  toolVersion: 'provisional-tool-version',
  createdAt: 'provisional-created-at',
} as const;
/** Labels on a Machine (not tags) naming the temporary resources to remove with a builder. */
const TEMP_KEY = 'provisional-temp-key';
const TEMP_GROUP = 'provisional-temp-group';

export class AwsProvider implements Provider {
  readonly name = 'aws';

  private constructor(
    private readonly settings: AwsSettings,
    private readonly ctx: ProviderContext,
    private readonly ec2: EC2Client,
    private readonly region: string,
    private readonly endpoint: string | undefined,
  ) {}

  static async create(settings: AwsSettings, ctx: ProviderContext): Promise<AwsProvider> {
    const region = settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!region) throw new UsageError('no AWS region: set region: in the provider block of config.yml, or AWS_REGION');
    if (settings.profile) process.env.AWS_PROFILE ??= settings.profile;
    const endpoint = settings.endpoint ?? process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL;
    const ec2 = new EC2Client({ region, endpoint, maxAttempts: 10, retryMode: 'standard' });
    try {
      await ec2.config.credentials();
    } catch (err) {
      ec2.destroy();
      throw new UsageError(`no AWS credentials: ${(err as Error).message}`, 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure`');
    }
    return new AwsProvider(settings, ctx, ec2, region, endpoint);
  }

  /** Every SDK call goes through here: one error shape, with EC2's code, message and request id. */
  private async call<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    try {
      return await fn(signal);
    } catch (err) {
      if (signal.aborted) throw new CancelledError();
      const e = err as Error & { name: string; $metadata?: { httpStatusCode?: number; requestId?: string }; $retryable?: unknown };
      const authFailure = /AuthFailure|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch/.test(e.name);
      throw new ProviderError({
        provider: 'aws',
        operation,
        message: e.message,
        code: e.name,
        status: e.$metadata?.httpStatusCode,
        requestId: e.$metadata?.requestId,
        retryable: !!e.$retryable,
        exitCode: authFailure ? EXIT.usage : EXIT.failed,
        hint: authFailure ? 'the AWS credentials were rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE' : undefined,
        cause: err,
      });
    }
  }

  async describe(): Promise<string> {
    return `AWS EC2 (${this.region}${this.settings.endpoint ? `, endpoint ${this.settings.endpoint}` : ''})`;
  }

  async listBaseImages(signal: AbortSignal): Promise<BaseImage[]> {
    const debian = await this.resolveAmi('136693071363/debian-12-amd64-*', signal).catch(() => undefined);
    return debian
      ? [{ ref: '136693071363/debian-12-amd64-*', description: `Debian 12 (newest: ${debian.ImageId} ${debian.Name})`, ready: true }]
      : [];
  }

  private async describeImages(input: { Owners?: string[]; ImageIds?: string[]; Filters?: Filter[] }, operation: string, signal: AbortSignal): Promise<Image[]> {
    const images: Image[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.call(operation, (s) => this.ec2.send(new DescribeImagesCommand({ ...input, NextToken, MaxResults: input.ImageIds ? undefined : 1000 }), { abortSignal: s }), signal);
      images.push(...(page.Images ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return images;
  }

  private async resolveAmi(ref: string, signal: AbortSignal): Promise<Image> {
    const parsed = parseBaseRef(ref);
    if (!parsed) throw new UsageError(`"${ref}" is not an AMI id nor OWNER/NAME-PATTERN`);
    const images =
      'amiId' in parsed
        ? await this.describeImages({ ImageIds: [parsed.amiId] }, `find ${ref}`, signal)
        : await this.describeImages({ Owners: [parsed.owner], Filters: [{ Name: 'name', Values: [parsed.pattern] }, { Name: 'state', Values: ['available'] }] }, `find ${ref}`, signal);
    const newest = images.sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
    if (!newest?.ImageId) throw new UsageError(`no AMI matches ${ref} in ${this.region}`);
    return newest;
  }

  async listImageVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    const images = await this.describeImages({ Owners: ['self'], Filters: [{ Name: `tag:${LABELS.project}`, Values: [this.ctx.project] }] }, 'list AMIs', signal);
    return images.flatMap((image) => {
      const v = this.toVersion(image);
      return v ? [v] : [];
    });
  }

  private toVersion(image: Image): ImageVersion | undefined {
    const tags = tagMap(image.Tags);
    const version = tags[LABELS.version];
    const name = tags[LABELS.image];
    if (!version || !name || !image.ImageId) return undefined;
    const parent = tags[META.parent] ?? '';
    return {
      image: name,
      version,
      parent: parent.startsWith('image:')
        ? { kind: 'image', image: parent.slice(6).replace(/-\d{14}$/, ''), version: parent.slice(6) }
        : { kind: 'base', ref: parent.replace(/^base:/, '') },
      inputHash: tags[META.inputHash] ?? '',
      toolVersion: tags[META.toolVersion] ?? '',
      createdAt: tags[META.createdAt] ?? image.CreationDate ?? '',
      id: image.ImageId,
      status: image.State === 'available' ? 'available' : image.State === 'pending' ? 'pending' : 'failed',
      sizeBytes: image.BlockDeviceMappings?.reduce((n, m) => n + (m.Ebs?.VolumeSize ?? 0) * 1024 ** 3, 0) || undefined,
      regions: [this.region, ...Object.keys(parseCopies(tags[META.copies]))],
    };
  }

  async prepareBase(ref: string, signal: AbortSignal): Promise<SourceImage> {
    const ami = await this.resolveAmi(ref, signal);
    return { kind: 'base', ref, id: ami.ImageId! };
  }

  async launchMachine(req: LaunchRequest, signal: AbortSignal): Promise<Machine> {
    const [machine] = await this.launchMachines([req], signal);
    return machine!;
  }

  /** One RunInstances for a batch with the same image and tags (MinCount = MaxCount = N). */
  async launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]> {
    if (!reqs.length) return [];
    const first = reqs[0]!;
    const builder = first.labels[LABELS.role] === 'builder';
    const temp: Record<string, string> = {};
    const launched: Instance[] = [];
    try {
      // What this creates is not cut short by the signal: a create aborted after EC2 took it would
      // leave a key pair, group or instance nobody knows of, so nothing would remove it. The
      // signal is checked once each is written down for removal.
      const keyName = await this.keyPairFor(first, builder, builder ? AbortSignal.timeout(120_000) : signal);
      if (builder) temp[TEMP_KEY] = keyName;
      throwIfAborted(signal);
      const groupIds = this.settings['security-group-ids'] ?? [await this.securityGroupFor(first, builder, signal)];
      if (builder && !this.settings['security-group-ids']) temp[TEMP_GROUP] = groupIds[0]!;
      throwIfAborted(signal);
      const imageId = first.source.kind === 'base' ? first.source.id : first.source.version.id;
      const creating = AbortSignal.timeout(120_000);
      const result = await this.call(
        `run ${reqs.length} instance${reqs.length > 1 ? 's' : ''}`,
        (s) =>
          this.ec2.send(
            new RunInstancesCommand({
              ImageId: imageId,
              InstanceType: ((first.options?.size as string | undefined) ?? this.settings['instance-type']) as _InstanceType,
              MinCount: reqs.length,
              MaxCount: reqs.length,
              KeyName: keyName,
              SecurityGroupIds: groupIds,
              SubnetId: this.settings['subnet-id'],
              InstanceInitiatedShutdownBehavior: 'stop',
              TagSpecifications: [
                { ResourceType: 'instance', Tags: toTags(first.labels) },
                { ResourceType: 'volume', Tags: toTags(first.labels) },
              ],
            }),
            { abortSignal: s },
          ),
        creating,
      );
      launched.push(...(result.Instances ?? []));
      throwIfAborted(signal);
      // Names are per instance: RunInstances tags all alike, so each gets its Name afterwards, a
      // few at a time (a burst of one CreateTags per instance would meet EC2's request bucket).
      const naming = semaphore(8);
      await Promise.all(
        launched.map((instance, i) =>
          naming(() =>
            this.call('name instance', (s) => this.ec2.send(new CreateTagsCommand({ Resources: [instance.InstanceId!], Tags: [{ Key: 'Name', Value: reqs[i]!.name }] }), { abortSignal: s }), signal),
          ),
        ),
      );
      const running = await this.waitRunning(launched.map((i) => i.InstanceId!), ((first.options?.size as string | undefined) ?? this.settings['instance-type']), signal);
      return running.map((instance) => this.toMachine(instance, temp));
    } catch (err) {
      // Nothing half-made stays: instances, then the temporary key pair and security group.
      const cleanup = AbortSignal.timeout(5 * 60_000);
      if (launched.length) {
        await this.terminate(launched.map((i) => i.InstanceId!), cleanup, Object.keys(temp).length > 0).catch(() => undefined);
      }
      await this.deleteTemporary(temp, cleanup).catch(() => undefined);
      throw err;
    }
  }

  private async keyPairFor(req: LaunchRequest, builder: boolean, signal: AbortSignal): Promise<string> {
    const publicKey = req.authorizedKey.split('\n')[0]!.trim();
    const name = builder ? `provisional-build-${req.labels[LABELS.run]}` : `provisional-${this.ctx.project}-${fingerprint(publicKey)}`;
    if (!builder) {
      const found = await this.call('find key pair', (s) => this.ec2.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }), { abortSignal: s }), signal);
      if (found.KeyPairs?.length) return name;
    }
    await this.call(
      'import key pair',
      (s) =>
        this.ec2.send(
          new ImportKeyPairCommand({
            KeyName: name,
            PublicKeyMaterial: Buffer.from(publicKey),
            TagSpecifications: [{ ResourceType: 'key-pair', Tags: toTags(req.labels) }],
          }),
          { abortSignal: s },
        ),
      signal,
    );
    return name;
  }

  private async securityGroupFor(req: LaunchRequest, builder: boolean, signal: AbortSignal): Promise<string> {
    const name = builder ? `provisional-build-${req.labels[LABELS.run]}` : `provisional-${this.ctx.project}`;
    if (!builder) {
      const found = await this.call('find security group', (s) => this.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }), { abortSignal: s }), signal);
      const id = found.SecurityGroups?.[0]?.GroupId;
      if (id) return id;
    }
    let vpcId: string | undefined;
    if (this.settings['subnet-id']) {
      const subnets = await this.call('find subnet', (s) => this.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [this.settings['subnet-id']!] }), { abortSignal: s }), signal);
      vpcId = subnets.Subnets?.[0]?.VpcId;
    }
    // A builder's group is created whatever the signal (see launchMachines); its removal follows below if need be.
    const group = await this.call(
      'create security group',
      (s) =>
        this.ec2.send(
          new CreateSecurityGroupCommand({
            GroupName: name,
            Description: builder ? 'Provisional build: SSH in, temporary' : `Provisional servers of ${this.ctx.project}: SSH in`,
            VpcId: vpcId,
            TagSpecifications: [{ ResourceType: 'security-group', Tags: toTags(req.labels) }],
          }),
          { abortSignal: s },
        ),
      builder ? AbortSignal.timeout(120_000) : signal,
    );
    try {
      await this.call(
        'let SSH in',
        (s) =>
          this.ec2.send(
            new AuthorizeSecurityGroupIngressCommand({
              GroupId: group.GroupId,
              IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: this.settings['ssh-cidr'] }] }],
            }),
            { abortSignal: s },
          ),
        signal,
      );
    } catch (err) {
      await this.call('delete security group', (s) => this.ec2.send(new DeleteSecurityGroupCommand({ GroupId: group.GroupId }), { abortSignal: s }), AbortSignal.timeout(60_000)).catch(() => undefined);
      throw err;
    }
    return group.GroupId!;
  }

  /**
   * Polls the whole batch with one DescribeInstances call until every instance runs with an
   * address, against how long instances of this type took before.
   */
  private async waitRunning(ids: string[], instanceType: string, signal: AbortSignal): Promise<Instance[]> {
    const timeout = this.settings['create-timeout'];
    let instances: Instance[] = [];
    let ready: Instance[] = [];
    try {
      return await waitExpected(
        async () => {
          instances = await this.describeInstances({ InstanceIds: ids }, 'wait for instances', signal);
          ready = instances.filter((i) => i.State?.Name === 'running' && this.address(i));
          const dead = instances.filter((i) => ['terminated', 'shutting-down', 'stopped'].includes(i.State?.Name ?? ''));
          if (dead.length) {
            throw new ProviderError({ provider: 'aws', operation: 'wait for instances', message: `${dead.map((i) => `${i.InstanceId} is ${i.State?.Name}${i.StateReason?.Message ? ` (${i.StateReason.Message})` : ''}`).join(', ')}` });
          }
          return ready.length === ids.length ? ids.map((id) => ready.find((i) => i.InstanceId === id)!) : undefined;
        },
        { what: 'instances', key: `aws:${this.region}:run:${instanceType}`, durations: await this.durations(), startedAt: performance.now(), timeoutMs: timeout * 1000, signal, maxMs: 5000 },
      );
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      const late = instances.filter((i) => !ready.includes(i)).map((i) => `${i.InstanceId} (${i.State?.Name}${this.address(i) ? '' : ', no address'})`);
      throw new ProviderError({ provider: 'aws', operation: 'wait for instances', message: `not running with an address after ${timeout} s: ${late.join(', ')}` });
    }
  }

  private durationsLoaded?: Promise<Durations>;
  private durations(): Promise<Durations> {
    return (this.durationsLoaded ??= Durations.load());
  }

  /** Waits until every instance is in `state`, polling against past durations of `kind`. */
  private async waitInstances(ids: string[], state: string, kind: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    await waitExpected(
      async () => {
        const instances = await this.describeInstances({ InstanceIds: ids }, `wait until ${state}`, signal);
        return instances.every((i) => i.State?.Name === state) ? true : undefined;
      },
      { what: `instances ${state}`, key: `aws:${this.region}:${kind}`, durations: await this.durations(), startedAt: performance.now(), timeoutMs, signal, maxMs: 10_000 },
    );
  }

  private async describeInstances(input: { InstanceIds?: string[]; Filters?: Filter[] }, operation: string, signal: AbortSignal): Promise<Instance[]> {
    const out: Instance[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.call(operation, (s) => this.ec2.send(new DescribeInstancesCommand({ ...input, NextToken }), { abortSignal: s }), signal);
      for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  private address(i: Instance): string | undefined {
    return this.settings['ssh-address'] === 'private' ? i.PrivateIpAddress : i.PublicIpAddress;
  }

  private toMachine(instance: Instance, extra: Record<string, string> = {}): Machine {
    const tags = tagMap(instance.Tags);
    return {
      id: instance.InstanceId!,
      name: tags.Name ?? instance.InstanceId!,
      ssh: { host: this.address(instance) ?? '', port: 22, user: this.settings['ssh-user'] },
      labels: { ...Object.fromEntries(Object.entries(tags).filter(([k]) => k.startsWith('provisional-'))), ...extra },
    };
  }

  async stopMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    // The guest was asked to power off (shutdown behaviour: stop); StopInstances makes sure.
    await this.call('stop instance', (s) => this.ec2.send(new StopInstancesCommand({ InstanceIds: [machine.id] }), { abortSignal: s }), signal);
    try {
      await this.waitInstances([machine.id], 'stopped', 'stop', 300_000, signal);
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      await this.call('force stop', (s) => this.ec2.send(new StopInstancesCommand({ InstanceIds: [machine.id], Force: true }), { abortSignal: s }), signal);
      await this.waitInstances([machine.id], 'stopped', 'force-stop', 300_000, signal);
    }
  }

  async snapshotMachine(machine: Machine, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    const tags: Tag[] = toTags({
      [LABELS.project]: this.ctx.project,
      [LABELS.image]: meta.image,
      [LABELS.version]: meta.version,
      [META.parent]: meta.parent.kind === 'image' ? `image:${meta.parent.version}` : `base:${meta.parent.ref}`,
      [META.inputHash]: meta.inputHash,
      [META.toolVersion]: meta.toolVersion,
      [META.createdAt]: meta.createdAt,
    });
    // Not cut short by the signal (see launchMachines): the wait below is, and then the AMI goes.
    const created = await this.call(
      `create AMI ${meta.version}`,
      (s) =>
        this.ec2.send(
          new CreateImageCommand({
            InstanceId: machine.id,
            Name: meta.version,
            Description: `Provisional ${this.ctx.project}/${meta.image}`,
            TagSpecifications: [
              { ResourceType: 'image', Tags: tags },
              { ResourceType: 'snapshot', Tags: tags },
            ],
          }),
          { abortSignal: s },
        ),
      AbortSignal.timeout(120_000),
    );
    const imageId = created.ImageId!;
    try {
      const image = await waitExpected(
        async () => {
          const [found] = await this.describeImages({ ImageIds: [imageId] }, 'wait for the AMI', signal);
          return found && found.State !== 'pending' ? found : undefined;
        },
        { what: `AMI ${meta.version}`, key: `aws:${this.region}:image`, durations: await this.durations(), startedAt: performance.now(), timeoutMs: 3600_000, signal, maxMs: 15_000 },
      );
      const version = image && this.toVersion(image);
      if (!version || version.status !== 'available') {
        throw new ProviderError({ provider: 'aws', operation: `create AMI ${meta.version}`, message: `the AMI ended ${image?.State ?? 'missing'}${image?.StateReason?.Message ? `: ${image.StateReason.Message}` : ''}` });
      }
      return version;
    } catch (err) {
      // No half-made version: the AMI and its snapshots go.
      await this.deleteAmi(imageId, AbortSignal.timeout(5 * 60_000)).catch(() => undefined);
      if (err instanceof ProviderError || signal.aborted) throw signal.aborted ? new CancelledError() : err;
      throw new ProviderError({ provider: 'aws', operation: `create AMI ${meta.version}`, message: (err as Error).message, cause: err });
    }
  }

  /** A client for another region, with the same endpoint and credentials. */
  private clientFor(region: string): EC2Client {
    return new EC2Client({ region, endpoint: this.endpoint, maxAttempts: 10, retryMode: 'standard' });
  }

  /** CopyImage to every region at once (tags copied), each waited until available, recorded on the home AMI. */
  async distributeVersion(version: ImageVersion, regions: string[], signal: AbortSignal): Promise<ImageVersion> {
    const copies: Record<string, string> = {};
    try {
      await Promise.all(
        regions.map(async (region) => {
          const client = this.clientFor(region);
          try {
            const { ImageId } = await this.call(
              `copy ${version.version} to ${region}`,
              (s) => client.send(new CopyImageCommand({ SourceImageId: version.id, SourceRegion: this.region, Name: version.version, CopyImageTags: true }), { abortSignal: s }),
              signal,
            );
            copies[region] = ImageId!;
            await waitUntilImageAvailable({ client, maxWaitTime: 3600, minDelay: 2, maxDelay: 15, abortSignal: signal }, { ImageIds: [ImageId!] });
          } finally {
            client.destroy();
          }
        }),
      );
      const value = Object.entries(copies).map(([r, id]) => `${r}=${id}`).join(',');
      await this.call('record the copies', (s) => this.ec2.send(new CreateTagsCommand({ Resources: [version.id], Tags: [{ Key: META.copies, Value: value }] }), { abortSignal: s }), signal);
      return { ...version, regions: [this.region, ...Object.keys(copies)] };
    } catch (err) {
      // A copy that half-happened is removed; the caller removes the version itself.
      await this.deleteCopies(copies, AbortSignal.timeout(5 * 60_000)).catch(() => undefined);
      throw err instanceof ProviderError || signal.aborted ? err : new ProviderError({ provider: 'aws', operation: `copy ${version.version}`, message: (err as Error).message, cause: err });
    }
  }

  private async deleteCopies(copies: Record<string, string>, signal: AbortSignal): Promise<void> {
    for (const [region, imageId] of Object.entries(copies)) {
      const client = this.clientFor(region);
      try {
        await this.deleteAmi(imageId, signal, client);
      } finally {
        client.destroy();
      }
    }
  }

  async destroyMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    const temp = Object.fromEntries(Object.entries(machine.labels).filter(([k]) => k === TEMP_KEY || k === TEMP_GROUP));
    await this.terminate([machine.id], signal, !!temp[TEMP_GROUP]);
    await this.deleteTemporary(temp, signal);
  }

  private async terminate(ids: string[], signal: AbortSignal, waitGone: boolean): Promise<void> {
    try {
      await this.call('terminate instances', (s) => this.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }), { abortSignal: s }), signal);
    } catch (err) {
      if (err instanceof ProviderError && err.code === 'InvalidInstanceID.NotFound') return;
      throw err;
    }
    // A security group cannot be deleted while an instance still uses it.
    if (waitGone) await this.waitInstances(ids, 'terminated', 'terminate', 600_000, signal);
  }

  private async deleteTemporary(temp: Record<string, string>, signal: AbortSignal): Promise<void> {
    if (temp[TEMP_KEY]) {
      await this.call('delete the build key pair', (s) => this.ec2.send(new DeleteKeyPairCommand({ KeyName: temp[TEMP_KEY] }), { abortSignal: s }), signal);
    }
    if (temp[TEMP_GROUP]) {
      await this.call('delete the build security group', (s) => this.ec2.send(new DeleteSecurityGroupCommand({ GroupId: temp[TEMP_GROUP] }), { abortSignal: s }), signal);
    }
  }

  async deleteImageVersion(version: ImageVersion, signal: AbortSignal): Promise<void> {
    const children = (await this.listImageVersions(signal)).filter((v) => v.parent.kind === 'image' && v.parent.version === version.version);
    if (children.length) {
      throw new UserFacingError(`cannot delete ${version.version}: ${children.map((c) => c.version).join(', ')} ${children.length > 1 ? 'are' : 'is'} built on it`, { hint: 'delete those versions first' });
    }
    const [home] = await this.describeImages({ ImageIds: [version.id] }, `find ${version.version}`, signal).catch(() => []);
    await this.deleteCopies(parseCopies(tagMap(home?.Tags)[META.copies]), signal);
    await this.deleteAmi(version.id, signal);
  }

  /** Deregister an AMI and delete its EBS snapshots: left-behind snapshots are the classic cost leak. */
  private async deleteAmi(imageId: string, signal: AbortSignal, client = this.ec2): Promise<void> {
    const found = await this.call(`find ${imageId}`, (s) => client.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal: s }), signal).catch((err) => {
      if (err instanceof ProviderError && /NotFound|Malformed/.test(err.code ?? '')) return { Images: [] };
      throw err;
    });
    const image = found.Images?.[0];
    if (!image) return;
    const snapshots = (image.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
    await this.call(`deregister ${imageId}`, (s) => client.send(new DeregisterImageCommand({ ImageId: imageId }), { abortSignal: s }), signal);
    for (const snapshot of snapshots) {
      await this.call(`delete snapshot ${snapshot}`, (s) => client.send(new DeleteSnapshotCommand({ SnapshotId: snapshot }), { abortSignal: s }), signal).catch((err) => {
        if (!(err instanceof ProviderError && err.code === 'InvalidSnapshot.NotFound')) throw err;
      });
    }
  }

  async removeRunResources(runId: string, opts: { dryRun: boolean; signal: AbortSignal; snapshots?: string[] }): Promise<string[]> {
    const found: string[] = [];
    const name = `provisional-build-${runId}`;
    // Instances of the run must be gone before their security group can go.
    const instances = await this.describeInstances(
      { Filters: [{ Name: `tag:${LABELS.run}`, Values: [runId] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }] },
      'find the run\'s instances',
      opts.signal,
    );
    if (!opts.dryRun && instances.length) await this.terminate(instances.map((i) => i.InstanceId!), opts.signal, true);
    const keys = await this.call('find key pairs', (s) => this.ec2.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'key-name', Values: [name] }] }), { abortSignal: s }), opts.signal);
    for (const key of keys.KeyPairs ?? []) {
      found.push(`key pair ${key.KeyName}`);
      if (!opts.dryRun) await this.deleteTemporary({ [TEMP_KEY]: key.KeyName! }, opts.signal);
    }
    const groups = await this.call('find security groups', (s) => this.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }] }), { abortSignal: s }), opts.signal);
    for (const group of groups.SecurityGroups ?? []) {
      found.push(`security group ${group.GroupName} (${group.GroupId})`);
      if (!opts.dryRun) await this.deleteTemporary({ [TEMP_GROUP]: group.GroupId! }, opts.signal);
    }
    if (opts.snapshots?.length) {
      const amis = await this.describeImages({ Owners: ['self'], Filters: [{ Name: 'name', Values: opts.snapshots }] }, 'find half-made AMIs', opts.signal);
      for (const ami of amis.filter((a) => a.State !== 'available')) {
        found.push(`half-made AMI ${ami.Name} (${ami.ImageId}) and its snapshots`);
        if (!opts.dryRun) await this.deleteAmi(ami.ImageId!, opts.signal);
      }
    }
    return found;
  }

  async listServers(filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal): Promise<Server[]> {
    const filters: Filter[] = [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }];
    for (const [k, v] of Object.entries({ project: this.ctx.project, ...filter })) {
      if (v) filters.push({ Name: `tag:${LABELS[k as keyof typeof LABELS]}`, Values: [v] });
    }
    const instances = await this.describeInstances({ Filters: filters }, 'list instances', signal);
    return instances.map((i) => {
      const state = i.State?.Name;
      return {
        ...this.toMachine(i),
        state: state === 'running' ? 'running' : state === 'pending' ? 'starting' : state === 'stopped' || state === 'stopping' ? 'stopped' : 'unknown',
        address: this.address(i),
      };
    });
  }

  async close(): Promise<void> {
    this.ec2.destroy();
  }
}

function toTags(labels: Record<string, string>): Tag[] {
  return Object.entries(labels)
    .filter(([k]) => k.startsWith('provisional-') && k !== TEMP_KEY && k !== TEMP_GROUP)
    .map(([Key, Value]) => ({ Key, Value }));
}

function parseCopies(value: string | undefined): Record<string, string> {
  return Object.fromEntries(
    (value ?? '')
      .split(',')
      .map((pair) => pair.split('='))
      .filter((p): p is [string, string] => p.length === 2 && !!p[0] && !!p[1]),
  );
}

function tagMap(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key).map((t) => [t.Key!, t.Value ?? '']));
}

/** A short, stable name part for a public key. */
function fingerprint(publicKey: string): string {
  let h = 0;
  for (const c of publicKey.split(/\s+/)[1] ?? publicKey) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(16).padStart(8, '0');
}
