/** Bindings and vars of the worker (see wrangler.toml). */
import type { SessionDO } from './session-do';
import type { RateLimiterDO } from './rate-limiter';

export interface Env {
  /** R2 bucket holding `<model>/manifest.json` and its content-hashed shards. */
  MODELS: R2Bucket;
  /** One Durable Object per tenant+session: runs the engine, keeps the KV cache. */
  SESSIONS: DurableObjectNamespace<SessionDO>;
  /** One Durable Object per tenant: requests-per-minute limiter. */
  RATE_LIMITER: DurableObjectNamespace<RateLimiterDO>;
  /** JSON tenant table (see tenants.ts); a var or a secret. */
  TENANTS: string;
  /** Comma-separated model names served by this deployment (folders in the bucket). Default "default". */
  MODEL_NAMES?: string;
  /** Persist the KV cache in DO SQLite: "always" (default), "never" (recompute on restore). */
  KV_PERSIST?: string;
  /** MB of session KV kept in memory per isolate before idle sessions fall back to SQLite (default 16). */
  SESSION_MEMORY_MB?: string;
  /** "loopback": the launcher listens on loopback only (`npm start`, the local test servers), so local_only
   *  keys (sk-local-dev) may be accepted. Never set in wrangler.toml: a deployment does not have it. */
  LOCAL_KEYS?: string;
  /** "on": GET /v1/sessions/{id} also reports the isolate's wasm heap and model loads (measurements, tests). */
  DIAGNOSTICS?: string;
  /** "on" lets requests inject faults through an `X-Fault` header (tests only; never set it in a deployment). */
  FAULT_INJECTION?: string;
}
