/**
 * Models from R2, loaded once per isolate.
 *
 * R2ShardSource reads `<model>/<path>` from the bucket; the engine's model store checks every shard's size
 * and sha256 before use and throws ShardError naming the shard, which becomes a 503 (never garbage output).
 * R2 failing transiently (a `get` that throws, or a body read that fails) is retried with exponential
 * backoff and jitter (R2_GET_ATTEMPTS, R2_BACKOFF_*); when every attempt fails the shard is `unavailable`:
 * a 503 `shard_unavailable` naming it, with Retry-After. An absent object is not retried: a missing shard is
 * a deployment error (503 `shard_missing`), as are a corrupt or truncated one (`shard_corrupt`, `shard_size`).
 * The per-isolate cache holds the load promise, so concurrent requests share one load; a failed load is
 * dropped from the cache at once, so the next request retries (e.g. after the shard is re-uploaded).
 */
import { Engine, ShardError, registerDrafters, type ShardSource } from '../engine/index';
import { ApiError } from './openai/errors';
import { installWorkerdOrt } from './ort-workerd';

/** Tries per R2 read (the first one included) before the shard counts as unavailable. */
export const R2_GET_ATTEMPTS = 4;
/**
 * Backoff before retry n (n = 1, 2, ...): R2_BACKOFF_BASE_MS * 2^(n-1), so 100 → 200 → 400 ms, times a
 * jitter factor drawn uniformly from [0.5, 1.5) (concurrent loads of many isolates do not retry in
 * lockstep), capped at R2_BACKOFF_MAX_MS. Worst case, a failing shard costs about 1 s before the 503.
 */
export const R2_BACKOFF_BASE_MS = 100;
export const R2_BACKOFF_MAX_MS = 1_000;
/** Retry-After (s) of a 503 for a shard R2 could not serve: storage outages are short but not sub-second. */
export const UNAVAILABLE_RETRY_AFTER_S = 10;
/** Retry-After (s) of a 503 for a missing, truncated or corrupt shard: it needs a re-upload. */
export const BROKEN_SHARD_RETRY_AFTER_S = 60;

/** The delay before retry `retry` (1-based), `random` in [0, 1). */
export function r2BackoffMs(retry: number, random: number = Math.random()): number {
  const nominal = R2_BACKOFF_BASE_MS * 2 ** (retry - 1);
  return Math.min(R2_BACKOFF_MAX_MS, Math.round(nominal * (0.5 + random)));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class R2ShardSource implements ShardSource {
  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix: string,
  ) {}

  /**
   * The bytes of `<prefix><path>`, or null when R2 has no such object (not retried). A get that throws or a
   * body that fails to read is retried; after R2_GET_ATTEMPTS failures, ShardError(path, 'unavailable').
   */
  async get(path: string): Promise<Uint8Array | null> {
    const key = this.prefix + path;
    let last: unknown;
    for (let attempt = 1; attempt <= R2_GET_ATTEMPTS; attempt++) {
      if (attempt > 1) await sleep(r2BackoffMs(attempt - 1));
      try {
        const obj = await this.bucket.get(key);
        return obj ? new Uint8Array(await obj.arrayBuffer()) : null;
      } catch (err) {
        last = err;
      }
    }
    const why = (last as Error)?.message ?? String(last);
    throw new ShardError(path, 'unavailable', `R2 get of "${key}" failed ${R2_GET_ATTEMPTS} times; last error: ${why}`);
  }
}

const engines = new Map<string, Promise<Engine>>();
/** Load time of the engines this isolate loaded (reported by GET /v1/sessions/{id}). */
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

/** A model load failure as an API error: a bad or unreadable shard is a 503 naming it, with Retry-After. */
export function modelLoadError(model: string, err: unknown): ApiError {
  if (err instanceof ShardError) {
    const unavailable = err.reason === 'unavailable';
    const retryAfter = unavailable ? UNAVAILABLE_RETRY_AFTER_S : BROKEN_SHARD_RETRY_AFTER_S;
    const what = unavailable
      ? `could not be read from storage (R2) after ${R2_GET_ATTEMPTS} attempts`
      : `is ${err.reason}${err.reason === 'size' ? ' (wrong size)' : ''}`;
    return new ApiError(503, `Model "${model}" is unavailable: shard "${err.shard}" ${what}. ${err.message}`, 'service_unavailable', null, `shard_${err.reason}`, {
      'retry-after': String(retryAfter),
    });
  }
  return new ApiError(503, `Model "${model}" failed to load: ${(err as Error)?.message ?? String(err)}`, 'service_unavailable', null, 'model_unavailable', {
    'retry-after': String(UNAVAILABLE_RETRY_AFTER_S),
  });
}
