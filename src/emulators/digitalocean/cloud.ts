/**
 * The emulated DigitalOcean account: its keys, droplets, images and actions, and how they
 * change over time. Droplets are real machines (machines/pool.ts); an action takes the delay a
 * test set (or the machine's own time, if longer), then completes or, under a fault, errors.
 */
import { randomUUID } from 'node:crypto';
import { BackgroundWork } from '../shared/background.js';
import { fingerprint } from '../shared/ssh-keys.js';
import { SIZES, REGIONS } from './catalog.js';
import type { Faults } from '../shared/faults.js';
import { notFound, unprocessable } from './http.js';
import type { Action, Droplet, Image, SshKey } from './model.js';
import { distributionImages } from './views.js';
import { LoadBalancers } from './load-balancers.js';
import { DEFAULT_RESERVED_IP_PORTS, ipAsInteger, ReservedIps, type ReservedIp } from './reserved-ips.js';

/** Milliseconds each step takes at least. */
export interface Delays {
  /** POST /v2/droplets until `active` (and the create action completed). */
  create: number;
  /** After the machine has stopped, until the shutdown action completes. */
  shutdown: number;
  power_off: number;
  power_on: number;
  reboot: number;
  snapshot: number;
  transfer: number;
  /** POST /v2/load_balancers until `active`. */
  load_balancer: number;
  /** A reserved IP's assign or unassign action. */
  reserved_ip: number;
  /** DELETE /v2/droplets/{id} destroys at once and answers after this long (the real API takes a moment to answer). */
  destroy: number;
}

export const DEFAULT_DELAYS: Delays = { create: 2000, shutdown: 500, power_off: 500, power_on: 1000, reboot: 1500, snapshot: 3000, transfer: 2000, load_balancer: 3000, reserved_ip: 1000, destroy: 0 };

/** What droplets run on: machines/pool.ts's MachinePool fits. */
export interface DropletMachines {
  create(opts: { name: string; layer: string; authorizedKeys: string[]; labels?: Record<string, string> }): Promise<{ id: string; ip: string; port: number }>;
  start(id: string): Promise<void>;
  stop(id: string, opts?: { force?: boolean; timeoutMs?: number }): Promise<void>;
  snapshot(id: string): Promise<string>;
  destroy(id: string): Promise<void>;
  deleteLayer(layer: string): Promise<void>;
  layerSize(layer: string): Promise<number>;
  dropSsh(id: string): Promise<number>;
  sshSessionCount(id: string): Promise<number>;
}

