/**
 * Response and SSE chunk shapes of OpenAI's completions and chat completions APIs. A response's text and
 * the fields its end settles may come later (a TextStream, Promises): json-writer.ts writes such a
 * response as it is generated, the same bytes as JSON.stringify of the finished one.
 */
import type { Usage } from '../../engine/index';
import type { TextStream } from '../json-writer';
import type { DoDone, DoLogprob } from '../protocol';

/** A value now, or one still to come. */
export type Later<T> = T | Promise<T>;

/** f of a value now or still to come (then the result comes too). */
export function later<T, U>(x: Later<T>, f: (v: T) => U): Later<U> {
  return x instanceof Promise ? x.then(f) : f(x);
}

export type FinishReason = 'stop' | 'length' | null;

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { accepted_prediction_tokens: number; rejected_prediction_tokens: number };
}

/**
 * OpenAI's usage. `completion_tokens` is what the client receives (and is billed and truncated by):
 * rejected draft tokens are never emitted, so they are not in it, and `rejected_prediction_tokens`
 * (which OpenAI counts inside `completion_tokens`) is therefore always 0. `accepted_prediction_tokens`
 * are emitted tokens that came from the draft, at most `completion_tokens`. The drafter's own
 * statistics (tokens proposed, accepted, rejected per request) are in `ctc_edge.draft`, apart from usage.
 */
export function toUsage(u: Usage): OpenAIUsage {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    completion_tokens_details: {
      accepted_prediction_tokens: Math.min(u.acceptedPredictionTokens, u.completionTokens),
      rejected_prediction_tokens: 0,
    },
  };
}

/** Our extension, on the final response / chunk: why it ended, draft statistics, engine timings, session size. */
export function toExtension(d: DoDone) {
  const u = d.usage;
  return {
    finish_detail: d.finishReason, // stop | length (max_tokens) | rounds (per-request bound) | aborted
    session_tokens: d.sessionTokens,
    rounds: u.rounds,
    draft: {
      // Draft-verify rounds, draft tokens verified, of those accepted (emitted) and rejected (discarded).
      rounds: u.rounds,
      proposed_tokens: u.acceptedPredictionTokens + u.rejectedPredictionTokens,
      accepted_tokens: u.acceptedPredictionTokens,
      rejected_tokens: u.rejectedPredictionTokens,
      // Tokens emitted per round (mean accepted length τ, the bonus token included).
      tokens_per_round: u.rounds ? round2(u.completionTokens / u.rounds) : null,
    },
    draft_ms: round2(u.draftMs),
    verify_ms: round2(u.verifyMs), // the model pass over the tree only
    accept_ms: round2(u.acceptMs),
    commit_ms: round2(u.commitMs), // emit (stop text) + commit (KV compaction)
    prefill_ms: round2(u.prefillMs),
    persist_ms: d.persistMs === undefined ? null : round2(d.persistMs),
    restore: d.restore ? { ...d.restore, ms: round2(d.restore.ms) } : null,
  };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Engine finish reasons → OpenAI's: a request bounded by rounds ends with "length" (continue it). */
export function toFinishReason(r: DoDone['finishReason']): 'stop' | 'length' {
  return r === 'stop' ? 'stop' : 'length';
}

export interface Ids {
  id: string;
  created: number;
  model: string;
}

/** Chat's logprobs of some tokens: `content` per token with its `top_logprobs` alternatives, each with its UTF-8 bytes. */
export function chatLogprobs(lps: readonly DoLogprob[]) {
  return {
    content: lps.map((l) => ({ token: l.token, logprob: l.logprob, bytes: utf8(l.token), top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: utf8(t.token) })) })),
    refusal: null,
  };
}

const encoder = new TextEncoder();
const utf8 = (text: string) => Array.from(encoder.encode(text));

