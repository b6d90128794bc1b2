/**
 * Starts the built worker bundle in workerd via miniflare's Node API, with bindings from wrangler.toml
 * (so tests run the deployed configuration; scripts/node/local-worker.ts), test tenants, and an R2 bucket
 * seeded from model-shards/ (scripts/node/r2-seed.ts, what `npm start` seeds with too).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import type { TenantTotals } from '../../src/worker/rate-limiter';
import OpenAI from 'openai';
import { startBundle } from '../../scripts/node/local-worker.js';
import { seedModels as seedR2 } from '../../scripts/node/r2-seed.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const MODEL_DIR = process.env.CTC_MODEL_DIR ?? join(ROOT, 'model-shards/default');

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Test tenants: keys are `sk-<name>`. */
export const TENANTS = {
  dev: { key_sha256: [sha256('sk-local-dev')], max_tokens: 512, max_rounds: 64, rpm: 0, tpm: 0, max_sessions: 10_000, local_only: true },
  // Small per-request round bound: requests end with "length" and are continued.
  alice: { key_sha256: [sha256('sk-alice')], max_tokens: 256, max_rounds: 3, rpm: 0, tpm: 0, max_sessions: 10_000 },
  bob: { key_sha256: [sha256('sk-bob')], max_tokens: 512, max_rounds: 1000, rpm: 0, tpm: 0, max_sessions: 10_000 },
  carol: { key_sha256: [sha256('sk-carol')], max_tokens: 256, max_rounds: 64, rpm: 0, tpm: 0, max_sessions: 10_000, drafter: 'plain' },
  limited: { key_sha256: [sha256('sk-limited')], max_tokens: 16, max_rounds: 4, rpm: 3, tpm: 0, max_sessions: 10_000 },
  // Fuzzing (fuzz.test.ts): valid requests stay cheap.
  // Metered (tpm never reached) so the tenant's object counts every generation; a small request budget and
  // session cap that hostile requests run into.
  fuzz: { key_sha256: [sha256('sk-fuzz')], max_tokens: 8, max_rounds: 4, max_request_tokens: 32, rpm: 0, tpm: 1_000_000_000, max_sessions: 3 },
  // Fuzzing clients that leave mid-request: long enough generations to leave during, metered.
  leaver: { key_sha256: [sha256('sk-leaver')], max_tokens: 256, max_rounds: 1000, rpm: 0, tpm: 1_000_000_000, max_sessions: 10 },
};

export interface Manifest {
  files: Record<string, { bytes: number; sha256: string; shards: { path: string; bytes: number; sha256: string }[] }>;
}

export function readManifest(dir = MODEL_DIR): Manifest {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) throw new Error(`missing ${p}: the worker tests need the default model (model-shards/default, written by python3 -m training.shard)`);
  return JSON.parse(readFileSync(p, 'utf8')) as Manifest;
}

/** Extra models made from the default one: `corrupt` (a flipped byte in the first base shard), `missing`. */
export const BROKEN_MODELS = ['corrupt', 'missing'] as const;

export interface StartOptions {
  /** Directory for Durable Object storage (SQLite) that outlives this miniflare; default in-memory. */
  persist?: string;
  vars?: Record<string, string>;
  /** More tenants, beside TENANTS. */
  tenants?: Record<string, unknown>;
  /** Serve public/ as static assets too, as a deployment does (wrangler.toml [assets]). */
  assets?: boolean;
  /** Open V8's inspector on this port (measurements: per-isolate heap usage). */
  inspectorPort?: number;
  /**
   * Put a fault-injecting wrapper (R2_FAULTS_SCRIPT) between the worker's MODELS binding and the real R2
   * bucket; `true` installs it with no faults yet, an object also sets those faults. Change them at run
   * time with setR2Faults, read the wrapper's call log with r2Calls.
   */
  r2Faults?: R2Faults | true;
}

export interface Worker {
  mf: Miniflare;
  url: string;
  client(key: string, opts?: { maxRetries?: number }): OpenAI;
  fetch(path: string, init?: RequestInit & { key?: string }): Promise<Response>;
  dispose(): Promise<void>;
}

