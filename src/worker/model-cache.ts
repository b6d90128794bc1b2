/**
 * Models from R2, loaded once per isolate.
 *
 * R2ShardSource reads `<model>/<path>` from the bucket; the engine's model store checks every shard's size
 * and sha256 before use and throws ShardError naming the shard, which becomes a 503 (never garbage output).
 * The per-isolate cache holds the load promise, so concurrent requests share one load; a failed load is
 * dropped from the cache at once, so the next request retries (e.g. after the shard is re-uploaded).
 */
import { Engine } from '../engine/index';
import { ShardError } from '../engine/model-store';
import { registerDrafters } from '../engine/drafters/index';
import type { ShardSource } from '../engine/types';
import { ApiError } from './openai/errors';
import { installWorkerdOrt } from './ort-workerd';

export class R2ShardSource implements ShardSource {
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix: string,
  ) {}

  async get(path: string): Promise<Uint8Array | null> {
    const obj = await this.bucket.get(this.prefix + path);
    return obj ? new Uint8Array(await obj.arrayBuffer()) : null;
  }
}

const engines = new Map<string, Promise<Engine>>();
/** Load time of the engines this isolate loaded (for /health and the report). */
export const loadStats = new Map<string, { ms: number; at: string }>();

export function getEngine(bucket: R2Bucket, model: string): Promise<Engine> {
  let p = engines.get(model);
  if (!p) {
    installWorkerdOrt();
    const t0 = performance.now();
    p = Engine.load(new R2ShardSource(bucket, `${model}/`)).then(
      (engine) => {
        registerDrafters(engine); // ngram always; medusa / ctc when the manifest has their heads
        loadStats.set(model, { ms: performance.now() - t0, at: new Date().toISOString() });
        return engine;
      },
      (err: unknown) => {
        engines.delete(model); // not cached: the next request tries again
        throw err;
      },
    );
    engines.set(model, p);
  }
  return p;
}

/** A model load failure as an API error: a bad shard is a 503 naming it. */
export function modelLoadError(model: string, err: unknown): ApiError {
  if (err instanceof ShardError || (err as { name?: string })?.name === 'ShardError') {
    const e = err as ShardError;
    return new ApiError(
      503,
      `Model "${model}" is unavailable: shard "${e.shard}" is ${e.reason}${e.reason === 'size' ? ' (wrong size)' : ''}. ${e.message}`,
      'service_unavailable',
      null,
      `shard_${e.reason}`,
    );
  }
  return new ApiError(503, `Model "${model}" failed to load: ${(err as Error)?.message ?? String(err)}`, 'service_unavailable', null, 'model_unavailable');
}
