/**
 * One request shape from the API to the engine, and every default settled here, once:
 * - `completionRequest` / `chatRequest`: a route's validated body as an ApiRequest (sampling, stop, the
 *   drafter of the request or the tenant, each choice's token cap within the tenant's limits, and the 400s
 *   that need no model), with the client's names of its parameters (ParamNames) for the errors.
 * - `sessionRequest`: choice k of it as the session object receives it over RPC (SessionRequest).
 * - `engineRequest`: in the session object, what needs the model: the default drafter, max_tokens within
 *   the context, the seed of a request that names none.
 */
import { defaultDrafter, sameTokens, type GenerateRequest, type SamplingParams } from '../../engine/index';
import { choiceTokenLimit } from '../limits';
import type { PromptInput } from '../prompt';
import type { FaultSpec } from '../protocol';
import type { Limits } from '../rate-limiter';
import type { Tenant } from '../tenants';
import { renderChat, STOP_SEQUENCES } from './chat-template';
import { ApiError, badRequest } from './errors';
import { MAX_CHOICES, type ChatCompletionBody, type CompletionBody } from './schemas';

export type Route = 'completion' | 'chat';

/** The client's names of the parameters an error can point at (the routes name some differently). */
export interface ParamNames {
  prompt: 'prompt' | 'messages';
  maxTokens: 'max_tokens' | 'max_completion_tokens';
  logprobs: 'logprobs' | 'top_logprobs';
}

/** The completions route's names (also what an error about no request in particular names). */
export const COMPLETION_PARAMS: ParamNames = { prompt: 'prompt', maxTokens: 'max_tokens', logprobs: 'logprobs' };

/** A generation request as the Worker settles it, before it knows the model. */
export interface ApiRequest {
  route: Route;
  model: string;
  params: ParamNames;
  /** One choice (x n) per prompt. */
  prompts: PromptInput[];
  n: number;
  /** n x prompts, generated one after another, each in a session of its own (unless there is one choice). */
  choices: number;
  /** The public session id, or null for an ephemeral session (nothing persisted). */
  sessionId: string | null;
  continue: boolean;
  /** Completion tokens per choice: the client's max_tokens, else the share of the tenant's limits. */
  maxTokens: number;
  /** max_tokens was left to the server: the session lowers maxTokens to the room the context leaves. */
  fitMaxTokens: boolean;
  /** seed -1: none given (the session keeps its own on an exact continuation, else draws one). */
  sampling: SamplingParams;
  stop: string[];
  drafter: string | null;
  treeBudget: number | null;
  /** Alternatives per token when log-probabilities are asked for, else null. */
  logprobs: number | null;
  /** Return the prompt's text before the completion (completions' echo). */
  echo: boolean;
  user: string | null;
  stream: boolean;
  includeUsage: boolean;
  /** A chat reply that starts after "Assistant:", whose one leading space is dropped (chat-template.ts). */
  freshReply: boolean;
}

/** The request's fields a choice carries to its session unchanged (echo: the prompt's text goes back,
 *  DoStart.echoText; user: recorded with the session, reported by info). */
type ChoiceFields = 'sessionId' | 'model' | 'params' | 'continue' | 'maxTokens' | 'fitMaxTokens' | 'sampling' | 'stop' | 'drafter' | 'treeBudget' | 'logprobs' | 'echo' | 'user';

/** One choice of a request, as the session object receives it (RPC, session-do.ts). */
export interface SessionRequest extends Pick<ApiRequest, ChoiceFields> {
  tenant: string;
  /** Text (tokenised in the session, BOS prepended) or raw token ids; ignored when `continue`. */
  prompt: PromptInput;
  /** Rounds at most: what the earlier choices left of the tenant's bound. */
  maxRounds: number;
  /** The tenant's limits, when its object meters it: the session charges each generation's tokens there. */
  meter: Limits | null;
  /** A persistent session is deleted this long after its last request (its object's alarm). */
  sessionTtlMs: number;
  /** Fault injection, only where the deployment sets FAULT_INJECTION=on (tests): from `X-Fault` (JSON). */
  fault?: FaultSpec;
}

