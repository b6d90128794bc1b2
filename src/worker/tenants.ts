/**
 * Tenants: Bearer API keys map to tenants. Config comes from the `TENANTS` var or secret (JSON), never code:
 *
 *   {"acme": {"key_sha256": ["<hex sha256 of the key>"], "max_tokens": 256, "max_rounds": 64, "rpm": 60}}
 *
 * Keys are stored hashed (SHA-256) and compared in constant time against every configured hash.
 * `local_only: true` marks a tenant (the `dev` tenant with key `sk-local-dev`) that is accepted only where the
 * launcher says the server listens on loopback alone (`LOCAL_KEYS=loopback`, set by `npm start` and the local
 * test servers, never by wrangler.toml) and for requests addressed to localhost / 127.0.0.1, so a forgotten
 * dev entry is inert once deployed, whatever Host header a client writes.
 */
import { z } from 'zod';
import { DEFAULT_REQUEST_TOKENS } from './limits';
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
  /** Generated tokens per request, over all its choices and prompts (n x prompts x max_tokens). */
  max_request_tokens: z.number().int().min(1).max(1_000_000).default(DEFAULT_REQUEST_TOKENS),
  /** Requests per minute (token bucket, see rate-limiter.ts). 0 disables the limit. */
  rpm: z.number().int().min(0).default(60),
  /** Tokens per minute, prompt + completion of every choice (token bucket, see rate-limiter.ts). 0 disables it. */
  tpm: z.number().int().min(0).default(100_000),
  /** Seconds a session may stay idle before its object deletes it (alarm, session-do.ts). */
  session_ttl_s: z.number().int().min(1).max(365 * 86_400).default(86_400),
  /** Persistent sessions the tenant may keep stored at once; a new one beyond it is refused (403). */
  max_sessions: z.number().int().min(0).max(1_000_000).default(100),
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

function bytesToHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (a: ArrayBufferView, b: ArrayBufferView) => boolean };
  if (typeof subtle.timingSafeEqual === 'function') return subtle.timingSafeEqual(a, b); // workerd
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * SHA-256 of keys printed in this repository (the example tenant's placeholder, the local dev key): a tenant
 * configured with one of them is never accepted, except a local_only one on a local server.
 */
export const PUBLIC_KEY_HASHES: ReadonlySet<string> = new Set([
  'de0b928e09ad5bb13d1550ce53d37689ee700808c7b020d8a0a8755c3b498573', // sk-acme-replace-me
  '39f9742666377d1b2d177efec3c73c95112c6c70f9ffe9b49abd1a2523295b86', // sk-local-dev
]);

/**
 * Why a tenant table must not be deployed, or null: it names a key printed in this repository, or a
 * local_only tenant (inert once deployed, so a deployment that relies on it is a mistake). scripts/deploy.ts.
 */
export function deployRefusal(raw: string): string | null {
  let keys: KeyEntry[];
  try {
    keys = loadTenants(raw);
  } catch (err) {
    return `TENANTS is invalid: ${(err as Error).message}`;
  }
  for (const k of keys) {
    if (PUBLIC_KEY_HASHES.has(bytesToHex(k.hash))) return `tenant "${k.tenant.name}" has the hash of a public example key: generate a key with \`npm run tenant-key -- ${k.tenant.name}\` and put its hash there.`;
    if (k.tenant.local_only) return `tenant "${k.tenant.name}" is local_only: it would never be accepted in a deployment.`;
  }
  return null;
}

function isLocalHost(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}

/** Resolve the tenant of a request from `Authorization: Bearer <key>`, or throw 401. */
export async function authenticate(authorization: string | undefined, url: string, rawTenants: string | undefined, loopback: boolean): Promise<Tenant> {
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
  const local = loopback && isLocalHost(url);
  const publicKey = PUBLIC_KEY_HASHES.has(bytesToHex(hash));
  if (!key || !found || (found.local_only && !local) || (publicKey && !(found.local_only && local))) {
    throw new ApiError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
  }
  return found;
}
