/**
 * DecodingSession: one conversation's tokens, KV cache, hidden rows and RNG (session-state.ts),
 * generating with any drafter. `run` is the loop that drives rounds: it prefills what the
 * session does not hold yet (prefix-sync.ts), then plays draft-verify rounds (round.ts: draft ->
 * verify -> accept -> emit -> commit) until a stop, the token or context limit, the round bound
 * or an abort, and streams what each round emits; stop strings and the held-back text are
 * stop-text.ts. Snapshots (snapshot.ts) and request checks (validate.ts) live beside it.
 */
import type { Drafter, ModelConfig, SamplingParams } from './types.js';
import type { RoundStats } from './types.js';
import { EngineError } from './errors.js';
import type { LanguageModel } from './language-model.js';
import { STATE_CHUNK_BYTES } from './kv-cache.js';
import { syncPrefix, sameTokens } from './prefix-sync.js';
import { playRound, type RoundResult } from './round.js';
import { Rng, TokenHistory, type TokenLogprob } from './sampling.js';
import { SessionState } from './session-state.js';
import { bytesPerPosition, checkSnapshot, exportState, restoreSnapshot, stateChunks, takeSnapshot, type SessionSnapshot } from './snapshot.js';
import { StopText } from './stop-text.js';
import type { TextTokenizer } from './tokenizer.js';
import { DEFAULT_BUDGET, validateRequest } from './validate.js';

// src/worker imports these from here.
export { EngineError, type SessionSnapshot };

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
  /** Refuse (context_length_exceeded) a request whose prompt + max(1, maxTokens) does not fit the
   *  context, instead of finishing with 'length' when the context is full. */
  refuseOverContext?: boolean;
  /** Log-probabilities of every emitted token with this many alternatives each (0-20); default none. */
  logprobs?: number;
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
  /** The rounds' draft steps: the drafter's tree, checked and cut. */
  draftMs: number;
  /** The rounds' verify steps: the base model's tree passes only. */
  verifyMs: number;
  /** The rounds' accept steps. */
  acceptMs: number;
  /** The rounds' emit (detokenizing, stop strings) and commit (KV keep, hidden rows) steps. */
  commitMs: number;
  prefillMs: number;
}

export type GenerateEvent =
  | { type: 'tokens'; tokens: number[]; text: string; logprobs?: TokenLogprob[] }
  | { type: 'done'; finishReason: FinishReason; text: string; usage: Usage };

/** What a session needs from the engine (kept narrow to avoid an import cycle). */
export interface EngineCore {
  readonly model: LanguageModel;
  readonly tokenizer: TextTokenizer;
  readonly config: ModelConfig;
  readonly maxContext: number;
  readonly modelId: string;
  readonly stopTokens: ReadonlySet<number>;
  readonly prefillChunk: number;
  /** Registered drafter names (valid values of GenerateRequest.drafter). */
  readonly drafterNames: string[];
  makeDrafter(name: string): Promise<Drafter>;
}

export class DecodingSession {
  private readonly core: EngineCore;
  private readonly state: SessionState;
  private drafters = new Map<string, Drafter>();
  /** Streaming text state and penalty history carried into a continuation request (after 'rounds'). */
  private carry: { text: StopText; history: TokenHistory } | null = null;
  private busy = false;
  private released = false;

  constructor(core: EngineCore) {
    this.core = core;
    this.state = new SessionState(core.model.newCache(), core.config.d_model, core.maxContext);
  }

  /**
   * Hands the session's KV buffers back to the model's pool for the next session. The session is
   * unusable afterwards: call it where the session is dropped (ephemeral request done, evicted from
   * memory), never while it generates.
   */
  release(): void {
    if (this.busy) throw new EngineError('session_busy', 'release() while generating');
    this.state.kv.release();
    this.released = true;
  }

  /** Committed tokens (prompt + generated), the last one pending. */
  get tokens(): readonly number[] {
    return this.state.tokens;
  }