/** The fields both routes share, as the schemas give them. */
type CommonBody = CompletionBody | ChatCompletionBody;

/** /v1/completions: a string, a list of strings, token ids, or a list of token-id lists (one choice x n per prompt). */
export function completionRequest(body: CompletionBody, tenant: Tenant, sessionId: string | null): ApiRequest {
  const p = body.prompt;
  let prompts: PromptInput[];
  if (typeof p === 'string') prompts = [{ text: p }];
  else if (typeof p[0] === 'string') prompts = (p as string[]).map((text) => ({ text }));
  else if (Array.isArray(p[0])) prompts = (p as number[][]).map((tokens) => ({ tokens }));
  else prompts = [{ tokens: p as number[] }];
  const logprobs = body.logprobs ?? null;
  const echo = body.echo === true;
  const params = COMPLETION_PARAMS;
  const checked = checkCommon(body, params, prompts.length, sessionId);
  if (echo && logprobs !== null) throw badRequest("echo with logprobs is not supported: the prompt's log-probabilities are not computed.", 'echo', 'unsupported_parameter');
  return settle(body, tenant, sessionId, { route: 'completion', params, prompts, ...checked, maxTokens: body.max_tokens ?? null, logprobs, echo, stop: stopList(body.stop), freshReply: false });
}

/** /v1/chat/completions: the messages rendered as one prompt; the template's stop sequences before the client's. */
export function chatRequest(body: ChatCompletionBody, tenant: Tenant, sessionId: string | null): ApiRequest {
  // max_completion_tokens is chat's newer name for max_tokens; max_tokens wins when both are sent.
  const maxTokens = body.max_tokens ?? body.max_completion_tokens ?? null;
  const params: ParamNames = {
    prompt: 'messages',
    maxTokens: body.max_completion_tokens != null && maxTokens === body.max_completion_tokens ? 'max_completion_tokens' : 'max_tokens',
    logprobs: 'top_logprobs',
  };
  const checked = checkCommon(body, params, 1, sessionId);
  if (body.top_logprobs != null && !body.logprobs) throw badRequest('top_logprobs needs logprobs: true.', 'top_logprobs', 'invalid_value');
  const stop = [...STOP_SEQUENCES, ...stopList(body.stop).filter((s) => !STOP_SEQUENCES.includes(s))];
  return settle(body, tenant, sessionId, {
    route: 'chat', params, prompts: [{ text: renderChat(body.messages) }], ...checked, maxTokens,
    logprobs: body.logprobs ? (body.top_logprobs ?? 0) : null,
    echo: false,
    stop,
    freshReply: body.messages.at(-1)?.role !== 'assistant' && !body.continue,
  });
}

/** The checks both routes make before their own: `continue` needs a session, how many choices, one session each. */
function checkCommon(body: CommonBody, params: ParamNames, prompts: number, sessionId: string | null): { n: number; choices: number } {
  if (body.continue && sessionId === null) throw new ApiError(400, '`continue` needs a session (X-Session-Id header or session_id).', 'invalid_request_error', 'continue', 'missing_session');
  // Choices: n per prompt, prompt after prompt (choice k is prompt floor(k / n)), each in its own session.
  const n = body.n ?? 1;
  const choices = prompts * n;
  if (choices > MAX_CHOICES) throw badRequest(`n x prompts asks for ${choices} choices; at most ${MAX_CHOICES} per request.`, 'n', 'invalid_value');
  if (choices > 1 && sessionId !== null) {
    throw badRequest('Several choices (n > 1 or several prompts) each need a session of their own: send them without a session id.', n > 1 ? 'n' : params.prompt, 'invalid_value');
  }
  return { n, choices };
}

type RouteParts = Pick<ApiRequest, 'route' | 'params' | 'prompts' | 'n' | 'choices' | 'logprobs' | 'echo' | 'stop' | 'freshReply'> & { maxTokens: number | null };

