/**
 * The round loop: one DecodingSession holds a conversation's tokens, KV cache, last hidden row
 * and RNG, and generates with any drafter.
 *
 * Invariant between rounds: the KV cache covers every committed token except the last one; the
 * last committed token is "pending" (chosen, not yet run through the model) and is the root of
 * the next round's tree. `hidden` is the base model's hidden row at the position before it.
 *
 * A round: drafter proposes a tree rooted at the pending token -> ONE verifyTree pass ->
 * acceptance (greedy or lossless sampling) -> KV compacted to the accepted path -> emit the
 * accepted draft tokens + the bonus token. Plain decoding is the same loop with a root-only tree.
 */
import type { Drafter, ModelConfig, SamplingParams, TokenTree } from './types.js';
import type { RoundStats } from './types.js';
import { accept } from './acceptance.js';
import { KVCache } from './kv-cache.js';
import type { LanguageModel } from './language-model.js';
import { Rng } from './sampling.js';
import { StopText } from './stop-text.js';
import type { TextTokenizer } from './tokenizer.js';
import { cutBudget, cutDepth, pathTokens, validateTree } from './tree.js';

export type FinishReason = 'stop' | 'length' | 'rounds' | 'aborted';

export interface GenerateRequest {
  /** The FULL token sequence to use as context (conversation so far, `<s>` included if wanted).
   *  The session reuses the KV of the longest common prefix with what it holds and prefills
   *  only the rest. */
  promptTokens: number[];
  /** Completion tokens at most (this request). */
  maxTokens: number;
  sampling: SamplingParams;
  /** Stop strings (OpenAI semantics: the returned text excludes the stop string). */
  stop?: string[];
  /** Rounds at most (this request); hitting it finishes with 'rounds' so the caller can continue. */
  maxRounds?: number;
  /** Registered drafter name; default 'plain'. */
  drafter?: string;
  /** Max tree nodes per round, root included (default 16). */
  treeBudget?: number;
  signal?: AbortSignal;
  /** Called after every round (benchmarks). */
  onRound?: (stats: RoundStats) => void;
}

export interface Usage {
  promptTokens: number;
  /** Prompt tokens whose KV was reused. */
  cachedTokens: number;
  completionTokens: number;
  /** Draft tokens accepted and emitted. */
  acceptedPredictionTokens: number;
  /** Draft tokens verified but not emitted. */
  rejectedPredictionTokens: number;
  rounds: number;
  draftMs: number;
  verifyMs: number;
  prefillMs: number;
}

export type GenerateEvent =
  | { type: 'tokens'; tokens: number[]; text: string }
  | { type: 'done'; finishReason: FinishReason; text: string; usage: Usage };

/**
 * JSON-safe state of a session. Per-position bytes travel separately (exportKV / kvChunks): in
 * version 2 each chunk holds its positions' KV and then their base hidden rows (float32 [n, d];
 * prefix-attending draft heads rebuild their own cache from them, exactly, so a restored session
 * drafts as the uninterrupted one would); version 1 chunks hold KV only.
 */
export interface SessionSnapshot {
  version: 1 | 2;
  /** sha256 of the base model: a snapshot only restores on the same model. */
  model: string;
  tokens: number[];
  /** Positions covered by the KV cache (tokens.length - 1 when in sync, less if not). */
  kvLength: number;
  /** Hidden row [d] at position kvLength - 1 (float32 values, exact as JSON numbers), or null. */
  hidden: number[] | null;
  /** RNG state and the seed it came from (a same-seed continuation keeps the stream). */
  rng: { seed: number; state: number[] } | null;
  /** Version 2: the chunks' hidden rows are valid from this position to kvLength. */
  rowsFrom?: number;
}

