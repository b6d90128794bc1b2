/**
 * One draft-verify round as a named sequence of steps (as Medusa's generate_candidates ->
 * tree_decoding -> evaluate_posterior -> update_inputs). Shapes: S tree nodes (node 0 = the
 * pending token), V vocabulary, d model width, P cached positions (= committed tokens - 1).
 *
 *   draft    the drafter's tree rooted at the pending token            -> TokenTree, S nodes
 *   verify   ONE base-model pass over the S nodes after the P cached    -> logits [S, V], hidden [S, d]
 *   accept   greedy or lossless sampling walks the tree                 -> path (node ids, root first) + bonus
 *   emit     path tokens after the root + bonus, until a stop token,
 *            a stop string or the token limit                           -> m tokens and their text
 *   commit   the cache keeps root..path[m-1]; the emitted tokens are
 *            committed, the last one becomes the pending token
 *
 * Plain decoding is the same round with a root-only tree (S = 1, path = [0], m = 1).
 * A drafter with a head fused into the verify pass (Drafter.fusedPass) gets its verify on that
 * graph in greedy rounds: the same logits, plus the head's draft for the next round, in one run.
 * `playRound` runs the five steps with a timer each (RoundStats).
 */
import { accept } from './acceptance.js';
import type { ForwardResult, LanguageModel } from './language-model.js';
import type { KVCache } from './kv-cache.js';
import { hasLogitProcessing, isGreedy, tokenLogprobs, type Rng, type TokenHistory, type TokenLogprob } from './sampling.js';
import type { SessionState } from './session-state.js';
import type { StopText } from './stop-text.js';
import { cutBudget, cutDepth, pathTokens, validateTree } from './tree.js';
import type { Drafter, FusedPass, RoundStats, SamplingParams, TokenTree } from './types.js';

/** What a round needs besides the session state. */
export interface RoundContext {
  drafter: Drafter;
  model: LanguageModel;
  sampling: SamplingParams;
  rng: Rng;
  /** Max tree nodes, root included. */
  budget: number;
  /** Deepest draft token kept (a round emits maxDepth + 1 tokens at most). */
  maxDepth: number;
  /** Tokens this round may emit at most. */
  left: number;
  stopTokens: ReadonlySet<number>;
  /** The request's stop-text state (detokenizer, stop strings, held text). */
  text: StopText;
  /** The tokens before the pending one as the penalties see them (prompt + generated); the round adds
   *  the tokens it emits. */
  history: TokenHistory;
  /** Log-probabilities of the emitted tokens, with this many alternatives each; undefined: none. */
  logprobs?: number;
}

export interface RoundResult {
  /** Emitted tokens; the last one is the new pending token. */
  tokens: number[];
  /** Text they released. */
  text: string;
  /** A stop token or a completed stop string ended the generation. */
  stopped: boolean;
  /** Per emitted token (RoundContext.logprobs), from the verify pass's row of its parent node. */
  logprobs?: TokenLogprob[];
  stats: RoundStats;
}

/** One round: draft -> verify -> accept -> emit -> commit, each step timed. */
export async function playRound(s: SessionState, r: RoundContext): Promise<RoundResult> {
  const P = s.kv.length;
  const t0 = now();
  const tree = await draftTree(s, r.drafter, r.budget, r.maxDepth, isGreedy(r.sampling) ? undefined : r);
  const t1 = now();
  // The fused graph's head sees greedy tokens: only greedy rounds on the raw logits can use it.
  const fused = isGreedy(r.sampling) && !hasLogitProcessing(r.sampling) ? r.drafter.fusedPass?.(s.tokens, tree) : undefined;
  const verified = await verifyTree(r.model, tree, s.kv, fused);
  const t2 = now();
  const V = r.model.config.vocab_size;
  const { path, candidates } = acceptPath(tree, verified.logits, V, r.sampling, r.rng, r.history);
  const t3 = now();
  const out = emitTokens(candidates, r.stopTokens, r.text, r.left);
  const logprobs = r.logprobs === undefined ? undefined : emittedLogprobs(verified.logits, V, path, out.tokens, r.sampling, r.history, r.logprobs);
  commitPath(s, P, verified.hidden, path, out.tokens);
  if (fused && verified.extra) fused.absorb(verified.extra, path, out.tokens);
  for (const t of out.tokens) r.history.push(t);
  const t4 = now();
  const accepted = Math.min(path.length - 1, out.tokens.length); // draft tokens accepted and emitted
  return {
    ...out,
    ...(logprobs ? { logprobs } : {}),
    stats: { treeSize: tree.tokens.length, accepted, proposed: tree.tokens.length - 1, draftMs: t1 - t0, verifyMs: t2 - t1, acceptMs: t3 - t2, commitMs: t4 - t3 },
  };
}

