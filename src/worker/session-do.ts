/**
 * One Durable Object per tenant+session (`idFromName(tenant + ':' + session)`): it runs the engine and keeps
 * the session (tokens, KV cache, last hidden row, RNG) in memory across requests, and in SQLite
 * (session-store.ts) so that it survives eviction with identical output.
 *
 * Concurrency: one generation at a time; a second request while one runs gets 409 (never interleaved).
 *
 * Requests are atomic. A request that runs to its end (stop, max_tokens, the round bound) is written to
 * SQLite before its final event is sent. One that does not (the client disconnects, the engine or a storage
 * write fails, the object is evicted) changes nothing: the in-memory state is dropped and the stored one,
 * the last complete request, is what the next request sees. So a session never holds text its client was
 * not given, and retrying an interrupted request (the `openai` client does, on connection errors and 5xx)
 * is always safe. A client that disconnects aborts the engine at the next round boundary: the worker
 * cancels our response stream, and request.signal fires.
 */
import { DurableObject } from 'cloudflare:workers';
import type { DecodingSession, Engine, GenerateEvent, SessionSnapshot } from '../engine/index';
import { EngineError } from '../engine/decoder';
import type { Env } from './env';
import { wasmHeapBytes } from '../engine/ort';
import { getEngine, loadStats, modelLoadError } from './model-cache';
import { ShardError } from '../engine/model-store';
import { ApiError, badRequest } from './openai/errors';
import type { DoDone, DoEvent, DoGenerateRequest, RestoreInfo } from './protocol';
import { KV_CHUNK_BYTES, SessionStore, type KvChunk } from './session-store';

export interface SessionInfo {
  tokens: number;
  kv_tokens_in_memory: number;
  kv_tokens_stored: number;
  model: string | null;
  in_memory: boolean;
  busy: boolean;
  text: string | null;
  /** This isolate: ORT's wasm heap (only grows, so it is the peak) and model load times. */
  isolate: { wasm_heap_bytes: number | null; model_loads: Record<string, { ms: number; at: string }> };
  /** Drafters the model offers (valid values of the `drafter` parameter) and the default one. */
  drafters: string[];
  default_drafter: string | null;
}

