/**
 * One adapter per route: the OpenAI objects a request's events become, for the SSE and JSON writers.
 * The generation itself (choices, sessions, rounds) is the same for both routes (app.ts).
 */
import { trimReplyStart } from './chat-template';
import {
  chatChunk,
  chatLogprobs,
  chatResponse,
  completionChunk,
  completionLogprobs,
  completionResponse,
  usageChunk,
  type ChoiceOut,
  type FinishReason,
  type Ids,
  type Later,
  type OpenAIUsage,
} from './format';
import type { Route } from './request';
import type { DoDone, DoLogprob } from '../protocol';

/** `usage` of a chunk: absent, or null on every chunk when the client asked for a usage chunk. */
type ChunkUsage = null | undefined;

export interface RouteAdapter {
  readonly route: Route;
  /** Prefix of the response's id. */
  readonly idPrefix: string;
  /** Some tokens' log-probabilities in the route's format; `offset`: where the first starts in the choice's text. */
  logprobs(lps: readonly DoLogprob[], offset: number): unknown;
  /** The chunk that opens choice k of a stream, if the route sends one. */
  opening(ids: Ids, k: number, usage: ChunkUsage): object | null;
  /** A stream chunk of choice k's text. */
  text(ids: Ids, k: number, text: string, logprobs: unknown, usage: ChunkUsage): object;
  /** The chunk that ends choice k of a stream. */
  finish(ids: Ids, k: number, finish: Exclude<FinishReason, null>, usage: ChunkUsage): object;
  /** A stream's last chunk when the client asked for usage. */
  usage(ids: Ids, usage: OpenAIUsage, ext: unknown): object;
  /** The whole response (its text and end may still be coming: json-writer.ts). */
  response(ids: Ids, choices: readonly ChoiceOut[], done: Later<DoDone>): unknown;
}

export const completionAdapter: RouteAdapter = {
  route: 'completion',
  idPrefix: 'cmpl',
  logprobs: completionLogprobs,
  opening: () => null,
  text: (ids, k, text, lp, usage) => completionChunk(ids, text, null, usage, k, lp),
  finish: (ids, k, finish, usage) => completionChunk(ids, '', finish, usage, k),
  usage: (ids, usage, ext) => usageChunk('completion', ids, usage, ext),
  response: completionResponse,
};

export const chatAdapter: RouteAdapter = {
  route: 'chat',
  idPrefix: 'chatcmpl',
  logprobs: (lps) => chatLogprobs(lps),
  opening: (ids, k, usage) => chatChunk(ids, { role: 'assistant', content: '' }, null, usage, k),
  text: (ids, k, text, lp, usage) => chatChunk(ids, { content: text }, null, usage, k, lp),
  finish: (ids, k, finish, usage) => chatChunk(ids, {}, finish, usage, k),
  usage: (ids, usage, ext) => usageChunk('chat', ids, usage, ext),
  response: chatResponse,
};

export function adapterFor(route: Route): RouteAdapter {
  return route === 'chat' ? chatAdapter : completionAdapter;
}

/**
 * A choice's text as the client sees it: a fresh chat reply starts after "Assistant:", so its one leading
 * space is dropped (chat-template.ts); everything else passes as it is.
 */
export function replyShaper(freshReply: boolean): (text: string) => string {
  let atStart = freshReply;
  return (text) => {
    const out = trimReplyStart(text, atStart);
    if (out) atStart = false;
    return out;
  };
}
