/**
 * Which drafted tokens the base model accepts, from the logits of ONE verification pass.
 * Pure functions over logits rows: logits is [S * V] row-major, row i = the base model's
 * next-token logits after the path root..node i (tree order, as verified).
 *
 * Both rules always emit one bonus token from the target distribution at the last accepted node,
 * so a round makes progress even when every draft token is rejected.
 *
 * With penalties (SamplingParams frequency/presence/repetition) the distribution at a node depends on
 * the tokens before it: `history` is the committed tokens' (the root included), and the walk extends a
 * copy of it with each accepted token, so every node sees what plain decoding would have generated.
 */
import type { SamplingParams, TokenTree } from './types.js';
import { childrenOf } from './tree.js';
import { argmax, isGreedy, processLogits, Rng, sampleFrom, targetDistribution, type TokenHistory } from './sampling.js';

export interface Acceptance {
  /** Accepted node indices, root first (always starts with 0). */
  path: number[];
  /** Token sampled (or argmax) from the target distribution at the last node of `path`. */
  bonus: number;
}

function row(logits: Float32Array, V: number, i: number): Float32Array {
  return logits.subarray(i * V, (i + 1) * V);
}

/**
 * Greedy: descend while some child's token equals the argmax at its parent (siblings are
 * distinct, so at most one child matches). The bonus is the argmax at the last accepted node.
 */
export function acceptGreedy(tree: TokenTree, logits: Float32Array, V: number, params?: SamplingParams, history?: TokenHistory): Acceptance {
  const children = childrenOf(tree);
  const path = [0];
  let node = 0;
  const h = params && history ? history.fork() : undefined;
  for (;;) {
    const r = row(logits, V, node);
    const best = argmax(params ? processLogits(r, params, h) : r);
    const next = children[node].find((c) => tree.tokens[c] === best);
    if (next === undefined) return { path, bonus: best };
    path.push(next);
    h?.push(best);
    node = next;
  }
}

/**
 * Lossless tree sampling (it keeps the target distribution exactly for a deterministic tree,
 * which Medusa's "typical acceptance" does not). At each node with target distribution p (the same
 * processing as plain sampling): try children in order; accept child x with probability
 * p(x) / (mass left); on rejection set p(x) = 0 (renormalising implicitly) and try the next
 * sibling. If none is accepted, the bonus is drawn from what is left of p; if one is, descend.
 *
 * Why this is exact: for a fixed ordered list of proposals, "accept x w.p. p(x)/mass, else remove
 * x and recurse" emits x with probability exactly p(x), by induction over the list.
 * Greedy params (temperature 0) fall back to acceptGreedy (no randomness consumed).
 */
export function acceptSampling(
  tree: TokenTree,
  logits: Float32Array,
  V: number,
  params: SamplingParams,
  rng: Rng,
  history?: TokenHistory,
): Acceptance {
  if (isGreedy(params)) return acceptGreedy(tree, logits, V, params, history);
  const children = childrenOf(tree);
  const path = [0];
  let node = 0;
  const h = history?.fork();
  for (;;) {
    const p = targetDistribution(row(logits, V, node), params, h);
    let accepted = -1;
    for (const c of children[node]) {
      const px = p[tree.tokens[c]];
      if (!(px > 0)) continue; // probability 0: rejected without a draw
      const mass = sum(p);
      // px === mass means x is all that is left: accepted with probability 1, no draw needed.
      if (px >= mass || rng.next() * mass < px) {
        accepted = c;
        break;
      }
      p[tree.tokens[c]] = 0;
    }
    if (accepted < 0) return { path, bonus: sampleFrom(p, rng) };
    path.push(accepted);
    h?.push(tree.tokens[accepted]);
    node = accepted;
  }
}

/** Sum recomputed from scratch (not by subtraction) so removed mass leaves no rounding residue. */
function sum(p: Float64Array): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += p[i];
  return s;
}

/** Accept according to the sampling params: greedy for temperature 0, else lossless sampling
 *  (acceptSampling already dispatches on the params). */
export const accept = acceptSampling;
