/** The engine's errors as API errors (src/worker/engine-errors.ts), from the engine's own validation, in Node. */
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../../src/engine/errors.js';
import type { GenerateRequest } from '../../../src/engine/decoder.js';
import { validateRequest } from '../../../src/engine/validate.js';
import { engineApiError, type ErrorContext } from '../../../src/worker/engine-errors.js';
import { COMPLETION_PARAMS } from '../../../src/worker/openai/request.js';

const LIMITS = { vocabSize: 100, maxContext: 16, drafters: ['plain', 'ngram'] };
const SAMPLING = { temperature: 0, topP: 1, topK: 0, seed: 1 };
const CTX: ErrorContext = { params: COMPLETION_PARAMS, continue: false, fitMaxTokens: false };
const CHAT_PARAMS: ErrorContext['params'] = { prompt: 'messages', maxTokens: 'max_completion_tokens', logprobs: 'top_logprobs' };

function engineError(req: Partial<GenerateRequest>): EngineError {
  try {
    validateRequest({ promptTokens: [1, 2, 3], maxTokens: 4, sampling: SAMPLING, refuseOverContext: true, ...req }, LIMITS);
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return e as EngineError;
  }
  throw new Error('the request was accepted');
}

const api = (e: EngineError, ctx: Partial<ErrorContext> = {}) => {
  const a = engineApiError(e, { ...CTX, ...ctx });
  return { status: a.status, ...a.toJSON().error };
};

describe('engineApiError', () => {
  it('a token outside the vocabulary: 400 invalid_token naming the prompt field', () => {
    expect(api(engineError({ promptTokens: [1, 100] }), { params: CHAT_PARAMS })).toEqual({
      status: 400, type: 'invalid_request_error', param: 'messages', code: 'invalid_token',
      message: 'Token id 100 is outside the vocabulary [0, 100).',
    });
  });

  it('context: OpenAI wording; param prompt when the prompt alone is too long or max_tokens was not given, else max_tokens', () => {
    const long = engineError({ promptTokens: Array(16).fill(5), maxTokens: 0 });
    expect(long.detail).toMatchObject({ over: 'prompt', promptTokens: 16, maxTokens: 1, maxContext: 16 });
    expect(api(long)).toMatchObject({ status: 400, param: 'prompt', code: 'context_length_exceeded' });
    expect(api(long).message).toBe("This model's maximum context length is 16 tokens. However, you requested 17 tokens (16 in the prompt, 1 for the completion). Please reduce the prompt or max_tokens.");
    const over = engineError({ promptTokens: Array(10).fill(5), maxTokens: 7 });
    expect(api(over)).toMatchObject({ param: 'max_tokens', code: 'context_length_exceeded' });
    expect(api(over, { fitMaxTokens: true })).toMatchObject({ param: 'prompt' });
    // the client's own name for the parameter: chat's max_completion_tokens where it sent that
    expect(api(over, { params: CHAT_PARAMS })).toMatchObject({ param: 'max_completion_tokens' });
    expect(api(long, { params: CHAT_PARAMS })).toMatchObject({ param: 'messages' });
    expect(api(over, { continue: true })).toMatchObject({ param: 'continue' });
    // Without refuseOverContext the engine runs it and stops at the context ('length').
    expect(() => validateRequest({ promptTokens: Array(10).fill(5), maxTokens: 7, sampling: SAMPLING }, LIMITS)).not.toThrow();
  });

  it('an unknown drafter: 400 naming the drafters the model has', () => {
    expect(api(engineError({ drafter: 'psychic' }))).toMatchObject({
      status: 400, param: 'drafter', code: 'unknown_drafter', message: 'Unknown drafter "psychic". This model has: plain, ngram.',
    });
  });

  it('a busy session is a 409; anything else a 400 with the engine message and code', () => {
    expect(api(new EngineError('session_busy', 'busy'))).toMatchObject({ status: 409, type: 'conflict_error', code: 'session_busy' });
    expect(api(engineError({ treeBudget: 65 }))).toMatchObject({ status: 400, param: null, code: 'invalid_request', message: 'treeBudget must be an integer in [1, 64]' });
  });
});
