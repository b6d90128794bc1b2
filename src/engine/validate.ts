/**
 * Request validation: what generate() refuses before it touches the session. The only check of a
 * generation request: hosts (the Worker) call DecodingSession.check, which runs this, before they
 * commit to a response, and word the errors from EngineError.code and .detail.
 */
import { EngineError } from './errors.js';
import type { GenerateRequest } from './decoder.js';

/** Tree nodes per round, root included, when the request does not say. */
export const DEFAULT_BUDGET = 16;
/** Largest tree: one verify pass holds its nodes after the cache's partial last panel. */
export const MAX_BUDGET = 64;

/** Most alternatives per token in logprobs. */
export const MAX_TOP_LOGPROBS = 20;

/** What the request is checked against. */
export interface ValidationLimits {
  vocabSize: number;
  maxContext: number;
  /** Registered drafter names. */
  drafters: readonly string[];
}

/** Throws an EngineError naming the first thing wrong with the request. */
export function validateRequest(req: GenerateRequest, limits: ValidationLimits): void {
  const { vocabSize: V, maxContext } = limits;
  const p = req.promptTokens;
  if (!Array.isArray(p) || p.length === 0) throw new EngineError('invalid_request', 'promptTokens must hold at least one token');
  for (const t of p) {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new EngineError('invalid_token', `token id ${t} outside [0, ${V})`, { token: t, vocabSize: V });
  }
  const asked = Math.max(1, req.maxTokens);
  const context = (over: 'prompt' | 'maxTokens', message: string) =>
    new EngineError('context_length_exceeded', message, { promptTokens: p.length, maxTokens: asked, maxContext, over });
  if (p.length >= maxContext) {
    throw context('prompt', `prompt has ${p.length} tokens; the model's context is ${maxContext} (prompt + completion)`);
  }
  if (!Number.isInteger(req.maxTokens) || req.maxTokens < 0) throw new EngineError('invalid_request', 'maxTokens must be an integer >= 0');
  if (req.refuseOverContext && p.length + asked > maxContext) {
    throw context('maxTokens', `prompt (${p.length} tokens) + maxTokens (${asked}) exceed the model's context of ${maxContext}`);
  }
  const s = req.sampling;
  if (!(s.temperature >= 0) || !(s.topP > 0 && s.topP <= 1) || !(Number.isInteger(s.topK) && s.topK >= 0) || !Number.isFinite(s.seed)) {
    throw new EngineError('invalid_request', 'sampling: temperature >= 0, 0 < topP <= 1, integer topK >= 0, finite seed');
  }
  const pen = (x: number | undefined, lo: number, hi: number) => x === undefined || (Number.isFinite(x) && x >= lo && x <= hi);
  if (!pen(s.frequencyPenalty, -2, 2) || !pen(s.presencePenalty, -2, 2)) {
    throw new EngineError('invalid_request', 'sampling: frequencyPenalty and presencePenalty must be in [-2, 2]');
  }
  if (!(s.repetitionPenalty === undefined || (Number.isFinite(s.repetitionPenalty) && s.repetitionPenalty > 0))) {
    throw new EngineError('invalid_request', 'sampling: repetitionPenalty must be > 0');
  }
  for (const [k, b] of Object.entries(s.logitBias ?? {})) {
    const t = Number(k);
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new EngineError('invalid_token', `logitBias token id ${k} outside [0, ${V})`, { token: t, vocabSize: V, field: 'logitBias' });
    if (!(Number.isFinite(b) && b >= -100 && b <= 100)) throw new EngineError('invalid_request', `logitBias of token ${k} must be in [-100, 100]`);
  }
  if (req.logprobs !== undefined && !(Number.isInteger(req.logprobs) && req.logprobs >= 0 && req.logprobs <= MAX_TOP_LOGPROBS)) {
    throw new EngineError('invalid_request', `logprobs must be an integer in [0, ${MAX_TOP_LOGPROBS}]`);
  }
  if (req.treeBudget !== undefined && !(Number.isInteger(req.treeBudget) && req.treeBudget >= 1 && req.treeBudget <= MAX_BUDGET)) {
    throw new EngineError('invalid_request', `treeBudget must be an integer in [1, ${MAX_BUDGET}]`);
  }
  const drafter = req.drafter ?? 'plain';
  if (!limits.drafters.includes(drafter)) {
    throw new EngineError('unknown_drafter', `unknown drafter "${drafter}" (have: ${limits.drafters.join(', ')})`, { drafter, drafters: [...limits.drafters] });
  }
}
