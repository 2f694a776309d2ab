/**
 * DigitalOcean's rate limits, per token: 5,000 requests an hour and 250 a minute, each request
 * counting for one full hour (or minute) after it was made, not in fixed windows.
 * https://docs.digitalocean.com/reference/api/digitalocean/#section/Introduction/Rate-Limit
 */

export interface RateLimits {
  perHour: number;
  perMinute: number;
  /** GET /v2/account/keys has a limit of its own: 10 requests per 60 s. */
  keysListPerMinute: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { perHour: 5000, perMinute: 250, keysListPerMinute: 10 };

export interface RateDecision {
  allowed: boolean;
  headers: Record<string, string>;
  /** Seconds until a request would be allowed again, when refused. */
  retryAfter?: number;
}

export class RateLimiter {
  private readonly hour = new Map<string, number[]>();
  private readonly minute = new Map<string, number[]>();
  private readonly keysList = new Map<string, number[]>();

  constructor(private readonly limits: RateLimits) {}

  /** Counts the request if it is allowed; refused requests do not count. */
  take(token: string, isKeysList: boolean, now = Date.now()): RateDecision {
    const hour = prune(this.hour, token, now - 3_600_000);
    const minute = prune(this.minute, token, now - 60_000);
    const keys = prune(this.keysList, token, now - 60_000);
    const headers = (remaining: number) => ({
      'ratelimit-limit': String(this.limits.perHour),
      'ratelimit-remaining': String(Math.max(0, remaining)),
      'ratelimit-reset': String(Math.ceil(((hour[0] ?? now) + 3_600_000) / 1000)),
    });
    const refuse = (oldest: number, windowMs: number): RateDecision => {
      const retryAfter = Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
      return { allowed: false, retryAfter, headers: { ...headers(this.limits.perHour - hour.length), 'retry-after': String(retryAfter) } };
    };
    if (hour.length >= this.limits.perHour) return refuse(hour[0]!, 3_600_000);
    if (minute.length >= this.limits.perMinute) return refuse(minute[0]!, 60_000);
    if (isKeysList && keys.length >= this.limits.keysListPerMinute) return refuse(keys[0]!, 60_000);
    hour.push(now);
    minute.push(now);
    if (isKeysList) keys.push(now);
    return { allowed: true, headers: headers(this.limits.perHour - hour.length) };
  }

  /** Headers for an answer that did not go through take() (a 401, an injected fault). */
  peek(token: string, now = Date.now()): Record<string, string> {
    const hour = prune(this.hour, token, now - 3_600_000);
    return {
      'ratelimit-limit': String(this.limits.perHour),
      'ratelimit-remaining': String(Math.max(0, this.limits.perHour - hour.length)),
      'ratelimit-reset': String(Math.ceil(((hour[0] ?? now) + 3_600_000) / 1000)),
    };
  }
}

function prune(map: Map<string, number[]>, token: string, since: number): number[] {
  let list = map.get(token);
  if (!list) map.set(token, (list = []));
  let drop = 0;
  while (drop < list.length && list[drop]! <= since) drop++;
  if (drop) list.splice(0, drop);
  return list;
}
