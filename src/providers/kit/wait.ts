/**
 * Kit: waiting for a batch of machines, and the durations cache it polls against.
 *
 *   waitForBatch({ provider, what, durationsKey, timeoutMs, signal, poll }) -> ready items
 *     poll() answers { ready, late } for the whole batch with one API call: `ready` in the order of
 *     the batch once all are, `late` one description per machine not there yet ("i-0ab (pending,
 *     no address)"). A poll may throw (a machine that died). On time-out the error names every late
 *     machine: "not running with an address after 600 s: ...".
 *   durations() -> the process's Durations (core/durations.ts), loaded once for every provider.
 */
import { ProviderError } from '../../core/errors.js';
import { Durations, waitExpected } from '../../core/durations.js';
import { TimeoutError } from '../../core/wait.js';

let loaded: Promise<Durations> | undefined;

/** How long cloud operations took before, shared by every provider of this process. */
export function durations(): Promise<Durations> {
  return (loaded ??= Durations.load());
}

export interface BatchPoll<T> {
  /** Every item of the batch once all are ready, else undefined. */
  ready?: T[];
  /** The machines not ready yet, described for the time-out message. */
  late: string[];
}

export interface BatchWait<T> {
  provider: string;
  /** e.g. `running with an address`. */
  what: string;
  /** Durations key, e.g. `aws:us-east-1:run:t3.micro`. */
  durationsKey: string;
  timeoutMs: number;
  signal: AbortSignal;
  poll(): Promise<BatchPoll<T>>;
  /** Poll interval cap without history (ms). */
  maxPollMs?: number;
}

export async function waitForBatch<T>(opts: BatchWait<T>): Promise<T[]> {
  let late: string[] = [];
  try {
    return await waitExpected(
      async () => {
        const answer = await opts.poll();
        late = answer.late;
        return answer.ready;
      },
      { what: `machines ${opts.what}`, key: opts.durationsKey, durations: await durations(), startedAt: performance.now(), timeoutMs: opts.timeoutMs, signal: opts.signal, maxMs: opts.maxPollMs ?? 5000 },
    );
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    throw new ProviderError({
      provider: opts.provider,
      operation: 'wait for machines',
      message: `not ${opts.what} after ${Math.round(opts.timeoutMs / 1000)} s: ${late.join(', ') || '(none listed)'}`,
    });
  }
}
