/**
 * The account's Elastic IPs as traffic sees them: each is a loopback address of its own with a
 * listener on each of a few ports (the usual web ports and the instances' SSH port; a real Elastic
 * IP takes every port), forwarding to the same port of the running instance it is associated with.
 * Associating or disassociating moves new connections at once, as EC2's does
 * (shared/address-forwarder.ts).
 */
import { AddressForwarder } from '../shared/address-forwarder.js';
import type { Instance, Tags } from './resources.js';

export interface ElasticIp {
  publicIp: string;
  allocationId: string;
  region: string;
  tags: Tags;
  association?: { id: string; instance: Instance };
}

/** Ports an Elastic IP forwards besides the instances' SSH port. */
export const ELASTIC_IP_PORTS = [80, 443, 8080];

export class ElasticIps {
  private readonly forwarders = new Map<string, AddressForwarder>();
  readonly all = new Map<string, ElasticIp>();

  constructor(private readonly ports: number[]) {}

  /** The association, once its instance is gone, is no more (EC2 disassociates on termination). */
  associated(ip: ElasticIp): ElasticIp['association'] {
    const state = ip.association?.instance.state;
    if (state === 'terminated' || state === 'shutting-down') ip.association = undefined;
    return ip.association;
  }

  async allocate(entry: Omit<ElasticIp, 'publicIp'>): Promise<ElasticIp> {
    const ip: ElasticIp = { ...entry, publicIp: '' };
    const holder = () => {
      const instance = this.associated(ip)?.instance;
      return instance?.state === 'running' && instance.address ? instance.address : undefined;
    };
    // Only the web ports are promised; the SSH port may be held by the host on every address.
    const forwarder = await AddressForwarder.open(this.ports, holder, this.ports.filter((p) => !ELASTIC_IP_PORTS.includes(p)));
    ip.publicIp = forwarder.address;
    this.forwarders.set(ip.publicIp, forwarder);
    this.all.set(ip.allocationId, ip);
    return ip;
  }

  async release(ip: ElasticIp): Promise<void> {
    this.all.delete(ip.allocationId);
    await this.forwarders.get(ip.publicIp)?.close();
    this.forwarders.delete(ip.publicIp);
  }

  async close(): Promise<void> {
    for (const ip of [...this.all.values()]) await this.release(ip);
  }
}