export interface CreateDropletInput {
  name: string;
  region: string;
  size: string;
  image: string | number;
  sshKeys: (string | number)[];
  tags: string[];
  vpcUuid?: string;
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class Cloud {
  readonly keys = new Map<number, SshKey>();
  readonly droplets = new Map<number, Droplet>();
  readonly images = new Map<number, Image>();
  readonly actions = new Map<number, Action>();
  readonly accountUuid = randomUUID();
  dropletLimit = 1000;
  private nextKey = 41_000_001;
  private nextDroplet = 400_000_001;
  private nextImage = 170_000_001;
  private nextAction = 1_900_000_001;
  private readonly work: BackgroundWork;
  readonly loadBalancers: LoadBalancers;
  readonly reservedIps: ReservedIps;

  constructor(
    private readonly machines: DropletMachines,
    baseLayer: string,
    readonly delays: Delays,
    private readonly faults: Faults,
    private readonly onError: (err: unknown) => void,
    reservedIpPorts: number[] = DEFAULT_RESERVED_IP_PORTS,
  ) {
    this.work = new BackgroundWork(onError);
    const live = (id: number) => {
      const d = this.droplets.get(id);
      return d && !d.deleted ? d : undefined;
    };
    this.loadBalancers = new LoadBalancers({ droplet: live, liveDroplets: () => this.liveDroplets() }, this.work, () => this.delays.load_balancer);
    this.reservedIps = new ReservedIps(live, reservedIpPorts);
    for (const image of distributionImages(baseLayer)) this.images.set(image.id, image);
  }

  // --- keys ---

  addKey(name: string, publicKey: string): SshKey {
    const fp = fingerprint(publicKey);
    if (!fp) throw unprocessable('Key invalid, key should be of the format `type key [comment]`');
    if ([...this.keys.values()].some((k) => k.fingerprint === fp)) throw unprocessable('SSH Key is already in use on your account');
    const key: SshKey = { id: this.nextKey++, name, publicKey: publicKey.trim(), fingerprint: fp };
    this.keys.set(key.id, key);
    return key;
  }

  findKey(ref: string | number): SshKey | undefined {
    if (typeof ref === 'number' || /^\d+$/.test(ref)) return this.keys.get(Number(ref));
    return [...this.keys.values()].find((k) => k.fingerprint === ref);
  }

  // --- images ---

  findImage(ref: string | number): Image | undefined {
    const image =
      typeof ref === 'number' || /^\d+$/.test(String(ref))
        ? this.images.get(Number(ref))
        : [...this.images.values()].find((i) => i.slug === ref);
    return image && image.status !== 'deleted' ? image : undefined;
  }

  /**
   * A new build of a distribution image: a new id behind the same slug, as DigitalOcean does when a
   * distribution ships fixes; the old image leaves the public list (droplets made from it keep
   * running). Same root file system: what changes for a client is the id the slug resolves to.
   */
  publishDistribution(slug: string): { ref: string; previous: string; current: string } {
    const old = [...this.images.values()].find((i) => i.type === 'base' && i.slug === slug);
    if (!old) throw unprocessable(`no distribution image ${slug}`);
    const image: Image = { ...old, id: this.nextImage++, createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), regions: [...old.regions], tags: [] };
    this.images.delete(old.id);
    this.images.set(image.id, image);
    return { ref: slug, previous: String(old.id), current: String(image.id) };
  }

  async deleteImage(image: Image): Promise<void> {
    image.status = 'deleted';
    this.images.delete(image.id);
    await this.machines.deleteLayer(image.layer);
  }

  transferImage(image: Image, region: string): Action {
    if (!REGIONS.some((r) => r.slug === region)) throw unprocessable(`${region} is not a valid region`);
    const action = this.newAction('transfer', image.id, 'image', region);
    this.work.track(async () => {
      const fault = this.faults.takeAction('transfer');
      await this.work.sleep(this.delays.transfer + (fault?.outcome === 'slow' ? (fault.extraMs ?? 0) : 0));
      if (fault?.outcome === 'errored') return this.finish(action, 'errored');
      if (!image.regions.includes(region)) image.regions.push(region);
      this.finish(action, 'completed');
    });
    return action;
  }

  // --- droplets ---

  liveDroplets(): Droplet[] {
    return [...this.droplets.values()].filter((d) => !d.deleted).sort((a, b) => a.id - b.id);
  }

  createDroplets(names: string[], input: Omit<CreateDropletInput, 'name'>): { droplets: Droplet[]; actions: Action[] } {
    const size = SIZES.find((s) => s.slug === input.size);
    if (!size) throw unprocessable(`You specified an invalid size for Droplet creation.`);
    if (!REGIONS.some((r) => r.slug === input.region)) throw unprocessable('You specified an invalid region for Droplet creation.');
    const image = this.findImage(input.image);
    if (!image) throw unprocessable('You specified an invalid image for Droplet creation.');
    if (!image.regions.includes(input.region)) throw unprocessable(`The image is not available in region ${input.region}.`);
    if (image.minDiskSize > size.disk) throw unprocessable(`The image requires a disk of at least ${image.minDiskSize} GB; ${size.slug} has ${size.disk} GB.`);
    const keys = input.sshKeys.map((ref) => {
      const key = this.findKey(ref);
      if (!key) throw unprocessable(`The SSH key ${ref} was not found on your account.`);
      return key;
    });
    if (this.liveDroplets().length + names.length > this.dropletLimit) {
      throw unprocessable(`creating this/these droplet(s) will exceed your droplet limit (${this.dropletLimit})`);
    }
    const droplets: Droplet[] = [];
    const actions: Action[] = [];
    for (const name of names) {
      const droplet: Droplet = {
        id: this.nextDroplet++,
        name,
        region: input.region,
        size,
        imageId: image.id,
        tags: [...new Set(input.tags)],
        createdAt: now(),
        status: 'new',
        locked: false,
        snapshotIds: [],
        actionIds: [],
        vpcUuid: input.vpcUuid ?? '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
        deleted: false,
      };
      this.droplets.set(droplet.id, droplet);
      const action = this.newAction('create', droplet.id, 'droplet', droplet.region);
      droplet.actionIds.push(action.id);
      droplets.push(droplet);
      actions.push(action);
      this.work.track(() => this.bootDroplet(droplet, image, keys.map((k) => k.publicKey), action));
    }
    return { droplets, actions };
  }