export async function startWorker(bundleDir: string, opts: StartOptions = {}): Promise<Worker> {
  const { mf, url } = await startBundle(bundleDir, {
    tenants: { ...TENANTS, ...opts.tenants },
    modelNames: ['default', ...BROKEN_MODELS],
    vars: { DIAGNOSTICS: 'on', ...opts.vars },
    persist: opts.persist,
    inspectorPort: opts.inspectorPort,
    wrapOptions: (o) => withR2Faults(opts.r2Faults, opts.assets ? ({ ...o, assets: wranglerAssets() } as typeof o) : o),
  });
  if (opts.r2Faults) faultedR2.add(mf);
  await seedModels(mf);
  if (typeof opts.r2Faults === 'object') await setR2Faults(mf, opts.r2Faults);
  return {
    mf,
    url,
    client: (key, o = {}) => new OpenAI({ apiKey: key, baseURL: `${url}v1`, maxRetries: o.maxRetries ?? 0, timeout: 120_000 }),
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      if (init.key) headers.set('authorization', `Bearer ${init.key}`);
      return fetch(new URL(path, url), { ...init, headers });
    },
    dispose: () => mf.dispose(),
  };
}

/** wrangler.toml's [assets], as miniflare takes them (public/, its _headers and .assetsignore). */
function wranglerAssets() {
  return unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml')).workerOptions.assets;
}

/** The tenant's object (rate-limiter.ts) of a tenant: its totals (tokens charged, stored sessions). */
export async function tenantTotals(w: Worker, tenant: string): Promise<TenantTotals> {
  const ns = await w.mf.getDurableObjectNamespace('RATE_LIMITER');
  const res = await ns.get(ns.idFromName(tenant)).fetch('http://tenant/totals');
  return (await res.json()) as TenantTotals;
}

/** The default model, and its BROKEN_MODELS copies. */
async function seedModels(mf: Miniflare): Promise<void> {
  const firstBase = readManifest().files.base.shards[0].path;
  await seedR2(await modelsBucket(mf), [
    { name: 'default', dir: MODEL_DIR },
    { name: 'corrupt', dir: MODEL_DIR, shard: (path, bytes) => {
      if (path === firstBase) bytes[bytes.length >> 1] ^= 0xff; // same size, wrong sha256
      return bytes;
    } },
    { name: 'missing', dir: MODEL_DIR, shard: (path, bytes) => (path === firstBase ? null : bytes) },
  ]);
}

/** Fix the corrupt model's shard in R2 (the next request must load it: failures are not cached). */
export async function repairCorruptModel(w: Worker): Promise<void> {
  const bucket = await modelsBucket(w.mf);
  const s = readManifest().files.base.shards[0].path;
  await bucket.put(`corrupt/${s}`, new Uint8Array(readFileSync(join(MODEL_DIR, s))));
}

export const firstBaseShard = () => readManifest().files.base.shards[0].path;

/**
 * Replaces the default model in R2 by a re-export of it: the same graph with a doc string appended
 * (a valid ONNX field), so it computes the same numbers under another sha256 — what a deployment of
 * a newly exported model looks like to stored sessions.
 */
export async function reexportDefaultModel(w: Worker): Promise<string> {
  const bucket = await modelsBucket(w.mf);
  const manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8')) as Manifest & Record<string, unknown>;
  const base = Buffer.concat(manifest.files.base.shards.map((s) => readFileSync(join(MODEL_DIR, s.path))));
  const doc = Buffer.from('re-exported');
  const bytes = new Uint8Array(Buffer.concat([base, Buffer.from([(6 << 3) | 2, doc.length]), doc])); // ModelProto.doc_string
  const sha = createHash('sha256').update(bytes).digest('hex');
  const path = `base-reexport-${sha.slice(0, 12)}.bin`;
  await bucket.put(`default/${path}`, bytes);
  manifest.files.base = { ...manifest.files.base, bytes: bytes.length, sha256: sha, shards: [{ path, bytes: bytes.length, sha256: sha }] };
  await bucket.put('default/manifest.json', new TextEncoder().encode(JSON.stringify(manifest)));
  return sha;
}

