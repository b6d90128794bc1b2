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
 * is always safe. A client that disconnects aborts the engine at the next round boundary: the Worker
 * cancels the generation's event source (or its request ends, which disposes of it).
 *
 * Expiry: every request of a persistent session sets the object's alarm to its tenant's TTL from now; when
 * it fires on an idle session, the object deletes its storage and tells the tenant's object (rate-limiter.ts),
 * which counts the tenant's stored sessions. The session objects also charge each generation's tokens there.
 *
 * Called over RPC (protocol.ts): `generate`, `info`, `drop`. The pieces that need no Durable Object are
 * plain modules: prompt assembly (prompt.ts), the request's defaults that need the model (engineRequest in
 * openai/request.ts: the default drafter, max_tokens within the context, the seed), the isolate's
 * memory budget (session-memory.ts), which stored KV a save keeps and a restore reads (kv-persist.ts), the
 * events' queue (event-channel.ts). The engine's errors go to the Worker as they are (protocol.ts: DoError).
 */
import { DurableObject, RpcTarget } from 'cloudflare:workers';
import { defaultDrafter, EngineError, ShardError, type DecodingSession, type Engine, type GenerateEvent, type SessionSnapshot, type TokenLogprob } from '../engine/index';
import { wasmHeapBytes } from '../wasm-heap';
import type { Env } from './env';
import { EventChannel } from './event-channel';
import { persistsKv, restoresStoredKv, validStoredKv } from './kv-persist';
import { getEngine, loadStats, modelLoadError } from './model-cache';
import { ApiError } from './openai/errors';
import { assemblePrompt } from './prompt';
import { engineRequest, type SessionRequest } from './openai/request';
import type { DoDone, DoEvent, DoEventSource, DoFailure, DoLogprob, DoResult, DoStart, RestoreInfo, SessionInfo } from './protocol';
import { memoryBudgetBytes, ResidentSessions } from './session-memory';
import { SessionStore, type KvChunk } from './session-store';

export type { SessionInfo };

/** A started generation's events, handed to the Worker over RPC (DoEventSource). */
class GenerationEvents extends RpcTarget implements DoEventSource {
  constructor(private readonly channel: EventChannel<DoEvent>) {
    super();
  }

  next(): Promise<DoEvent[]> {
    return this.channel.take();
  }

  cancel(): void {
    this.channel.cancel();
  }

  /** The Worker disposed of its stub (or its request ended): the reader is gone. */
  [Symbol.dispose](): void {
    this.channel.cancel();
  }
}

