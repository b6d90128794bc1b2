/**
 * What the worker sends to a session Durable Object and what comes back.
 * Request: POST https://session/generate with a DoGenerateRequest JSON body.
 * Response: an OpenAI error (non-2xx) when the request cannot start (validation that needs the model,
 * busy session, bad shard), else 200 with newline-delimited JSON DoEvents, ending with "done" or "error".
 */
import type { SamplingParams, Usage } from '../engine/index';
import type { OpenAIErrorBody } from './openai/errors';

export interface DoGenerateRequest {
  tenant: string;
  /** The public session id, or null for an ephemeral session (nothing persisted). */
  sessionId: string | null;
  model: string;
  /** Text (tokenised in the DO, BOS prepended) or raw token ids; ignored when `continue`. */
  prompt: { text: string } | { tokens: number[] };
  /** Name of the prompt's field for error messages ("prompt" or "messages"). */
  promptParam: string;
  continue: boolean;
  /** Completion tokens asked for, or null for "as many as fit" (bounded by the tenant). */
  maxTokens: number | null;
  tenantMaxTokens: number;
  maxRounds: number;
  sampling: SamplingParams;
  stop: string[];
  drafter: string | null;
  treeBudget: number | null;
  /** Fault injection, only where the deployment sets FAULT_INJECTION=on (tests): from `X-Fault` (JSON). */
  fault?: FaultSpec;
}

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
}
export interface DoTokens {
  type: 'tokens';
  text: string;
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
export interface DoError {
  type: 'error';
  status: number;
  body: OpenAIErrorBody;
  /** Response headers the error carries (Retry-After). */
  headers?: Record<string, string>;
}
export type DoEvent = DoStart | DoTokens | DoDone | DoError;
