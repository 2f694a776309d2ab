/**
 * Hetzner Cloud API v1 over the kit's JSON client (kit/http.ts: budget, 429, retries, redaction),
 * with what is Hetzner's own: its error body `{error: {code, message}}`, `meta.pagination`, and its
 * rate limit, a bucket of RateLimit-Limit requests refilled one a second per 3600 an hour.
 * https://docs.hetzner.cloud/
 */
import { z } from 'zod';
import type { EventSink } from '../../core/events.js';
import { sleep } from '../../core/wait.js';
import { JsonApi, type Query } from '../kit/http.js';

export const actionSchema = z.looseObject({
  id: z.number(),
  command: z.string(),
  status: z.enum(['running', 'success', 'error']),
  error: z.looseObject({ code: z.string(), message: z.string() }).nullable().optional(),
});
export type Action = z.output<typeof actionSchema>;

export const serverSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  status: z.string(),
  labels: z.record(z.string(), z.string()),
  public_net: z.looseObject({ ipv4: z.looseObject({ ip: z.string() }).nullable().optional() }),
});
export type Server = z.output<typeof serverSchema>;

export const imageSchema = z.looseObject({
  id: z.number(),
  type: z.string(),
  status: z.string(),
  name: z.string().nullable(),
  description: z.string(),
  image_size: z.number().nullable().optional(),
  created: z.string().optional(),
  labels: z.record(z.string(), z.string()),
});
export type Image = z.output<typeof imageSchema>;

export const sshKeySchema = z.looseObject({ id: z.number(), name: z.string(), public_key: z.string() });

const pageSchema = z.looseObject({ meta: z.looseObject({ pagination: z.looseObject({ next_page: z.number().nullable() }) }) });

export class HetznerApi extends JsonApi {
  constructor(opts: { baseUrl: string; token: string; events: EventSink; budget: number }) {
    super({
      provider: 'hetzner',
      ...opts,
      errorBody: (body) => {
        const error = (body as { error?: { code?: string; message?: string; details?: { fields?: { messages?: string[] }[] } } }).error;
        // invalid_input names the field in its message and says what is wrong in details.fields.
        const why = error?.details?.fields?.flatMap((f) => f.messages ?? []).join('; ');
        return { code: error?.code, message: why ? `${error?.message} (${why})` : error?.message };
      },
      unauthorizedHint: 'the API token was rejected: check HCLOUD_TOKEN (or token: in config.yml)',
      // A 429's RateLimit-Reset is when the bucket is full again (up to an hour); one request
      // is back within seconds, so a 429 waits a few seconds and tries again.
      maxRateLimitWaitMs: 5_000,
    });
  }

  /**
   * One call. When the bucket runs low, the next call waits for one request's refill (RateLimit-Reset
   * is when the bucket is full again: the time left spread over the requests missing), so that a
   * long command slows to the refill rate instead of meeting 429s.
   */
  async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: { operation: string; body?: unknown; query?: Query; signal: AbortSignal; schema?: z.ZodType<T> }) {
    const answer = await this.request(method, path, opts);
    const [limit, remaining, reset] = ['limit', 'remaining', 'reset'].map((h) => Number(answer.headers.get(`ratelimit-${h}`)));
    if (remaining < Math.min(10, limit / 2) && reset * 1000 > Date.now()) await sleep(Math.min(5_000, (reset * 1000 - Date.now()) / (limit! - remaining!)), opts.signal);
    return answer;
  }

  /** Every item of a list, page by page (50 a page, the most the API gives). */
  async list<T>(path: string, key: string, opts: { operation: string; query?: Query; signal: AbortSignal; schema: z.ZodType<T> }): Promise<T[]> {
    const items: T[] = [];
    const itemsSchema = pageSchema.extend({ [key]: z.array(opts.schema) }) as unknown as z.ZodType<{ meta: { pagination: { next_page: number | null } } } & Record<string, T[]>>;
    for (let page: number | null = 1; page; ) {
      const answer: { body: { meta: { pagination: { next_page: number | null } } } & Record<string, T[]> } = await this.call('GET', path, { ...opts, query: { ...opts.query, page, per_page: 50 }, schema: itemsSchema });
      items.push(...answer.body[key]!);
      page = answer.body.meta.pagination.next_page;
    }
    return items;
  }
}
