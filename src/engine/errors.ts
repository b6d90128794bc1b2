/** Errors a caller maps to HTTP 4xx (the engine has no HTTP knowledge). */
export type EngineErrorCode =
  | 'context_length_exceeded'
  | 'invalid_request'
  | 'invalid_token'
  | 'session_busy'
  | 'unknown_drafter'
  | 'model_mismatch';

/** Facts behind an error, for callers that word their own message (the Worker's OpenAI errors). */
export interface EngineErrorDetail {
  /** context_length_exceeded: prompt tokens, completion tokens asked for (>= 1), the context limit, and
   *  which of the two does not fit (`prompt` alone, or the prompt with `maxTokens`). */
  promptTokens?: number;
  maxTokens?: number;
  maxContext?: number;
  over?: 'prompt' | 'maxTokens';
  /** invalid_token: the token id, the vocabulary size, and where it was (the prompt unless `field`). */
  token?: number;
  vocabSize?: number;
  field?: 'logitBias';
  /** unknown_drafter: the name asked for and the names the engine has. */
  drafter?: string;
  drafters?: string[];
}

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    readonly detail: EngineErrorDetail = {},
  ) {
    super(message);
    this.name = 'EngineError';
  }
}
