/**
 * The AWS provider, on the AWS SDK for JavaScript v3 and its default credential chain.
 *   build:  key pair (imported) + security group letting SSH in (access.ts) -> RunInstances
 *           (tagged) -> running -> [scripts] -> stopped -> CreateImage (amis.ts: AMI and EBS
 *           snapshots tagged with the metadata) -> available -> instance terminated, key pair and
 *           security group deleted.
 *   deploy: RunInstances per group of requests sharing image, type, tags and key (kit/launch.ts),
 *           found again by tags, TerminateInstances.
 */
import { CreateTagsCommand, RunInstancesCommand, StopInstancesCommand, TerminateInstancesCommand, type _InstanceType, type Filter, type Instance } from '@aws-sdk/client-ec2';
import { ProviderError, UsageError, throwIfAborted } from '../../core/errors.js';
import { waitExpected } from '../../core/durations.js';
import { semaphore } from '../../core/semaphore.js';
import { creatingSignal, quietly, teardownSignal } from '../../core/teardown.js';
import { TimeoutError } from '../../core/wait.js';
import { refuseIfBuiltOn } from '../../images/dependents.js';
import { authorizedKeyLines, cloudConfig } from '../kit/cloud-config.js';
import { machineHandles } from '../kit/handle.js';
import { launchBatch, launchOne, shareKeyOf, type BatchLauncher } from '../kit/launch.js';
import { readLaunchOptions } from '../kit/options.js';
import { durations, waitForBatch } from '../kit/wait.js';
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
import { Access, type TemporaryAccess } from './access.js';
import { Amis } from './amis.js';
import { Ec2, isNotFound, tagMap, toTags, type Ec2Target } from './client.js';
import { AwsEndpoints } from './endpoints.js';
import { awsLaunchOptionsSchema, type AwsSettings } from './settings.js';

const handles = machineHandles<TemporaryAccess>();

interface Launched {
  instanceId: string;
  temporary: TemporaryAccess;
}

export class AwsProvider implements Provider {
  readonly name = 'aws';
  private readonly access: Access;
  private readonly amis: Amis;
  readonly endpoints: AwsEndpoints;

  private constructor(
    private readonly settings: AwsSettings,
    private readonly ctx: ProviderContext,
    private readonly ec2: Ec2,
    elbv2: Ec2Target,
  ) {
    this.access = new Access(ec2, settings, ctx.project);
    this.amis = new Amis(ec2, ctx.project);
    this.endpoints = new AwsEndpoints(ec2, elbv2, (filter, signal) => this.listServers(filter, signal));
  }

