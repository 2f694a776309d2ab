/**
 * Every API request an emulator answered, for tests and benchmarks: counts by route (the
 * API path template, e.g. `GET /v2/droplets/{droplet_id}`) and, for conformance checks,
 * the bodies.
 */

export interface LoggedRequest {
  at: number;
  method: string;
  /** Path as requested, e.g. /v2/droplets/4001. */
  path: string;
  query: string;
  /** OpenAPI path template of the matched operation, or undefined for an unknown path. */
  template?: string;
  status: number;
  durationMs: number;
  requestBody?: unknown;
  responseBody?: unknown;
  responseHeaders: Record<string, string>;
}

export class RequestLog {
  readonly entries: LoggedRequest[] = [];

  add(entry: LoggedRequest): void {
    this.entries.push(entry);
  }

  get total(): number {
    return this.entries.length;
  }

  /** Requests per `METHOD template` (unknown paths under their own path). */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const e of this.entries) {
      const key = `${e.method} ${e.template ?? e.path}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /** Requests whose `METHOD path` contains `match`, or all. */
  count(match?: string): number {
    if (!match) return this.entries.length;
    return this.entries.filter((e) => `${e.method} ${e.template ?? e.path}`.includes(match) || `${e.method} ${e.path}`.includes(match)).length;
  }

  statuses(): Record<number, number> {
    const counts: Record<number, number> = {};
    for (const e of this.entries) counts[e.status] = (counts[e.status] ?? 0) + 1;
    return counts;
  }

  clear(): void {
    this.entries.length = 0;
  }
}
