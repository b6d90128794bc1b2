/** Errors a caller maps to HTTP 4xx (the engine has no HTTP knowledge). */
export class EngineError extends Error {
  constructor(
    readonly code: 'context_length_exceeded' | 'invalid_request' | 'session_busy' | 'unknown_drafter' | 'model_mismatch',
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}
