/**
 * Request schemas (zod, applied through @hono/zod-validator). Ranges follow OpenAI's; fields we do not
 * implement are accepted only at their neutral value so that clients sending defaults keep working.
 * Checks that need the model (prompt length in tokens, vocab range, drafter names) run in the session DO.
 */
import { z } from 'zod';

/** Model context (tokens, prompt + completion). The DO re-checks against the loaded model. */
export const MAX_CONTEXT = 512;
/** Session ids: what we put in a Durable Object name after "<tenant>:". */
export const SESSION_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

const neutral = <T extends z.ZodType>(schema: T, ok: (v: z.infer<T>) => boolean, what: string) =>
  schema.nullish().refine((v) => v === null || v === undefined || ok(v as z.infer<T>), { message: `${what} is not supported` });

const common = {
  model: z.string().min(1).max(128),
  max_tokens: z.number().int().min(1).max(MAX_CONTEXT).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** Extension: top-k filtering, 0 = off. */
  top_k: z.number().int().min(0).max(1_000_000).nullish(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).nullish(),
  stop: z.union([z.string().min(1).max(64), z.array(z.string().min(1).max(64)).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  n: neutral(z.number().int(), (v) => v === 1, 'n other than 1'),
  presence_penalty: neutral(z.number(), (v) => v === 0, 'presence_penalty'),
  frequency_penalty: neutral(z.number(), (v) => v === 0, 'frequency_penalty'),
  logit_bias: neutral(z.record(z.string(), z.number()), (v) => Object.keys(v).length === 0, 'logit_bias'),
  user: z.string().max(256).nullish(),
  /** Extension: drafter name (none, prompt lookup, ctc, ...), validated against the engine. */
  drafter: z.string().min(1).max(64).nullish(),
  /** Extension: draft tree budget (nodes incl. root). */
  tree_budget: z.number().int().min(1).max(64).nullish(),
  /** Extension: session id (alternative to the X-Session-Id header). */
  session_id: z.string().regex(SESSION_ID_RE).nullish(),
  /** Extension: continue generating from the session's tokens, ignoring prompt/messages. */
  continue: z.boolean().nullish(),
};

const tokenIds = z.array(z.number().int().min(0)).min(1).max(MAX_CONTEXT);

export const CompletionSchema = z.object({
  ...common,
  prompt: z.union([
    z.string().max(65_536),
    z.array(z.string().max(65_536)).length(1, 'only one prompt per request is supported'),
    tokenIds,
    z.array(tokenIds).length(1, 'only one prompt per request is supported'),
  ]),
  echo: neutral(z.boolean(), (v) => !v, 'echo'),
  suffix: neutral(z.string(), (v) => v === '', 'suffix'),
  logprobs: neutral(z.number().int(), () => false, 'logprobs'),
  best_of: neutral(z.number().int(), (v) => v === 1, 'best_of other than 1'),
});
export type CompletionBody = z.infer<typeof CompletionSchema>;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string().max(65_536), z.array(textPart).max(64)]).nullable(),
  name: z.string().max(64).nullish(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const ChatCompletionSchema = z.object({
  ...common,
  messages: z.array(ChatMessageSchema).min(1).max(256),
  max_completion_tokens: z.number().int().min(1).max(MAX_CONTEXT).nullish(),
  logprobs: neutral(z.boolean(), (v) => !v, 'logprobs'),
  top_logprobs: neutral(z.number().int(), () => false, 'top_logprobs'),
  tools: neutral(z.array(z.unknown()), (v) => v.length === 0, 'tools'),
  tool_choice: neutral(z.unknown(), (v) => v === 'none', 'tool_choice'),
  response_format: neutral(z.object({ type: z.string() }), (v) => v.type === 'text', 'response_format other than text'),
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionSchema>;