/**
 * draft: the drafter's tree for the pending token (tokens[n-1]), from the committed tokens,
 * the hidden row [d] before the pending token and the hidden-row window [*, d]; checked (the
 * drafter is external code), then cut to `budget` nodes and `maxDepth`. Out: S <= budget nodes.
 * With `sampled` (temperature > 0) the drafter may draw its drafts from its own distribution with
 * the round's generator (draft-sampling.ts; the verifier reads each node's q).
 */
export async function draftTree(s: SessionState, drafter: Drafter, budget: number, maxDepth: number, sampled?: { sampling: SamplingParams; rng: Rng }): Promise<TokenTree> {
  const pending = s.tokens[s.tokens.length - 1];
  const tree = await drafter.draft({
    tokens: s.tokens,
    hidden: s.hidden ?? new Float32Array(s.rows.d),
    hiddenRows: s.rows.window(s.kv.length),
    hiddenRowsFrom: s.rows.from,
    pending,
    budget,
    ...(sampled ? { sampling: sampled.sampling, rng: sampled.rng } : {}),
  });
  validateTree(tree, pending);
  return cutDepth(cutBudget(tree, budget), maxDepth);
}

/**
 * verify: ONE base-model pass over the S nodes (positions P + depth, ancestors-only mask),
 * appending their S KV rows after the P cached ones. Out: logits [S, V] (row i = next-token
 * logits after root..node i) and hidden [S, d]; with `fused`, on the graph with the head in it
 * (same logits bit for bit) and the head's outputs in `extra`. On failure the cache is cut back to P.
 */
export async function verifyTree(model: LanguageModel, tree: TokenTree, kv: KVCache, fused?: FusedPass): Promise<ForwardResult> {
  const P = kv.length;
  try {
    return await model.verifyTree(tree, kv, fused);
  } catch (e) {
    kv.truncate(Math.min(kv.length, P));
    throw e;
  }
}

/**
 * accept: which draft tokens the base model accepts, from logits [S, V] (acceptance.ts: greedy,
 * or lossless sampling with `rng`). Out: path = accepted node ids, root first (length a + 1);
 * candidates = the tokens of path[1..] then the bonus token (length a + 1).
 */
export function acceptPath(tree: TokenTree, logits: Float32Array, V: number, sampling: SamplingParams, rng: Rng, history?: TokenHistory): { path: number[]; candidates: number[] } {
  // The history matters only to penalties: without them, no copy of it per round.
  const acc = accept(tree, logits, V, sampling, rng, hasLogitProcessing(sampling) ? history : undefined);
  return { path: acc.path, candidates: [...pathTokens(tree, acc.path.slice(1)), acc.bonus] };
}

/**
 * The emitted tokens' log-probabilities: token k was chosen at node path[k] (row path[k] of logits
 * [S, V]), after the history plus the tokens emitted before it, the distribution plain decoding
 * would have used at that position.
 */
export function emittedLogprobs(logits: Float32Array, V: number, path: readonly number[], emitted: readonly number[], sampling: SamplingParams, history: TokenHistory, top: number): TokenLogprob[] {
  const h = hasLogitProcessing(sampling) ? history.fork() : undefined;
  return emitted.map((t, k) => {
    const node = path[k];
    const lp = tokenLogprobs(logits.subarray(node * V, (node + 1) * V), sampling, h, t, top);
    h?.push(t);
    return lp;
  });
}

/**
 * emit: the candidates one by one, ending after a stop token (emitted, no text), a token that
 * completes a stop string, or `left` tokens. Out: tokens = candidates[0..m), m >= 1, the text
 * they release (stop-text.ts) and whether the generation stopped.
 */
export function emitTokens(candidates: readonly number[], stopTokens: ReadonlySet<number>, text: StopText, left: number): { tokens: number[]; text: string; stopped: boolean } {
  let m = 0;
  let released = '';
  let stopped = false;
  for (const tok of candidates) {
    m++;
    if (stopTokens.has(tok)) {
      stopped = true;
      break;
    }
    released += text.push(tok);
    if (text.stopHit) {
      stopped = true;
      break;
    }
    if (m >= left) break;
  }
  return { tokens: candidates.slice(0, m), text: released, stopped };
}

/**
 * commit: of the S KV rows the verify pass appended after position P, the cache keeps those of
 * root..path[m-1] (m = emitted.length), compacted in place; the last kept node's row of hidden
 * [S, d] becomes the session's `hidden`, the kept rows join the hidden-row window, and the
 * emitted tokens are committed (the last one is the new pending token).
 */
export function commitPath(s: SessionState, P: number, hidden: Float32Array, path: readonly number[], emitted: readonly number[]): void {
  const kept = path.slice(0, emitted.length);
  s.kv.keep(P, kept);
  const d = s.rows.d;
  const last = kept[kept.length - 1];
  s.hidden = hidden.slice(last * d, (last + 1) * d);
  s.rows.record(P, hidden, kept);
  for (const t of emitted) s.tokens.push(t);
}

function now(): number {
  return performance.now();
}
