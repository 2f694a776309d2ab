/**
 * DigitalOcean API v2 over the kit's JSON client (kit/http.ts: budget, 429, retries, redaction),
 * with its error body (`{id, message, request_id}`) and its paging (links.pages.next).
 * https://docs.digitalocean.com/reference/api/api-reference/
 */
import { JsonApi, type JsonApiOptions, type Query } from '../kit/http.js';
import type { z } from 'zod';

export type ApiOptions = Pick<JsonApiOptions, 'baseUrl' | 'token' | 'events' | 'budget' | 'maxRetries' | 'timeoutMs'>;

export class DigitalOceanApi extends JsonApi {
  constructor(opts: ApiOptions) {
    super({
      ...opts,
      provider: 'digitalocean',
      errorBody: (body) => {
        const b = (body ?? {}) as { id?: unknown; message?: unknown; request_id?: unknown };
        return {
          code: typeof b.id === 'string' ? b.id : undefined,
          message: typeof b.message === 'string' ? b.message : undefined,
          requestId: typeof b.request_id === 'string' ? b.request_id : undefined,
        };
      },
      unauthorizedHint: 'the API token was rejected: check DIGITALOCEAN_TOKEN (or the token in config.yml)',
    });
  }

  /** Every item of a paginated list, following links.pages.next. */
  async list<T>(path: string, key: string, opts: { operation: string; query?: Query; signal: AbortSignal; schema: z.ZodType<T> }): Promise<T[]> {
    const items: T[] = [];
    let next: string | undefined = path;
    let query: Query | undefined = { per_page: 200, ...opts.query };
    for (let page = 0; next && page < 1000; page++) {
      const { body }: { body: Record<string, unknown> & { links?: { pages?: { next?: unknown } } } } = await this.request<Record<string, unknown>>('GET', next, {
        operation: opts.operation,
        query,
        signal: opts.signal,
      });
      const pageItems = body[key];
      if (!Array.isArray(pageItems)) throw this.fail(opts.operation, `the answer has no "${key}" list`);
      items.push(...pageItems.map((item) => this.checked(opts.schema, item, opts.operation)));
      const link: unknown = body.links?.pages?.next;
      if (link !== undefined && typeof link !== 'string') throw this.fail(opts.operation, 'the answer has a malformed links.pages.next');
      next = link;
      query = undefined; // the next link carries its own query
    }
    return items;
  }
}
