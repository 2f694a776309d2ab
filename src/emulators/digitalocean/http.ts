/**
 * HTTP plumbing for the emulator: JSON bodies, DigitalOcean's error bodies and pagination.
 * https://docs.digitalocean.com/reference/api/digitalocean/#section/Introduction/Links-and-Pagination
 */
import type { IncomingMessage } from 'node:http';
import { BodyError, readJsonBody as readBody, sendJson } from '../shared/json-http.js';

/** An API error answered as `{ id, message, request_id }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (what = 'The resource you were accessing could not be found.') => new ApiError(404, 'not_found', what);
export const unprocessable = (message: string) => new ApiError(422, 'unprocessable_entity', message);
export const badRequest = (message: string) => new ApiError(400, 'bad_request', message);

/** The request's JSON body; an unreadable one is DigitalOcean's 400 or 413. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  try {
    return await readBody(req);
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    throw err.status === 413 ? new ApiError(413, 'request_entity_too_large', err.message) : badRequest(err.message);
  }
}

export { sendJson };

export interface Page<T> {
  items: T[];
  links: { pages?: Record<string, string> };
  meta: { total: number };
}

/** Query value as a positive integer, or the default; a bad one is the API's 400. */
function positiveInt(query: URLSearchParams, name: string, fallback: number, max?: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw badRequest(`${name} must be a positive integer`);
  return max ? Math.min(n, max) : n;
}

/**
 * One page of `all`, with `links.pages` (first/prev only past page 1, next/last only before the
 * last page) pointing back at this emulator with the request's other query parameters kept.
 */
export function paginate<T>(all: T[], url: URL, baseUrl: string): Page<T> {
  const perPage = positiveInt(url.searchParams, 'per_page', 20, 200);
  const page = positiveInt(url.searchParams, 'page', 1);
  const last = Math.max(1, Math.ceil(all.length / perPage));
  const link = (n: number) => {
    const q = new URLSearchParams(url.searchParams);
    q.set('page', String(n));
    q.set('per_page', String(perPage));
    return `${baseUrl}${url.pathname}?${q.toString()}`;
  };
  const pages: Record<string, string> = {};
  if (page > 1) {
    pages.first = link(1);
    pages.prev = link(Math.min(page - 1, last));
  }
  if (page < last) {
    pages.next = link(page + 1);
    pages.last = link(last);
  }
  return {
    items: all.slice((page - 1) * perPage, page * perPage),
    links: Object.keys(pages).length ? { pages } : {},
    meta: { total: all.length },
  };
}