/** Errors a caller maps to HTTP 4xx (the engine has no HTTP knowledge). */
export class EngineError extends Error {
  constructor(
    readonly code: 'context_length_exceeded' | 'invalid_request' | 'session_busy' | 'unknown_drafter' | 'model_mismatch',
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** What a session needs from the engine (kept narrow to avoid an import cycle). */
export interface EngineCore {
  readonly model: LanguageModel;
  readonly tokenizer: TextTokenizer;
  readonly config: ModelConfig;
  readonly maxContext: number;
  readonly modelId: string;
  readonly stopTokens: ReadonlySet<number>;
  readonly prefillChunk: number;
  makeDrafter(name: string): Promise<Drafter>;
}

const DEFAULT_BUDGET = 16;
/** Largest tree: one verify pass holds its nodes after the cache's partial last panel. */
const MAX_BUDGET = 64;

export class DecodingSession {
  private readonly core: EngineCore;
  private _tokens: number[] = [];
  private kv: KVCache;
  /** Hidden row at position kv.length - 1; null when unknown (then a prefill recomputes it). */
  private hidden: Float32Array | null = null;
  /** Base hidden rows of committed positions, indexed by position ([capacity, d]); positions
   *  [rowsFrom, rowsEnd) are known. Prefix-attending draft heads read them. They travel with the
   *  KV (exportKV); a session restored without them knows only the snapshot's last row, and the
   *  window grows from there. */
  private rows = new Float32Array(0);
  private rowsFrom = 0;
  private rowsEnd = 0;
  private rng: Rng | null = null;
  private rngSeed: number | null = null;
  private drafters = new Map<string, Drafter>();
  /** Streaming text state carried into a continuation request (after 'rounds'). */
  private carry: StopText | null = null;
  private busy = false;
  private released = false;

  constructor(core: EngineCore) {
    this.core = core;
    this.kv = core.model.newCache();
  }

  /**
   * Hands the session's KV buffers back to the model's pool for the next session. The session is
   * unusable afterwards: call it where the session is dropped (ephemeral request done, evicted from
   * memory), never while it generates.
   */
  release(): void {
    if (this.busy) throw new EngineError('session_busy', 'release() while generating');
    this.kv.release();
    this.released = true;
  }

  /** Committed tokens (prompt + generated), the last one pending. */
  get tokens(): readonly number[] {
    return this._tokens;
  }

  /** Positions whose KV is held. */
  get kvLength(): number {
    return this.kv.length;
  }

  // ---------------------------------------------------------------- snapshot / restore

  snapshot(): SessionSnapshot {
    return {
      version: 2,
      model: this.core.modelId,
      tokens: [...this._tokens],
      kvLength: this.kv.length,
      hidden: this.hidden && this.kv.length > 0 ? Array.from(this.hidden) : null,
      rng: this.rng && this.rngSeed !== null ? { seed: this.rngSeed, state: this.rng.getState() } : null,
      rowsFrom: this.rowsEnd >= this.kv.length ? Math.min(this.rowsFrom, this.kv.length) : this.kv.length,
    };
  }

  /**
   * State of positions [start, end): their KV bytes, then their base hidden rows (float32 [n, d];
   * zeros where the session does not hold a row). 13,312 bytes per token for the default model.
   */
  exportKV(start = 0, end = this.kv.length): Uint8Array {
    const kv = this.kv.exportRange(start, end);
    const d = this.core.config.d_model;
    const out = new Uint8Array(kv.byteLength + (end - start) * d * 4);
    out.set(kv);
    const rows = new Float32Array(out.buffer, kv.byteLength, (end - start) * d);
    const from = Math.max(start, this.rowsFrom), to = Math.min(end, this.rowsEnd);
    if (to > from) rows.set(this.rows.subarray(from * d, to * d), (from - start) * d);
    return out;
  }

  /** The whole state as chunks of at most maxBytes (Durable Object values are <= 2 MB). */
  kvChunks(maxBytes = 1_900_000): Uint8Array[] {
    return Array.from(this.stateChunks(0, maxBytes), (c) => c.data);
  }

  /** exportKV of positions [from, kvLength) in chunks of at most maxBytes, with their ranges; made one at
   *  a time as they are taken, so a save holds one chunk's copy, not the whole session's. */
  *stateChunks(from: number, maxBytes = 1_900_000): Generator<{ start: number; end: number; data: Uint8Array }> {
    for (const [start, end] of this.kv.chunkRanges(maxBytes, from, this.kv.length, this.kvBytesPerToken)) {
      yield { start, end, data: this.exportKV(start, end) };
    }
  }

  /** Bytes per position of exportKV (KV + hidden row), also what a session holds in memory per token. */
  get kvBytesPerToken(): number {
    return this.kv.bytesPerToken + this.core.config.d_model * 4;
  }

  /**
   * Restores state. With `kv` (the chunks of kvChunks/exportKV from position 0, covering at least
   * snap.kvLength positions) the continuation
   * is bit-identical; without, the KV is recomputed by a prefill on the next generate (same
   * tokens; logits may differ in the last bits, see the report on dynamic quantization).
   */
  static restore(core: EngineCore, snap: SessionSnapshot, kv?: Iterable<Uint8Array>): DecodingSession {
    if (snap.version !== 1 && snap.version !== 2) throw new EngineError('invalid_request', `unknown snapshot version ${snap.version}`);
    if (snap.model !== core.modelId) throw new EngineError('model_mismatch', 'snapshot was taken with another model');
    const s = new DecodingSession(core);
    s._tokens = [...snap.tokens];
    if (snap.rng) {
      s.rng = new Rng(snap.rng.state);
      s.rngSeed = snap.rng.seed;
    }
    if (kv && snap.kvLength > 0) {
      if (snap.kvLength > s._tokens.length) throw new EngineError('invalid_request', 'snapshot kvLength exceeds its tokens');
      const d = core.config.d_model;
      // version 2 chunks: KV bytes, then the same positions' hidden rows
      const kvPer = s.kv.bytesPerToken;
      const per = snap.version === 1 ? kvPer : kvPer + d * 4;
      const rowsFrom = snap.version === 2 ? (snap.rowsFrom ?? snap.kvLength) : snap.kvLength;
      // Chunk by chunk as they are read (a restore holds one stored chunk at a time, not the session);
      // chunks may run past kvLength (a save cut short): exactly kvLength positions are taken.
      s.kv.reserve(snap.kvLength);
      for (const c of kv) {
        const have = s.kv.length;
        const n = c.byteLength / per;
        if (!Number.isInteger(n)) throw new EngineError('invalid_request', `a state chunk of ${c.byteLength} bytes is not whole positions`);
        const take = Math.min(n, snap.kvLength - have);
        if (take <= 0) break;
        s.kv.importRange(have, c.subarray(0, take * kvPer));
        const from = Math.max(have, rowsFrom);
        if (snap.version === 2 && have + take > from) {
          const rows = new Float32Array(c.slice(n * kvPer + (from - have) * d * 4, n * kvPer + take * d * 4).buffer);
          s.recordRows(from, rows, null);
        }
      }
      if (s.kv.length === 0) return s; // no chunks: the next generate recomputes the KV
      if (s.kv.length !== snap.kvLength) {
        throw new EngineError('invalid_request', `KV chunks hold ${s.kv.length} positions, snapshot says ${snap.kvLength}`);
      }
      s.hidden = snap.hidden ? Float32Array.from(snap.hidden) : null;
      if (s.hidden && s.hidden.length !== core.config.d_model) throw new EngineError('invalid_request', 'snapshot hidden has the wrong width');
      if (!(snap.version === 2 && rowsFrom < snap.kvLength) && s.hidden) s.recordRows(snap.kvLength - 1, s.hidden, null);
    }
    return s;
  }

  // ---------------------------------------------------------------- generation

  async *generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    if (this.busy) throw new EngineError('session_busy', 'this session is already generating');
    if (this.released) throw new EngineError('invalid_request', 'this session was released');
    this.validate(req);
    this.busy = true;
    try {
      yield* this.run(req);
    } finally {
      this.busy = false;
    }
  }

  private validate(req: GenerateRequest): void {
    const { vocab_size: V } = this.core.config;
    const p = req.promptTokens;
    if (!Array.isArray(p) || p.length === 0) throw new EngineError('invalid_request', 'promptTokens must hold at least one token');
    for (const t of p) {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new EngineError('invalid_request', `token id ${t} outside [0, ${V})`);
    }
    if (p.length >= this.core.maxContext) {
      throw new EngineError(
        'context_length_exceeded',
        `prompt has ${p.length} tokens; the model's context is ${this.core.maxContext} (prompt + completion)`,
      );
    }
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 0) throw new EngineError('invalid_request', 'maxTokens must be an integer >= 0');
    const s = req.sampling;
    if (!(s.temperature >= 0) || !(s.topP > 0 && s.topP <= 1) || !(Number.isInteger(s.topK) && s.topK >= 0) || !Number.isFinite(s.seed)) {
      throw new EngineError('invalid_request', 'sampling: temperature >= 0, 0 < topP <= 1, integer topK >= 0, finite seed');
    }
    if (req.treeBudget !== undefined && !(Number.isInteger(req.treeBudget) && req.treeBudget >= 1 && req.treeBudget <= MAX_BUDGET)) {
      throw new EngineError('invalid_request', `treeBudget must be an integer in [1, ${MAX_BUDGET}]`);
    }
  }

