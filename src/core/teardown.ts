/**
 * Signals for work that the user's Ctrl-C must not cut short, each with its own time limit.
 *
 *  - creating: a create request the cloud may already have taken (a droplet, an instance, a key, a
 *    snapshot action). Aborted half-way, it would make something nobody knows the id of, so nothing
 *    would remove it. The caller checks the user's signal right after, once the thing is recorded
 *    for removal.
 *  - teardown: removing what a failed or interrupted step made (the command's signal is already
 *    aborted by then); long enough for a cloud's slow delete, short enough that a stuck API cannot
 *    hang the command forever.
 *
 * `quietly` runs a best-effort removal whose failure must not hide the error being reported: the
 * failure goes to the debug log instead of vanishing.
 */
import type { EventSink } from './events.js';

export const CREATE_TIMEOUT_MS = 120_000;
export const TEARDOWN_TIMEOUT_MS = 5 * 60_000;

/** For a create request that must complete or fail on its own, whatever the user's signal. */
export function creatingSignal(ms = CREATE_TIMEOUT_MS): AbortSignal {
  return AbortSignal.timeout(ms);
}

/** For removing what a failed step made. */
export function teardownSignal(ms = TEARDOWN_TIMEOUT_MS): AbortSignal {
  return AbortSignal.timeout(ms);
}

/** A best-effort removal: never throws; a failure is logged (debug) with what was being removed. */
export async function quietly(what: string, remove: () => Promise<unknown>, events?: EventSink): Promise<void> {
  try {
    await remove();
  } catch (err) {
    events?.emit({ type: 'debug', message: `could not remove ${what}: ${(err as Error).message}` });
  }
}
