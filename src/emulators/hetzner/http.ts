/**
 * Hetzner's error answers and pagination.
 * Errors: https://docs.hetzner.cloud/#errors — `{"error":{"code","message","details"}}`.
 * Pagination: https://docs.hetzner.cloud/#pagination — `meta.pagination`, 25 per page by default, 50 at most.
 */

/** An API error answered as `{ error: { code, message, details } }`. */
export class HcloudError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body() {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export const notFound = (what = 'resource') => new HcloudError(404, 'not_found', `${what} not found`);

/** invalid_input (400), with the field and its messages in `details.fields` as the API gives them. */
export function invalidInput(field: string, message: string): HcloudError {
  return new HcloudError(400, 'invalid_input', `invalid input in field '${field}'`, { fields: [{ name: field, messages: [message] }] });
}

export const locked = () => new HcloudError(423, 'locked', 'server is locked');
export const uniqueness = (message: string) => new HcloudError(409, 'uniqueness_error', message);

export interface Pagination {
  page: number;
  per_page: number;
  previous_page: number | null;
  next_page: number | null;
  last_page: number;
  total_entries: number;
}

function pageNumber(query: URLSearchParams, name: string, fallback: number, max?: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw invalidInput(name, `${name} must be a positive integer`);
  return max ? Math.min(n, max) : n;
}

/** One page of `all` and its `meta.pagination`; a page past the last is empty, as the API answers. */
export function paginate<T>(all: T[], query: URLSearchParams): { items: T[]; pagination: Pagination } {
  const perPage = pageNumber(query, 'per_page', 25, 50);
  const page = pageNumber(query, 'page', 1);
  const last = Math.max(1, Math.ceil(all.length / perPage));
  return {
    items: all.slice((page - 1) * perPage, page * perPage),
    pagination: {
      page,
      per_page: perPage,
      previous_page: page > 1 ? Math.min(page - 1, last) : null,
      next_page: page < last ? page + 1 : null,
      last_page: last,
      total_entries: all.length,
    },
  };
}

/** RFC 8288 Link header for a page (the API sends one beside meta.pagination). */
export function linkHeader(url: URL, p: Pagination): string {
  const link = (n: number, rel: string) => {
    const q = new URLSearchParams(url.searchParams);
    q.set('page', String(n));
    q.set('per_page', String(p.per_page));
    return `<${url.origin}${url.pathname}?${q}>; rel="${rel}"`;
  };
  const parts: string[] = [];
  if (p.previous_page) parts.push(link(p.previous_page, 'prev'));
  if (p.next_page) parts.push(link(p.next_page, 'next'));
  parts.push(link(p.last_page, 'last'));
  return parts.join(', ');
}
