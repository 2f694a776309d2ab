/**
 * An endpoint as a Hetzner Cloud Floating IP (IPv4), labelled with project, environment and image
 * so that list, destroy and cleanup find it. It is created by the first attach already assigned to
 * the healthy server (POST /floating_ips {server}), moved by the assign action to the next healthy
 * one (Hetzner moves it between running servers at once), moved to a remaining server when its
 * holder is detached (kit/endpoints.ts nextHolder), never left unassigned by us, and deleted by
 * remove (Hetzner unassigns it first).
 *
 * Why a Floating IP and not a Primary IP: a Primary IP can only be assigned to a server that is
 * powered off, so moving one to a new, running, healthy server would stop it. A Floating IP moves
 * between running servers; the servers' image configures the address on its interface, as
 * Hetzner's documentation describes (traffic to it is routed to the server, which must accept it).
 * https://docs.hetzner.cloud/#floating-ips, #floating-ip-actions
 */
import { z } from 'zod';
import { ProviderError } from '../../core/errors.js';
import { creatingSignal } from '../../core/teardown.js';
import { drain, nextHolder, refLabels, refOf, theOneMachine } from '../kit/endpoints.js';
import type { EndpointRef, EndpointStatus, Machine, Server } from '../types.js';
import type { HetznerActions } from './actions.js';
import { actionSchema, type HetznerApi } from './api.js';
import { selector, toLabels } from './labels.js';

const KIND = 'floating-ip';
const ACTION_TIMEOUT_MS = 120_000;

export const floatingIpSchema = z.looseObject({ id: z.number(), ip: z.string(), server: z.number().nullable(), labels: z.record(z.string(), z.string()) });
export type FloatingIp = z.output<typeof floatingIpSchema>;

export class HetznerFloatingIps {
  constructor(
    private readonly api: HetznerApi,
    private readonly actions: HetznerActions,
  ) {}

  private byLabels(labels: Record<string, string>, signal: AbortSignal): Promise<FloatingIp[]> {
    return this.api.list('/floating_ips', 'floating_ips', { operation: 'list Floating IPs', query: { label_selector: selector(labels) }, signal, schema: floatingIpSchema });
  }

  async find(ref: EndpointRef, signal: AbortSignal): Promise<FloatingIp | undefined> {
    return (await this.byLabels(refLabels(ref), signal))[0];
  }

  status(ip: FloatingIp | undefined, servers: Server[] = []): EndpointStatus {
    const holder = ip?.server === null || ip?.server === undefined ? undefined : String(ip.server);
    return { kind: KIND, address: ip?.ip ?? '', members: holder ? [{ machineId: holder, name: servers.find((s) => s.id === holder)?.name, state: 'healthy' }] : [] };
  }

  /** Every Floating IP of the project's endpoints. */
  async list(project: string, signal: AbortSignal): Promise<(EndpointRef & EndpointStatus)[]> {
    return (await this.byLabels({ 'provisional-project': project }, signal)).flatMap((ip) => {
      const ref = refOf(ip.labels);
      return ref ? [{ ...ref, ...this.status(ip) }] : [];
    });
  }

  /** Assigns the endpoint's address to the one machine (creating it, assigned, on first use). */
  async attach(ref: EndpointRef, machines: Machine[], signal: AbortSignal): Promise<void> {
    const machine = theOneMachine(machines, 'Floating IP', 'hetzner');
    const current = await this.find(ref, signal);
    if (current && String(current.server) === machine.id) return;
    if (current) return this.assign(current, machine.id, signal);
    // Not cut short by the signal (core/teardown.ts): an address nobody knows of would stay.
    const { body } = await this.api.call('POST', '/floating_ips', {
      operation: 'create the Floating IP',
      body: { type: 'ipv4', server: Number(machine.id), labels: toLabels(refLabels(ref)), description: `provisional endpoint ${ref.project}/${ref.environment}/${ref.image}` },
      signal: creatingSignal(),
      schema: z.looseObject({ floating_ip: floatingIpSchema, action: actionSchema.nullable().optional() }),
    });
    if (body.action) await this.actions.wait(body.action, 'assign the Floating IP', ACTION_TIMEOUT_MS, signal);
  }

  /** If the holder leaves, the address moves to a remaining server; its open connections get `drainMs`. */
  async detach(ref: EndpointRef, machines: Pick<Machine, 'id'>[], servers: Server[], drainMs: number, signal: AbortSignal): Promise<void> {
    const current = await this.find(ref, signal);
    const next = nextHolder(current?.server ? String(current.server) : undefined, machines, servers);
    if (typeof next === 'object') await this.assign(current!, next.id, signal);
    // An address moved away (by this call or the attach before it) leaves connections open on the old server.
    await drain(drainMs, signal);
  }

  async remove(ref: EndpointRef, signal: AbortSignal): Promise<void> {
    for (const ip of await this.byLabels(refLabels(ref), signal)) {
      // Deleted while assigned (Hetzner unassigns it): unassigning first would leave a moment
      // where a crash loses track of it.
      await this.api.call('DELETE', `/floating_ips/${ip.id}`, { operation: 'delete the Floating IP', signal }).catch((err) => {
        if (!(err instanceof ProviderError && err.status === 404)) throw err;
      });
    }
  }

  private assign(ip: FloatingIp, serverId: string, signal: AbortSignal): Promise<void> {
    return this.actions.run(`/floating_ips/${ip.id}/actions/assign`, 'assign the Floating IP', { server: Number(serverId) }, ACTION_TIMEOUT_MS, signal);
  }
}