  private async bootDroplet(droplet: Droplet, image: Image, keys: string[], action: Action): Promise<void> {
    const fault = this.faults.takeAction('create');
    const noAddress = this.faults.takeNoAddress();
    const sshDropAfter = this.faults.takeSshDrop();
    const delay = this.work.sleep(this.delays.create + (fault?.outcome === 'slow' ? (fault.extraMs ?? 0) : 0));
    let machine: { id: string; ip: string };
    try {
      machine = await this.machines.create({ name: droplet.name, layer: image.layer, authorizedKeys: keys, labels: { droplet: String(droplet.id) } });
    } catch (err) {
      this.onError(err);
      await delay;
      return this.finish(action, 'errored');
    }
    droplet.machineId = machine.id;
    if (droplet.deleted) return this.machines.destroy(machine.id);
    await delay;
    if (droplet.deleted) return;
    if (fault?.outcome === 'errored') {
      await this.machines.stop(machine.id, { force: true });
      droplet.status = 'off';
      return this.finish(action, 'errored');
    }
    droplet.status = 'active';
    if (!noAddress) droplet.ip = machine.ip;
    this.finish(action, 'completed');
    if (sshDropAfter !== undefined) this.work.dropSshLater(this.machines, () => (droplet.deleted ? undefined : droplet.machineId), sshDropAfter, () => this.faults.fired.sshDrop++);
  }

  deleteDroplet(droplet: Droplet): void {
    droplet.deleted = true;
    this.droplets.delete(droplet.id);
    this.loadBalancers.dropletDeleted(droplet.id);
    this.reservedIps.dropletDeleted(droplet.id);
    const machineId = droplet.machineId;
    if (machineId) this.work.track(() => this.machines.destroy(machineId));
  }

  /** A machine that stopped by itself (poweroff inside it) makes its droplet `off`. */
  machineExited(machineId: string): void {
    const droplet = [...this.droplets.values()].find((d) => d.machineId === machineId);
    if (droplet && droplet.status === 'active') droplet.status = 'off';
  }

