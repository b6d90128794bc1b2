/**
 * Shards over fetch(), checked and cached in the browser.
 *
 * The manifest is always fetched from the network (it names the current shards). A shard is looked up in
 * the Cache API first (key: its URL; shard names carry their content hash, so a new model never hits an
 * old entry); a cached copy is used only if its size and sha256 match the manifest, otherwise it is
 * dropped and fetched again. A fetched shard is stored only after it passed the same check, so the cache
 * never holds a corrupt shard. Entries of shards the manifest no longer lists are deleted. Without the
 * Cache API (an insecure context, a private window that refuses it) every shard is fetched, still checked.
 * The engine's model store checks every shard again, and the reassembled file (src/engine/model-store.ts).
 */
import { MANIFEST_PATH, sha256Hex, type Manifest, type ShardSource } from '../engine/index.js';

export const CACHE_NAME = 'ctc-edge-shards-v1';

export interface ShardCacheStats {
  /** Shards read from the cache (verified). */
  cached: number;
  /** Shards fetched from the network. */
  fetched: number;
  /** Bytes fetched from the network (shards and manifest). */
  fetchedBytes: number;
  /** Cached shards that failed their check and were fetched again. */
  repaired: number;
  /** Whether the Cache API was usable. */
  cacheAvailable: boolean;
}

export interface CachedSourceOptions {
  /** Cache API cache name (default CACHE_NAME); null: no cache. */
  cacheName?: string | null;
  /** Request headers of every fetch (the key: the Worker serves a model only to its tenants). */
  headers?: Record<string, string>;
  /** Called after each shard with its path and where it came from. */
  onShard?: (path: string, from: 'cache' | 'network', bytes: number) => void;
}

export interface CachedShardSource extends ShardSource {
  readonly stats: ShardCacheStats;
  readonly baseUrl: string;
  /** The manifest, once get('manifest.json') ran. */
  manifest(): Manifest | null;
}

async function openCache(name: string | null | undefined): Promise<Cache | null> {
  if (name === null || typeof caches === 'undefined') return null;
  try {
    return await caches.open(name ?? CACHE_NAME);
  } catch {
    return null;
  }
}

/** A ShardSource over `<baseUrl>/<path>` with a verified Cache API cache in front of the shards. */
export function cachedFetchSource(baseUrl: string, opts: CachedSourceOptions = {}): CachedShardSource {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, globalThis.location?.href).href;
  const stats: ShardCacheStats = { cached: 0, fetched: 0, fetchedBytes: 0, repaired: 0, cacheAvailable: false };
  const expected = new Map<string, { bytes: number; sha256: string }>();
  let manifest: Manifest | null = null;
  const cacheP = openCache(opts.cacheName).then((c) => {
    stats.cacheAvailable = c !== null;
    return c;
  });

  const fetchBytes = async (path: string, init?: RequestInit): Promise<Uint8Array | null> => {
    const res = await fetch(base + path, { ...init, headers: opts.headers });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`fetch ${path}: HTTP ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    stats.fetchedBytes += bytes.byteLength;
    return bytes;
  };
  const matches = async (path: string, bytes: Uint8Array) => {
    const want = expected.get(path);
    return !!want && bytes.byteLength === want.bytes && (await sha256Hex(bytes)) === want.sha256.toLowerCase();
  };

  return {
    stats,
    baseUrl: base,
    manifest: () => manifest,
    async get(path: string) {
      if (path === MANIFEST_PATH) {
        const bytes = await fetchBytes(path, { cache: 'no-cache' });
        if (!bytes) return null;
        try {
          manifest = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
          expected.clear();
          for (const f of Object.values(manifest.files ?? {})) for (const s of f.shards ?? []) expected.set(s.path, s);
        } catch {
          manifest = null; // the engine reports the corrupt manifest
        }
        const cache = await cacheP;
        if (cache && manifest) {
          for (const req of await cache.keys()) {
            const p = req.url.startsWith(base) ? req.url.slice(base.length) : null;
            if (p !== null && !expected.has(p)) await cache.delete(req);
          }
        }
        return bytes;
      }
      const cache = await cacheP;
      const url = base + path;
      if (cache) {
        const hit = await cache.match(url);
        if (hit) {
          const bytes = new Uint8Array(await hit.arrayBuffer());
          if (await matches(path, bytes)) {
            stats.cached++;
            opts.onShard?.(path, 'cache', bytes.byteLength);
            return bytes;
          }
          stats.repaired++;
          await cache.delete(url);
        }
      }
      const bytes = await fetchBytes(path);
      if (!bytes) return null;
      stats.fetched++;
      opts.onShard?.(path, 'network', bytes.byteLength);
      if (cache && (await matches(path, bytes))) {
        try {
          await cache.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
        } catch {
          // quota: the model still loads, it is just fetched again next time
        }
      }
      return bytes;
    },
  };
}

/** Deletes the shard cache (the demo's "forget the model" button, tests). */
export async function clearShardCache(name = CACHE_NAME): Promise<boolean> {
  return typeof caches === 'undefined' ? false : caches.delete(name);
}

/**
 * The same source with the manifest's `base` entry replaced by `baseFile` (e.g. `base_webgpu`), so the
 * engine loads, checks and identifies (modelId = its sha256) that variant as its base model.
 */
export function withBaseFile(source: ShardSource, baseFile: string): ShardSource {
  if (baseFile === 'base') return source;
  return {
    async get(path: string) {
      const bytes = await source.get(path);
      if (path !== MANIFEST_PATH || !bytes) return bytes;
      const m = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
      const variant = m.files?.[baseFile];
      if (!variant) throw new Error(`the manifest has no "${baseFile}" base file (have: ${Object.keys(m.files ?? {}).join(', ')})`);
      m.files = { ...m.files, base: variant };
      return new TextEncoder().encode(JSON.stringify(m));
    },
  };
}