  /** Positions whose KV is held. */
  get kvLength(): number {
    return this.state.kv.length;
  }

  // ---------------------------------------------------------------- snapshot / restore (snapshot.ts)

  snapshot(): SessionSnapshot {
    return takeSnapshot(this.state, this.core.modelId);
  }

  /**
   * State of positions [start, end): their KV bytes, then their base hidden rows (float32 [n, d];
   * zeros where the session does not hold a row). 13,312 bytes per token for the default model.
   */
  exportKV(start = 0, end = this.state.kv.length): Uint8Array {
    return exportState(this.state, start, end);
  }

  /** The whole state as chunks of at most maxBytes (Durable Object values are <= 2 MB). */
  kvChunks(maxBytes = STATE_CHUNK_BYTES): Uint8Array[] {
    return Array.from(this.stateChunks(0, maxBytes), (c) => c.data);
  }

  /** exportKV of positions [from, kvLength) in chunks of at most maxBytes, with their ranges; made one at
   *  a time as they are taken, so a save holds one chunk's copy, not the whole session's. */
  stateChunks(from: number, maxBytes = STATE_CHUNK_BYTES): Generator<{ start: number; end: number; data: Uint8Array }> {
    return stateChunks(this.state, from, maxBytes);
  }

  /** Bytes per position of exportKV (KV + hidden row), also what a session holds in memory per token. */
  get kvBytesPerToken(): number {
    return bytesPerPosition(this.state);
  }

  /**
   * Restores state. With `kv` (the chunks of kvChunks/exportKV from position 0, covering at least
   * snap.kvLength positions) the continuation
   * is bit-identical; without, the KV is recomputed by a prefill on the next generate (same
   * tokens, and the same numbers: the graph sums attention panel by panel, so a prefill computes what decoding did).
   */
  static restore(core: EngineCore, snap: SessionSnapshot, kv?: Iterable<Uint8Array>): DecodingSession {
    checkSnapshot(snap, core.modelId);
    const s = new DecodingSession(core);
    restoreSnapshot(s.state, snap, kv);
    return s;
  }

  // ---------------------------------------------------------------- generation

  /**
   * Throws the EngineError generate() would throw for this request (busy or released session, bad
   * tokens, context, sampling, tree budget, drafter), without starting it: hosts call it before they
   * commit to a response. generate() runs the same check.
   */
  check(req: GenerateRequest): void {
    if (this.busy) throw new EngineError('session_busy', 'this session is already generating');
    if (this.released) throw new EngineError('invalid_request', 'this session was released');
    validateRequest(req, { vocabSize: this.core.config.vocab_size, maxContext: this.core.maxContext, drafters: this.core.drafterNames });
  }