  static async create(settings: AwsSettings, ctx: ProviderContext): Promise<AwsProvider> {
    const region = settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!region) throw new UsageError('no AWS region: set region: in the provider block of config.yml, or AWS_REGION');
    const endpoint = settings.endpoint ?? process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL;
    // ELBv2 follows an overridden EC2 endpoint (an emulator or local stack serves both) unless told otherwise.
    const elbv2 = settings['elbv2-endpoint'] ?? process.env.AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 ?? endpoint;
    return new AwsProvider(settings, ctx, await Ec2.open({ region, endpoint, profile: settings.profile }), { region, endpoint: elbv2, profile: settings.profile });
  }

  async describe(): Promise<string> {
    return `AWS EC2 (${this.ec2.region}${this.settings.endpoint ? `, endpoint ${this.settings.endpoint}` : ''})`;
  }

  async listBaseImages(signal: AbortSignal): Promise<BaseImage[]> {
    const ref = '136693071363/debian-12-amd64-*';
    const debian = await this.amis.resolve(ref, signal).catch(() => undefined);
    return debian ? [{ ref, description: `Debian 12 (newest: ${debian.ImageId} ${debian.Name})`, ready: true, id: debian.ImageId, createdAt: debian.CreationDate }] : [];
  }

  listImageVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    return this.amis.listVersions(signal);
  }

  /** `OWNER/NAME-PATTERN` resolves to the newest matching AMI now: a new Debian release is a new AMI id. */
  async prepareBase(ref: string, signal: AbortSignal): Promise<SourceImage & { kind: 'base' }> {
    const ami = await this.amis.resolve(ref, signal);
    return { kind: 'base', ref, id: ami.ImageId!, identity: ami.ImageId! };
  }

  async resolveBase(ref: string, signal: AbortSignal): Promise<string | undefined> {
    return this.amis.resolve(ref, signal).then(
      (ami) => ami.ImageId,
      (err) => {
        if (err instanceof UsageError) return undefined;
        throw err;
      },
    );
  }

  sizeOf(options: LaunchOptions | undefined): string {
    return options?.size ?? this.settings['instance-type'];
  }

  launchMachine(req: LaunchRequest, signal: AbortSignal): Promise<Machine> {
    return launchOne(req, (reqs, s) => this.launchMachines(reqs, s), signal);
  }

  /** One RunInstances (MinCount = MaxCount = N) per group of requests that share image, type, tags and key. */
  launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]> {
    return launchBatch(reqs, this.launcher(), signal, this.ctx.events);
  }

  private instanceType(req: LaunchRequest): string {
    const options = readLaunchOptions(awsLaunchOptionsSchema, req, 'aws');
    if (options.region && options.region !== this.ec2.region) {
      throw new UsageError(
        `the aws provider cannot launch ${req.name} in ${options.region}: it works in one region, ${this.ec2.region}`,
        `remove \`region: ${options.region}\`, or set region: ${options.region} in the provider block of config.yml`,
      );
    }
    return options.size ?? this.settings['instance-type'];
  }

  private launcher(): BatchLauncher<Launched> {
    return {
      perCall: 50,
      shareKey: (req) => shareKeyOf(imageIdOf(req.source), this.instanceType(req), toTags(req.labels), req.authorizedKey),
      create: async (group, signal) => {
        const first = group[0]!;
        const access = await this.access.forLaunch(first, signal);
        try {
          throwIfAborted(signal);
          // Not cut short by the signal (core/teardown.ts); the batch removes what it made.
          const result = await this.ec2.call(
            `run ${group.length} instance${group.length > 1 ? 's' : ''}`,
            (sdk, s) =>
              sdk.send(
                new RunInstancesCommand({
                  ImageId: imageIdOf(first.source),
                  InstanceType: this.instanceType(first) as _InstanceType,
                  MinCount: group.length,
                  MaxCount: group.length,
                  KeyName: access.keyName,
                  // A key pair holds one key: cloud-init authorises the request's others.
                  UserData: extraKeysUserData(first.authorizedKey),
                  SecurityGroupIds: access.groupIds,
                  SubnetId: this.settings['subnet-id'],
                  InstanceInitiatedShutdownBehavior: 'stop',
                  TagSpecifications: [
                    { ResourceType: 'instance', Tags: toTags(first.labels) },
                    { ResourceType: 'volume', Tags: toTags(first.labels) },
                  ],
                }),
                { abortSignal: s },
              ),
            creatingSignal(),
          );
          const ids = (result.Instances ?? []).map((i) => i.InstanceId!);
          if (ids.length !== group.length) throw new ProviderError({ provider: 'aws', operation: 'run instances', message: `asked for ${group.length} instances, got ${ids.length}` });
          return ids.map((instanceId) => ({ instanceId, temporary: access.temporary }));
        } catch (err) {
          await quietly('the temporary key pair and security group', () => this.access.remove(access.temporary, teardownSignal()), this.ctx.events);
          throw err;
        }
      },
      waitReady: async (launched, reqs, signal) => {
        // Names are per instance: RunInstances tags all alike, so each gets its Name afterwards, a
        // few at a time (a burst of one CreateTags per instance would meet EC2's request bucket).
        const naming = semaphore(8);
        await Promise.all(
          launched.map((l, i) =>
            naming(() => this.ec2.call('name instance', (sdk, s) => sdk.send(new CreateTagsCommand({ Resources: [l.instanceId], Tags: [{ Key: 'Name', Value: reqs[i]!.name }] }), { abortSignal: s }), signal)),
          ),
        );
        const ids = launched.map((l) => l.instanceId);
        const running = await waitForBatch<Instance>({
          provider: 'aws',
          what: 'running with an address',
          durationsKey: `aws:${this.ec2.region}:run:${this.instanceType(reqs[0]!)}`,
          timeoutMs: this.settings['create-timeout'] * 1000,
          signal,
          poll: async () => {
            const instances = await this.ec2.describeInstances({ InstanceIds: ids }, 'wait for instances', signal);
            const dead = instances.filter((i) => ['terminated', 'shutting-down', 'stopped'].includes(i.State?.Name ?? ''));
            if (dead.length) {
              throw new ProviderError({ provider: 'aws', operation: 'wait for instances', message: dead.map((i) => `${i.InstanceId} is ${i.State?.Name}${i.StateReason?.Message ? ` (${i.StateReason.Message})` : ''}`).join(', ') });
            }
            const ready = instances.filter((i) => i.State?.Name === 'running' && this.address(i));
            const late = instances.filter((i) => !ready.includes(i)).map((i) => `${i.InstanceId} (${i.State?.Name}${this.address(i) ? '' : ', no address'})`);
            return { ready: ready.length === ids.length ? ids.map((id) => ready.find((i) => i.InstanceId === id)!) : undefined, late };
          },
        });
        return running.map((instance, i) => ({ ...this.toMachine(instance), handle: handles.make(launched[i]!.temporary) }));
      },
      remove: async (launched, signal) => {
        const temporary = [...new Set(launched.map((l) => l.temporary))];
        await this.terminate(launched.map((l) => l.instanceId), signal, temporary.some((t) => t.groupId));
        for (const t of temporary) await this.access.remove(t, signal);
      },
    };
  }

  /** Waits until every instance is in `state`, polling against past durations of `kind`. */
  private async waitInstances(ids: string[], state: string, kind: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    await waitExpected(
      async () => {
        const instances = await this.ec2.describeInstances({ InstanceIds: ids }, `wait until ${state}`, signal);
        return instances.every((i) => i.State?.Name === state) ? true : undefined;
      },
      { what: `instances ${state}`, key: `aws:${this.ec2.region}:${kind}`, durations: await durations(), startedAt: performance.now(), timeoutMs, signal, maxMs: 10_000 },
    );
  }

  private address(i: Instance): string | undefined {
    return this.settings['ssh-address'] === 'private' ? i.PrivateIpAddress : i.PublicIpAddress;
  }

  private toMachine(instance: Instance): Machine {
    const tags = tagMap(instance.Tags);
    return {
      id: instance.InstanceId!,
      name: tags.Name ?? instance.InstanceId!,
      ssh: { host: this.address(instance) ?? '', port: 22, user: this.settings['ssh-user'] },
      labels: Object.fromEntries(Object.entries(tags).filter(([k]) => k.startsWith('provisional-'))),
    };
  }

  async stopMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    // The guest was asked to power off (shutdown behaviour: stop); StopInstances makes sure.
    await this.ec2.call('stop instance', (sdk, s) => sdk.send(new StopInstancesCommand({ InstanceIds: [machine.id] }), { abortSignal: s }), signal);
    try {
      await this.waitInstances([machine.id], 'stopped', 'stop', 300_000, signal);
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      await this.ec2.call('force stop', (sdk, s) => sdk.send(new StopInstancesCommand({ InstanceIds: [machine.id], Force: true }), { abortSignal: s }), signal);
      await this.waitInstances([machine.id], 'stopped', 'force-stop', 300_000, signal);
    }
  }

  snapshotMachine(machine: Machine, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    return this.amis.create(machine.id, meta, signal);
  }

  distributeVersion(version: ImageVersion, regions: string[], signal: AbortSignal): Promise<ImageVersion> {
    return this.amis.distribute(version, regions, signal);
  }

  async destroyMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    const temporary = handles.read(machine) ?? {};
    await this.terminate([machine.id], signal, !!temporary.groupId);
    await this.access.remove(temporary, signal);
  }

  private async terminate(ids: string[], signal: AbortSignal, waitGone: boolean): Promise<void> {
    try {
      await this.ec2.call('terminate instances', (sdk, s) => sdk.send(new TerminateInstancesCommand({ InstanceIds: ids }), { abortSignal: s }), signal);
    } catch (err) {
      if (isNotFound(err, /^InvalidInstanceID\.NotFound$/)) return;
      throw err;
    }
    // A security group cannot be deleted while an instance still uses it.
    if (waitGone) await this.waitInstances(ids, 'terminated', 'terminate', 600_000, signal);
  }

  updateVersionMetadata(version: ImageVersion, patch: VersionMetadataPatch, signal: AbortSignal): Promise<ImageVersion> {
    return this.amis.updateMetadata(version, patch, signal);
  }

  async deleteImageVersion(version: ImageVersion, signal: AbortSignal): Promise<void> {
    refuseIfBuiltOn([version], await this.listImageVersions(signal));
    await this.amis.deleteVersion(version, signal);
  }

  async removeRunResources(runId: string, opts: { dryRun: boolean; signal: AbortSignal; snapshots?: string[] }): Promise<string[]> {
    const found: string[] = [];
    // Instances of the run must be gone before their security group can go.
    const instances = await this.ec2.describeInstances(
      { Filters: [{ Name: `tag:${LABELS.run}`, Values: [runId] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }] },
      "find the run's instances",
      opts.signal,
    );
    if (!opts.dryRun && instances.length) await this.terminate(instances.map((i) => i.InstanceId!), opts.signal, true);
    const left = await this.access.leftBy(runId, opts.signal);
    for (const keyName of left.keyNames) {
      found.push(`key pair ${keyName}`);
      if (!opts.dryRun) await this.access.deleteKeyPair(keyName, opts.signal);
    }
    for (const group of left.groups) {
      found.push(`security group ${group.name} (${group.id})`);
      if (!opts.dryRun) await this.access.deleteGroup(group.id, opts.signal);
    }
    if (opts.snapshots?.length) {
      for (const ami of await this.amis.halfMade(opts.snapshots, opts.signal)) {
        found.push(`half-made AMI ${ami.Name} (${ami.ImageId}) and its snapshots`);
        if (!opts.dryRun) await this.amis.delete(ami.ImageId!, opts.signal);
      }
    }
    return found;
  }

  async listServers(filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal): Promise<Server[]> {
    const filters: Filter[] = [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }];
    for (const [k, v] of Object.entries({ project: this.ctx.project, ...filter })) {
      if (v) filters.push({ Name: `tag:${LABELS[k as keyof typeof LABELS]}`, Values: [v] });
    }
    const instances = await this.ec2.describeInstances({ Filters: filters }, 'list instances', signal);
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
    this.ec2.close();
    this.endpoints.close();
  }
}

function imageIdOf(source: SourceImage): string {
  return source.kind === 'base' ? source.id : source.version.id;
}

/** The request's keys after the first (the key pair's), as cloud-config user data; none: no user data. */
function extraKeysUserData(authorizedKey: string): string | undefined {
  const extra = authorizedKeyLines(authorizedKey).slice(1);
  return extra.length ? Buffer.from(cloudConfig({ keys: extra })).toString('base64') : undefined;
}
