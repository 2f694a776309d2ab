/**
 * The emulated Hetzner Cloud project: SSH keys, servers, images and actions, and how they change
 * over time. Servers are real machines (machines/pool.ts); an action takes the delay a test set
 * (or the machine's own time, if longer), then succeeds or, under a fault, ends in error.
 * https://docs.hetzner.cloud/#servers, #server-actions, #images, #actions
 */
import type { MachinePool } from '../machines/pool.js';
import { BackgroundWork } from '../shared/background.js';
import type { Faults } from '../shared/faults.js';
import { fingerprint } from '../shared/ssh-keys.js';
import { LOCATIONS, SERVER_TYPES, SYSTEM_IMAGE } from './catalog.js';
import { HcloudError, invalidInput, locked, notFound, uniqueness } from './http.js';
import type { Labels } from './labels.js';
import type { Action, Image, Server, SshKey } from './model.js';
import { FloatingIps } from './floating-ips.js';
import { LoadBalancers } from './load-balancers.js';

/** Milliseconds each step takes at least. */
export interface Delays {
  /** POST /servers until `running` (create_server and start_server succeed). */
  create: number;
  /** Until the ACPI request is delivered (the guest then powers off in its own time). */
  shutdown: number;
  poweroff: number;
  poweron: number;
  reboot: number;
  create_image: number;
  delete: number;
  /** A load balancer's actions (create, add or remove a target or service). */
  load_balancer: number;
  /** A Floating IP's assign and unassign: traffic moves when it ends. */
  floating_ip: number;
}

export const DEFAULT_DELAYS: Delays = { create: 2000, shutdown: 300, poweroff: 500, poweron: 1000, reboot: 1500, create_image: 3000, delete: 500, load_balancer: 300, floating_ip: 300 };

