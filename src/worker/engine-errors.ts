/**
 * EngineError -> the API's error, by its code (the engine validates every generation request and words
 * nothing for HTTP; this is where its errors get OpenAI's messages, params and codes). Plain, tested in Node.
 */
import { EngineError } from '../engine/index';
import { ApiError, badRequest } from './openai/errors';
import type { SessionRequest } from './openai/request';

/** The request an engine error is about, as the API saw it: the client's parameter names among it. */
export type ErrorContext = Pick<SessionRequest, 'params' | 'continue' | 'fitMaxTokens'>;

export function engineApiError(e: EngineError, ctx: ErrorContext): ApiError {
  const d = e.detail;
  switch (e.code) {
    case 'session_busy':
      return new ApiError(409, 'Another request is generating in this session; retry when it finishes.', 'conflict_error', null, 'session_busy');
    case 'unknown_drafter':
      return badRequest(`Unknown drafter "${d.drafter}". This model has: ${(d.drafters ?? []).join(', ')}.`, 'drafter', 'unknown_drafter');
    case 'invalid_token':
      if (d.field === 'logitBias') return badRequest(`logit_bias: token id ${d.token} is outside the vocabulary [0, ${d.vocabSize}).`, 'logit_bias', 'invalid_token');
      return badRequest(`Token id ${d.token} is outside the vocabulary [0, ${d.vocabSize}).`, ctx.params.prompt, 'invalid_token');
    case 'context_length_exceeded': {
      const p = d.promptTokens ?? 0;
      const m = d.maxTokens ?? 1;
      const param = ctx.continue ? 'continue' : ctx.fitMaxTokens || d.over === 'prompt' ? ctx.params.prompt : ctx.params.maxTokens;
      return badRequest(
        `This model's maximum context length is ${d.maxContext} tokens. However, you requested ${p + m} tokens ` +
          `(${p} in the prompt, ${m} for the completion). Please reduce the prompt or max_tokens.`,
        param,
        'context_length_exceeded',
      );
    }
    default:
      return badRequest(e.message, null, e.code);
  }
}

export { EngineError };