export class SessionDO extends DurableObject<Env> {
  private readonly store: SessionStore;
  private session: DecodingSession | null = null;
  private sessionModel: string | null = null;
  /** KV positions in SQLite that are identical to memory (contiguous from 0). */
  private storedKv = 0;
  private busy = false;
  /** How the current in-memory session was brought back (reported once, on the next response). */
  private pendingRestore: RestoreInfo | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new SessionStore(ctx.storage.sql, ctx.storage);
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (request.method === 'POST' && url.pathname === '/generate') {
        return await this.generate((await request.json()) as DoGenerateRequest, request.signal);
      }
      if (request.method === 'GET' && url.pathname === '/info') return Response.json(await this.info(url.searchParams.get('model')));
      if (request.method === 'DELETE' && url.pathname === '/session') return await this.drop();
      return new ApiError(404, 'unknown session operation').toResponse();
    } catch (err) {
      return toApiError(err).toResponse();
    }
  }

  private async info(model: string | null): Promise<SessionInfo> {
    const meta = this.session ? null : this.store.loadMeta();
    if (!this.session && !meta) throw sessionNotFound();
    const tokens = this.session ? [...this.session.tokens] : (meta?.tokens ?? []);
    let text: string | null = null;
    let engine: Engine | null = null;
    const m = this.sessionModel ?? meta?.model ?? model;
    if (m) {
      try {
        engine = await getEngine(this.env.MODELS, m);
        text = tokens.length ? engine.tokenizer.decode(tokens) : null;
      } catch {
        engine = null;
      }
    }
    return {
      tokens: tokens.length,
      kv_tokens_in_memory: this.session?.kvLength ?? 0,
      kv_tokens_stored: this.store.kvLength(),
      model: m,
      in_memory: this.session !== null,
      busy: this.busy,
      text,
      isolate: { wasm_heap_bytes: wasmHeapBytes(), model_loads: Object.fromEntries(loadStats) },
      drafters: engine?.drafterNames ?? [],
      default_drafter: engine ? defaultDrafter(engine) : null,
    };
  }

  private async drop(): Promise<Response> {
    if (this.busy) return new ApiError(409, 'Session is busy generating; retry when it finishes.', 'conflict_error', null, 'session_busy').toResponse();
    if (!this.session && !this.store.loadMeta()) throw sessionNotFound();
    this.forget();
    await this.store.clear();
    return new Response(null, { status: 204 });
  }

  private async generate(req: DoGenerateRequest, requestSignal: AbortSignal): Promise<Response> {
    if (this.busy) {
      throw new ApiError(409, 'Another request is generating in this session; retry when it finishes.', 'conflict_error', null, 'session_busy');
    }
    this.busy = true; // set before the first await: requests cannot interleave
    let started = false;
    try {
      let engine: Engine;
      try {
        engine = await getEngine(this.env.MODELS, req.model);
      } catch (err) {
        throw modelLoadError(req.model, err);
      }
      const session = this.ensureSession(engine, req);
      const held = session.tokens;
      const bos = engine.config.bos_id;

      // The full context for this request. Text prompts reuse the held tokens for the longest prefix of
      // the text they spell, so resending "prompt + completion so far" is an exact continuation.
      let promptTokens: number[];
      if (req.continue) {
        if (held.length === 0) throw badRequest('Nothing to continue: this session holds no tokens yet.', 'continue', 'empty_session');
        promptTokens = [...held];
      } else if ('tokens' in req.prompt) {
        promptTokens = req.prompt.tokens;
        const V = engine.config.vocab_size;
        const bad = promptTokens.find((t) => t >= V);
        if (bad !== undefined) throw badRequest(`Token id ${bad} is outside the vocabulary [0, ${V}).`, req.promptParam, 'invalid_token');
      } else {
        promptTokens = reuseTextPrefix(engine, held, req.prompt.text, bos);
      }

      const ctxLimit = engine.maxContext;
      const maxTokens = req.maxTokens ?? Math.min(req.tenantMaxTokens, ctxLimit - promptTokens.length);
      if (promptTokens.length + Math.max(1, maxTokens) > ctxLimit) {
        throw new ApiError(
          400,
          `This model's maximum context length is ${ctxLimit} tokens. However, you requested ${promptTokens.length + Math.max(1, maxTokens)} tokens ` +
            `(${promptTokens.length} in the prompt, ${Math.max(1, maxTokens)} for the completion). Please reduce the prompt or max_tokens.`,
          'invalid_request_error',
          req.continue ? 'continue' : req.maxTokens === null || promptTokens.length >= ctxLimit ? req.promptParam : 'max_tokens',
          'context_length_exceeded',
        );
      }
      const drafter = req.drafter ?? defaultDrafter(engine);
      if (!engine.drafterNames.includes(drafter)) {
        throw badRequest(`Unknown drafter "${drafter}". This model has: ${engine.drafterNames.join(', ')}.`, 'drafter', 'unknown_drafter');
      }
      // Without an explicit seed, an exact continuation keeps the session's seed (and so its RNG stream).
      const snapRng = session.snapshot().rng;
      const sampling = { ...req.sampling };
      if (sampling.seed < 0) {
        sampling.seed = snapRng && sameTokens(promptTokens, held) ? snapRng.seed : crypto.getRandomValues(new Uint32Array(1))[0];
      }

      const abort = new AbortController();
      const onAbort = () => abort.abort();
      requestSignal?.addEventListener('abort', onAbort);
      const gen = session.generate({
        promptTokens,
        maxTokens,
        sampling,
        stop: req.stop,
        maxRounds: req.maxRounds,
        drafter,
        treeBudget: req.treeBudget ?? undefined,
        signal: abort.signal,
      });
      const restore = this.pendingRestore;
      this.pendingRestore = undefined;
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      started = true;
      this.ctx.waitUntil(
        this.drive(gen, writable, abort, req, engine, promptTokens.length, restore).finally(() => {
          requestSignal?.removeEventListener('abort', onAbort);
          this.busy = false;
        }),
      );
      return new Response(readable, { headers: { 'content-type': 'application/x-ndjson' } });
    } finally {
      if (!started) this.busy = false;
    }
  }

  /** Runs the generation to its end (even if the reader goes away: then it aborts), persists, reports. */
  private async drive(
    gen: AsyncGenerator<GenerateEvent>,
    writable: WritableStream<Uint8Array>,
    abort: AbortController,
    req: DoGenerateRequest,
    engine: Engine,
    promptLength: number,
    restore: RestoreInfo | undefined,
  ): Promise<void> {
    const writer = writable.getWriter();
    const enc = new TextEncoder();
    let readerGone = false;
    const send = async (ev: DoEvent) => {
      if (readerGone) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // A reader that stops reading without cancelling must not hold the session lock forever.
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('stalled')), WRITE_STALL_MS);
        });
        await Promise.race([writer.write(enc.encode(JSON.stringify(ev) + '\n')), stalled]);
      } catch {
        readerGone = true; // client disconnected (or stalled): stop at the next round boundary
        abort.abort();
      } finally {
        clearTimeout(timer);
      }
    };
    let done: DoDone | null = null;
    let tokenEvents = 0;
    try {
      await send({ type: 'start', promptTokens: promptLength, restore });
      for await (const ev of gen) {
        if (ev.type === 'tokens') {
          if (ev.text) await send({ type: 'tokens', text: ev.text });
          if (req.fault?.evictAfterTokens !== undefined && ++tokenEvents >= req.fault.evictAfterTokens) {
            this.ctx.abort('fault injection: evicted mid-stream'); // resets this object, as an eviction does
          }
          // ORT's wasm runs synchronously: without a macrotask turn per round the event loop would not
          // flush the stream to the client, deliver other requests (409s) or notice a disconnect.
          await new Promise((r) => setTimeout(r, 0));
        } else {
          done = { type: 'done', finishReason: ev.finishReason, usage: ev.usage, sessionTokens: 0, restore };
        }
      }
      if (!done || done.finishReason === 'aborted' || readerGone) {
        // Not run to its end: the session goes back to its last complete request (see the top of the file).
        this.forget();
        return;
      }
      // Persist before reporting done: a client that saw "done" can rely on the session surviving eviction.
      const tp = performance.now();
      this.persist(engine, req, done.usage.cachedTokens);
      done.persistMs = performance.now() - tp;
      done.sessionTokens = this.session?.tokens.length ?? 0;
      this.releaseMemory(req);
      await send(done);
    } catch (err) {
      // An engine or storage failure mid-request: drop memory, storage has the last complete state.
      this.forget();
      const e = toApiError(err, req.model);
      await send({ type: 'error', status: e.status, body: e.toJSON(), headers: e.headers });
    } finally {
      // Unlock before the stream ends: a client that saw the end may send its next request at once.
      this.busy = false;
      // close() would wait for a stalled write; abort() fails it instead.
      await (readerGone ? writer.abort() : writer.close()).catch(() => {});
    }
  }

  /**
   * Bounds the memory sessions hold in this isolate (KV + hidden row: 13,312 bytes/token; 128 MB per isolate, ORT's heap
   * takes ~40 MB of it, and many session objects can share an isolate). An ephemeral session is never used
   * again: drop it now. Persistent ones stay in memory (the fast path) until the isolate's sessions exceed
   * SESSION_MEMORY_MB; then the least recently used idle ones drop their state, which they restore from
   * SQLite when next used (a few ms, see docs/SERVING.md).
   */
  private releaseMemory(req: DoGenerateRequest): void {
    if (req.sessionId === null) {
      this.forget();
      return;
    }
    const budget = Number(this.env.SESSION_MEMORY_MB ?? DEFAULT_SESSION_MEMORY_MB) * 2 ** 20;
    const key = this.ctx.id.toString();
    resident.set(key, { ref: new WeakRef(this), bytes: this.session ? this.session.kvLength * this.session.kvBytesPerToken : 0, used: Date.now() });
    let total = 0;
    for (const [k, r] of resident) {
      if (r.ref.deref() === undefined) resident.delete(k); // the runtime evicted that object
      else total += r.bytes;
    }
    if (total <= budget) return;
    const lru = [...resident.entries()].sort((a, b) => a[1].used - b[1].used);
    for (const [k, r] of lru) {
      if (total <= budget) break;
      const obj = r.ref.deref();
      if (!obj || obj === this || obj.busy) continue;
      obj.forget(); // its buffers serve the next session instead of becoming garbage
      total -= r.bytes;
    }
  }

  /** Drops the in-memory session; the next request restores the stored one (the last complete request). */
  private forget(): void {
    this.session?.release();
    this.session = null;
    this.sessionModel = null;
    this.storedKv = 0;
    resident.delete(this.ctx.id.toString());
  }

  /** The in-memory session for this model, restored from SQLite after an eviction, or a fresh one. */
  private ensureSession(engine: Engine, req: DoGenerateRequest): DecodingSession {
    if (this.session && this.sessionModel === req.model) return this.session;
    this.session?.release();
    this.session = null;
    this.storedKv = 0;
    const ephemeral = req.sessionId === null;
    const meta = ephemeral ? null : this.store.loadMeta();
    let session: DecodingSession | null = null;
    if (meta && meta.model === req.model) {
      const snap = meta.state as SessionSnapshot;
      const t0 = performance.now();
      const kvLen = this.store.kvLength();
      // Stored KV is read only if this very graph wrote it: a re-export of the model under the same
      // name (another sha256) keeps the conversation's tokens and recomputes their KV.
      const sameGraph = meta.modelSha === engine.modelId;
      if (sameGraph && this.env.KV_PERSIST !== 'never' && kvLen > 0 && kvLen >= snap.kvLength) {
        // Stored chunks may run past kvLength only if a save was cut short: take exactly kvLength.
        session = engine.restoreSession(snap, this.store.loadKv(kvLen));
        this.storedKv = snap.kvLength;
        this.pendingRestore = { mode: 'kv', tokens: snap.kvLength, ms: performance.now() - t0 };
      } else {
        // Recompute: the engine prefills the tokens on the next generate.
        session = engine.restoreSession({ ...snap, model: engine.modelId, kvLength: 0, hidden: null });
        this.pendingRestore = { mode: 'recompute', tokens: snap.tokens.length, ms: performance.now() - t0 };
      }
    }
    // A stored session of another model is meaningless: the next save replaces its meta row, and
    // storedKv = 0 makes that save drop all of the stored KV chunks (also those of an earlier export).
    this.session = session ?? engine.createSession();
    this.sessionModel = req.model;
    return this.session;
  }

  /** Writes tokens + snapshot always, and the KV positions not yet stored (unless KV_PERSIST=never). */
  private persist(engine: Engine, req: DoGenerateRequest, cachedTokens: number): void {
    const session = this.session;
    if (!session || req.sessionId === null) return; // ephemeral sessions are never written
    const snap = session.snapshot();
    const persistKv = this.env.KV_PERSIST !== 'never';
    // Memory kept positions [0, cachedTokens) of the previous state untouched; later ones were rewritten.
    const valid = persistKv ? Math.min(this.storedKv, cachedTokens, snap.kvLength) : 0;
    const chunks = (from: number) => (persistKv ? session.stateChunks(from, KV_CHUNK_BYTES) : []);
    try {
      this.storedKv = this.store.save({ model: req.model, modelSha: engine.modelId, tokens: snap.tokens, state: snap }, valid,
        req.fault?.failPersist ? failAfter(chunks) : chunks);
    } catch (err) {
      // save() is one transaction: it rolled back, storage still holds the last complete request.
      console.error('session save failed', err);
      throw new ApiError(503, 'The session could not be saved; it is unchanged (the last complete request). Retry the request.',
        'service_unavailable', null, 'session_save_failed', { 'retry-after': '1' });
    }
  }
}

