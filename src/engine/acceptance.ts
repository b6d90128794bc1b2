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
 * Lossless tree sampling: recursive rejection sampling over each node's children (SpecInfer's
 * multi-draft rule; for siblings drawn without replacement, Recursive Speculative Decoding's, Jeon et
 * al. 2024). At a node with target distribution p (the same processing as plain sampling), the
 * children are tried in order; child i was drawn from q_i (acceptChild):
 *   accept x_i with probability min(1, p_i(x_i) / q_i(x_i)); on rejection p_{i+1} = norm(max(0, p_i - q_i)).
 * If a child is accepted the walk descends into it; if none is, the bonus is drawn from what is left.
 *
 * Why this is exact: given everything before it, x_i ~ q_i, so one step is standard speculative
 * sampling from p_i, whose output is p_i-distributed when the residual p_{i+1} is sampled on
 * rejection; by induction over the list, the node emits exactly p. q_i is:
 *  - a point mass on x_i for a deterministic child (prompt lookup, greedy heads): accepted with
 *    p_i(x_i), on rejection x_i's probability set to 0 (today's rule for deterministic trees);
 *  - for a sampled child (TokenTree.proposals[i] = q), q without its earlier siblings' tokens,
 *    renormalised: the drafter drew it that way (sampling without replacement).
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
    let p = targetDistribution(row(logits, V, node), params, h);
    let accepted = -1;
    const kids = children[node];
    for (let i = 0; i < kids.length && accepted < 0; i++) {
      const r = acceptChild(p, tree, kids, i, rng);
      if (r === true) accepted = kids[i];
      else p = r;
    }
    if (accepted < 0) return { path, bonus: sampleFrom(p, rng) };
    path.push(accepted);
    h?.push(tree.tokens[accepted]);
    node = accepted;
  }
}

/**
 * One step of recursive rejection sampling: child kids[i] against p [V] (unnormalised: its sum is
 * the mass left). Returns true when accepted, else the residual to try the next sibling with (p
 * itself, changed in place, for a point mass; a new array for a sampled child).
 */
export function acceptChild(p: Float64Array, tree: TokenTree, kids: readonly number[], i: number, rng: Rng): true | Float64Array {
  const c = kids[i];
  const x = tree.tokens[c];
  const q = tree.proposals?.[c];
  const px = p[x];
  if (!q) {
    if (!(px > 0)) return p; // probability 0: rejected without a draw, and p stays as it is
    const mass = sum(p);
    // px === mass means x is all that is left: accepted with probability 1, no draw needed.
    if (px >= mass || rng.next() * mass < px) return true;
    p[x] = 0;
    return p;
  }
  if (q.length !== p.length) throw new Error(`tree: node ${c}'s proposal has ${q.length} entries for ${p.length} tokens`);
  // q_i = q without the earlier siblings' tokens, renormalised by z.
  let z = 1;
  const earlier = new Set<number>();
  for (let j = 0; j < i; j++) {
    const t = tree.tokens[kids[j]];
    earlier.add(t);
    z -= q[t];
  }
  const mass = sum(p);
  const qx = q[x] / z;
  const pxn = px / mass;
  // p(x) = 0: rejected without a draw, but the residual still takes q_i off (unlike a point mass)
  if (pxn > 0 && (pxn >= qx || rng.next() * qx < pxn)) return true;
  // residual max(0, p/mass - q_i), kept at p's scale (x mass); q_i is 0 on the earlier siblings
  const res = new Float64Array(p.length);
  let left = 0;
  for (let y = 0; y < p.length; y++) {
    const v = earlier.has(y) ? p[y] : p[y] - (q[y] / z) * mass;
    if (v > 0) {
      res[y] = v;
      left += v;
    }
  }
  // In exact arithmetic a rejection implies p_i(x) < q_i(x), hence TV(p_i, q_i) > 0 and mass left;
  // rounding can only leave none when p_i = q_i, where rejecting has probability 0.
  return left > 0 ? res : p;
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
