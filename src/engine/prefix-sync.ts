/**
 * Prefix sync: before a request's rounds, the session's KV cache is brought in line with the
 * request's full context, reusing the longest common prefix with what it holds.
 */
import type { LanguageModel } from './language-model.js';
import type { SessionState } from './session-state.js';

/**
 * Makes the cache cover prompt[0 .. n-2] and `hidden` the row at n-2 (prompt[n-1] becomes the
 * pending token), reusing the longest common prefix with the held tokens and prefilling the rest
 * in runs of at most `chunk` tokens. Returns how many prompt positions were reused.
 */
export async function syncPrefix(s: SessionState, model: LanguageModel, prompt: readonly number[], chunk: number): Promise<number> {
  const n = prompt.length;
  let reuse = Math.min(commonPrefix(prompt, s.tokens), s.kv.length, n - 1);
  if (reuse < s.kv.length) {
    s.kv.truncate(reuse);
    s.hidden = null;
  }
  s.rows.forget(reuse);
  // The drafter needs the hidden row at n-2: recompute the last position if it is not held.
  if (reuse === n - 1 && reuse > 0 && s.hidden === null) {
    reuse--;
    s.kv.truncate(reuse);
    s.rows.forget(reuse);
  }
  const rest = prompt.slice(reuse, n - 1);
  const d = s.rows.d;
  const step = Math.max(1, chunk);
  for (let i = 0; i < rest.length; i += step) {
    const part = rest.slice(i, i + step);
    const at = s.kv.length;
    const out = await model.prefill(part, s.kv);
    s.hidden = out.hidden.slice((part.length - 1) * d, part.length * d);
    s.rows.record(at, out.hidden, null);
  }
  if (n === 1) s.hidden = null; // no position before the pending token
  s.tokens = [...prompt];
  return reuse;
}

export function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
