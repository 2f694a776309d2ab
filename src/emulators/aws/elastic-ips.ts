/**
 * The account's Elastic IPs as traffic sees them: each is a loopback address of its own with a
 * listener on each of a few ports (the usual web ports and the instances' SSH port; a real Elastic
 * IP takes every port), forwarding to the same port of the running instance it is associated with.
 * Associating or disassociating moves new connections at once, as EC2's does.
 */
import { claimAddress, releaseAddress } from '../machines/addresses.js';
import { TcpForwarder } from '../shared/tcp-forwarder.js';
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
  private readonly listeners = new Map<string, TcpForwarder[]>();
  readonly all = new Map<string, ElasticIp>();

  constructor(private readonly ports: number[]) {}

  /** The association, once its instance is gone, is no more (EC2 disassociates on termination). */
  associated(ip: ElasticIp): ElasticIp['association'] {
    const state = ip.association?.instance.state;
    if (state === 'terminated' || state === 'shutting-down') ip.association = undefined;
    return ip.association;
  }

  async allocate(entry: Omit<ElasticIp, 'publicIp'>): Promise<ElasticIp> {
    const publicIp = await claimAddress(this.ports, new Set());
    const ip: ElasticIp = { ...entry, publicIp };
    const listeners: TcpForwarder[] = [];
    for (const [i, port] of this.ports.entries()) {
      const pick = () => {
        const instance = this.associated(ip)?.instance;
        return instance?.state === 'running' && instance.address ? { host: instance.address, port } : undefined;
      };
      try {
        listeners.push(await TcpForwarder.listen(publicIp, port, { pick }));
      } catch (err) {
        // Only the web ports are promised; the SSH port may be held by the host on every address.
        if (i < ELASTIC_IP_PORTS.length) {
          for (const l of listeners) await l.close();
          await releaseAddress(publicIp);
          throw err;
        }
      }
    }
    this.listeners.set(publicIp, listeners);
    this.all.set(ip.allocationId, ip);
    return ip;
  }

  async release(ip: ElasticIp): Promise<void> {
    this.all.delete(ip.allocationId);
    for (const l of this.listeners.get(ip.publicIp) ?? []) await l.close();
    this.listeners.delete(ip.publicIp);
    await releaseAddress(ip.publicIp);
  }

  async close(): Promise<void> {
    for (const ip of [...this.all.values()]) await this.release(ip);
  }
}
