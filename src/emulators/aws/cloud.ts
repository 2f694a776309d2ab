/**
 * The emulated account: its regions (each with a default VPC, one default subnet per zone, a
 * default security group and Debian's public AMIs), the delays of the state machines, the faults a
 * test switches on, and the layers that snapshots hold in the instance backend.
 */
import { setMaxListeners } from 'node:events';
import type { InstanceBackend } from './backend.js';
import { newId, type Image, type Instance, type RegionState, type Snapshot } from './resources.js';
import { Ec2Error } from './errors.js';
import type { Params } from './query.js';
import type { XmlObject } from './xml.js';
import { ELASTIC_IP_PORTS, ElasticIps } from './elastic-ips.js';
import { Elbv2 } from './elbv2.js';

export const ACCOUNT_ID = '123456789012';
/** The account of Debian's official AMIs (https://wiki.debian.org/Cloud/AmazonEC2Image/Bookworm). */
export const DEBIAN_OWNER_ID = '136693071363';

export const REGIONS = ['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-northeast-1', 'ap-southeast-2'];

/** Public Debian AMIs in every region: `debian-MAJOR-ARCH-DATE-BUILD`, all booting the Debian 12 layer. */
export const DEBIAN_IMAGES = [
  'debian-11-amd64-20240201-1643',
  'debian-12-amd64-20240201-1643',
  'debian-12-arm64-20240201-1643',
  'debian-12-amd64-20240507-1740',
  'debian-12-arm64-20240507-1740',
  'debian-12-amd64-20250112-1984',
  'debian-12-arm64-20250112-1984',
];

/** How long each transition takes (ms). */
export interface Ec2Delays {
  /** pending -> running, after the machine has booted. */
  instancePendingMs: number;
  /** stopping -> stopped, after the machine has shut down. */
  instanceStoppingMs: number;
  /** shutting-down -> terminated, after the machine is gone. */
  instanceShuttingDownMs: number;
  /** Image pending -> available (snapshots complete just before), after the disk is captured. */
  imagePendingMs: number;
  /** CopyImage: pending -> available in the destination region. */
  copyImageMs: number;
  /** How long terminated instances stay visible. */
  terminatedRetentionMs: number;
  /** running -> status checks `ok` (DescribeInstanceStatus says `initializing` until then). */
  statusChecksMs: number;
}

export const DEFAULT_DELAYS: Ec2Delays = {
  instancePendingMs: 1000,
  instanceStoppingMs: 500,
  instanceShuttingDownMs: 500,
  imagePendingMs: 2000,
  copyImageMs: 2000,
  terminatedRetentionMs: 10 * 60_000,
  statusChecksMs: 2000,
};

/**
 * Faults, switched on by changing the fields (counts are used up one request or one resource at
 * a time). `actions` limits throttling and internal errors to some operations.
 */
export interface Ec2Faults {
  /** The next N requests answer 503 RequestLimitExceeded. */
  throttle: number;
  /** The next N requests answer 500 InternalError. */
  internalError: number;
  /** Operations the two above apply to (all when unset). */
  actions?: string[];
  /** A token bucket per region like EC2's request rate limit: beyond it, RequestLimitExceeded. */
  rateLimit?: { perSecond: number; burst: number };
  /** The next N images (CreateImage, CopyImage) end `failed`, their snapshots `error`. */
  failImages: number;
  /** The next N instances reach `running` without any address. */
  noAddress: number;
}

export class Ec2Cloud {
  readonly regions = new Map<string, RegionState>();
  readonly delays: Ec2Delays;
  readonly faults: Ec2Faults = { throttle: 0, internalError: 0, failImages: 0, noAddress: 0 };
  /** Failures of background work (a machine that did not boot...), for tests to look at. */
  readonly backgroundErrors: Error[] = [];
  /** Elastic IPs, each a real listener (elastic-ips.ts). */
  readonly elasticIps: ElasticIps;
  /** Elastic Load Balancing v2 (elbv2.ts), served on the same endpoint. */
  readonly elbv2: Elbv2;
  private readonly layerRefs = new Map<string, number>();
  private readonly closing = new AbortController();
  private readonly tasks = new Set<Promise<void>>();

