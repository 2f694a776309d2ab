/**
 * The emulated account's reserved IPs: each is a loopback address of its own with a listener on each
 * of a set of ports (the droplets' SSH port and the usual web ports; a real reserved IP takes every
 * port), forwarding to the same port on the droplet it is assigned to (shared/address-forwarder.ts).
 * Assigning or unassigning is an action that takes its delay; the traffic moves when the action
 * completes.
 * https://docs.digitalocean.com/reference/api/digitalocean/#tag/Reserved-IPs
 */
import { randomUUID } from 'node:crypto';
import { AddressForwarder } from '../shared/address-forwarder.js';
import type { Droplet } from './model.js';

export interface ReservedIp {
  ip: string;
  region: string;
  dropletId: number | null;
  locked: boolean;
  projectId: string;
  actionIds: number[];
}

/** Ports a reserved IP forwards when the emulator is not told otherwise. */
export const DEFAULT_RESERVED_IP_PORTS = [80, 443, 8080];

/** A reserved IP's address as the integer DigitalOcean gives as its actions' resource_id. */
export function ipAsInteger(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export class ReservedIps {
  private readonly ips = new Map<string, { reserved: ReservedIp; forwarder: AddressForwarder }>();
  readonly projectId = randomUUID();

  constructor(
    private readonly droplet: (id: number) => Droplet | undefined,
    /** Ports each reserved IP forwards. */
    readonly ports: number[],
  ) {}

  list(): ReservedIp[] {
    return [...this.ips.values()].map((e) => e.reserved).sort((a, b) => ipAsInteger(a.ip) - ipAsInteger(b.ip));
  }

  get(ip: string): ReservedIp | undefined {
    return this.ips.get(ip)?.reserved;
  }

  async create(region: string): Promise<ReservedIp> {
    const reserved: ReservedIp = { ip: '', region, dropletId: null, locked: false, projectId: this.projectId, actionIds: [] };
    const forwarder = await AddressForwarder.open(this.ports, () => {
      const target = reserved.dropletId === null ? undefined : this.droplet(reserved.dropletId);
      return target?.ip && !target.deleted ? target.ip : undefined;
    });
    reserved.ip = forwarder.address;
    this.ips.set(reserved.ip, { reserved, forwarder });
    return reserved;
  }

  /** A deleted droplet loses its reserved IP (which stays reserved to the region). */
  dropletDeleted(dropletId: number): void {
    for (const { reserved } of this.ips.values()) if (reserved.dropletId === dropletId) reserved.dropletId = null;
  }

  async delete(ip: string): Promise<void> {
    const entry = this.ips.get(ip);
    if (!entry) return;
    this.ips.delete(ip);
    await entry.forwarder.close();
  }

  async close(): Promise<void> {
    for (const ip of [...this.ips.keys()]) await this.delete(ip);
  }
}