/** The defaults both routes share, and each choice's token cap (a 400 past the tenant's budget). */
function settle(body: CommonBody, tenant: Tenant, sessionId: string | null, r: RouteParts): ApiRequest {
  const limit = choiceTokenLimit({
    n: r.n, prompts: r.prompts.length, maxTokens: r.maxTokens, maxTokensParam: r.params.maxTokens, tenantMaxTokens: tenant.max_tokens,
    requestTokens: tenant.max_request_tokens, logprobs: r.logprobs, logprobsParam: r.params.logprobs,
  });
  return {
    ...r,
    model: body.model,
    sessionId,
    continue: body.continue ?? false,
    maxTokens: limit,
    fitMaxTokens: r.maxTokens === null,
    sampling: {
      temperature: body.temperature ?? 1,
      topP: body.top_p ?? 1,
      topK: body.top_k ?? 0,
      seed: body.seed ?? -1,
      ...(body.frequency_penalty ? { frequencyPenalty: body.frequency_penalty } : {}),
      ...(body.presence_penalty ? { presencePenalty: body.presence_penalty } : {}),
      ...(body.repetition_penalty != null && body.repetition_penalty !== 1 ? { repetitionPenalty: body.repetition_penalty } : {}),
      ...(body.logit_bias && Object.keys(body.logit_bias).length ? { logitBias: body.logit_bias } : {}),
    },
    drafter: body.drafter ?? tenant.drafter ?? null, // the request's, then the tenant's, then the model's default (engineRequest)
    treeBudget: body.tree_budget ?? null,
    user: body.user ?? null,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
  };
}

function stopList(stop: string | string[] | null | undefined): string[] {
  return stop == null ? [] : typeof stop === 'string' ? [stop] : stop;
}

/** Choice k of a request, for its session object. */
export function sessionRequest(
  req: ApiRequest,
  k: number,
  ctx: { tenant: Tenant; maxRounds: number; meter: Limits | null; fault: FaultSpec | undefined },
): SessionRequest {
  const seed = req.sampling.seed;
  return {
    tenant: ctx.tenant.name,
    sessionId: req.sessionId,
    model: req.model,
    params: req.params,
    prompt: req.prompts[Math.floor(k / req.n)],
    continue: req.continue,
    maxTokens: req.maxTokens,
    fitMaxTokens: req.fitMaxTokens,
    maxRounds: ctx.maxRounds,
    // Choice k of a seeded request: seed + k (each choice its own stream, all reproducible).
    sampling: { ...req.sampling, seed: seed < 0 ? -1 : (seed + k) % 2 ** 32 },
    stop: req.stop,
    drafter: req.drafter,
    treeBudget: req.treeBudget,
    logprobs: req.logprobs,
    echo: req.echo,
    user: req.user,
    meter: ctx.meter,
    sessionTtlMs: ctx.tenant.session_ttl_s * 1000,
    fault: ctx.fault,
  };
}

/** What engineRequest needs of the model and the session. */
export interface EngineFacts {
  drafterNames: readonly string[];
  maxContext: number;
  /** The session's tokens and the seed of its generator (null before its first request). */
  held: readonly number[];
  heldSeed: number | null;
}

/** The engine's request for a choice whose prompt is `promptTokens`: the defaults that need the model. */
export function engineRequest(req: SessionRequest, promptTokens: number[], facts: EngineFacts, signal: AbortSignal): GenerateRequest {
  // max_tokens left to the server: the tenant's share, within the room the context leaves.
  const maxTokens = req.fitMaxTokens ? Math.min(req.maxTokens, facts.maxContext - promptTokens.length) : req.maxTokens;
  const sampling = { ...req.sampling };
  if (sampling.seed < 0) {
    // Without a seed, an exact continuation keeps the session's seed (and so its RNG stream).
    sampling.seed = facts.heldSeed !== null && sameTokens(promptTokens, facts.held) ? facts.heldSeed : crypto.getRandomValues(new Uint32Array(1))[0];
  }
  return {
    promptTokens,
    maxTokens,
    sampling,
    stop: req.stop,
    maxRounds: req.maxRounds,
    drafter: req.drafter ?? defaultDrafter(facts.drafterNames, sampling),
    treeBudget: req.treeBudget ?? undefined,
    refuseOverContext: true,
    logprobs: req.logprobs ?? undefined,
    signal,
  };
}
