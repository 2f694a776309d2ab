/**
 * DigitalOcean API v2 over HTTP: bearer auth, JSON, every list paginated, 429 honoured
 * (retry-after, ratelimit-reset), 5xx and network errors retried with capped exponential backoff
 * and full jitter, and one request budget shared by everything a command does.
 * https://docs.digitalocean.com/reference/api/api-reference/
 */
import { CancelledError, EXIT, ProviderError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { sleep } from '../../core/wait.js';
import type { z } from 'zod';

export interface ApiOptions {
  baseUrl: string;
  token: string;
  events: EventSink;
  /** Most requests one command may make (a runaway loop must not eat the account's hourly limit). */
  budget?: number;
  maxRetries?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export interface ApiStats {
  requests: number;
  retries: number;
  rateLimited: number;
  byOperation: Record<string, number>;
}

interface ErrorBody {
  id?: string;
  message?: string;
  request_id?: string;
}

/** An answer of the wrong shape is the API's fault, said plainly, never a TypeError later. */
function checked<T>(schema: z.ZodType<T>, value: unknown, operation: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new ProviderError({
    provider: 'digitalocean',
    operation,
    message: `unexpected answer: ${issue.path.join('.') || '(body)'}: ${issue.message}`,
  });
}

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

export class DigitalOceanApi {
  readonly stats: ApiStats = { requests: 0, retries: 0, rateLimited: 0, byOperation: {} };
  private readonly baseUrl: string;

  constructor(private readonly opts: ApiOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
  }

  /** One API call, retried when the failure is transient. `operation` names it in errors. */
  async request<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    opts: { operation: string; body?: unknown; query?: Record<string, string | number | undefined>; signal: AbortSignal; schema?: z.ZodType<T> },
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const url = path.startsWith('http') ? new URL(path) : new URL(`${this.baseUrl}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const maxRetries = this.opts.maxRetries ?? 8;
    for (let attempt = 0; ; attempt++) {
      if (opts.signal.aborted) throw new CancelledError();
      this.spend(opts.operation);
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${this.opts.token}`,
            'content-type': 'application/json',
            accept: 'application/json',
            'user-agent': 'provisional',
          },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: AbortSignal.any([opts.signal, AbortSignal.timeout(this.opts.timeoutMs ?? 30_000)]),
        });
      } catch (err) {
        if (opts.signal.aborted) throw new CancelledError();
        // Network errors and timeouts: the request may or may not have been applied. Reads and
        // deletes are safe to repeat; a create is retried too (tags let cleanup find duplicates).
        if (attempt >= maxRetries) {
          throw new ProviderError({ provider: 'digitalocean', operation: opts.operation, message: `no answer from ${url.host}: ${(err as Error).message}`, retryable: true });
        }
        await this.backoff(attempt, undefined, opts.operation, opts.signal);
        continue;
      }
      const text = await response.text();
      if (response.ok) {
        let body: T;
        try {
          body = (text ? JSON.parse(text) : undefined) as T;
        } catch {
          // A truncated or garbled answer is retried like a dropped connection, then reported.
          if (attempt < maxRetries) {
            await this.backoff(attempt, undefined, opts.operation, opts.signal);
            continue;
          }
          throw new ProviderError({ provider: 'digitalocean', operation: opts.operation, status: response.status, message: `the API answered with malformed JSON: ${JSON.stringify(text.slice(0, 80))}` });
        }
        if (body !== undefined && (body === null || typeof body !== 'object')) {
          throw new ProviderError({ provider: 'digitalocean', operation: opts.operation, status: response.status, message: 'the API answered with something other than a JSON object' });
        }
        if (opts.schema) body = checked(opts.schema, body, opts.operation);
        return { status: response.status, body, headers: response.headers };
      }
      if (RETRYABLE_STATUS.has(response.status) && attempt < maxRetries) {
        if (response.status === 429) this.stats.rateLimited++;
        await this.backoff(attempt, response, opts.operation, opts.signal);
        continue;
      }
      throw this.error(opts.operation, response, text);
    }
  }

  /** Every item of a paginated list, following links.pages.next. */
  async list<T>(
    path: string,
    key: string,
    opts: { operation: string; query?: Record<string, string | number | undefined>; signal: AbortSignal; schema: z.ZodType<T> },
  ): Promise<T[]> {
    const items: T[] = [];
    let next: string | undefined = path;
    let query: Record<string, string | number | undefined> | undefined = { per_page: 200, ...opts.query };
    for (let page = 0; next && page < 1000; page++) {
      const { body }: { body: Record<string, unknown> & { links?: { pages?: { next?: unknown } } } } = await this.request<Record<string, unknown>>('GET', next, {
        operation: opts.operation,
        query,
        signal: opts.signal,
      });
      const pageItems = body[key];
      if (!Array.isArray(pageItems)) {
        throw new ProviderError({ provider: 'digitalocean', operation: opts.operation, message: `the answer has no "${key}" list` });
      }
      items.push(...pageItems.map((item) => checked(opts.schema, item, opts.operation)));
      const link: unknown = body.links?.pages?.next;
      if (link !== undefined && typeof link !== 'string') {
        throw new ProviderError({ provider: 'digitalocean', operation: opts.operation, message: 'the answer has a malformed links.pages.next' });
      }
      next = link;
      query = undefined; // the next link carries its own query
    }
    return items;
  }

  private spend(operation: string): void {
    this.stats.requests++;
    this.stats.byOperation[operation] = (this.stats.byOperation[operation] ?? 0) + 1;
    const budget = this.opts.budget ?? 2000;
    if (this.stats.requests > budget) {
      throw new ProviderError({
        provider: 'digitalocean',
        operation,
        message: `this command used its budget of ${budget} API requests; stopping before the account's rate limit is exhausted`,
      });
    }
  }

  /** Wait before the next try: what a 429 asks for, else capped exponential backoff with full jitter. */
  private async backoff(attempt: number, response: Response | undefined, operation: string, signal: AbortSignal): Promise<void> {
    this.stats.retries++;
    let waitMs = Math.random() * Math.min(30_000, 500 * 2 ** attempt);
    const retryAfter = Number(response?.headers.get('retry-after'));
    const reset = Number(response?.headers.get('ratelimit-reset'));
    if (response?.status === 429) {
      if (Number.isFinite(retryAfter) && retryAfter > 0) waitMs = retryAfter * 1000;
      else if (Number.isFinite(reset) && reset > 0) waitMs = Math.max(waitMs, reset * 1000 - Date.now());
      waitMs = Math.min(waitMs, 120_000);
    }
    this.opts.events.emit({
      type: 'debug',
      message: `${operation}: ${response ? `HTTP ${response.status}` : 'no answer'}, retrying in ${(waitMs / 1000).toFixed(1)} s`,
    });
    await sleep(waitMs, signal);
  }

  private error(operation: string, response: Response, text: string): ProviderError {
    let body: ErrorBody = {};
    try {
      body = JSON.parse(text) as ErrorBody;
    } catch {
      body = { message: text.slice(0, 200) || response.statusText };
    }
    const unauthorized = response.status === 401;
    return new ProviderError({
      provider: 'digitalocean',
      operation,
      status: response.status,
      code: body.id,
      message: body.message ?? response.statusText,
      requestId: body.request_id ?? response.headers.get('x-request-id') ?? undefined,
      retryable: RETRYABLE_STATUS.has(response.status),
      exitCode: unauthorized ? EXIT.usage : EXIT.failed,
      hint: unauthorized ? 'the API token was rejected: check DIGITALOCEAN_TOKEN (or the token in config.yml)' : undefined,
    });
  }
}