  dropletAction(droplet: Droplet, type: string, body: Record<string, unknown>): Action {
    if (droplet.locked || droplet.status === 'new') throw unprocessable('Droplet already has a pending event.');
    const run = (work: () => Promise<void>): Action => {
      const action = this.newAction(type, droplet.id, 'droplet', droplet.region);
      droplet.actionIds.push(action.id);
      droplet.locked = true;
      this.work.track(async () => {
        const fault = this.faults.takeAction(type);
        try {
          if (fault?.outcome === 'slow') await this.work.sleep(fault.extraMs ?? 0);
          if (fault?.outcome === 'errored') {
            await this.work.sleep(this.delays[type as keyof Delays] ?? 0);
            return this.finish(action, 'errored');
          }
          await work();
          this.finish(action, 'completed');
        } catch (err) {
          this.onError(err);
          this.finish(action, 'errored');
        } finally {
          droplet.locked = false;
        }
      });
      return action;
    };
    const machine = droplet.machineId;
    switch (type) {
      case 'shutdown':
        return run(async () => {
          if (machine && droplet.status === 'active') await this.machines.stop(machine, { timeoutMs: 60_000 });
          await this.work.sleep(this.delays.shutdown);
          droplet.status = 'off';
        });
      case 'power_off':
        return run(async () => {
          if (machine && droplet.status === 'active') await this.machines.stop(machine, { force: true });
          await this.work.sleep(this.delays.power_off);
          droplet.status = 'off';
        });
      case 'power_on':
        return run(async () => {
          const delay = this.work.sleep(this.delays.power_on);
          if (machine && droplet.status === 'off') await this.machines.start(machine);
          await delay;
          droplet.status = 'active';
        });
      case 'reboot':
      case 'power_cycle':
        return run(async () => {
          const delay = this.work.sleep(this.delays.reboot);
          if (machine) {
            await this.machines.stop(machine, { force: type === 'power_cycle', timeoutMs: 60_000 });
            await this.machines.start(machine);
          }
          await delay;
          droplet.status = 'active';
        });
      case 'snapshot': {
        const name = typeof body.name === 'string' && body.name ? body.name : `${droplet.name}-${Date.now()}`;
        return run(async () => {
          const delay = this.work.sleep(this.delays.snapshot);
          if (!machine) throw new Error(`droplet ${droplet.id} has no machine to snapshot`);
          const layer = await this.machines.snapshot(machine);
          const bytes = await this.machines.layerSize(layer);
          await delay;
          const source = this.images.get(droplet.imageId);
          const image: Image = {
            id: this.nextImage++,
            name,
            type: 'snapshot',
            distribution: source?.distribution ?? 'Debian',
            slug: null,
            public: false,
            regions: [droplet.region],
            createdAt: now(),
            minDiskSize: droplet.size.disk,
            sizeGigabytes: Math.max(0.01, Math.round((bytes / 1e9) * 100) / 100),
            description: '',
            tags: [],
            status: 'available',
            layer,
            dropletId: droplet.id,
          };
          this.images.set(image.id, image);
          droplet.snapshotIds.push(image.id);
        });
      }
      default:
        throw unprocessable(`The action type "${type}" is not supported by this emulator.`);
    }
  }

  // --- reserved IPs ---

  /** assign (to `dropletId`) or unassign: the traffic moves when the action completes. */
  reservedIpAction(reserved: ReservedIp, type: 'assign' | 'unassign', dropletId?: number): Action {
    if (reserved.locked) throw unprocessable('The reserved IP already has a pending event.');
    let target: Droplet | undefined;
    if (type === 'assign') {
      target = dropletId === undefined ? undefined : this.droplets.get(dropletId);
      if (!target || target.deleted) throw unprocessable(`Droplet ${dropletId} was not found.`);
      if (target.region !== reserved.region) throw unprocessable(`The reserved IP is reserved to ${reserved.region}; droplet ${target.id} is in ${target.region}.`);
      if (target.status === 'new') throw unprocessable('Droplet already has a pending event.');
    } else if (reserved.dropletId === null) throw unprocessable('The reserved IP is not assigned to a droplet.');
    const action = this.newAction(type === 'assign' ? 'assign_ip' : 'unassign_ip', ipAsInteger(reserved.ip), 'reserved_ip', target?.region ?? reserved.region);
    reserved.actionIds.push(action.id);
    reserved.locked = true;
    this.work.track(async () => {
      try {
        await this.work.sleep(this.delays.reserved_ip);
        if (type === 'assign' && (!target || target.deleted)) return this.finish(action, 'errored');
        reserved.dropletId = type === 'assign' ? target!.id : null;
        this.finish(action, 'completed');
      } finally {
        reserved.locked = false;
      }
    });
    return action;
  }

  // --- actions ---

  newAction(type: string, resourceId: number, resourceType: Action['resourceType'], region: string): Action {
    const action: Action = { id: this.nextAction++, status: 'in-progress', type, startedAt: now(), completedAt: null, resourceId, resourceType, region };
    this.actions.set(action.id, action);
    return action;
  }

  private finish(action: Action, status: 'completed' | 'errored'): void {
    action.status = status;
    action.completedAt = now();
  }

  getAction(id: number): Action {
    const action = this.actions.get(id);
    if (!action) throw notFound();
    return action;
  }

  /** Ends every delay at once and waits for the work under way (the machines are the pool's to close). */
  async close(): Promise<void> {
    await this.loadBalancers.close();
    await this.reservedIps.close();
    await this.work.close();
  }
}