  private async drafter(name: string): Promise<Drafter> {
    let d = this.drafters.get(name);
    if (!d) {
      d = await this.core.makeDrafter(name);
      this.drafters.set(name, d);
    }
    return d;
  }

  private async *run(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    const { model, config, tokenizer } = this.core;
    const V = config.vocab_size;
    const prompt = req.promptTokens;
    const usage: Usage = {
      promptTokens: prompt.length,
      cachedTokens: 0,
      completionTokens: 0,
      acceptedPredictionTokens: 0,
      rejectedPredictionTokens: 0,
      rounds: 0,
      draftMs: 0,
      verifyMs: 0,
      prefillMs: 0,
    };
    const drafter = await this.drafter(req.drafter ?? 'plain');

    // A continuation (same tokens, same seed) keeps the RNG stream and the streaming text state,
    // so splitting a generation by maxRounds yields exactly what one request would have.
    const continuation = sameTokens(prompt, this._tokens) && this.rngSeed === req.sampling.seed && this.rng !== null;
    if (!continuation) {
      this.rng = Rng.fromSeed(req.sampling.seed);
      this.rngSeed = req.sampling.seed;
    }
    const carry = continuation ? this.carry : null;
    this.carry = null;
    const stopText = carry ? carry.continueWith(req.stop) : new StopText(tokenizer.streamDecoder(), req.stop);
    let text = '';

    /** Releases the held text (and a trailing partial character; nothing after a stop string);
     *  'rounds' carries both into a continuation instead. */
    const finish = function* (this: DecodingSession, reason: FinishReason): Generator<GenerateEvent> {
      if (reason === 'rounds') this.carry = stopText;
      else {
        // Released last, so the 'tokens' texts always concatenate to the 'done' text.
        const rest = stopText.flush();
        if (rest) {
          text += rest;
          yield { type: 'tokens', tokens: [], text: rest };
        }
      }
      yield { type: 'done', finishReason: reason, text, usage };
    }.bind(this);

    if (req.signal?.aborted) {
      yield* finish('aborted');
      return;
    }

    // 1. Bring the KV cache in line with the prompt (room for the whole request first, so rounds
    //    append in place).
    this.kv.reserve(Math.min(this.core.maxContext, prompt.length + req.maxTokens));
    const t0 = now();
    usage.cachedTokens = await this.sync(prompt);
    usage.prefillMs = now() - t0;

    // 2. Rounds.
    const maxRounds = req.maxRounds ?? Infinity;
    const budget = req.treeBudget ?? DEFAULT_BUDGET;
    for (;;) {
      if (req.signal?.aborted) {
        yield* finish('aborted');
        return;
      }
      const n = this._tokens.length;
      const left = req.maxTokens - usage.completionTokens;
      if (left <= 0 || n >= this.core.maxContext) {
        yield* finish('length');
        return;
      }
      if (usage.rounds >= maxRounds) {
        yield* finish('rounds');
        return;
      }
      // A round emits depth + 1 tokens at most: keep within max tokens and the context.
      const maxDepth = Math.min(left - 1, this.core.maxContext - n - 1);
      const pending = this._tokens[n - 1];
      const P = this.kv.length; // === n - 1

      let tD = now();
      let tree: TokenTree = await drafter.draft({
        tokens: this._tokens,
        hidden: this.hidden ?? new Float32Array(config.d_model),
        hiddenRows: this.rows.subarray(this.rowsFrom * config.d_model, Math.max(this.rowsFrom, Math.min(this.rowsEnd, P)) * config.d_model),
        hiddenRowsFrom: this.rowsFrom,
        pending,
        budget,
      });
      validateTree(tree, pending);
      tree = cutDepth(cutBudget(tree, budget), maxDepth);
      const draftMs = now() - tD;

      tD = now();
      let verified;
      try {
        verified = await model.verifyTree(tree, this.kv);
      } catch (e) {
        this.kv.truncate(Math.min(this.kv.length, P));
        throw e;
      }
      const acc = accept(tree, verified.logits, V, req.sampling, this.rng!);
      const candidates = [...pathTokens(tree, acc.path.slice(1)), acc.bonus];

      // Emit token by token, stopping at a stop token or a completed stop string.
      let m = 0;
      let released = '';
      let stopHit = false;
      for (const tok of candidates) {
        m++;
        if (this.core.stopTokens.has(tok)) {
          stopHit = true;
          break;
        }
        released += stopText.push(tok);
        if (stopText.stopHit) {
          stopHit = true;
          break;
        }
        if (m >= left) break;
      }
      const emitted = candidates.slice(0, m);

      // 3. Commit: KV keeps root .. path[m-1]; the last emitted token becomes pending.
      const kept = acc.path.slice(0, m);
      this.kv.keep(P, kept);
      const last = kept[kept.length - 1];
      this.hidden = verified.hidden.slice(last * config.d_model, (last + 1) * config.d_model);
      this.recordRows(P, verified.hidden, kept);
      for (const t of emitted) this._tokens.push(t);
      const acceptedEmitted = Math.min(acc.path.length - 1, m);
      const verifyMs = now() - tD;

      usage.rounds++;
      usage.completionTokens += m;
      usage.acceptedPredictionTokens += acceptedEmitted;
      usage.rejectedPredictionTokens += tree.tokens.length - 1 - acceptedEmitted;
      usage.draftMs += draftMs;
      usage.verifyMs += verifyMs;
      req.onRound?.({ treeSize: tree.tokens.length, accepted: acceptedEmitted, proposed: tree.tokens.length - 1, draftMs, verifyMs });

      text += released;
      yield { type: 'tokens', tokens: emitted, text: released };
      if (stopHit) {
        // A stop token has no text; after a stop string nothing more is released.
        yield* finish('stop');
        return;
      }
    }
  }