export class SessionDO extends DurableObject<Env> {
  private readonly store: SessionStore;
  private session: DecodingSession | null = null;
  private sessionModel: string | null = null;
  /** KV positions in SQLite that are identical to memory (contiguous from 0). */
  private storedKv = 0;
  /** Generating now (read by the isolate's memory table: a busy session is never dropped). */
  busy = false;
  /** How the current in-memory session was brought back (reported once, on the next response). */
  private pendingRestore: RestoreInfo | undefined;
  /** The `user` of the last request (reported by info). */
  private lastUser: string | null = null;
  /** Whose session this is (stored beside it, for the alarm), once recorded. */
  private owner: Owner | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new SessionStore(ctx.storage.sql, ctx.storage);
  }

  /** The session's size, text and model, and this isolate's memory and model loads. RPC method. */
  async info(model: string | null): Promise<DoResult<SessionInfo>> {
    try {
      return { ok: true, value: await this.describe(model) };
    } catch (err) {
      return failure(err);
    }
  }

  /** Deletes the session (memory and storage). RPC method. */
  async drop(): Promise<DoResult<null>> {
    try {
      if (this.busy) throw new ApiError(409, 'Session is busy generating; retry when it finishes.', 'conflict_error', null, 'session_busy');
      if (!this.session && !this.store.loadMeta()) throw sessionNotFound();
      await this.expire();
      return { ok: true, value: null };
    } catch (err) {
      return failure(err);
    }
  }

  /** The session's TTL ran out (set by its last request): delete it, unless a request runs right now. */
  async alarm(): Promise<void> {
    if (this.busy) {
      await this.ctx.storage.setAlarm(Date.now() + 60_000); // the request that runs sets a new one
      return;
    }
    await this.expire();
  }

  /** Forgets the session in memory and storage (alarm included) and tells the tenant's object. */
  private async expire(): Promise<void> {
    const owner = this.owner ?? (await this.ctx.storage.get<Owner>(OWNER_KEY)) ?? null;
    this.forget();
    await this.store.clear();
    await this.ctx.storage.deleteAlarm();
    this.owner = null;
    if (owner) await tenantObject(this.env, owner.tenant).sessionGone(owner.id);
  }

  /**
   * Starts a generation. RPC method: a DoFailure when it cannot start, else its start event and the
   * source of its events (GenerationEvents), which the engine fills as it generates.
   */
  async generate(req: SessionRequest): Promise<{ ok: true; start: DoStart; events: GenerationEvents } | DoFailure> {
    try {
      return await this.start(req);
    } catch (err) {
      return failure(err, req.model);
    }
  }

  private async describe(model: string | null): Promise<SessionInfo> {
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
      ...(this.env.DIAGNOSTICS === 'on' ? { isolate: { wasm_heap_bytes: wasmHeapBytes(), model_loads: Object.fromEntries(loadStats) } } : {}),
      drafters: engine?.drafterNames ?? [],
      // the default at the API's default temperature (1); greedy requests get defaultDrafter(names, { temperature: 0 })
      default_drafter: engine ? defaultDrafter(engine.drafterNames, { temperature: 1 }) : null,
      user: this.lastUser,
    };
  }

  private async start(req: SessionRequest): Promise<{ ok: true; start: DoStart; events: GenerationEvents }> {
    if (this.busy) {
      throw new ApiError(409, 'Another request is generating in this session; retry when it finishes.', 'conflict_error', null, 'session_busy');
    }
    this.busy = true; // set before the first await: requests cannot interleave
    let started = false;
    try {
      // First: a session the tenant's object admitted is then in its table, and this alarm removes it again
      // even if the request fails before anything is stored.
      if (req.sessionId !== null) await this.keepFor(req);
      let engine: Engine;
      try {
        engine = await getEngine(this.env.MODELS, req.model);
      } catch (err) {
        throw modelLoadError(req.model, err);
      }
      const session = this.ensureSession(engine, req);
      const held = session.tokens;
      if ('text' in req.prompt && !req.continue) refuseOverlongText(engine, req.prompt.text, req.params.prompt);
      const promptTokens = assemblePrompt(engine, held, req.prompt, req.continue);
      const abort = new AbortController();
      const heldSeed = session.snapshot().rng?.seed ?? null;
      const genReq = engineRequest(req, promptTokens, { drafterNames: engine.drafterNames, maxContext: engine.maxContext, held, heldSeed }, abort.signal);
      session.check(genReq); // the engine validates the request (tokens, context, drafter, ...)
      const gen = session.generate(genReq);
      const restore = this.pendingRestore;
      this.pendingRestore = undefined;
      const channel = new EventChannel<DoEvent>(() => abort.abort(), 16, WRITE_STALL_MS);
      const start: DoStart = { type: 'start', promptTokens: promptTokens.length, restore };
      if (req.echo) start.echoText = 'text' in req.prompt && !req.continue ? req.prompt.text : engine.tokenizer.decode(promptTokens);
      if (req.user !== null) this.lastUser = req.user;
      started = true;
      this.ctx.waitUntil(
        this.drive(gen, channel, req, engine, restore).finally(() => {
          this.busy = false;
        }),
      );
      return { ok: true, start, events: new GenerationEvents(channel) };
    } finally {
      if (!started) this.busy = false;
    }
  }

  /** Runs the generation to its end (even if the reader goes away: then it aborts), persists, reports. */
  private async drive(
    gen: AsyncGenerator<GenerateEvent>,
    channel: EventChannel<DoEvent>,
    req: SessionRequest,
    engine: Engine,
    restore: RestoreInfo | undefined,
  ): Promise<void> {
    // A reader that goes away (cancels, or stalls past WRITE_STALL_MS) aborts the engine at the next
    // round boundary (the channel's onCancel); later sends are dropped.
    const send = (ev: DoEvent) => channel.send(ev);
    let done: DoDone | null = null;
    let tokenEvents = 0;
    let usage: DoDone['usage'] | null = null;
    try {
      for await (const ev of gen) {
        if (ev.type === 'tokens') {
          const logprobs = ev.logprobs && logprobTexts(engine, ev.logprobs);
          if (ev.text || logprobs?.length) await send({ type: 'tokens', text: ev.text, ...(logprobs ? { logprobs } : {}) });
          if (req.fault?.evictAfterTokens !== undefined && ++tokenEvents >= req.fault.evictAfterTokens) {
            this.ctx.abort('fault injection: evicted mid-stream'); // resets this object, as an eviction does
          }
          // ORT's wasm runs synchronously: without a macrotask turn per round the event loop would not
          // deliver the events to the reader, other requests (409s) or a cancel.
          await new Promise((r) => setTimeout(r, 0));
        } else {
          usage = ev.usage;
          done = { type: 'done', finishReason: ev.finishReason, usage: ev.usage, sessionTokens: 0, restore };
        }
      }
      // Charged before the outcome is reported, interrupted generations included: what ran is what counts.
      if (req.meter && usage) await this.charge(req, usage.promptTokens + usage.completionTokens);
      if (!done || done.finishReason === 'aborted' || channel.gone) {
        // Not run to its end: the session goes back to its last complete request (see the top of the file).
        this.forget();
        return;
      }
      // Persist before reporting done: a client that saw "done" can rely on the session surviving eviction.
      const tp = performance.now();
      this.persist(engine, req, done.usage.cachedTokens);
      done.persistMs = performance.now() - tp;
      done.sessionTokens = this.session?.tokens.length ?? 0;
      if (req.sessionId !== null) this.reportStored(req);
      this.releaseMemory(req);
      await send(done);
    } catch (err) {
      // An engine or storage failure mid-request: drop memory, storage has the last complete state.
      this.forget();
      await send(failure(err, req.model).error);
    } finally {
      // Unlock before the events end: a client that saw the end may send its next request at once.
      this.busy = false;
      channel.close();
    }
  }

  /** Records whose session this is (once) and sets its expiry: the tenant's TTL from now. */
  private async keepFor(req: SessionRequest): Promise<void> {
    if (!this.owner || this.owner.tenant !== req.tenant || this.owner.id !== req.sessionId) {
      this.owner = { tenant: req.tenant, id: req.sessionId! };
      await this.ctx.storage.put(OWNER_KEY, this.owner);
    }
    await this.ctx.storage.setAlarm(Date.now() + req.sessionTtlMs);
  }

  private async charge(req: SessionRequest, tokens: number): Promise<void> {
    try {
      await tenantObject(this.env, req.tenant).charge(req.meter!, tokens);
    } catch (err) {
      console.error('charging the tenant failed', err); // the request itself is fine: never fail it for this
    }
  }

  /** Tells the tenant's object how many bytes this session's storage holds now (not awaited). */
  private reportStored(req: SessionRequest): void {
    const bytes = this.ctx.storage.sql.databaseSize;
    this.ctx.waitUntil(tenantObject(this.env, req.tenant).sessionStored(req.sessionId!, bytes).catch((err) => console.error('reporting stored bytes failed', err)));
  }

  /**
   * Bounds the memory sessions hold in this isolate (session-memory.ts). An ephemeral session is never used
   * again: drop it now. A persistent one stays in memory until the isolate's sessions exceed
   * SESSION_MEMORY_MB; then the least recently used idle ones drop their state.
   */
  private releaseMemory(req: SessionRequest): void {
    if (req.sessionId === null) {
      this.forget();
      return;
    }
    const bytes = this.session ? this.session.kvLength * this.session.kvBytesPerToken : 0;
    resident.set(this.ctx.id.toString(), this, bytes, Date.now());
    resident.enforce(memoryBudgetBytes(this.env.SESSION_MEMORY_MB), this);
  }

  /** Drops the in-memory session; the next request restores the stored one (the last complete request). */
  forget(): void {
    this.session?.release();
    this.session = null;
    this.sessionModel = null;
    this.storedKv = 0;
    resident.delete(this.ctx.id.toString());
  }

  /** The in-memory session for this model, restored from SQLite after an eviction, or a fresh one. */
  private ensureSession(engine: Engine, req: SessionRequest): DecodingSession {
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
      const sameGraph = meta.modelSha === engine.modelId;
      if (restoresStoredKv({ sameGraph, persistKv: persistsKv(this.env.KV_PERSIST), storedKv: kvLen, snapshotKv: snap.kvLength })) {
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
  private persist(engine: Engine, req: SessionRequest, cachedTokens: number): void {
    const session = this.session;
    if (!session || req.sessionId === null) return; // ephemeral sessions are never written
    const snap = session.snapshot();
    const persistKv = persistsKv(this.env.KV_PERSIST);
    const valid = validStoredKv({ storedKv: this.storedKv, cachedTokens, kvLength: snap.kvLength, persistKv });
    const chunks = (from: number) => (persistKv ? session.stateChunks(from) : []);
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

/** Whose session an object holds: the tenant and the public session id. */
interface Owner {
  tenant: string;
  id: string;
}
const OWNER_KEY = 'owner';

function tenantObject(env: Env, tenant: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(tenant));
}

/**
 * A text prompt too long for the context whatever it tokenises to: more characters than the context's
 * tokens could spell, each at most the vocabulary's longest token (x2 for normalisers that shorten text).
 * Refused before tokenising, so an over-long prompt costs no tokenizer time.
 */
function refuseOverlongText(engine: Engine, text: string, param: string): void {
  if (text.length <= engine.maxContext) return; // never over the bound: skip measuring the vocabulary
  const bound = engine.maxContext * longestToken(engine) * 2;
  if (text.length > bound) {
    throw new ApiError(400, `This model's maximum context length is ${engine.maxContext} tokens; your ${param} has ${text.length} characters, ` +
      `more than ${bound} characters can be in ${engine.maxContext} tokens. Please shorten it.`, 'invalid_request_error', param, 'context_length_exceeded');
  }
}

const longestTokens = new WeakMap<Engine, number>();
function longestToken(engine: Engine): number {
  let n = longestTokens.get(engine);
  if (n === undefined) {
    n = 1;
    for (let id = 0; id < engine.config.vocab_size; id++) n = Math.max(n, engine.tokenizer.decode([id]).length);
    longestTokens.set(engine, n);
  }
  return n;
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

/** The engine's logprobs with their tokens' texts, stop tokens left out (they have no text). */
function logprobTexts(engine: Engine, lps: TokenLogprob[]): DoLogprob[] {
  const text = (t: number) => engine.tokenizer.decode([t]);
  return lps
    .filter((lp) => !engine.stopTokens.has(lp.token))
    .map((lp) => ({ token: text(lp.token), logprob: lp.logprob, top: lp.top.map((t) => ({ token: text(t.token), logprob: t.logprob })) }));
}

/** Events not taken by the reader within this time count as a disconnect. */
const WRITE_STALL_MS = 30_000;

/** Session objects of this isolate that hold state in memory (weak references; releaseMemory). */
const resident = new ResidentSessions<SessionDO>();

/** Any failure in a session method, for the Worker to word: the engine's errors as they are. */
function failure(err: unknown, model?: string): DoFailure {
  if (err instanceof EngineError) return { ok: false, error: { type: 'error', kind: 'engine', code: err.code, message: err.message, detail: err.detail } };
  const e = toApiError(err, model);
  return { ok: false, error: { type: 'error', kind: 'session', status: e.status, message: e.message, param: e.param, code: e.code, headers: e.headers } };
}

function toApiError(err: unknown, model: string | undefined): ApiError {
  if (err instanceof ApiError) return err;
  // A draft head's shards load on first use, so a bad or unreadable one shows up here: a 503 naming it.
  if (err instanceof ShardError) return modelLoadError(model ?? 'default', err);
  console.error('session error', err);
  return new ApiError(500, `Internal error: ${(err as Error)?.message ?? String(err)}`, 'server_error');
}
