/**
 * Sampled drafts (temperature > 0). A deterministic draft token x is accepted with the target's own
 * p(x); a token drawn from a draft distribution q is accepted with 1 - TV(p, q), which stays high
 * where p is spread out, as long as q is close to p. So at T > 0 a drafter with a distribution draws
 * its drafts from q (tempered and truncated with the request's own temperature / top-k / top-p), and
 * hands q to the verifier with each node (TokenTree.proposals), which keeps the output lossless
 * (acceptance.ts). Siblings are drawn without replacement: each from q without the tokens of the
 * siblings before it, so the verifier's q_i is known exactly.
 *
 * Shapes: V vocabulary, C read-out classes (a shortlist of the vocabulary, or all of it).
 */
import { Rng, targetDistribution } from './sampling.js';
import type { SamplingParams, TokenTree } from './types.js';

/** The parts of the request's parameters that shape q (temperature, top-k, top-p; no penalties). */
export function draftParams(params: SamplingParams): SamplingParams {
  return { temperature: params.temperature, topP: params.topP, topK: params.topK, seed: 0 };
}

/**
 * q [V] over token ids from read-out scores over C classes: `logits` [C] (log-probabilities or logits
 * at temperature 1, -Infinity for none) -> softmax(logits / T), cut to top-k / top-p, scattered to
 * the classes' token ids (`shortlist[c]`, or c itself). Tokens outside the read-out get q = 0: the
 * verifier can still emit them from the residual.
 */
export function proposalFromLogits(logits: ArrayLike<number>, params: SamplingParams, V: number, shortlist?: readonly number[]): Float64Array {
  const qc = targetDistribution(logits, draftParams(params));
  if (!shortlist && qc.length === V) return qc;
  const q = new Float64Array(V);
  for (let c = 0; c < qc.length; c++) if (qc[c] > 0) q[shortlist ? shortlist[c] : c] += qc[c];
  return q;
}

/**
 * One token drawn from q [V] without the tokens in `exclude` (q renormalised over the rest), or -1
 * when nothing with mass is left. Consumes one rng.next() when it draws.
 */
export function sampleProposal(q: Float64Array, exclude: readonly number[], rng: Rng): number {
  let removed = 0;
  for (const t of exclude) removed += q[t];
  const left = 1 - removed;
  if (!(left > 1e-12)) return -1;
  const u = rng.next() * left;
  let cum = 0;
  let last = -1;
  const ex = new Set(exclude);
  for (let i = 0; i < q.length; i++) {
    if (q[i] > 0 && !ex.has(i)) {
      cum += q[i];
      last = i;
      if (u < cum) return i;
    }
  }
  return last; // rounding: u landed at the very top of the mass
}

/**
 * Grows `tree` in place with sampled nodes under `parent`: at depth j (0-based, below `parent`) up to
 * widths[j] siblings drawn without replacement from next(prefix), where prefix = the sampled tokens
 * from `parent` down so far; a parent's existing children come first in order and are excluded. The
 * chain continues under the first sibling drawn at each depth; `next` returning undefined stops it.
 * At most `budget` nodes in all. Returns the number of nodes added.
 */
export function appendSampled(
  tree: TokenTree,
  parent: number,
  widths: readonly number[],
  next: (prefix: readonly number[]) => Float64Array | undefined,
  rng: Rng,
  budget: number,
): number {
  const proposals = tree.proposals ?? (tree.proposals = tree.tokens.map(() => undefined));
  const start = tree.tokens.length;
  const prefix: number[] = [];
  let node = parent;
  for (let j = 0; j < widths.length && tree.tokens.length < budget; j++) {
    const q = next(prefix);
    if (!q) break;
    const siblings: number[] = [];
    for (let i = 1; i < tree.tokens.length; i++) if (tree.parents[i] === node) siblings.push(tree.tokens[i]);
    let first = -1;
    for (let w = 0; w < widths[j] && tree.tokens.length < budget; w++) {
      const x = sampleProposal(q, siblings, rng);
      if (x < 0) break;
      siblings.push(x);
      if (first < 0) first = tree.tokens.length;
      tree.tokens.push(x);
      tree.parents.push(node);
      tree.depths.push(tree.depths[node] + 1);
      proposals.push(q);
    }
    if (first < 0) break;
    node = first;
    prefix.push(tree.tokens[first]);
  }
  return tree.tokens.length - start;
}