  /**
   * Keeps the hidden rows of positions from `at` on: rows[j] of `hidden` ([*, d]), or
   * rows[nodes[j]] when `nodes` selects a tree's accepted path. Rows after a gap start a new window.
   */
  private recordRows(at: number, hidden: Float32Array, nodes: readonly number[] | null): void {
    const d = this.core.config.d_model;
    const n = nodes ? nodes.length : hidden.length / d;
    if (at !== this.rowsEnd) this.rowsFrom = at; // a gap (or a rewrite): the window restarts here
    if ((at + n) * d > this.rows.length) {
      const grown = new Float32Array(Math.max((at + n) * d, 2 * this.rows.length, this.core.maxContext * d));
      grown.set(this.rows.subarray(0, this.rowsEnd * d));
      this.rows = grown;
    }
    for (let j = 0; j < n; j++) {
      const src = (nodes ? nodes[j] : j) * d;
      this.rows.set(hidden.subarray(src, src + d), (at + j) * d);
    }
    this.rowsEnd = at + n;
  }

  /** Positions from n on are no longer committed: their rows are forgotten. */
  private forgetRows(n: number): void {
    this.rowsEnd = Math.min(this.rowsEnd, n);
    if (this.rowsFrom > this.rowsEnd) this.rowsFrom = this.rowsEnd;
  }

