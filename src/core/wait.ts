import { CancelledError, UserFacingError } from './errors.js';

/** Sleep that ends early, with CancelledError, when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class TimeoutError extends UserFacingError {}

export interface PollOptions {
  /** What we are waiting for, for the timeout message: "SSH on app builder". */
  what: string;
  timeoutMs: number;
  /** First interval; grows by `factor` up to `maxIntervalMs`. */
  intervalMs?: number;
  maxIntervalMs?: number;
  factor?: number;
  signal?: AbortSignal;
}

/**
 * Poll `probe` until it returns a value other than undefined. Starts fast and backs off
 * (a fixed long first wait, as Packer does, wastes seconds on every build).
 */
export async function poll<T>(probe: () => Promise<T | undefined>, opts: PollOptions): Promise<T> {
  const deadline = performance.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 250;
  const max = opts.maxIntervalMs ?? 2000;
  const factor = opts.factor ?? 1.5;
  let lastError: unknown;
  for (;;) {
    if (opts.signal?.aborted) throw new CancelledError();
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      lastError = err;
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      const why = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new TimeoutError(`timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${opts.what}${why}`);
    }
    await sleep(Math.min(interval, left), opts.signal);
    interval = Math.min(max, interval * factor);
  }
}
