/**
 * Kit: the JSON HTTP client of REST clouds (DigitalOcean, Hetzner...).
 *
 *   const api = new JsonApi({ provider: 'hetzner', baseUrl, token, events, budget,
 *                             errorBody: (body) => ({ code, message, requestId }), unauthorizedHint });
 *   const { body } = await api.request('POST', '/v1/servers', { operation: 'create server', body, schema, signal });
 *
 * What every call gets: bearer auth; JSON both ways; answers checked against a zod schema at the
 * boundary (a malformed answer is a ProviderError naming the field, never a TypeError later); one
 * request budget per command (a runaway loop must not eat the account's hourly limit); 429 honoured
 * (Retry-After, else RateLimit-Reset) and 5xx, network errors and garbled answers retried with
 * capped exponential backoff and full jitter; the API's own error code, message and request id
 * surfaced; the token redacted from every message and log line. Paging is the cloud's own (see
 * digitalocean/api.ts) on top of `request`.
 */
import { CancelledError, EXIT, ProviderError } from '../../core/errors.js';
import type { EventSink } from '../../core/events.js';
import { Redactor } from '../../core/redact.js';
import { sleep } from '../../core/wait.js';
import type { z } from 'zod';

export interface ApiErrorBody {
  code?: string;
  message?: string;
  requestId?: string;
}

export interface JsonApiOptions {
  /** Provider name, for errors. */
  provider: string;
  baseUrl: string;
  token: string;
  events: EventSink;
  /** Most requests one command may make. */
  budget?: number;
  maxRetries?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Reads the cloud's error body (e.g. DigitalOcean `{id, message, request_id}`). */
  errorBody?(body: unknown): ApiErrorBody;
  /** Shown with a 401 (where the token comes from). */
  unauthorizedHint?: string;
  /** Longest wait a 429 may ask for before we retry anyway (default 120 s). */
  maxRateLimitWaitMs?: number;
}

export interface ApiStats {
  requests: number;
  retries: number;
  rateLimited: number;
  byOperation: Record<string, number>;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Query = Record<string, string | number | undefined>;

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

export class JsonApi {
  readonly stats: ApiStats = { requests: 0, retries: 0, rateLimited: 0, byOperation: {} };
  private readonly baseUrl: string;
  private readonly redactor = new Redactor();

  constructor(private readonly opts: JsonApiOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.redactor.add(opts.token);
  }

  get provider(): string {
    return this.opts.provider;
  }

  /** An answer of the wrong shape is the API's fault, said plainly. */
  checked<T>(schema: z.ZodType<T>, value: unknown, operation: string): T {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const issue = result.error.issues[0]!;
    throw this.fail(operation, `unexpected answer: ${issue.path.join('.') || '(body)'}: ${issue.message}`);
  }

  /** A ProviderError of this API, its message redacted. */
  fail(operation: string, message: string, extra: Partial<ConstructorParameters<typeof ProviderError>[0]> = {}): ProviderError {
    return new ProviderError({ ...extra, provider: this.opts.provider, operation, message: this.redactor.redact(message) });
  }

  /** One API call, retried when the failure is transient. `operation` names it in errors. */
  async request<T>(
    method: Method,
    path: string,
    opts: { operation: string; body?: unknown; query?: Query; signal: AbortSignal; schema?: z.ZodType<T> },
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
          headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'provisional' },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: AbortSignal.any([opts.signal, AbortSignal.timeout(this.opts.timeoutMs ?? 30_000)]),
        });
      } catch (err) {
        if (opts.signal.aborted) throw new CancelledError();
        // Network errors and timeouts: the request may or may not have been applied. Reads and
        // deletes are safe to repeat; a create is retried too (tags let cleanup find duplicates).
        if (attempt >= maxRetries) throw this.fail(opts.operation, `no answer from ${url.host}: ${(err as Error).message}`);
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
          throw this.fail(opts.operation, `the API answered with malformed JSON: ${JSON.stringify(text.slice(0, 80))}`, { status: response.status });
        }
        if (body !== undefined && (body === null || typeof body !== 'object')) {
          throw this.fail(opts.operation, 'the API answered with something other than a JSON object', { status: response.status });
        }
        if (opts.schema) body = this.checked(opts.schema, body, opts.operation);
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

  private spend(operation: string): void {
    this.stats.requests++;
    this.stats.byOperation[operation] = (this.stats.byOperation[operation] ?? 0) + 1;
    const budget = this.opts.budget ?? 2000;
    if (this.stats.requests > budget) {
      throw this.fail(operation, `this command used its budget of ${budget} API requests; stopping before the account's rate limit is exhausted`);
    }
  }

  /** Wait before the next try: what a 429 asks for, else capped exponential backoff with full jitter. */
  private async backoff(attempt: number, response: Response | undefined, operation: string, signal: AbortSignal): Promise<void> {
    this.stats.retries++;
    let waitMs = Math.random() * Math.min(30_000, 500 * 2 ** attempt);
    if (response?.status === 429) {
      const retryAfter = Number(response.headers.get('retry-after'));
      const reset = Number(response.headers.get('ratelimit-reset'));
      if (Number.isFinite(retryAfter) && retryAfter > 0) waitMs = retryAfter * 1000;
      else if (Number.isFinite(reset) && reset > 0) waitMs = Math.max(waitMs, reset * 1000 - Date.now());
      waitMs = Math.min(waitMs, this.opts.maxRateLimitWaitMs ?? 120_000);
    }
    this.opts.events.emit({ type: 'debug', message: `${operation}: ${response ? `HTTP ${response.status}` : 'no answer'}, retrying in ${(waitMs / 1000).toFixed(1)} s` });
    await sleep(waitMs, signal);
  }

  private error(operation: string, response: Response, text: string): ProviderError {
    let parsed: ApiErrorBody;
    try {
      parsed = this.opts.errorBody ? this.opts.errorBody(JSON.parse(text)) : {};
    } catch {
      parsed = { message: text.slice(0, 200) || response.statusText };
    }
    const unauthorized = response.status === 401;
    return this.fail(operation, parsed.message || response.statusText, {
      status: response.status,
      code: parsed.code,
      requestId: parsed.requestId ?? response.headers.get('x-request-id') ?? undefined,
      exitCode: unauthorized ? EXIT.usage : EXIT.failed,
      hint: unauthorized ? this.opts.unauthorizedHint : undefined,
    });
  }
}
