/**
 * Seeding an R2 bucket of miniflare (the simulator that `wrangler dev` and the worker tests run) with models
 * from disk: `<name>/<shard path>` for every shard of a `manifest.json`, then `<name>/manifest.json`, the
 * layout the worker reads. One function for `npm start` (scripts/dev.ts: wrangler dev's persisted local
 * state) and the worker tests (test/worker/harness.ts: an in-memory bucket, plus broken copies of the model).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Miniflare } from 'miniflare';

/** The part of a model's manifest.json that seeding reads. */
export interface ShardManifest {
  files: Record<string, { shards: { path: string; bytes: number; sha256: string }[] }>;
}

/** One model to put into the bucket. */
export interface SeedModel {
  /** Key prefix in the bucket: `<name>/manifest.json`, `<name>/<shard path>`. */
  name: string;
  /** The folder of its manifest.json and shards (e.g. model-shards/default). */
  dir: string;
  /** Changes a shard's bytes before they are written (it may change them in place), or leaves the shard out (null). */
  shard?: (path: string, bytes: Uint8Array) => Uint8Array | null;
}

/** A bucket as miniflare hands it out (`mf.getR2Bucket(...)`). */
export type SeedBucket = Awaited<ReturnType<Miniflare['getR2Bucket']>>;

/** Every `<name>/manifest.json` model under `modelsDir` (e.g. model-shards/), named after its folder. */
export function modelsIn(modelsDir: string): SeedModel[] {
  if (!existsSync(modelsDir)) return [];
  return readdirSync(modelsDir)
    .filter((d) => existsSync(join(modelsDir, d, 'manifest.json')))
    .map((name) => ({ name, dir: join(modelsDir, name) }));
}

/**
 * Writes each model's shards, then its manifest (last, so it never points at shards that are not there yet).
 * A shard already in the bucket with the same size and sha256 (custom metadata `sha256`) is skipped: shards
 * are content-hashed, so seeding a persisted bucket again writes nothing. Returns how many shards it wrote;
 * `onModel` hears of each model once it is in, with the shards written so far (all models).
 */
export async function seedModels(
  bucket: SeedBucket,
  models: SeedModel[],
  onModel?: (name: string, shards: number, written: number) => void,
): Promise<number> {
  let written = 0;
  for (const model of models) {
    const manifestBytes = new Uint8Array(readFileSync(join(model.dir, 'manifest.json')));
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as ShardManifest;
    const shards = Object.values(manifest.files).flatMap((f) => f.shards);
    for (const s of shards) {
      const key = `${model.name}/${s.path}`;
      // A plain Uint8Array copy: miniflare's proxy rejects Node's pooled Buffers.
      const read = () => new Uint8Array(readFileSync(join(model.dir, s.path)));
      let bytes: Uint8Array | null = null;
      let sha256 = s.sha256;
      if (model.shard) {
        bytes = model.shard(s.path, read());
        if (bytes === null) continue;
        sha256 = createHash('sha256').update(bytes).digest('hex');
      }
      const head = await bucket.head(key);
      if (head && head.size === (bytes?.length ?? s.bytes) && head.customMetadata?.sha256 === sha256) continue;
      await bucket.put(key, bytes ?? read(), { customMetadata: { sha256 } });
      written++;
    }
    await bucket.put(`${model.name}/manifest.json`, manifestBytes);
    onModel?.(model.name, shards.length, written);
  }
  return written;
}