/** Fault injection (tests): the chunks are written, then the save throws inside its transaction. */
function failAfter(chunks: (from: number) => Iterable<KvChunk>): (from: number) => Iterable<KvChunk> {
  return function* (from) {
    yield* chunks(from);
    throw new Error('fault injection: storage write failed');
  };
}

function sessionNotFound(): ApiError {
  return new ApiError(404, 'No such session: it was never used, or it was deleted.', 'not_found_error', 'session_id', 'session_not_found');
}

/** A stream write not taken by the reader within this time counts as a disconnect. */
const WRITE_STALL_MS = 30_000;

/**
 * Default SESSION_MEMORY_MB: KV held in memory by the idle session objects of one isolate. An isolate has
 * 128 MB: ORT's wasm heap takes ~35-40 MiB, the JS heap ~15, the request running now its own KV (~6.5 MiB
 * at 500 tokens) plus the recycled buffers, and the JS engine lets tens of MiB of garbage pile up before
 * it collects. Measured (test/worker/memory.test.ts, 12 sessions of 500 tokens): a peak of 109-116 MiB at 16,
 * ~136 MiB at 32. So 16: two full-context sessions stay in memory, the others restore from storage.
 */
export const DEFAULT_SESSION_MEMORY_MB = 16;
/** Session objects of this isolate that hold state in memory (for releaseMemory's LRU), by object id.
 *  Weak references: an object the runtime evicts must not be kept alive by this table. */