  /**
   * Makes the cache cover prompt[0 .. n-2] and `hidden` the row at n-2, reusing the longest
   * common prefix with the held tokens. Returns how many prompt positions were reused.
   */
  private async sync(prompt: readonly number[]): Promise<number> {
    const n = prompt.length;
    let reuse = Math.min(commonPrefix(prompt, this._tokens), this.kv.length, n - 1);
    if (reuse < this.kv.length) {
      this.kv.truncate(reuse);
      this.hidden = null;
    }
    this.forgetRows(reuse);
    // The drafter needs the hidden row at n-2: recompute the last position if it is not held.
    if (reuse === n - 1 && reuse > 0 && this.hidden === null) {
      reuse--;
      this.kv.truncate(reuse);
      this.forgetRows(reuse);
    }
    const rest = prompt.slice(reuse, n - 1);
    const d = this.core.config.d_model;
    const chunk = Math.max(1, this.core.prefillChunk);
    for (let i = 0; i < rest.length; i += chunk) {
      const part = rest.slice(i, i + chunk);
      const at = this.kv.length;
      const out = await this.core.model.prefill(part, this.kv);
      this.hidden = out.hidden.slice((part.length - 1) * d, part.length * d);
      this.recordRows(at, out.hidden, null);
    }
    if (n === 1) this.hidden = null; // no position before the pending token
    this._tokens = [...prompt];
    return reuse;
  }
}

function now(): number {
  return performance.now();
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
