/**
 * Prompt assembly: the full context (token ids) of a generation request, from its text or token ids and
 * the tokens the session already holds. Plain functions over the tokenizer (tested in Node).
 */
import { badRequest } from './openai/errors';

/** What prompt assembly needs of the model. */
export interface PromptModel {
  tokenizer: { encode(text: string): number[]; decode(ids: readonly number[]): string };
  /** Tokens that end a document (the held tokens count only up to the first one). */
  stopTokens: ReadonlySet<number>;
  config: { bos_id: number };
}

export type PromptInput = { text: string } | { tokens: number[] };

/**
 * The context for a request: the held tokens (`continue`), the token ids as given, or `<s>` + the text,
 * reusing the held tokens for the longest prefix of the text they spell, so that resending "prompt +
 * completion so far" is an exact continuation. Token ids are checked by the engine, not here.
 */
export function assemblePrompt(model: PromptModel, held: readonly number[], prompt: PromptInput, cont: boolean): number[] {
  if (cont) {
    if (held.length === 0) throw badRequest('Nothing to continue: this session holds no tokens yet.', 'continue', 'empty_session');
    return [...held];
  }
  if ('tokens' in prompt) return prompt.tokens;
  return reuseTextPrefix(model, held, prompt.text);
}

/**
 * Prompt ids for `text`: `<s>` + the held tokens for the longest prefix of the text they spell (up to the
 * first stop token) + the encoding of the rest. When the text extends what the session holds, the result
 * starts with exactly the held tokens, so the engine reuses their KV and the output matches one long run.
 */
export function reuseTextPrefix(model: PromptModel, held: readonly number[], text: string): number[] {
  const bos = model.config.bos_id;
  const fresh = () => [bos, ...model.tokenizer.encode(text)];
  if (held.length < 2 || held[0] !== bos) return fresh();
  let body = held.slice(1);
  const stopAt = body.findIndex((t) => model.stopTokens.has(t));
  if (stopAt >= 0) body = body.slice(0, stopAt);
  const dec = (k: number) => model.tokenizer.decode(body.slice(0, k));
  let k: number;
  if (text.startsWith(dec(body.length))) k = body.length;
  else {
    // Largest k whose decoding is a prefix of the text (binary search; decoding is concatenative).
    let lo = 0;
    let hi = body.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (text.startsWith(dec(mid))) lo = mid;
      else hi = mid - 1;
    }
    k = lo;
  }
  if (k === 0) return fresh();
  const rest = text.slice(dec(k).length);
  return [bos, ...body.slice(0, k), ...(rest ? model.tokenizer.encode(rest) : [])];
}
