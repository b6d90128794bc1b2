/**
 * Request schemas (zod, applied through @hono/zod-validator). Ranges follow OpenAI's.
 *
 * Every parameter a route does not know is refused (400 "Unrecognized request argument supplied", naming
 * it), as OpenAI does: a caller who sends `response_format: json_object` to the completions route, or
 * `best_of` to chat, must not get free text that silently ignored it. OpenAI parameters we do not
 * implement are accepted only at their neutral value, so clients that send defaults keep working.
 * Prompt lengths are not bounded here (the body limit bounds the bytes): the session checks them in tokens
 * against the loaded model, so every over-long prompt gets the same `context_length_exceeded`.
 */
import { z } from 'zod';
import { MAX_BUDGET, MAX_TOP_LOGPROBS } from '../../engine/index';

/** Session ids: what we put in a Durable Object name after "<tenant>:". Not only dots: `.` and `..` are path
 *  segments that URLs normalise away, so GET / DELETE /v1/sessions/{id} could never address them. */
export const SESSION_ID_RE = /^(?!\.+$)[A-Za-z0-9._:-]{1,128}$/;

/** Stop strings are matched on the text's UTF-16 code units: a lone surrogate in one would cut a character
 *  in two (and return half of it). Well-formed strings only start and end on character boundaries. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const stopString = z.string().min(1).max(64).refine((v) => !LONE_SURROGATE.test(v), { message: 'a stop string must be well-formed text (no lone surrogate)' });

const neutral = <T extends z.ZodType>(schema: T, ok: (v: z.infer<T>) => boolean, what: string) =>
  schema.nullish().refine((v) => v === null || v === undefined || ok(v as z.infer<T>), { message: `${what} is not supported` });

/** Most choices per request (n x prompts). */
export const MAX_CHOICES = 16;

/** logit_bias: token ids (as JSON object keys) -> a bias in [-100, 100]; at most 300 of them. */
const logitBias = z
  .record(z.string().regex(/^(0|[1-9]\d{0,9})$/, 'keys must be token ids'), z.number().min(-100).max(100))
  .refine((v) => Object.keys(v).length <= 300, { message: 'at most 300 tokens' });

/** Accepted and ignored (user is recorded with the session): they change nothing a text generator does. */
const ignored = {
  user: z.string().max(256).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  service_tier: z.string().max(32).nullish(),
  store: neutral(z.boolean(), (v) => !v, 'store'),
};

const common = {
  model: z.string().min(1).max(128),
  /** Bounded by the tenant's max_tokens here, and by the model's context (its manifest) in the engine. */
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** Extension: top-k filtering, 0 = off. */
  top_k: z.number().int().min(0).max(1_000_000).nullish(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).nullish(),
  stop: z.union([stopString, z.array(stopString).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z
    .strictObject({ include_usage: z.boolean().nullish(), include_obfuscation: neutral(z.boolean(), (v) => !v, 'stream_options.include_obfuscation') })
    .nullish(),
  /** Choices per prompt (one after another, each in an ephemeral session of its own). */
  n: z.number().int().min(1).max(MAX_CHOICES).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  /** Extension: CTRL / Hugging Face repetition penalty over prompt + completion (1 = off). Bounded on both
   *  sides so penalised logits stay finite (x / r with r near 0 overflows float32 to Infinity, then NaN). */
  repetition_penalty: z.number().min(0.01).max(10).nullish(),
  logit_bias: logitBias.nullish(),
  ...ignored,
  /** Extension: drafter name (none, prompt lookup, ctc, ...), validated against the engine. */
  drafter: z.string().min(1).max(64).nullish(),
  /** Extension: draft tree budget (nodes incl. root). */
  tree_budget: z.number().int().min(1).max(MAX_BUDGET).nullish(),
  /** Extension: session id (alternative to the X-Session-Id header). */
  session_id: z.string().regex(SESSION_ID_RE).nullish(),
  /** Extension: continue generating from the session's tokens, ignoring prompt/messages. */
  continue: z.boolean().nullish(),
};

const tokenIds = z.array(z.number().int().min(0)).min(1);

export const CompletionSchema = z.strictObject({
  ...common,
  prompt: z
    .union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)], {
      error: 'expected a string, an array of strings, an array of token ids or an array of token-id arrays',
    })
    .refine((p) => typeof p === 'string' || typeof p[0] === 'number' || p.length <= MAX_CHOICES, { message: `at most ${MAX_CHOICES} prompts per request` }),
  /** Prepend the prompt to the completion text. */
  echo: z.boolean().nullish(),
  suffix: neutral(z.string(), (v) => v === '', 'suffix'),
  /** Legacy form: the log-probabilities of each token with this many alternatives. */
  logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
  best_of: neutral(z.number().int(), (v) => v === 1, 'best_of other than 1'),
});
export type CompletionBody = z.infer<typeof CompletionSchema>;

const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });
/** Messages as clients send them back (an assistant reply carries `refusal: null`, `annotations: []`);
 *  what a text model cannot honour (tool calls, audio) is refused. */
export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(textPart).max(64)]).nullable(),
  name: z.string().max(64).nullish(),
  tool_calls: neutral(z.array(z.unknown()), (v) => v.length === 0, 'tool_calls'),
  function_call: neutral(z.unknown(), () => false, 'function_call'),
  audio: neutral(z.unknown(), () => false, 'audio'),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const ChatCompletionSchema = z.strictObject({
  ...common,
  messages: z.array(ChatMessageSchema).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
  tools: neutral(z.array(z.unknown()), (v) => v.length === 0, 'tools'),
  tool_choice: neutral(z.unknown(), (v) => v === 'none', 'tool_choice'),
  parallel_tool_calls: z.boolean().nullish(), // meaningless without tools
  functions: neutral(z.array(z.unknown()), (v) => v.length === 0, 'functions'),
  function_call: neutral(z.unknown(), (v) => v === 'none', 'function_call'),
  response_format: neutral(z.object({ type: z.string() }), (v) => v.type === 'text', 'response_format other than text'),
  modalities: neutral(z.array(z.string()), (v) => v.every((m) => m === 'text'), 'modalities other than text'),
  reasoning_effort: neutral(z.string(), () => false, 'reasoning_effort'),
  prediction: neutral(z.unknown(), () => false, 'prediction'),
  audio: neutral(z.unknown(), () => false, 'audio'),
  web_search_options: neutral(z.unknown(), () => false, 'web_search_options'),
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionSchema>;