const resident = new Map<string, { ref: WeakRef<SessionDO>; bytes: number; used: number }>();

/**
 * The drafter used when neither the request nor the tenant names one: the fastest measured on long
 * held-out prompts (README "Results"). That is prompt lookup today: each draft head's pass costs more
 * than the tokens it adds to the lookup's tree (`ctc2-ngram` 1.59x plain vs `ngram` 1.79x), so a head
 * drafter is there to be chosen per request or tenant, not the default.
 */
export function defaultDrafter(engine: Engine): string {
  for (const name of ['ngram', 'ctc-ngram', 'plain']) if (engine.drafterNames.includes(name)) return name;
  return engine.drafterNames[0];
}

/**
 * Prompt ids for `text`: `<s>` + the held tokens for the longest prefix of the text they spell (up to the
 * first stop token) + the encoding of the rest. When the text extends what the session holds, the result
 * starts with exactly the held tokens, so the engine reuses their KV and the output matches one long run.
 */
export function reuseTextPrefix(engine: Engine, held: readonly number[], text: string, bos: number): number[] {
  const fresh = () => [bos, ...engine.tokenizer.encode(text)];
  if (held.length < 2 || held[0] !== bos) return fresh();
  let body = held.slice(1);
  const stopAt = body.findIndex((t) => engine.stopTokens.has(t));
  if (stopAt >= 0) body = body.slice(0, stopAt);
  const dec = (k: number) => engine.tokenizer.decode(body.slice(0, k));
  let k: number;
  if (text.startsWith(dec(body.length))) k = body.length;
  else {
    // Largest k whose decoding is a prefix of the text (binary search; decoding is concatenative).
    let lo = 0;
    let hi = body.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (text.startsWith(dec(mid))) lo = mid;
      else hi = mid - 1;
    }
    k = lo;
  }
  if (k === 0) return fresh();
  const rest = text.slice(dec(k).length);
  return [bos, ...body.slice(0, k), ...(rest ? engine.tokenizer.encode(rest) : [])];
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function toApiError(err: unknown, model = 'default'): ApiError {
  if (err instanceof ApiError) return err;
  // A draft head's shards load on first use, so a bad or unreadable one shows up here: a 503 naming it.
  if (err instanceof ShardError || (err as { name?: string })?.name === 'ShardError') return modelLoadError(model, err);
  if (err instanceof EngineError || (err as { name?: string })?.name === 'EngineError') {
    const e = err as EngineError;
    if (e.code === 'session_busy') return new ApiError(409, e.message, 'conflict_error', null, 'session_busy');
    if (e.code === 'unknown_drafter') return badRequest(e.message, 'drafter', 'unknown_drafter');
    if (e.code === 'context_length_exceeded') return badRequest(e.message, 'prompt', 'context_length_exceeded');
    return badRequest(e.message, null, e.code);
  }
  console.error('session error', err);
  return new ApiError(500, `Internal error: ${(err as Error)?.message ?? String(err)}`, 'server_error');
}