export interface CreateServerInput {
  name: string;
  serverType: string | number;
  image: string | number;
  location?: string;
  sshKeys: (string | number)[];
  labels: Labels;
  startAfterCreate: boolean;
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00');
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export class Cloud {
  readonly keys = new Map<number, SshKey>();
  readonly servers = new Map<number, Server>();
  readonly images = new Map<number, Image>();
  readonly actions = new Map<number, Action>();
  private nextKey = 9_000_001;
  private nextServer = 50_000_001;
  private nextImage = 180_000_001;
  private nextAction = 1_500_000_001;
  private readonly work: BackgroundWork;
  readonly loadBalancers: LoadBalancers;
  readonly floatingIps: FloatingIps;

  constructor(
    private readonly machines: MachinePool,
    baseLayer: string,
    readonly delays: Delays,
    private readonly faults: Faults,
    private readonly onError: (err: unknown) => void,
    /** Ports each Floating IP forwards. */
    floatingIpPorts: number[],
  ) {
    this.work = new BackgroundWork(onError);
    this.loadBalancers = new LoadBalancers(this, this.work);
    this.floatingIps = new FloatingIps(this, floatingIpPorts);
    const s = SYSTEM_IMAGE;
    this.images.set(s.id, {
      id: s.id, type: 'system', status: 'available', name: s.name, description: s.description, imageSize: null, diskSize: s.disk_size,
      created: s.created, createdFrom: null, osFlavor: s.os_flavor, osVersion: s.os_version, labels: {}, layer: baseLayer,
    });
  }

  // --- SSH keys ---

  addKey(name: string, publicKey: string, labels: Labels): SshKey {
    const fp = fingerprint(publicKey);
    if (!fp) throw invalidInput('public_key', 'invalid public key');
    if (!name) throw invalidInput('name', 'name is required');
    if ([...this.keys.values()].some((k) => k.fingerprint === fp)) throw uniqueness('SSH key with the same fingerprint already exists');
    if ([...this.keys.values()].some((k) => k.name === name)) throw uniqueness('SSH key with the same name already exists');
    const key: SshKey = { id: this.nextKey++, name, publicKey: publicKey.trim(), fingerprint: fp, labels, created: now() };
    this.keys.set(key.id, key);
    return key;
  }

  private findKey(ref: string | number): SshKey | undefined {
    if (typeof ref === 'number' || /^\d+$/.test(ref)) return this.keys.get(Number(ref));
    return [...this.keys.values()].find((k) => k.name === ref);
  }

  // --- images ---

  /** By id, or a system image by name (as POST /servers takes `image`). */
  findImage(ref: string | number): Image | undefined {
    if (typeof ref === 'number' || /^\d+$/.test(ref)) return this.images.get(Number(ref));
    return [...this.images.values()].find((i) => i.type === 'system' && i.name === ref);
  }

  /**
   * A new build of a system image: a new id under the same name (the old one is no longer listed;
   * servers made from it keep running), as Hetzner does when it refreshes an image.
   */
  publishSystemImage(name: string): { ref: string; previous: string; current: string } {
    const old = [...this.images.values()].find((i) => i.type === 'system' && i.name === name);
    if (!old) throw invalidInput('name', `no system image ${name}`);
    const image: Image = { ...old, id: this.nextImage++, created: now(), labels: {} };
    this.images.delete(old.id);
    this.images.set(image.id, image);
    return { ref: name, previous: String(old.id), current: String(image.id) };
  }

  async deleteImage(image: Image): Promise<void> {
    if (image.type === 'system') throw new HcloudError(403, 'forbidden', 'system images cannot be deleted');
    this.images.delete(image.id);
    await this.machines.deleteLayer(image.layer);
  }

  // --- servers ---

  liveServers(): Server[] {
    return [...this.servers.values()].sort((a, b) => a.id - b.id);
  }

  async createServer(input: CreateServerInput): Promise<{ server: Server; action: Action; nextActions: Action[] }> {
    if (typeof input.name !== 'string' || !HOSTNAME.test(input.name)) throw invalidInput('name', 'name must be a valid hostname');
    const type = SERVER_TYPES.find((t) => t.name === input.serverType || t.id === Number(input.serverType));
    if (!type) throw invalidInput('server_type', `server type ${String(input.serverType)} not found`);
    const location = LOCATIONS.find((l) => l.name === (input.location ?? 'fsn1'));
    if (!location) throw invalidInput('location', `location ${input.location} not found`);
    const image = input.image === undefined ? undefined : this.findImage(input.image);
    if (!image || image.status !== 'available') throw invalidInput('image', `image ${String(input.image)} not found`);
    if (image.diskSize > type.disk) throw invalidInput('image', `image disk size ${image.diskSize} GB is larger than the ${type.name} disk`);
    const keys = input.sshKeys.map((ref) => this.findKey(ref) ?? (() => { throw invalidInput('ssh_keys', `SSH key ${ref} not found`); })());
    if ([...this.servers.values()].some((s) => s.name === input.name)) throw uniqueness('server name is already used');
    const id = this.nextServer++;
    // The address exists from the start, as on Hetzner: the machine is claimed before answering.
    const machine = await this.machines.create({ name: input.name, layer: image.layer, authorizedKeys: keys.map((k) => k.publicKey), labels: { server: String(id) } });
    const server: Server = {
      id, name: input.name, status: 'initializing', created: now(), serverType: type, location, imageId: image.id,
      labels: input.labels, locked: false, machineId: machine.id, ip: machine.ip, deleted: false,
    };
    this.servers.set(id, server);
    const action = this.newAction('create_server', [{ id, type: 'server' }]);
    const start = input.startAfterCreate ? this.newAction('start_server', [{ id, type: 'server' }]) : undefined;
    this.work.track(async () => {
      const fault = this.faults.takeAction('create_server');
      await this.work.sleep(this.delays.create + (fault?.outcome === 'slow' ? (fault.extraMs ?? 0) : 0));
      if (server.deleted) return;
      if (fault?.outcome === 'errored' || !input.startAfterCreate) await this.machines.stop(machine.id, { force: true });
      if (fault?.outcome === 'errored') {
        server.status = 'off';
        this.finish(action, 'error');
        if (start) this.finish(start, 'error');
        return;
      }
      server.status = input.startAfterCreate ? 'running' : 'off';
      this.finish(action, 'success');
      if (start) this.finish(start, 'success');
      const dropAfter = this.faults.takeSshDrop();
      if (dropAfter !== undefined) this.work.dropSshLater(this.machines, () => (server.deleted ? undefined : server.machineId), dropAfter, () => this.faults.fired.sshDrop++);
    });
    return { server, action, nextActions: start ? [start] : [] };
  }

  deleteServer(server: Server): Action {
    server.deleted = true;
    server.status = 'deleting';
    this.servers.delete(server.id);
    // As on Hetzner: a deleted server leaves its load balancers and loses its Floating IPs.
    this.loadBalancers.serverDeleted(server.id);
    this.floatingIps.serverDeleted(server.id);
    const action = this.newAction('delete_server', [{ id: server.id, type: 'server' }]);
    this.work.track(async () => {
      await Promise.all([this.machines.destroy(server.machineId), this.work.sleep(this.delays.delete)]);
      this.finish(action, 'success');
    });
    return action;
  }

  /** A machine that stopped by itself (poweroff inside it) makes its server `off`. */
  machineExited(machineId: string): void {
    const server = [...this.servers.values()].find((s) => s.machineId === machineId);
    if (server && server.status !== 'initializing') server.status = 'off';
  }

  /** A server action; the server is locked while it runs. */
  serverAction(server: Server, command: string, body: Record<string, unknown>): { action: Action; image?: Image } {
    if (server.locked || server.status === 'initializing') throw locked();
    const machine = server.machineId;
    const run = (name: string, delay: number, work: () => Promise<void>, resources: Action['resources'] = [{ id: server.id, type: 'server' }], onFailed = () => {}): Action => {
      const action = this.newAction(name, resources);
      server.locked = true;
      this.work.track(async () => {
        const fault = this.faults.takeAction(name);
        try {
          const wait = this.work.sleep(delay + (fault?.outcome === 'slow' ? (fault.extraMs ?? 0) : 0));
          if (fault?.outcome === 'errored') {
            await wait;
            onFailed();
            return this.finish(action, 'error');
          }
          await Promise.all([work(), wait]);
          this.finish(action, 'success');
        } catch (err) {
          this.onError(err);
          onFailed();
          this.finish(action, 'error');
        } finally {
          server.locked = false;
        }
      });
      return action;
    };
    switch (command) {
      case 'poweron':
        return { action: run('start_server', this.delays.poweron, async () => {
          await server.stopping;
          if (server.status !== 'off') return;
          server.status = 'starting';
          await this.machines.start(machine);
          server.status = 'running';
        }) };
      case 'poweroff':
        return { action: run('stop_server', this.delays.poweroff, async () => {
          await this.machines.stop(machine, { force: true });
          server.status = 'off';
        }) };
      case 'shutdown': {
        // Hetzner sends an ACPI request; the action only says it was delivered. The guest powers
        // off in its own time (a 'slow' fault on shutdown_server: it reacts that much later).
        const fault = this.faults.takeAction('shutdown_server');
        const action = this.newAction('shutdown_server', [{ id: server.id, type: 'server' }]);
        const reactAfter = fault?.outcome === 'slow' ? (fault.extraMs ?? 0) : 0;
        this.work.track(async () => {
          await this.work.sleep(this.delays.shutdown);
          this.finish(action, fault?.outcome === 'errored' ? 'error' : 'success');
        });
        if (fault?.outcome !== 'errored' && server.status === 'running') {
          const stopping = (async () => {
            await this.work.sleep(reactAfter);
            if (server.deleted || server.status !== 'running') return;
            server.status = 'stopping';
            await this.machines.stop(machine, { timeoutMs: 10 * 60_000 });
            if (!server.deleted) server.status = 'off';
          })();
          server.stopping = stopping;
          this.work.track(() => stopping.finally(() => server.stopping === stopping && (server.stopping = undefined)));
        }
        return { action };
      }
      case 'reboot':
      case 'reset':
        return { action: run(`${command}_server`, this.delays.reboot, async () => {
          await this.machines.stop(machine, { force: command === 'reset', timeoutMs: 60_000 });
          await this.machines.start(machine);
          server.status = 'running';
        }) };
      case 'create_image': {
        const type = body.type ?? 'snapshot';
        if (type !== 'snapshot' && type !== 'backup') throw invalidInput('type', 'type must be snapshot or backup');
        if (type === 'backup') throw new HcloudError(422, 'unsupported_error', 'backups are not enabled for this server');
        if (body.description !== undefined && body.description !== null && typeof body.description !== 'string') throw invalidInput('description', 'description must be a string');
        const image: Image = {
          id: this.nextImage++, type: 'snapshot', status: 'creating', name: null,
          description: typeof body.description === 'string' ? body.description : `${server.name}-${now()}`,
          imageSize: null, diskSize: server.serverType.disk, created: now(), createdFrom: { id: server.id, name: server.name },
          osFlavor: this.images.get(server.imageId)?.osFlavor ?? 'debian', osVersion: this.images.get(server.imageId)?.osVersion ?? null,
          labels: (body.labels as Labels | undefined) ?? {}, layer: '',
        };
        this.images.set(image.id, image);
        const action = run('create_image', this.delays.create_image, async () => {
          await server.stopping;
          image.layer = await this.machines.snapshot(machine);
          image.imageSize = Math.max(0.01, Math.round(((await this.machines.layerSize(image.layer)) / 1e9) * 100) / 100);
          image.status = 'available';
        }, [{ id: server.id, type: 'server' }, { id: image.id, type: 'image' }],
        // An image whose action failed never becomes available: it goes, as on Hetzner.
        () => {
          this.images.delete(image.id);
          if (image.layer) void this.machines.deleteLayer(image.layer);
        });
        return { action, image };
      }
      default:
        throw notFound('action');
    }
  }

  // --- actions ---

  /**
   * An action of a load balancer or Floating IP: `effect` (if any) runs when its delay is over and
   * it succeeds; under a fault on `command` it ends in error, its effect never run. `settled` runs
   * at its end either way.
   */
  timedAction(command: string, resources: Action['resources'], delayMs: number, effect?: () => void | Promise<void>, settled?: () => void): Action {
    const action = this.newAction(command, resources);
    this.work.track(async () => {
      const fault = this.faults.takeAction(command);
      try {
        await this.work.sleep(delayMs + (fault?.outcome === 'slow' ? (fault.extraMs ?? 0) : 0));
        if (fault?.outcome === 'errored') return this.finish(action, 'error');
        await effect?.();
        this.finish(action, 'success');
      } catch (err) {
        this.onError(err);
        this.finish(action, 'error');
      } finally {
        settled?.();
      }
    });
    return action;
  }

  private newAction(command: string, resources: Action['resources']): Action {
    const action: Action = { id: this.nextAction++, command, status: 'running', progress: 0, started: now(), finished: null, error: null, resources };
    this.actions.set(action.id, action);
    return action;
  }

  private finish(action: Action, status: 'success' | 'error'): void {
    action.status = status;
    action.progress = 100;
    action.finished = now();
    if (status === 'error') action.error = { code: 'action_failed', message: `Action ${action.command} failed` };
  }

  /** Ends every delay at once and waits for the work under way (the machines are the pool's to close). */
  async close(): Promise<void> {
    await this.work.close();
    await this.loadBalancers.close();
    await this.floatingIps.close();
  }
}
