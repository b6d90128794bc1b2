/**
 * The built Worker bundle (`wrangler deploy --dry-run --outdir <dir>`) in real workerd through miniflare's
 * Node API, with the bindings of wrangler.toml, so what runs is the deployed configuration. The worker tests
 * (test/worker/harness.ts) and `npm run measure:worker` (scripts/measure-worker.ts) start it this way, and
 * seed its R2 bucket with seedModels (./r2-seed.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Miniflare, type MiniflareOptions } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { workerdV8FlagsEnv } from './workerd-v8-flags.js';

/** The repository root (wrangler.toml). */
export const ROOT = resolve(import.meta.dirname, '../..');

export interface BundleOptions {
  /** The TENANTS binding (default: wrangler.toml's, the `dev` tenant). */
  tenants?: Record<string, unknown>;
  /** The MODEL_NAMES binding (default: wrangler.toml's). */
  modelNames?: string[];
  /** More bindings, over those above. */
  vars?: Record<string, string>;
  /** Directory for Durable Object storage (SQLite) that outlives this miniflare; default in-memory. */
  persist?: string;
  /** Open V8's inspector on this port (measurements: per-isolate heap usage). */
  inspectorPort?: number;
  /** Rewrites the options before miniflare starts (the tests put an R2 fault wrapper in front of MODELS). */
  wrapOptions?: (options: MiniflareOptions) => MiniflareOptions;
}

/** The bundle's modules for miniflare: the entry first, the wasm precompiled (the CompiledWasm rule of wrangler.toml). */
export function bundleModules(dir: string) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.wasm'));
  files.sort((a, b) => (a === 'index.js' ? -1 : b === 'index.js' ? 1 : a.localeCompare(b)));
  return files.map((f) => ({
    type: f.endsWith('.wasm') ? ('CompiledWasm' as const) : ('ESModule' as const),
    path: join(dir, f),
    contents: readFileSync(join(dir, f)),
  }));
}

/** Starts the bundle in `bundleDir` on a free port of 127.0.0.1; its R2 bucket starts empty. */
export async function startBundle(bundleDir: string, opts: BundleOptions = {}): Promise<{ mf: Miniflare; url: string }> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml'));
  const options = {
    modules: bundleModules(bundleDir),
    modulesRoot: bundleDir,
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags,
    durableObjects: workerOptions.durableObjects,
    r2Buckets: workerOptions.r2Buckets,
    bindings: {
      ...(workerOptions.bindings as Record<string, string>),
      // This server listens on 127.0.0.1 only: local_only keys (sk-local-dev) may be accepted (tenants.ts).
      LOCAL_KEYS: 'loopback',
      ...(opts.tenants ? { TENANTS: JSON.stringify(opts.tenants) } : {}),
      ...(opts.modelNames ? { MODEL_NAMES: opts.modelNames.join(',') } : {}),
      ...opts.vars,
    },
    durableObjectsPersist: opts.persist ?? false,
    host: '127.0.0.1',
    port: 0,
    ...(opts.inspectorPort ? { inspectorPort: opts.inspectorPort } : {}),
  } as MiniflareOptions;
  Object.assign(process.env, workerdV8FlagsEnv()); // read by miniflare when it starts workerd
  const mf = new Miniflare(opts.wrapOptions ? opts.wrapOptions(options) : options);
  const url = (await mf.ready).href;
  return { mf, url };
}
