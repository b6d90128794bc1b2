/**
 * Tenants: Bearer API keys map to tenants. Config comes from the `TENANTS` var or secret (JSON), never code:
 *
 *   {"acme": {"key_sha256": ["<hex sha256 of the key>"], "max_tokens": 256, "max_rounds": 64, "rpm": 60}}
 *
 * Keys are stored hashed (SHA-256) and compared in constant time against every configured hash.
 * `local_only: true` marks a tenant (the `dev` tenant with key `sk-local-dev`) that only answers requests
 * addressed to localhost / 127.0.0.1, so a forgotten dev entry is inert once deployed.
 */
import { z } from 'zod';
import { ApiError } from './openai/errors';

/** Default bound on draft-verify rounds per request: ~5-10 ms of CPU per round (measured on one wasm thread) keeps a
 * request's CPU well under a second plus prefill, far inside the 30 s default CPU limit. */
export const DEFAULT_MAX_ROUNDS = 64;

const TenantSchema = z.object({
  key_sha256: z.array(z.string().regex(/^[0-9a-f]{64}$/i, 'hex sha256')).min(1),
  /** Max completion tokens per request. */
  max_tokens: z.number().int().min(1).max(100_000).default(256),
  /** Max draft-verify rounds per request; a request that hits it ends with finish_reason "length". */
  max_rounds: z.number().int().min(1).max(10_000).default(DEFAULT_MAX_ROUNDS),
  /** Requests per minute (token bucket, see rate-limiter.ts). 0 disables the limit. */
  rpm: z.number().int().min(0).default(60),
  /** Drafter used when a request names none (e.g. "ctc", "ngram", "plain"); default: the model's default. */
  drafter: z.string().min(1).max(64).optional(),
  /** Models this tenant may use; default: every model of the deployment. */
  models: z.array(z.string()).optional(),
  local_only: z.boolean().default(false),
});
const TenantsSchema = z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'tenant name: [A-Za-z0-9_-]'), TenantSchema);

export type TenantConfig = z.infer<typeof TenantSchema>;
export interface Tenant extends TenantConfig {
  name: string;
}

interface KeyEntry {
  tenant: Tenant;
  hash: Uint8Array;
}

let cached: { raw: string; keys: KeyEntry[] } | null = null;

/** Parse (once per isolate and config string) the tenant table. */
export function loadTenants(raw: string | undefined): KeyEntry[] {
  if (cached && cached.raw === raw) return cached.keys;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw ?? '');
  } catch {
    throw new ApiError(500, 'server misconfigured: TENANTS is not valid JSON', 'server_error');
  }
  const res = TenantsSchema.safeParse(parsed);
  if (!res.success) {
    throw new ApiError(500, `server misconfigured: TENANTS: ${z.prettifyError(res.error)}`, 'server_error');
  }
  const keys: KeyEntry[] = [];
  for (const [name, cfg] of Object.entries(res.data)) {
    const tenant: Tenant = { name, ...cfg };
    for (const h of cfg.key_sha256) keys.push({ tenant, hash: hexToBytes(h) });
  }
  cached = { raw: raw ?? '', keys };
  return keys;
}

export async function sha256(data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(data)));
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (a: ArrayBufferView, b: ArrayBufferView) => boolean };
  if (typeof subtle.timingSafeEqual === 'function') return subtle.timingSafeEqual(a, b); // workerd
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function isLocalHost(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}

/** Resolve the tenant of a request from `Authorization: Bearer <key>`, or throw 401. */
export async function authenticate(authorization: string | undefined, url: string, rawTenants: string | undefined): Promise<Tenant> {
  const keys = loadTenants(rawTenants);
  // One rule on every route: "Bearer", spaces or tabs (HTTP's only whitespace), the key, optional spaces
  // or tabs. A key is printable ASCII; anything else (e.g. a non-breaking space, byte 0xA0, which a
  // Unicode-aware trim would drop) makes it a wrong key, not a different spelling of a right one.
  const m = /^Bearer[ \t]+(.*?)[ \t]*$/is.exec(authorization ?? '');
  if (!m || m[1] === '') {
    throw new ApiError(401, 'Missing API key: send "Authorization: Bearer <key>".', 'invalid_request_error', null, 'invalid_api_key');
  }
  const key = /^[\x21-\x7e]+$/.test(m[1]) ? m[1] : null;
  const hash = await sha256(key ?? '');
  // Compare against every hash without early exit so timing does not reveal which entry matched.
  let found: Tenant | null = null;
  for (const k of keys) if (timingSafeEqual(hash, k.hash) && !found) found = k.tenant;
  if (!key || !found || (found.local_only && !isLocalHost(url))) {
    throw new ApiError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
  }
  return found;
}
