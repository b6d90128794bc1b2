/** Response and SSE chunk shapes of OpenAI's completions and chat completions APIs. */
import type { Usage } from '../../engine/index';
import type { DoDone } from '../protocol';

export type FinishReason = 'stop' | 'length' | null;

export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { accepted_prediction_tokens: number; rejected_prediction_tokens: number };
}

export function toUsage(u: Usage): OpenAIUsage {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    completion_tokens_details: {
      accepted_prediction_tokens: u.acceptedPredictionTokens,
      rejected_prediction_tokens: u.rejectedPredictionTokens,
    },
  };
}

/** Our extension, on the final response / chunk: why it ended, engine timings, session size. */
export function toExtension(d: DoDone) {
  return {
    finish_detail: d.finishReason, // stop | length (max_tokens) | rounds (per-request bound) | aborted
    session_tokens: d.sessionTokens,
    rounds: d.usage.rounds,
    draft_ms: round2(d.usage.draftMs),
    verify_ms: round2(d.usage.verifyMs),
    prefill_ms: round2(d.usage.prefillMs),
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

export function completionChunk(ids: Ids, text: string, finish: FinishReason, usage?: OpenAIUsage | null) {
  return {
    id: ids.id,
    object: 'text_completion' as const,
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    ...(usage !== undefined ? { usage } : {}),
  };
}

export function chatChunk(
  ids: Ids,
  delta: { role?: 'assistant'; content?: string },
  finish: FinishReason,
  usage?: OpenAIUsage | null,
) {
  return {
    id: ids.id,
    object: 'chat.completion.chunk' as const,
    created: ids.created,
    model: ids.model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
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

export function completionResponse(ids: Ids, text: string, done: DoDone) {
  return {
    id: ids.id,
    object: 'text_completion' as const,
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: toFinishReason(done.finishReason) }],
    usage: toUsage(done.usage),
    ctc_edge: toExtension(done),
  };
}

export function chatResponse(ids: Ids, text: string, done: DoDone) {
  return {
    id: ids.id,
    object: 'chat.completion' as const,
    created: ids.created,
    model: ids.model,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: text, refusal: null },
        logprobs: null,
        finish_reason: toFinishReason(done.finishReason),
      },
    ],
    usage: toUsage(done.usage),
    ctc_edge: toExtension(done),
  };
}
