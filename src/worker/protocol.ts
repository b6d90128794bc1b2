/**
 * What the Worker sends to a session Durable Object and what comes back, over RPC (session-do.ts):
 * - `generate(SessionRequest)` (openai/request.ts): a DoFailure when the request cannot start (validation that needs the
 *   model, busy session, bad shard), else its DoStart and an RPC target whose `next()` gives the DoEvents
 *   as they come (batches; [] at the end, after "done" or "error") and whose `cancel()` stops the engine
 *   at the next round boundary (so does disposing of it: the Worker's request ending).
 * - `info(model)`: SessionInfo or a DoFailure. `drop()`: null or a DoFailure.
 */
import type { EngineErrorCode, EngineErrorDetail, Usage } from '../engine/index';

export interface FaultSpec {
  /** Reset the session object (as an eviction does) after this many token events. */
  evictAfterTokens?: number;
  /** Make the session save fail inside its transaction, after writing the KV chunks. */
  failPersist?: boolean;
}

export interface RestoreInfo {
  /** How the in-memory session came back after an eviction: from stored KV, or recomputed from tokens. */
  mode: 'kv' | 'recompute';
  tokens: number;
  ms: number;
}

export interface DoStart {
  type: 'start';
  promptTokens: number;
  restore?: RestoreInfo;
  /** The prompt as text (requests with `echo`). */
  echoText?: string;
}
/** A generated token's log-probability with its text, and the most likely alternatives. */
export interface DoLogprob {
  token: string;
  logprob: number;
  top: { token: string; logprob: number }[];
}
export interface DoTokens {
  type: 'tokens';
  text: string;
  /** Requests with logprobs: one per generated token of this event (stop tokens excluded). */
  logprobs?: DoLogprob[];
}
export interface DoDone {
  type: 'done';
  finishReason: 'stop' | 'length' | 'rounds' | 'aborted';
  usage: Usage;
  sessionTokens: number;
  restore?: RestoreInfo;
  /** Time spent writing the session to SQLite after this request. */
  persistMs?: number;
}
/**
 * Why a generation could not start or finish, worded by the Worker (session-client.ts): an error of the
 * engine's, by its code and facts (the Worker names the client's parameters), or one of the session
 * object's own (busy, no such session, a model or storage failure, a prompt it refused), with its status.
 */
export type DoError = DoEngineError | DoSessionError;
export interface DoEngineError {
  type: 'error';
  kind: 'engine';
  code: EngineErrorCode;
  message: string;
  detail: EngineErrorDetail;
}
export interface DoSessionError {
  type: 'error';
  kind: 'session';
  status: number;
  message: string;
  /** The parameter it is about, and a machine-readable code. */
  param: string | null;
  code: string | null;
  /** Response headers the error carries (Retry-After). */
  headers?: Record<string, string>;
}
export type DoEvent = DoStart | DoTokens | DoDone | DoError;

/** A session method's failure. */
export interface DoFailure {
  ok: false;
  error: DoError;
}

/** A session method's outcome. */
export type DoResult<T> = { ok: true; value: T } | DoFailure;

/** The events of a started generation (an RPC target of the session object). */
export interface DoEventSource {
  /** The next events, at least one; [] once the generation has ended. */
  next(): Promise<DoEvent[]>;
  /** The reader is gone: stop the engine at the next round boundary; the request changes nothing. */
  cancel(): void;
}

export interface SessionInfo {
  tokens: number;
  kv_tokens_in_memory: number;
  kv_tokens_stored: number;
  model: string | null;
  in_memory: boolean;
  busy: boolean;
  text: string | null;
  /** This isolate: ORT's wasm heap (only grows, so it is the peak) and model load times. Only where the
   *  deployment sets DIAGNOSTICS=on (the local test servers): a client has no business seeing them. */
  isolate?: { wasm_heap_bytes: number | null; model_loads: Record<string, { ms: number; at: string }> };
  /** Drafters the model offers (valid values of the `drafter` parameter) and the default one. */
  drafters: string[];
  default_drafter: string | null;
  /** The `user` of the last request that ran in this object (held in memory). */
  user: string | null;
}