  constructor(
    readonly backend: InstanceBackend,
    delays: Partial<Ec2Delays> = {},
  ) {
    this.delays = { ...DEFAULT_DELAYS, ...delays };
    this.elasticIps = new ElasticIps([...ELASTIC_IP_PORTS, backend.sshPort]);
    this.elbv2 = new Elbv2(this);
    // Every pending transition waits on this signal.
    setMaxListeners(0, this.closing.signal);
    for (const name of REGIONS) this.regions.set(name, createRegion(name, backend.baseLayer));
    backend.onExit = (machine) => this.machineExited(machine);
  }

  /**
   * Debian publishes a new AMI of a series (`debian-12-amd64`, or the `OWNER/NAME-PATTERN` a
   * client resolves) in every region: `debian-12-amd64-<today>-<next build>`, newer than every
   * other, so the pattern resolves to it; the older AMIs stay, as Debian's do.
   */
  publishDebianImage(ref: string): { ref: string; name: string; regions: Record<string, { previous?: string; current: string }> } {
    const series = ref.replace(/^\d+\//, '').replace(/-?\*$/, '');
    if (!/^debian-\d+-(amd64|arm64)$/.test(series)) throw new Ec2Error('InvalidParameterValue', `${ref} is not a Debian AMI series (debian-12-amd64)`);
    const regions: Record<string, { previous?: string; current: string }> = {};
    let name = '';
    for (const region of this.regions.values()) {
      const ours = [...region.images.values()].filter((i) => i.ownerId === DEBIAN_OWNER_ID && i.name.startsWith(`${series}-`));
      const newest = ours.sort((a, b) => b.creationDate.getTime() - a.creationDate.getTime())[0];
      const build = Math.max(0, ...ours.map((i) => Number(i.name.split('-').at(-1)) || 0)) + 1;
      const created = new Date(Math.max(Date.now(), (newest?.creationDate.getTime() ?? 0) + 1000));
      name = `${series}-${created.toISOString().slice(0, 10).replaceAll('-', '')}-${build}`;
      regions[region.name] = { previous: newest?.id, current: addDebianImage(region, name, this.backend.baseLayer, created).id };
    }
    return { ref, name, regions };
  }

  region(name: string): RegionState {
    const region = this.regions.get(name);
    if (!region) throw new Ec2Error('AuthFailure', `Credential should be scoped to a valid region, not '${name}'.`, 401);
    return region;
  }

  /** Waits, or rejects once the emulator closes. */
  sleep(ms: number): Promise<void> {
    const signal = this.closing.signal;
    if (signal.aborted) return Promise.reject(new Error('emulator closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(new Error('emulator closed'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Runs work after the answer; failures are kept in backgroundErrors, never thrown. */
  background(work: () => Promise<void>): void {
    const task = work()
      .catch((err: Error) => {
        if (!this.closed) this.backgroundErrors.push(err);
      })
      .finally(() => this.tasks.delete(task));
    this.tasks.add(task);
  }

  /** Backend work on one instance, in order with the instance's earlier work. */
  enqueue(instance: Instance, work: () => Promise<void>): void {
    const next = instance.queue.then(work);
    instance.queue = next.catch(() => undefined);
    this.background(() => next);
  }

  holdLayer(layer: string): void {
    this.layerRefs.set(layer, (this.layerRefs.get(layer) ?? 0) + 1);
  }

  /** A snapshot let go of its layer: the backend frees it once nothing holds it. */
  async releaseLayer(layer: string): Promise<void> {
    const refs = (this.layerRefs.get(layer) ?? 1) - 1;
    if (refs > 0) {
      this.layerRefs.set(layer, refs);
      return;
    }
    this.layerRefs.delete(layer);
    if (layer !== this.backend.baseLayer) await this.backend.deleteLayer(layer);
  }

  /** The layer an image boots from. */
  imageLayer(region: RegionState, image: Image): string | undefined {
    const snapshot = region.snapshots.get(image.snapshotIds[0] ?? '');
    return snapshot?.layer;
  }

  /** A machine stopped by itself (poweroff inside): the instance stops, or terminates. */
  private machineExited(machine: string): void {
    for (const region of this.regions.values()) {
      for (const instance of region.instances.values()) {
        if (instance.machine !== machine || instance.state !== 'running') continue;
        if (instance.shutdownBehavior === 'terminate') {
          this.onInstanceShutdown?.(region, instance, 'terminate');
        } else {
          this.onInstanceShutdown?.(region, instance, 'stop');
        }
      }
    }
  }

  /** Set by instances.ts: how a guest-initiated shutdown changes an instance. */
  onInstanceShutdown?: (region: RegionState, instance: Instance, how: 'stop' | 'terminate') => void;

  /** Stops every timer and background task, then the backend (every machine, every layer). */
  async close(): Promise<void> {
    this.closing.abort();
    await this.elasticIps.close();
    await this.elbv2.close();
    await Promise.allSettled([...this.tasks]);
    await this.backend.close();
  }
}

function zoneIdPrefix(region: string): string {
  const [area, direction, number] = region.split('-');
  return `${area}${direction[0]}${number}`;
}

function createRegion(name: string, baseLayer: string): RegionState {
  const region: RegionState = {
    name,
    instances: new Map(),
    images: new Map(),
    snapshots: new Map(),
    volumes: new Map(),
    keyPairs: new Map(),
    groups: new Map(),
    vpcs: new Map(),
    subnets: new Map(),
    clientTokens: new Map(),
  };
  const vpc = { id: newId('vpc'), cidr: '172.31.0.0/16', isDefault: true, tags: new Map() };
  region.vpcs.set(vpc.id, vpc);
  ['a', 'b', 'c'].forEach((letter, i) => {
    const subnet = {
      id: newId('subnet'),
      vpcId: vpc.id,
      cidr: `172.31.${i * 16}.0/20`,
      availabilityZone: `${name}${letter}`,
      zoneId: `${zoneIdPrefix(name)}-az${i + 1}`,
      isDefault: true,
      tags: new Map(),
    };
    region.subnets.set(subnet.id, subnet);
  });
  const group = { id: newId('sg'), name: 'default', description: 'default VPC security group', vpcId: vpc.id, ingress: [], tags: new Map() };
  region.groups.set(group.id, group);
  for (const imageName of DEBIAN_IMAGES) addDebianImage(region, imageName, baseLayer);
  return region;
}

/** A public Debian AMI named `debian-MAJOR-ARCH-DATE-BUILD` (and its snapshot), booting the Debian 12 layer. */
function addDebianImage(region: RegionState, imageName: string, baseLayer: string, created?: Date): Image {
  const [, major, arch, date, build] = imageName.split('-') as [string, string, string, string, string];
  const snapshot: Snapshot = {
    id: newId('snap'),
    ownerId: DEBIAN_OWNER_ID,
    state: 'completed',
    startTime: created ?? new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T16:43:00.000Z`),
    volumeId: 'vol-ffffffff',
    volumeSize: 8,
    description: `Debian ${major} (${date}-${build})`,
    layer: baseLayer,
    deleted: false,
    tags: new Map(),
  };
  const image: Image = {
    id: newId('ami'),
    name: imageName,
    description: `Debian ${major} (${date}-${build})`,
    ownerId: DEBIAN_OWNER_ID,
    public: true,
    state: 'available',
    creationDate: snapshot.startTime,
    architecture: arch === 'arm64' ? 'arm64' : 'x86_64',
    snapshotIds: [snapshot.id],
    launchUserIds: [],
    tags: new Map(),
  };
  region.snapshots.set(snapshot.id, snapshot);
  region.images.set(image.id, image);
  return image;
}

/** One operation: reads its parameters, changes the region, returns the answer's body. */
export type Handler = (cloud: Ec2Cloud, region: RegionState, params: Params) => Promise<XmlObject> | XmlObject;
