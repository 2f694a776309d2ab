/**
 * Hetzner's rate limit, per token: a bucket of 3,600 requests that refills by one each second
 * (https://docs.hetzner.cloud/#rate-limiting). Every answer carries RateLimit-Limit,
 * RateLimit-Remaining and RateLimit-Reset (the UNIX time at which the bucket is full again);
 * an empty bucket answers 429 rate_limit_exceeded.
 */

export interface RateLimit {
  /** Bucket size (default 3600). */
  limit: number;
  /** Requests refilled per second (default limit / 3600). */
  perSecond?: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { limit: 3600 };

export class TokenBuckets {
  private readonly buckets = new Map<string, { level: number; at: number }>();

  constructor(private readonly config: RateLimit) {}

  private get rate(): number {
    return this.config.perSecond ?? this.config.limit / 3600;
  }

  private bucket(token: string, now: number) {
    let b = this.buckets.get(token);
    if (!b) this.buckets.set(token, (b = { level: this.config.limit, at: now }));
    b.level = Math.min(this.config.limit, b.level + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    return b;
  }

  private headers(level: number, now: number): Record<string, string> {
    return {
      'ratelimit-limit': String(this.config.limit),
      'ratelimit-remaining': String(Math.max(0, Math.floor(level))),
      'ratelimit-reset': String(Math.ceil(now / 1000 + (this.config.limit - level) / this.rate)),
    };
  }

  /** Takes one request from the token's bucket, if there is one. */
  take(token: string, now = Date.now()): { allowed: boolean; headers: Record<string, string> } {
    const b = this.bucket(token, now);
    if (b.level < 1) return { allowed: false, headers: this.headers(b.level, now) };
    b.level -= 1;
    return { allowed: true, headers: this.headers(b.level, now) };
  }

  /** Headers for an answer that took nothing (a 401, an injected fault). */
  peek(token: string, now = Date.now()): Record<string, string> {
    return this.headers(this.bucket(token, now).level, now);
  }
}
