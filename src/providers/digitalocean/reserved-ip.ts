/**
 * An endpoint as a DigitalOcean reserved IP. A reserved IP carries no tags or name, so the one of
 * an endpoint is found through the droplet it is assigned to (that droplet's tags name project,
 * environment and image). Hence it is created by the first attach, assigned at once
 * (POST /v2/reserved_ips {droplet_id}), and never left unassigned by us: a detach moves it to a
 * remaining server (kit/endpoints.ts nextHolder), remove releases it.
 * https://docs.digitalocean.com/reference/api/digitalocean/#tag/Reserved-IPs
 */
import { z } from 'zod';
import { ProviderError } from '../../core/errors.js';
import { drain, isMemberOf, nextHolder, theOneMachine } from '../kit/endpoints.js';
import type { EndpointRef, EndpointStatus, Machine, Server } from '../types.js';
import type { Actions } from './actions.js';
import type { DigitalOceanApi } from './api.js';
import { tagsToLabels } from './tags.js';
import { actionSchema, reservedIpSchema, type ReservedIp } from './types.js';

const KIND = 'reserved-ip';
const ACTION_TIMEOUT_MS = 120_000;

export class DigitalOceanReservedIps {
  constructor(
    private readonly api: DigitalOceanApi,
    private readonly actions: Actions,
  ) {}

  /** The account's reserved IPs assigned to a droplet (only those can be ours). */
  async assigned(signal: AbortSignal): Promise<ReservedIp[]> {
    const all = await this.api.list('/v2/reserved_ips', 'reserved_ips', { operation: 'list reserved IPs', signal, schema: reservedIpSchema });
    return all.filter((r) => r.droplet);
  }

  async find(ref: EndpointRef, signal: AbortSignal): Promise<ReservedIp | undefined> {
    return (await this.assigned(signal)).find((r) => isMemberOf(tagsToLabels(r.droplet!.tags ?? []), ref));
  }

  status(ip: ReservedIp | undefined): EndpointStatus {
    const d = ip?.droplet;
    return { kind: KIND, address: ip?.ip ?? '', members: d ? [{ machineId: String(d.id), name: d.name, state: d.status === 'active' ? 'healthy' : 'unknown' }] : [] };
  }

  /** Assigns the endpoint's address to the one machine (creating it, assigned, on first use). */
  async attach(ref: EndpointRef, machines: Machine[], signal: AbortSignal): Promise<void> {
    const machine = theOneMachine(machines, 'reserved IP', 'digitalocean');
    const current = await this.find(ref, signal);
    if (current && String(current.droplet?.id) === machine.id) return;
    if (current) {
      await this.assign(current.ip, Number(machine.id), signal);
      return;
    }
    const { body } = await this.api.request('POST', '/v2/reserved_ips', {
      operation: 'create the reserved IP',
      body: { droplet_id: Number(machine.id) },
      signal,
      schema: z.looseObject({ reserved_ip: reservedIpSchema, links: z.looseObject({ actions: z.array(z.looseObject({ id: z.number() })).optional() }).optional() }),
    });
    // The assignment is an action: the address serves the droplet once it completes.
    for (const { id } of body.links?.actions ?? []) {
      const { body: found } = await this.api.request('GET', `/v2/actions/${id}`, { operation: 'wait for the reserved IP', signal, schema: z.looseObject({ action: actionSchema }) });
      await this.actions.wait(found.action, 'assign the reserved IP', ACTION_TIMEOUT_MS, signal);
    }
  }

  /** If the holder leaves, the address moves to a remaining server; its open connections get `drainMs`. */
  async detach(ref: EndpointRef, machines: Pick<Machine, 'id'>[], servers: Server[], drainMs: number, signal: AbortSignal): Promise<void> {
    const current = await this.find(ref, signal);
    const next = nextHolder(current?.droplet ? String(current.droplet.id) : undefined, machines, servers);
    if (typeof next === 'object') await this.assign(current!.ip, Number(next.id), signal);
    // An address moved away (by this call or by the attach before it) leaves connections open on
    // the old droplet: they get their time.
    await drain(drainMs, signal);
  }

  async remove(ref: EndpointRef, signal: AbortSignal): Promise<void> {
    const current = await this.find(ref, signal);
    if (!current) return;
    // Deleted while assigned (DigitalOcean unassigns it): unassigning first would leave a moment
    // where a crash loses track of it.
    await this.api.request('DELETE', `/v2/reserved_ips/${current.ip}`, { operation: 'release the reserved IP', signal }).catch((err) => {
      if (!(err instanceof ProviderError && err.status === 404)) throw err;
    });
  }

  private assign(ip: string, dropletId: number, signal: AbortSignal): Promise<unknown> {
    return this.actions.run(`/v2/reserved_ips/${ip}`, { type: 'assign', droplet_id: dropletId }, 'assign the reserved IP', ACTION_TIMEOUT_MS, signal);
  }
}
