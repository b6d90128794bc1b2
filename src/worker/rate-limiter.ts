/**
 * Requests-per-minute limiter: one Durable Object per tenant (`idFromName(tenant)`), a token bucket in
 * memory (capacity = rpm, refilled at rpm/60 per second).
 *
 * Scope: exact per deployment (every isolate of every location consults the same object), approximate only
 * across evictions: the bucket lives in memory, so an evicted limiter restarts full. Eviction needs ~10 s+
 * of idleness, by which time a per-minute bucket has mostly refilled anyway.
 */
import { DurableObject } from 'cloudflare:workers';
import type { Env } from './env';

export interface TakeResult {
  ok: boolean;
  /** Seconds until a request would be admitted (when !ok). */
  retryAfter: number;
  remaining: number;
}

export class RateLimiterDO extends DurableObject<Env> {
  private tokens = -1;
  private last = 0;

  /** Take one request from the bucket. RPC method. */
  async take(rpm: number): Promise<TakeResult> {
    const now = Date.now();
    if (this.tokens < 0) {
      this.tokens = rpm;
      this.last = now;
    }
    const ratePerMs = rpm / 60_000;
    this.tokens = Math.min(rpm, this.tokens + (now - this.last) * ratePerMs);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true, retryAfter: 0, remaining: Math.floor(this.tokens) };
    }
    return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - this.tokens) / ratePerMs / 1000)), remaining: 0 };
  }
}
