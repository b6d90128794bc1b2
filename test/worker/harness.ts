/**
 * Starts the built worker bundle in workerd via miniflare's Node API, with bindings from wrangler.toml
 * (so tests run the deployed configuration), test tenants, and an R2 bucket seeded from model-shards/.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Miniflare } from 'miniflare';
import OpenAI from 'openai';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';

export const ROOT = resolve(import.meta.dirname, '../..');
export const MODEL_DIR = process.env.CTC_MODEL_DIR ?? join(ROOT, 'model-shards/default');

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Test tenants: keys are `sk-<name>`. */
export const TENANTS = {
  dev: { key_sha256: [sha256('sk-local-dev')], max_tokens: 512, max_rounds: 64, rpm: 0, local_only: true },
  // Small per-request round bound: requests end with "length" and are continued.
  alice: { key_sha256: [sha256('sk-alice')], max_tokens: 256, max_rounds: 3, rpm: 0 },
  bob: { key_sha256: [sha256('sk-bob')], max_tokens: 512, max_rounds: 1000, rpm: 0 },
  carol: { key_sha256: [sha256('sk-carol')], max_tokens: 256, max_rounds: 64, rpm: 0, drafter: 'plain' },
  limited: { key_sha256: [sha256('sk-limited')], max_tokens: 16, max_rounds: 4, rpm: 3 },
};

export interface Manifest {
  files: Record<string, { bytes: number; sha256: string; shards: { path: string; bytes: number; sha256: string }[] }>;
}

export function readManifest(dir = MODEL_DIR): Manifest {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) throw new Error(`missing ${p}: the worker tests need the default model (model-shards/default, written by scripts/shard.py)`);
  return JSON.parse(readFileSync(p, 'utf8')) as Manifest;
}

/** Extra models made from the default one: `corrupt` (a flipped byte in the first base shard), `missing`. */
export const BROKEN_MODELS = ['corrupt', 'missing'] as const;

export interface StartOptions {
  /** Directory for Durable Object storage (SQLite) that outlives this miniflare; default in-memory. */
  persist?: string;
  vars?: Record<string, string>;
  /** Open V8's inspector on this port (measurements: per-isolate heap usage). */
  inspectorPort?: number;
}

export interface Worker {
  mf: Miniflare;
  url: string;
  client(key: string, opts?: { maxRetries?: number }): OpenAI;
  fetch(path: string, init?: RequestInit & { key?: string }): Promise<Response>;
  dispose(): Promise<void>;
}

function bundleModules(dir: string) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.wasm'));
  // The entry first; the wasm as a precompiled module (the CompiledWasm rule of wrangler.toml).
  files.sort((a, b) => (a === 'index.js' ? -1 : b === 'index.js' ? 1 : a.localeCompare(b)));
  return files.map((f) => ({
    type: f.endsWith('.wasm') ? ('CompiledWasm' as const) : ('ESModule' as const),
    path: join(dir, f),
    contents: readFileSync(join(dir, f)),
  }));
}

export async function startWorker(bundleDir: string, opts: StartOptions = {}): Promise<Worker> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml'));
  const mf = new Miniflare({
    modules: bundleModules(bundleDir),
    modulesRoot: bundleDir,
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags,
    durableObjects: workerOptions.durableObjects,
    r2Buckets: workerOptions.r2Buckets,
    bindings: {
      ...(workerOptions.bindings as Record<string, string>),
      TENANTS: JSON.stringify(TENANTS),
      MODEL_NAMES: ['default', ...BROKEN_MODELS].join(','),
      ...opts.vars,
    },
    durableObjectsPersist: opts.persist ?? false,
    host: '127.0.0.1',
    port: 0,
    ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
  });
  const url = (await mf.ready).href;
  await seedModels(mf);
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

async function seedModels(mf: Miniflare): Promise<void> {
  const bucket = await mf.getR2Bucket('MODELS');
  const manifest = readManifest();
  const shards = Object.values(manifest.files).flatMap((f) => f.shards);
  const firstBase = manifest.files.base.shards[0].path;
  const manifestBytes = new Uint8Array(readFileSync(join(MODEL_DIR, 'manifest.json')));
  for (const model of ['default', ...BROKEN_MODELS]) {
    for (const s of shards) {
      let bytes = new Uint8Array(readFileSync(join(MODEL_DIR, s.path))); // a plain copy: miniflare's proxy rejects pooled Buffers
      if (s.path === firstBase && model === 'missing') continue;
      if (s.path === firstBase && model === 'corrupt') {
        bytes[bytes.length >> 1] ^= 0xff; // same size, wrong sha256
      }
      await bucket.put(`${model}/${s.path}`, bytes);
    }
    await bucket.put(`${model}/manifest.json`, manifestBytes);
  }
}

/** Fix the corrupt model's shard in R2 (the next request must load it: failures are not cached). */
export async function repairCorruptModel(w: Worker): Promise<void> {
  const bucket = await w.mf.getR2Bucket('MODELS');
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
  const bucket = await w.mf.getR2Bucket('MODELS');
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