// ---------------------------------------------------------------------------------------------------------
// R2 fault injection (StartOptions.r2Faults): the worker's MODELS binding becomes a miniflare *wrapped
// binding*, a small ES module (R2_FAULTS_SCRIPT) that runs inside the worker's own isolate and delegates to
// a real R2 bucket binding (MODELS_INNER, the same bucket id as in wrangler.toml), failing `get`s as told.
// Its configuration lives in that bucket (R2_FAULTS_CONTROL + 'config.json', read on every get), so tests
// change it at run time; it logs every get there too (R2_FAULTS_CONTROL + 'log/...'), so tests see retries.

/** Faults of the MODELS wrapper. With none set, every call goes straight to R2. */
export interface R2Faults {
  /** The first N matching gets fail, counted from when this configuration was set. */
  failFirst?: number;
  /** Every matching get fails (R2 down) until the faults are changed. */
  down?: boolean;
  /** Only keys matching this RegExp (source) fail; default every key. */
  match?: string;
  /** How a get fails: `get` (the call throws, default) or `body` (it returns an object whose body read fails). */
  failIn?: 'get' | 'body';
}

/** One logged `get` of the wrapper: its key and whether it was made to fail. */
export interface R2Call {
  seq: number;
  key: string;
  failed: boolean;
}

const R2_FAULTS_WORKER = 'r2-faults';
const R2_FAULTS_INNER = 'MODELS_INNER';
export const R2_FAULTS_CONTROL = '__r2-faults/';

/**
 * The wrapper. workerd calls the default export with the inner bindings (env.MODELS_INNER); what it returns
 * is the worker's env.MODELS. Module state (the per-configuration counter) is per isolate: the worker and
 * its Durable Objects share one here. The injected error mimics R2's internal error (code 10001).
 */
export const R2_FAULTS_SCRIPT = `
const CONTROL = ${JSON.stringify(R2_FAULTS_CONTROL)};
let version = null; // the configuration the counter belongs to
let matched = 0; // matching gets under that configuration
let seq = 0;
const injected = (key) => new Error('get: We encountered an internal error. Please try again. (10001) [injected fault: ' + key + ']');

export default function (env) {
  const inner = env.${R2_FAULTS_INNER};
  async function get(key, options) {
    if (key.startsWith(CONTROL)) return inner.get(key, options);
    const cfgObj = await inner.get(CONTROL + 'config.json');
    const cfg = cfgObj ? await cfgObj.json() : {};
    let fail = false;
    if (!cfg.match || new RegExp(cfg.match).test(key)) {
      if (cfg.version !== version) {
        version = cfg.version;
        matched = 0;
      }
      matched++;
      fail = cfg.down === true || matched <= (cfg.failFirst ?? 0);
    }
    const n = ++seq;
    await inner.put(CONTROL + 'log/' + String(n).padStart(8, '0') + '-' + crypto.randomUUID().slice(0, 8) + '/' + (fail ? 'fail' : 'ok') + '/' + key, '');
    if (!fail) return inner.get(key, options);
    if (cfg.failIn !== 'body') throw injected(key);
    const head = await inner.head(key);
    if (!head) return null;
    const reject = () => Promise.reject(injected(key));
    return {
      key: head.key, version: head.version, size: head.size, etag: head.etag, httpEtag: head.httpEtag,
      checksums: head.checksums, uploaded: head.uploaded, httpMetadata: head.httpMetadata,
      customMetadata: head.customMetadata, storageClass: head.storageClass,
      writeHttpMetadata: (h) => head.writeHttpMetadata(h),
      get body() { return new ReadableStream({ start: (c) => c.error(injected(key)) }); },
      bodyUsed: false, arrayBuffer: reject, bytes: reject, text: reject, json: reject, blob: reject,
    };
  }
  return {
    get,
    head: (...a) => inner.head(...a),
    put: (...a) => inner.put(...a),
    list: (...a) => inner.list(...a),
    delete: (...a) => inner.delete(...a),
    createMultipartUpload: (...a) => inner.createMultipartUpload(...a),
    resumeMultipartUpload: (...a) => inner.resumeMultipartUpload(...a),
  };
}
`;