/** The completions route's (legacy) logprobs of some tokens; `offset` is the first token's place in the choice's text. */
export function completionLogprobs(lps: readonly DoLogprob[], offset: number) {
  const text_offset: number[] = [];
  for (const l of lps) {
    text_offset.push(offset);
    offset += l.token.length;
  }
  return {
    tokens: lps.map((l) => l.token),
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

/** Usage and our extension of several choices: every field summed, prompt tokens included (each choice
 *  prefills its prompt in a session of its own, so each prefill that ran is counted). */
export function mergeDone(dones: readonly DoDone[]): DoDone {
  if (dones.length === 1) return dones[0];
  const usage = { ...dones[0].usage };
  for (const k of Object.keys(usage) as (keyof typeof usage)[]) usage[k] = dones.reduce((s, d) => s + d.usage[k], 0);
  const last = dones[dones.length - 1];
  const persist = dones.some((d) => d.persistMs !== undefined) ? dones.reduce((s, d) => s + (d.persistMs ?? 0), 0) : undefined;
  return { ...last, usage, restore: dones[0].restore, ...(persist !== undefined ? { persistMs: persist } : {}) };
}

/** One choice of a response. */
export interface ChoiceOut {
  index: number;
  text: string | TextStream;
  finishReason: Later<DoDone['finishReason']>;
  /** Formatted logprobs (chatLogprobs / completionLogprobs), or null. */
  logprobs: Later<unknown>;
}

export function completionChunk(ids: Ids, text: string, finish: FinishReason, usage?: OpenAIUsage | null, index = 0, logprobs: unknown = null) {
  return {
    id: ids.id,
    object: 'text_completion' as const,
    created: ids.created,
    model: ids.model,
    choices: [{ index, text, logprobs, finish_reason: finish }],
    ...(usage !== undefined ? { usage } : {}),
  };
}

export function chatChunk(
  ids: Ids,
  delta: { role?: 'assistant'; content?: string },
  finish: FinishReason,
  usage?: OpenAIUsage | null,
  index = 0,
  logprobs: unknown = null,
) {
  return {
    id: ids.id,
    object: 'chat.completion.chunk' as const,
    created: ids.created,
    model: ids.model,
    system_fingerprint: null,
    choices: [{ index, delta, logprobs, finish_reason: finish }],
    ...(usage !== undefined ? { usage } : {}),
  };
}

/** Final chunk of `stream_options.include_usage`: empty choices, usage set. */
export function usageChunk(kind: 'completion' | 'chat', ids: Ids, usage: OpenAIUsage, ext: unknown) {
  return {
    id: ids.id,
    object: kind === 'chat' ? ('chat.completion.chunk' as const) : ('text_completion' as const),
    created: ids.created,
    model: ids.model,
    ...(kind === 'chat' ? { system_fingerprint: null } : {}),
    choices: [],
    usage,
    ctc_edge: ext,
  };
}

export function completionResponse(ids: Ids, choices: readonly ChoiceOut[], done: Later<DoDone>) {
  return {
    id: ids.id,
    object: 'text_completion' as const,
    created: ids.created,
    model: ids.model,
    choices: choices.map((ch) => ({ index: ch.index, text: ch.text, logprobs: ch.logprobs, finish_reason: later(ch.finishReason, toFinishReason) })),
    usage: later(done, (d) => toUsage(d.usage)),
    ctc_edge: later(done, toExtension),
  };
}

export function chatResponse(ids: Ids, choices: readonly ChoiceOut[], done: Later<DoDone>) {
  return {
    id: ids.id,
    object: 'chat.completion' as const,
    created: ids.created,
    model: ids.model,
    system_fingerprint: null,
    choices: choices.map((ch) => ({
      index: ch.index,
      message: { role: 'assistant' as const, content: ch.text, refusal: null },
      logprobs: ch.logprobs,
      finish_reason: later(ch.finishReason, toFinishReason),
    })),
    usage: later(done, (d) => toUsage(d.usage)),
    ctc_edge: later(done, toExtension),
  };
}
