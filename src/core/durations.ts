/**
 * Waiting for a cloud's slow operations (a droplet to become active, a snapshot to complete)
 * against how long the same operation took before. Blind polling must choose between many
 * requests and a late answer; knowing that a snapshot of this size took ~60 s, we sleep most of
 * that, then poll every second: few requests and little lag. The first time, we back off as usual.
 * Observed durations are kept in the state directory (the median of the last few counts).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CancelledError } from './errors.js';
import { stateDir } from './paths.js';
import { sleep, TimeoutError } from './wait.js';

const KEEP = 5;

export class Durations {
  private constructor(
    private readonly path: string,
    private readonly seen: Record<string, number[]>,
  ) {}

  static async load(path = join(stateDir(), 'durations.json')): Promise<Durations> {
    try {
      const data = JSON.parse(await readFile(path, 'utf8')) as unknown;
      if (data && typeof data === 'object' && !Array.isArray(data)) {
        const clean = Object.fromEntries(
          Object.entries(data as Record<string, unknown>).filter(
            (e): e is [string, number[]] => Array.isArray(e[1]) && e[1].every((n) => typeof n === 'number' && n >= 0),
          ),
        );
        return new Durations(path, clean);
      }
    } catch {
      // none yet, or unreadable: start afresh
    }
    return new Durations(path, {});
  }

  /** The median of the last observations of `key`, in ms. */
  expected(key: string): number | undefined {
    const list = this.seen[key];
    if (!list?.length) return undefined;
    const sorted = [...list].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  async record(key: string, ms: number): Promise<void> {
    this.seen[key] = [...(this.seen[key] ?? []), Math.round(ms)].slice(-KEEP);
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      const temp = `${this.path}.${process.pid}.tmp`;
      await writeFile(temp, JSON.stringify(this.seen), { mode: 0o600 });
      await rename(temp, this.path);
    } catch {
      // a cache: losing it costs requests, not correctness
    }
  }
}

export interface ExpectedWait {
  /** What is awaited, for the timeout message. */
  what: string;
  /** Key under which durations of this operation are kept, e.g. `digitalocean:create:s-1vcpu-1gb:nyc3`. */
  key: string;
  durations: Durations;
  /** When the operation began (performance.now() time), so the wait is counted from there. */
  startedAt: number;
  timeoutMs: number;
  signal: AbortSignal;
  /** Blind backoff, when there is no history or the history was wrong: first interval, cap. */
  firstMs?: number;
  maxMs?: number;
}

/** Poll `probe` until it gives a value; record how long the operation took. */
export async function waitExpected<T>(probe: () => Promise<T | undefined>, opts: ExpectedWait): Promise<T> {
  const expected = opts.durations.expected(opts.key);
  const deadline = opts.startedAt + opts.timeoutMs;
  if (expected !== undefined) {
    // Most of the expected time asleep: no request can find it done before then.
    const wake = opts.startedAt + expected * 0.9 - performance.now();
    if (wake > 0) await sleep(Math.min(wake, Math.max(0, deadline - performance.now())), opts.signal);
  }
  let interval = expected !== undefined ? 1000 : (opts.firstMs ?? 1000);
  let lastMiss: number | undefined;
  for (;;) {
    if (opts.signal.aborted) throw new CancelledError();
    const value = await probe();
    const now = performance.now();
    if (value !== undefined) {
      // It finished between the last probe that missed and this one: record the middle, so that a
      // slow poll's lag does not inflate the next wait (which would lag more, and so on).
      await opts.durations.record(opts.key, (lastMiss !== undefined ? (lastMiss + now) / 2 : now) - opts.startedAt);
      return value;
    }
    lastMiss = now;
    if (now >= deadline) throw new TimeoutError(`timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${opts.what}`);
    await sleep(Math.min(interval, deadline - now), opts.signal);
    // Past what history promised (or with none): back off, as blind polling does.
    if (expected === undefined || now - opts.startedAt > expected * 1.5) interval = Math.min(opts.maxMs ?? 5000, interval * 1.5);
  }
}
