/**
 * The tenant's object: one Durable Object per tenant (`idFromName(tenant)`), the one place every isolate of
 * a deployment asks before it generates.
 *
 * - Requests per minute and tokens per minute: two token buckets in memory (capacity rpm / tpm, refilled at
 *   that much per minute). A request is admitted while the request bucket holds one and the token bucket is
 *   not in debt; the session objects charge what each generation really used (prompt + completion tokens,
 *   every prefill that ran, interrupted generations included) when it ends, which may put the token bucket
 *   in debt, so a tenant's long-run rate stays at tpm and one request can overshoot by at most its own cost.
 *   Scope: exact per deployment, approximate across evictions (an evicted object restarts full; eviction
 *   needs ~10 s+ of idleness, by which time a per-minute bucket has mostly refilled anyway).
 * - Stored sessions: a table of the tenant's persistent sessions (SQLite, so it survives eviction). A new
 *   session is admitted while the tenant has fewer than `max_sessions`; the session objects report their
 *   stored bytes after each save and remove themselves when deleted or expired (session-do.ts).
 */
import { DurableObject } from 'cloudflare:workers';
import type { Env } from './env';
import { msUntil, refill, type Bucket } from './limits';

export interface Limits {
  /** Requests and tokens per minute; 0 = unlimited. */
  rpm: number;
  tpm: number;
}

/** What the x-ratelimit-* headers report (null: that limit is off). */
export interface RateState {
  requests: { limit: number; remaining: number; resetMs: number } | null;
  tokens: { limit: number; remaining: number; resetMs: number } | null;
}

export type AdmitResult =
  | { ok: true; state: RateState }
  | { ok: false; reason: 'requests' | 'tokens'; retryAfter: number; state: RateState }
  | { ok: false; reason: 'sessions'; sessions: number; storedBytes: number };

/** Totals since this object started (GET on the object itself: tests and operators, never routed publicly). */
export interface TenantTotals {
  requests: number;
  charges: number;
  tokens: number;
  lastChargeAt: number | null;
  sessions: number;
  storedBytes: number;
}

export class RateLimiterDO extends DurableObject<Env> {
  private readonly requests: Bucket = { level: NaN, at: 0 };
  private readonly tokens: Bucket = { level: NaN, at: 0 };
  private readonly totals = { requests: 0, charges: 0, tokens: 0, lastChargeAt: null as number | null };
  private schema = false;

  /** Admits one request (and, for a persistent session, its session). RPC method. */
  async admit(limits: Limits, session: { id: string; max: number } | null): Promise<AdmitResult> {
    const now = Date.now();
    if (session && !this.knows(session.id)) {
      const { sessions, storedBytes } = this.sessionTotals();
      if (sessions >= session.max) return { ok: false, reason: 'sessions', sessions, storedBytes };
    }
    this.fill(limits, now);
    if (limits.rpm > 0 && this.requests.level < 1) {
      return { ok: false, reason: 'requests', retryAfter: Math.max(1, Math.ceil(msUntil(this.requests, limits.rpm, 1) / 1000)), state: this.state(limits) };
    }
    if (limits.tpm > 0 && this.tokens.level <= 0) {
      return { ok: false, reason: 'tokens', retryAfter: Math.max(1, Math.ceil(msUntil(this.tokens, limits.tpm, 1) / 1000)), state: this.state(limits) };
    }
    if (limits.rpm > 0) this.requests.level -= 1;
    this.totals.requests++;
    if (session) this.sql().exec('INSERT INTO sessions (id, bytes, used) VALUES (?, 0, ?) ON CONFLICT (id) DO UPDATE SET used = excluded.used', session.id, now);
    return { ok: true, state: this.state(limits) };
  }

  /** A generation ended having used `tokens` (prompt + completion). RPC method. */
  async charge(limits: Limits, tokens: number): Promise<void> {
    this.fill(limits, Date.now());
    if (limits.tpm > 0) this.tokens.level -= tokens;
    this.totals.charges++;
    this.totals.tokens += tokens;
    this.totals.lastChargeAt = Date.now();
  }

  /** A session saved: its storage now holds `bytes`. RPC method. */
  async sessionStored(id: string, bytes: number): Promise<void> {
    this.sql().exec('INSERT INTO sessions (id, bytes, used) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes', id, bytes, Date.now());
  }

  /** A session was deleted or expired. RPC method. */
  async sessionGone(id: string): Promise<void> {
    this.sql().exec('DELETE FROM sessions WHERE id = ?', id);
  }

  async fetch(): Promise<Response> {
    const totals: TenantTotals = { ...this.totals, ...this.sessionTotals() };
    return Response.json(totals);
  }

  private fill(limits: Limits, now: number): void {
    for (const [b, cap] of [[this.requests, limits.rpm], [this.tokens, limits.tpm]] as const) {
      if (cap <= 0) continue;
      if (Number.isNaN(b.level)) {
        b.level = cap;
        b.at = now;
      }
      refill(b, cap, now);
    }
  }

  private state(limits: Limits): RateState {
    const one = (b: Bucket, cap: number) =>
      cap > 0 ? { limit: cap, remaining: Math.max(0, Math.floor(b.level)), resetMs: msUntil(b, cap, cap) } : null;
    return { requests: one(this.requests, limits.rpm), tokens: one(this.tokens, limits.tpm) };
  }

  private sql(): SqlStorage {
    const sql = this.ctx.storage.sql;
    if (!this.schema) {
      sql.exec('CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, used INTEGER NOT NULL)');
      this.schema = true;
    }
    return sql;
  }

  private knows(id: string): boolean {
    return this.sql().exec('SELECT 1 FROM sessions WHERE id = ?', id).toArray().length > 0;
  }

  private sessionTotals(): { sessions: number; storedBytes: number } {
    const row = this.sql().exec('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM sessions').one();
    return { sessions: row.n as number, storedBytes: row.b as number };
  }
}
