/**
 * The emulated project's Floating IPs (IPv4): each is a loopback address of its own forwarding a
 * few ports (the servers' SSH port and the usual web ports) to the server it is assigned to (shared/address-forwarder.ts). Assigning and
 * unassigning are actions; the traffic moves when the action ends. A deleted server loses its
 * Floating IP, which stays in the project, as on Hetzner.
 * https://docs.hetzner.cloud/#floating-ips, #floating-ip-actions
 */
import { AddressForwarder } from '../shared/address-forwarder.js';
import type { LocationSpec } from './catalog.js';
import { HcloudError } from './http.js';
import type { Labels } from './labels.js';
import type { Server } from './model.js';

export interface FloatingIp {
  id: number;
  name: string;
  description: string | null;
  created: string;
  ip: string;
  homeLocation: LocationSpec;
  serverId: number | null;
  labels: Labels;
  /** True while an assign or unassign runs: another one is then 423 locked. */
  locked: boolean;
  forwarder: AddressForwarder;
}

export class FloatingIps {
  readonly all = new Map<number, FloatingIp>();
  private nextId = 600_001;

  constructor(
    private readonly host: { servers: Map<number, Server> },
    /** Ports each Floating IP forwards. */
    readonly ports: number[],
  ) {}

  async create(input: Omit<FloatingIp, 'id' | 'ip' | 'forwarder' | 'locked'>): Promise<FloatingIp> {
    if ([...this.all.values()].some((f) => f.name === input.name)) throw new HcloudError(409, 'uniqueness_error', 'name is already used');
    const entry = { ...input, id: this.nextId, locked: false } as FloatingIp;
    entry.forwarder = await AddressForwarder.open(this.ports, () => {
      const server = entry.serverId === null ? undefined : this.host.servers.get(entry.serverId);
      return server && !server.deleted ? server.ip : undefined;
    });
    entry.ip = entry.forwarder.address;
    this.nextId++;
    this.all.set(entry.id, entry);
    return entry;
  }

  /** Floating IPs assigned to a server (a server's `public_net.floating_ips`). */
  of(serverId: number): number[] {
    return [...this.all.values()].filter((f) => f.serverId === serverId).map((f) => f.id);
  }

  serverDeleted(serverId: number): void {
    for (const f of this.all.values()) if (f.serverId === serverId) f.serverId = null;
  }

  async delete(f: FloatingIp): Promise<void> {
    if (!this.all.delete(f.id)) return;
    await f.forwarder.close();
  }

  async close(): Promise<void> {
    for (const f of [...this.all.values()]) await this.delete(f);
  }
}
