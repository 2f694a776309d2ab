/**
 * A constant HTTP load against an endpoint (loopback only), bounded in count and time, and what it
 * shows: requests, failures, who answered when; the switch from one version to another (from the
 * last answer by the old version to the first moment only the new one answers).
 *
 *   const load = startLoad({ host, port, perSecond: 5, maxRequests: 600, maxMs: 120_000 });
 *   ... deploy ...
 *   const result = await load.stop();
 *   switchTime(result.answers, 'v1', 'v2')  // ms, or undefined if it never switched
 */
import { request } from 'node:http';

export interface Answer {
  /** ms since the load started, when the request was sent. */
  sentMs: number;
  /** ms since the load started, when the answer (or the error) came. */
  atMs: number;
  /** The body (trimmed), or `!` and the error (`!ECONNREFUSED`, `!HTTP 503`). */
  body: string;
}

export interface LoadResult {
  requests: number;
  failures: number;
  answers: Answer[];
  durationMs: number;
}

export interface Load {
  /** Stops sending now; resolves once every answer came. */
  stop(): Promise<LoadResult>;
  /** Resolves once the load reached its bound (maxRequests or maxMs) and every answer came. */
  finished(): Promise<LoadResult>;
  /** The answers so far. */
  readonly answers: Answer[];
}

function get(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : `!HTTP ${res.statusCode}`));
      res.on('error', (err) => resolve(`!${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err) => resolve(`!${(err as NodeJS.ErrnoException).code ?? err.message}`));
    req.end();
  });
}

/** Sends `perSecond` requests a second (each on its own connection, not waiting for the last) until stopped, `maxRequests` or `maxMs`. */
export function startLoad(opts: { host: string; port: number; perSecond?: number; maxRequests?: number; maxMs?: number; timeoutMs?: number }): Load {
  if (!/^127\./.test(opts.host) && opts.host !== 'localhost') throw new Error(`load goes to loopback addresses only, not ${opts.host}`);
  const every = 1000 / (opts.perSecond ?? 5);
  const maxRequests = opts.maxRequests ?? 3000;
  const maxMs = opts.maxMs ?? 10 * 60_000;
  const started = performance.now();
  const answers: Answer[] = [];
  const pending = new Set<Promise<void>>();
  let sent = 0;
  let stopped = false;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const tick = () => {
    const now = performance.now() - started;
    if (stopped || sent >= maxRequests || now > maxMs) {
      stopped = true;
      return finish();
    }
    sent++;
    const p = get(opts.host, opts.port, opts.timeoutMs ?? 10_000).then((body) => {
      answers.push({ sentMs: now, atMs: performance.now() - started, body });
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
    // Scheduled against the start, so that slow answers do not slow the rate.
    setTimeout(tick, Math.max(0, started + sent * every - performance.now()));
  };
  tick();
  const result = async (): Promise<LoadResult> => {
    await done;
    await Promise.all(pending);
    answers.sort((a, b) => a.sentMs - b.sentMs);
    return { requests: answers.length, failures: answers.filter((a) => a.body.startsWith('!')).length, answers, durationMs: performance.now() - started };
  };
  return {
    answers,
    stop() {
      stopped = true;
      return result();
    },
    finished: result,
  };
}

/**
 * The switch from `from` to `to` (answers matched by `is`, default: the body contains the name), in
 * ms: from the last answer by `from` to the first answer by `to` after it (from then on only `to`
 * answers). 0 if `from` never answered; undefined if `to` did not answer after the last `from`.
 */
export function switchTime(answers: Answer[], from: string, to: string, is = (a: Answer, v: string) => a.body.includes(v)): number | undefined {
  const byTime = [...answers].sort((a, b) => a.atMs - b.atMs);
  const lastFrom = byTime.findLastIndex((a) => is(a, from));
  const firstOnlyTo = byTime.findIndex((a, i) => i > lastFrom && is(a, to));
  if (firstOnlyTo < 0) return undefined;
  return lastFrom < 0 ? 0 : byTime[firstOnlyTo]!.atMs - byTime[lastFrom]!.atMs;
}

/** What answered, in order, with runs collapsed: ['v1 x5', 'v2 x7']. */
export function summary(answers: Answer[], label: (a: Answer) => string = (a) => a.body): string[] {
  const out: { what: string; n: number }[] = [];
  for (const a of answers) {
    const what = label(a);
    if (out.at(-1)?.what === what) out.at(-1)!.n++;
    else out.push({ what, n: 1 });
  }
  return out.map((r) => `${r.what} x${r.n}`);
}

/**
 * One slow request held open (loopback only): GET `path`, its answer read as it trickles in until
 * close(). For a connection an endpoint must drain; its end (the server leaving cuts it) is not a
 * failure. `bytes` is what came so far.
 */
export function holdOpen(opts: { host: string; port: number; path: string }): { readonly bytes: number; close(): void } {
  if (!/^127\./.test(opts.host) && opts.host !== 'localhost') throw new Error(`load goes to loopback addresses only, not ${opts.host}`);
  let bytes = 0;
  const req = request({ host: opts.host, port: opts.port, path: opts.path, agent: false }, (res) => {
    res.on('data', (c: Buffer) => (bytes += c.length));
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  req.end();
  return {
    get bytes() {
      return bytes;
    },
    close: () => req.destroy(),
  };
}