const faultedR2 = new WeakSet<Miniflare>();

/** Miniflare's shared (not per-worker) options: with a `workers` array they stay at the top level. */
const SHARED_OPTIONS = new Set([
  'host', 'port', 'https', 'httpsKey', 'httpsKeyPath', 'httpsCert', 'httpsCertPath', 'inspectorPort', 'inspectorHost',
  'verbose', 'log', 'handleRuntimeStdio', 'handleStructuredLogs', 'upstream', 'cf', 'liveReload', 'logRequests',
  'structuredWorkerdLogs', 'defaultPersistRoot', 'unsafeStickyBlobs', 'cachePersist', 'd1Persist', 'durableObjectsPersist',
  'kvPersist', 'r2Persist', 'workflowsPersist', 'secretsStorePersist',
]);

/**
 * The single-worker options of startWorker as they are, or, with r2Faults, as two workers: the worker itself
 * first (still the entry), its MODELS moved from its R2 buckets to the wrapper, over the same bucket id.
 */
function withR2Faults<O extends { r2Buckets?: Record<string, unknown> }>(faults: StartOptions['r2Faults'], options: O) {
  if (!faults) return options;
  const shared: Record<string, unknown> = {};
  const worker: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) (SHARED_OPTIONS.has(k) ? shared : worker)[k] = v;
  const { MODELS: models, ...otherBuckets } = (options.r2Buckets ?? {}) as Record<string, string | { id: string }>;
  if (!models) throw new Error('r2Faults: wrangler.toml has no MODELS bucket');
  return {
    ...shared,
    workers: [
      { ...worker, name: 'ctc-edge', r2Buckets: otherBuckets, wrappedBindings: { MODELS: { scriptName: R2_FAULTS_WORKER } } },
      { name: R2_FAULTS_WORKER, modules: true, script: R2_FAULTS_SCRIPT, r2Buckets: { [R2_FAULTS_INNER]: models } },
    ],
  } as unknown as O;
}

/** The real bucket behind MODELS (behind the fault wrapper when there is one): seed and repair through it. */
export function modelsBucket(mf: Miniflare) {
  return faultedR2.has(mf) ? mf.getR2Bucket(R2_FAULTS_INNER, R2_FAULTS_WORKER) : mf.getR2Bucket('MODELS');
}

/** Sets (null: clears) the wrapper's faults; the failFirst counter starts again. */
export async function setR2Faults(w: Worker | Miniflare, faults: R2Faults | null): Promise<void> {
  const mf = w instanceof Miniflare ? w : w.mf;
  if (!faultedR2.has(mf)) throw new Error('setR2Faults: start the worker with the r2Faults option');
  const bucket = await modelsBucket(mf);
  const cfg = { ...faults, version: `${Date.now()}-${Math.random()}` };
  await bucket.put(`${R2_FAULTS_CONTROL}config.json`, new TextEncoder().encode(JSON.stringify(cfg)));
}

/** Every get the wrapper saw so far, in order (optionally only keys under `prefix`, e.g. "default/"). */
export async function r2Calls(w: Worker, prefix = ''): Promise<R2Call[]> {
  const bucket = await modelsBucket(w.mf);
  const calls: R2Call[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: `${R2_FAULTS_CONTROL}log/`, cursor });
    for (const o of page.objects) {
      const m = /^log\/(\d+)-[^/]+\/(ok|fail)\/(.*)$/.exec(o.key.slice(R2_FAULTS_CONTROL.length));
      if (m && m[3].startsWith(prefix)) calls.push({ seq: Number(m[1]), failed: m[2] === 'fail', key: m[3] });
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return calls.sort((a, b) => a.seq - b.seq);
}
