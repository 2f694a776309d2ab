/**
 * Kit: the rules every provider's endpoints (types.ts `Endpoints`) share, written once:
 *
 *   endpointName(ref, max)        the name of a named endpoint (a load balancer): project.env.image,
 *                                 cut to the cloud's limit with a hash so that names stay unique
 *   refLabels(ref), isMemberOf()  which servers belong to an endpoint, by their labels
 *   readSpec(schema, spec)        the provider's parsed `endpoint:` block
 *   drain(ms, signal)             waiting out a drain no API can observe (open connections of a
 *                                 member taken out of a load balancer or an address moved away)
 *   waitDrained(...)              a drain the API reports (ELBv2 `draining`), polled to its end
 *   endpointServers(), byEndpoint()  an endpoint's servers, and servers grouped by endpoint
 *   single-address rules          a reserved or Elastic IP serves one server: attach takes exactly
 *                                 one machine (and moves the address to it); detaching the holder
 *                                 moves the address to a remaining server of the endpoint, if any
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { ProviderError } from '../../core/errors.js';
import { sleep } from '../../core/wait.js';
import { LABELS, type EndpointRef, type Machine, type Server } from '../types.js';

/**
 * `project.environment.image`, only [a-z0-9.-], at most `max` characters (a hash keeps cut names
 * apart). The parts never hold a period, so no two refs share a name: joined with hyphens, project
 * `a-b` in `c` and project `a` in `b-c` would.
 */
export function endpointName(ref: EndpointRef, max = 63): string {
  const clean = (s: string) => s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  const name = [ref.project, ref.environment, ref.image].map(clean).join('.');
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(`${ref.project}\0${ref.environment}\0${ref.image}`).digest('hex').slice(0, 8);
  return `${name.slice(0, max - hash.length - 1).replace(/[-.]+$/, '')}-${hash}`;
}

/** The labels every server of the endpoint carries (deploy puts them on each server). */
export function refLabels(ref: EndpointRef): Record<string, string> {
  return { [LABELS.project]: ref.project, [LABELS.environment]: ref.environment, [LABELS.image]: ref.image };
}

export function isMemberOf(labels: Record<string, string>, ref: EndpointRef): boolean {
  return Object.entries(refLabels(ref)).every(([k, v]) => labels[k] === v);
}

/** The endpoint a server's labels say it belongs to (for `list`), if they name one. */
export function refOf(labels: Record<string, string>): EndpointRef | undefined {
  const project = labels[LABELS.project];
  const environment = labels[LABELS.environment];
  const image = labels[LABELS.image];
  return project && environment && image ? { project, environment, image } : undefined;
}

/** Reads a provider's endpoint spec with its schema: deploy validated it already, so a mismatch is a bug. */
export function readSpec<T>(schema: z.ZodType<T>, spec: unknown, provider: string): T {
  const parsed = schema.safeParse(spec);
  if (parsed.success) return parsed.data;
  throw new ProviderError({ provider, operation: 'read the endpoint', message: `not an endpoint of ${provider}: ${parsed.error.issues[0]?.message ?? 'unknown shape'}` });
}

/**
 * Waits out a drain the API cannot show (a load balancer member taken out, an address moved):
 * open connections get `drainMs` to finish. The caller stopped new connections before.
 */
export function drain(drainMs: number, signal: AbortSignal): Promise<void> {
  return drainMs > 0 ? sleep(drainMs, signal) : Promise.resolve();
}

/**
 * Polls a drain the API reports until `draining()` lists nothing, at most `timeoutMs`; what is
 * still draining then is an error naming it.
 */
export async function waitDrained(opts: { provider: string; draining: () => Promise<string[]>; timeoutMs: number; signal: AbortSignal; everyMs?: number }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const left = await opts.draining();
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new ProviderError({ provider: opts.provider, operation: 'drain', message: `still draining after ${Math.round(opts.timeoutMs / 1000)} s: ${left.join(', ')}` });
    }
    await sleep(opts.everyMs ?? 500, opts.signal);
  }
}

/** A reserved or Elastic IP serves one server: attach is given exactly the one that takes it. */
export function theOneMachine<M extends Pick<Machine, 'id' | 'name'>>(machines: M[], kind: string, provider: string): M {
  if (machines.length !== 1) {
    throw new ProviderError({ provider, operation: `attach to the ${kind}`, message: `a ${kind} serves one server, but ${machines.length} were given (${machines.map((m) => m.name).join(', ')})` });
  }
  return machines[0]!;
}

/**
 * Where a single address goes when the server holding it is detached: to a remaining running
 * server of the endpoint (not one being detached), or nowhere (undefined: it stays where it is
 * until the next attach moves it or remove releases it; an address is never left pointing at
 * nothing by a detach). Servers are tried newest name last, so the most recent takes it.
 */
export function nextHolder(holderId: string | undefined, detached: Pick<Machine, 'id'>[], servers: Server[]): 'keep' | 'stay' | Server {
  const leaving = new Set(detached.map((m) => m.id));
  if (!holderId || !leaving.has(holderId)) return 'keep';
  const remaining = servers.filter((s) => s.state === 'running' && !leaving.has(s.id)).sort((a, b) => a.name.localeCompare(b.name));
  return remaining.at(-1) ?? 'stay';
}

/** A provider's listServers, as its endpoints use it. */
export type ListServers = (filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal) => Promise<Server[]>;

/** The servers of an endpoint: those whose labels name its project, environment and image. */
export function endpointServers(listServers: ListServers, ref: EndpointRef, signal: AbortSignal): Promise<Server[]> {
  return listServers({ project: ref.project, environment: ref.environment, image: ref.image }, signal);
}

/** Servers grouped by the endpoint their labels name (servers naming none are left out). */
export function byEndpoint(servers: Server[]): { ref: EndpointRef; servers: Server[] }[] {
  const refs = new Map<string, { ref: EndpointRef; servers: Server[] }>();
  for (const s of servers) {
    const ref = refOf(s.labels);
    if (!ref) continue;
    const key = JSON.stringify(ref);
    refs.set(key, { ref, servers: [...(refs.get(key)?.servers ?? []), s] });
  }
  return [...refs.values()];
}