  async *generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    this.check(req);
    this.busy = true;
    try {
      yield* this.run(req);
    } finally {
      this.busy = false;
    }
  }

  /** Prefill, then rounds until the request finishes. */
  private async *run(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    const { model, maxContext, stopTokens } = this.core;
    const s = this.state;
    const usage = newUsage(req.promptTokens.length);
    const drafter = await this.drafter(req.drafter ?? 'plain');
    const { text: stopText, history } = this.startText(req);
    let released = '';
    if (req.signal?.aborted) return yield* this.finish('aborted', { text: stopText, history }, released, usage);

    // 1. Bring the KV cache in line with the prompt (room for the whole request first, so rounds
    //    append in place).
    s.kv.reserve(Math.min(maxContext, req.promptTokens.length + req.maxTokens));
    const t0 = now();
    usage.cachedTokens = await syncPrefix(s, model, req.promptTokens, this.core.prefillChunk);
    usage.prefillMs = now() - t0;

    // 2. Rounds.
    const maxRounds = req.maxRounds ?? Infinity;
    const budget = req.treeBudget ?? DEFAULT_BUDGET;
    for (;;) {
      const n = s.tokens.length;
      const left = req.maxTokens - usage.completionTokens;
      if (req.signal?.aborted) return yield* this.finish('aborted', { text: stopText, history }, released, usage);
      if (left <= 0 || n >= maxContext) return yield* this.finish('length', { text: stopText, history }, released, usage);
      if (usage.rounds >= maxRounds) return yield* this.finish('rounds', { text: stopText, history }, released, usage);
      // A round emits depth + 1 tokens at most: keep within max tokens and the context.
      const maxDepth = Math.min(left - 1, maxContext - n - 1);
      const r = await playRound(s, { drafter, model, sampling: req.sampling, rng: s.rng!, budget, maxDepth, left, stopTokens, text: stopText, history, logprobs: req.logprobs });
      addRound(usage, r);
      req.onRound?.(r.stats);
      released += r.text;
      yield { type: 'tokens', tokens: r.tokens, text: r.text, ...(r.logprobs ? { logprobs: r.logprobs } : {}) };
      if (r.stopped) return yield* this.finish('stop', { text: stopText, history }, released, usage);
    }
  }

  /**
   * The request's RNG and text state. A continuation (same tokens, same seed) keeps the RNG
   * stream and the streaming text state, so splitting a generation by maxRounds yields exactly
   * what one request would have.
   */
  private startText(req: GenerateRequest): { text: StopText; history: TokenHistory } {
    const s = this.state;
    const continuation = sameTokens(req.promptTokens, s.tokens) && s.rngSeed === req.sampling.seed && s.rng !== null;
    if (!continuation) {
      s.rng = Rng.fromSeed(req.sampling.seed);
      s.rngSeed = req.sampling.seed;
    }
    const carry = continuation ? this.carry : null;
    this.carry = null;
    if (carry) return { text: carry.text.continueWith(req.stop), history: carry.history };
    return { text: new StopText(this.core.tokenizer.streamDecoder(), req.stop), history: TokenHistory.fromPrompt(req.promptTokens) };
  }

  /**
   * The request's last events: the held text (and a trailing partial character; nothing after a
   * stop string) released last, so the 'tokens' texts always concatenate to the 'done' text, then
   * 'done'. 'rounds' carries the text state into a continuation instead.
   */
  private *finish(reason: FinishReason, state: { text: StopText; history: TokenHistory }, released: string, usage: Usage): Generator<GenerateEvent> {
    if (reason === 'rounds') this.carry = state;
    else {
      const rest = state.text.flush();
      if (rest) {
        released += rest;
        yield { type: 'tokens', tokens: [], text: rest };
      }
    }
    yield { type: 'done', finishReason: reason, text: released, usage };
  }

  private async drafter(name: string): Promise<Drafter> {
    let d = this.drafters.get(name);
    if (!d) {
      d = await this.core.makeDrafter(name);
      this.drafters.set(name, d);
    }
    return d;
  }
}

/** A request's usage before its first round (also what a host reports for a request that never ran). */
export function newUsage(promptTokens: number): Usage {
  return {
    promptTokens,
    cachedTokens: 0,
    completionTokens: 0,
    acceptedPredictionTokens: 0,
    rejectedPredictionTokens: 0,
    rounds: 0,
    draftMs: 0,
    verifyMs: 0,
    prefillMs: 0,
    acceptMs: 0,
    commitMs: 0,
  };
}

function addRound(u: Usage, round: RoundResult): void {
  const r = round.stats;
  u.rounds++;
  u.completionTokens += round.tokens.length;
  u.acceptedPredictionTokens += r.accepted;
  u.rejectedPredictionTokens += r.proposed - r.accepted;
  u.draftMs += r.draftMs;
  u.verifyMs += r.verifyMs;
  u.acceptMs += r.acceptMs;
  u.commitMs += r.commitMs;
}

function now(): number {
  return performance.now();
}
