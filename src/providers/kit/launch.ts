/**
 * Kit: the one batch-launch path of every provider.
 *
 *   launchBatch(reqs, launcher, signal) -> machines, in the order of `reqs`
 *
 * Requests are grouped by `launcher.shareKey(req)`: what one create call of the cloud can share
 * (source image, size, region, key, labels...). Two requests with different images or sizes never
 * share a call, so no request's data is dropped for another's. Each group is cut into calls of at
 * most `launcher.perCall`; then one `waitReady` covers the whole batch (one poll for all), and if
 * anything fails or the signal comes, everything created so far is removed before the error is
 * rethrown: either every machine starts, or none is left. `launchMachine` is the batch of one:
 *
 *   launchMachine(req, signal) { return launchOne(req, (r, s) => this.launchMachines(r, s), signal); }
 */
import { throwIfAborted } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { quietly, teardownSignal } from '../../core/teardown.js';
import type { LaunchRequest, Machine } from '../types.js';

export interface BatchLauncher<Created> {
  /** Equal keys for requests one create call can serve together. */
  shareKey(req: LaunchRequest): string;
  /** Most machines one create call makes (1 when the API creates one at a time). */
  perCall: number;
  /**
   * One create call for requests that share a key. Returns what it created, one entry per request
   * in the same order. It cleans up its own half-made state (a key made before a refused create);
   * it should not be cut short by `signal` once the cloud may have taken the request (see
   * core/teardown.ts): what a call made and nobody knows of is never removed.
   */
  create(group: LaunchRequest[], signal: AbortSignal): Promise<Created[]>;
  /** Wait until every created machine runs with an SSH endpoint; machines in the same order. */
  waitReady(created: Created[], reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]>;
  /** Remove created machines (and what create made for them); given its own time-limited signal. */
  remove(created: Created[], signal: AbortSignal): Promise<void>;
  /** How many create calls may run at once (default 1: calls in order, kind to rate limits). */
  concurrency?: number;
}

/** Requests grouped by share key, each with its index in `reqs`, in first-seen order. */
export function groupRequests(reqs: LaunchRequest[], shareKey: (req: LaunchRequest) => string, perCall: number): { index: number; req: LaunchRequest }[][] {
  const groups = new Map<string, { index: number; req: LaunchRequest }[]>();
  reqs.forEach((req, index) => {
    const key = shareKey(req);
    groups.set(key, [...(groups.get(key) ?? []), { index, req }]);
  });
  const calls: { index: number; req: LaunchRequest }[][] = [];
  for (const group of groups.values()) {
    for (let i = 0; i < group.length; i += Math.max(1, perCall)) calls.push(group.slice(i, i + Math.max(1, perCall)));
  }
  return calls;
}

/** `events` hears (debug) a removal that failed after a failed launch; the launch's own error is what is thrown. */
export async function launchBatch<Created>(reqs: LaunchRequest[], launcher: BatchLauncher<Created>, signal: AbortSignal, events?: EventSink): Promise<Machine[]> {
  if (!reqs.length) return [];
  throwIfAborted(signal);
  const calls = groupRequests(reqs, (r) => launcher.shareKey(r), launcher.perCall);
  const created: (Created | undefined)[] = new Array(reqs.length);
  const made = () => created.filter((c): c is Created => c !== undefined);
  try {
    let next = 0;
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      while (next < calls.length && !failure) {
        const call = calls[next++]!;
        try {
          throwIfAborted(signal);
          const out = await launcher.create(call.map((c) => c.req), signal);
          if (out.length !== call.length) throw new Error(`a create call for ${call.length} machines returned ${out.length}`);
          call.forEach((c, i) => (created[c.index] = out[i]));
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(launcher.concurrency ?? 1, calls.length)) }, worker));
    if (failure) throw failure.error;
    throwIfAborted(signal);
    const machines = await launcher.waitReady(created as Created[], reqs, signal);
    if (machines.length !== reqs.length) throw new Error(`waiting for ${reqs.length} machines returned ${machines.length}`);
    return machines;
  } catch (err) {
    // Nothing half-made stays: whatever this batch created goes, whatever the signal says.
    if (made().length) await quietly(`${made().length} machine(s) of a failed launch`, () => launcher.remove(made(), teardownSignal()), events);
    throw err;
  }
}

/** The batch of one. */
export async function launchOne(req: LaunchRequest, launchMachines: (reqs: LaunchRequest[], signal: AbortSignal) => Promise<Machine[]>, signal: AbortSignal): Promise<Machine> {
  const [machine] = await launchMachines([req], signal);
  return machine!;
}

/** A share key from the parts that must be equal (JSON, so that no separator can collide). */
export function shareKeyOf(...parts: unknown[]): string {
  return JSON.stringify(parts);
}
