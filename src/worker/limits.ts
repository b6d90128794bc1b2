/**
 * A request's cost bounds and the tenant's token buckets: plain functions (tested in Node,
 * test/worker/unit/limits.test.ts), used by the Worker (app.ts) and the tenant's object (rate-limiter.ts).
 */
import { badRequest } from './openai/errors';

/** Default bound on the tokens one request may generate over all its choices and prompts. */
export const DEFAULT_REQUEST_TOKENS = 2048;

/**
 * Most log-probability entries one request may return: (1 + alternatives) per generated token, summed over
 * its choices. At about 60 bytes an entry this keeps a response near 1 MB (20 alternatives on 2,048 tokens
 * would be 2.6 MB of JSON).
 */
export const MAX_LOGPROB_ENTRIES = 16_384;

export interface BudgetInput {
  /** Choices per prompt, and prompts: the request runs n x prompts choices. */
  n: number;
  prompts: number;
  /** max_tokens as sent, or null (then every choice gets as many as the bounds below leave). */
  maxTokens: number | null;
  /** The name the client used for it (`max_tokens` or chat's `max_completion_tokens`). */
  maxTokensParam: string;
  /** The tenant's bounds: completion tokens per choice, generated tokens per request. */
  tenantMaxTokens: number;
  requestTokens: number;
  /** Alternatives per token when log-probabilities are asked for, else null; and that parameter's name. */
  logprobs: number | null;
  logprobsParam: string;
}

/**
 * The completion-token limit of each choice, or a 400 naming the parameter to lower. An explicit max_tokens
 * must fit: n x prompts x max_tokens within the request budget, and its log-probabilities within
 * MAX_LOGPROB_ENTRIES. Without one, each choice gets an equal share of both (and at most the tenant's
 * max_tokens), so a request that names no size never costs more than the budget either.
 */
export function choiceTokenLimit(b: BudgetInput): number {
  const choices = b.n * b.prompts;
  const perEntry = b.logprobs === null ? 1 : 1 + b.logprobs;
  if (b.maxTokens !== null) {
    if (b.maxTokens > b.tenantMaxTokens) {
      throw badRequest(`${b.maxTokensParam} is too large: ${b.maxTokens}. This key allows at most ${b.tenantMaxTokens}.`, b.maxTokensParam, 'invalid_value');
    }
    const total = choices * b.maxTokens;
    if (total > b.requestTokens) {
      throw badRequest(
        `n (${b.n}) x prompts (${b.prompts}) x ${b.maxTokensParam} (${b.maxTokens}) = ${total} tokens: this key allows at most ${b.requestTokens} generated tokens per request. ` +
          `Lower ${b.maxTokensParam} or n, or send fewer prompts.`,
        b.maxTokensParam,
        'request_too_large',
      );
    }
    if (b.logprobs !== null && total * perEntry > MAX_LOGPROB_ENTRIES) {
      throw badRequest(
        `${b.logprobsParam} ${b.logprobs} on up to ${total} tokens would return ${total * perEntry} log-probabilities; at most ${MAX_LOGPROB_ENTRIES} per request. ` +
          `Lower ${b.logprobsParam}, ${b.maxTokensParam} or n.`,
        b.logprobsParam,
        'request_too_large',
      );
    }
    return b.maxTokens;
  }
  const limit = Math.min(b.tenantMaxTokens, Math.floor(b.requestTokens / choices), Math.floor(MAX_LOGPROB_ENTRIES / perEntry / choices));
  if (limit < 1) {
    throw badRequest(`n (${b.n}) x prompts (${b.prompts}) leaves no tokens to generate within this key's ${b.requestTokens} tokens per request.`, 'n', 'request_too_large');
  }
  return limit;
}

/** A token bucket: `capacity`, refilled at capacity per minute, may go below zero (debt) when charged. */
export interface Bucket {
  level: number;
  at: number;
}

export function refill(b: Bucket, capacity: number, now: number): void {
  b.level = Math.min(capacity, b.level + ((now - b.at) * capacity) / 60_000);
  b.at = now;
}

/** Milliseconds until the bucket holds `need` (0 if it does). */
export function msUntil(b: Bucket, capacity: number, need: number): number {
  return b.level >= need ? 0 : Math.ceil(((need - b.level) * 60_000) / capacity);
}

/** OpenAI's duration format in x-ratelimit-reset-*: "20ms", "1s", "6m0s". */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}
