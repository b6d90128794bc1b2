/**
 * Loads a model folder (manifest + content-hashed shards) from any ShardSource, verifying every
 * shard's size and sha256 before use and the reassembled file's as well. Uses only Web-standard
 * crypto.subtle, so it runs in workerd, Node 20 and browsers.
 */
import type { Manifest, ManifestFile, ShardSource } from './types.js';

/**
 * Why a shard could not be used: `missing` (the source has no such object), `size` / `corrupt` (wrong
 * length / sha256), `unavailable` (the source failed to read it, e.g. storage down after the source's own
 * retries; raised by ShardSource implementations, never by the checks here).
 */
export type ShardErrorReason = 'missing' | 'corrupt' | 'size' | 'unavailable';

/** A shard (or the manifest) is absent, unreadable, has the wrong size, or fails its hash. */
export class ShardError extends Error {
  readonly shard: string;
  readonly reason: ShardErrorReason;

  constructor(shard: string, reason: ShardErrorReason, detail?: string) {
    super(`model shard ${shard}: ${reason}${detail ? ` (${detail})` : ''}`);
    this.name = 'ShardError';
    this.shard = shard;
    this.reason = reason;
  }
}

export const MANIFEST_PATH = 'manifest.json';

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  const b = new Uint8Array(digest);
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

/** Reads and sanity-checks manifest.json. A missing or unparsable manifest is a ShardError. */
export async function loadManifest(source: ShardSource): Promise<Manifest> {
  const bytes = await source.get(MANIFEST_PATH);
  if (!bytes) throw new ShardError(MANIFEST_PATH, 'missing');
  let m: Manifest;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
  } catch (e) {
    throw new ShardError(MANIFEST_PATH, 'corrupt', `not JSON: ${(e as Error).message}`);
  }
  if (m?.format !== 1 || !m.config || !m.files?.base || !m.files?.tokenizer) {
    throw new ShardError(MANIFEST_PATH, 'corrupt', 'not a format-1 manifest with base and tokenizer');
  }
  return m;
}

/**
 * The bytes of artifact `name` (e.g. "base", "tokenizer", "ctc_head"): every shard fetched
 * (in parallel), checked for size and sha256, concatenated, and the whole checked again.
 */
export async function loadArtifact(source: ShardSource, manifest: Manifest, name: string): Promise<Uint8Array> {
  const file: ManifestFile | undefined = manifest.files[name];
  if (!file) throw new ShardError(name, 'missing', 'not in the manifest');
  const parts = await Promise.all(
    file.shards.map(async (shard) => {
      const bytes = await source.get(shard.path);
      if (!bytes) throw new ShardError(shard.path, 'missing');
      if (bytes.byteLength !== shard.bytes) {
        throw new ShardError(shard.path, 'size', `${bytes.byteLength} bytes, expected ${shard.bytes}`);
      }
      if ((await sha256Hex(bytes)) !== shard.sha256.toLowerCase()) throw new ShardError(shard.path, 'corrupt', 'sha256 mismatch');
      return bytes;
    }),
  );
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const label = `${name} (${file.shards.map((s) => s.path).join(', ')})`;
  if (total !== file.bytes) throw new ShardError(label, 'size', `${total} bytes, expected ${file.bytes}`);
  const out = parts.length === 1 ? parts[0] : new Uint8Array(total);
  if (parts.length > 1) {
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.byteLength;
    }
  }
  if ((await sha256Hex(out)) !== file.sha256.toLowerCase()) throw new ShardError(label, 'corrupt', 'sha256 of the whole file');
  return out;
}

/** A ShardSource over an in-memory map (tests). */
export function memoryShardSource(files: Record<string, Uint8Array>): ShardSource {
  return { get: async (path) => files[path] ?? null };
}
