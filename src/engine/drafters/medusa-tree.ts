/**
 * Medusa's sparse candidate tree, from per-head distributions (pure, no ORT).
 *
 * Head i (0-based) predicts the (i+1)-th token after the pending one, independently of the
 * others. A tree node at depth d is a choice of one top-m token per head 0..d-1 and is scored by
 * the product of those tokens' probabilities (an estimate of "this path is right"). Nodes are
 * taken best-first: since a child never scores above its parent and siblings come sorted, the
 * frontier only needs each taken node's best child and its next-ranked sibling. The result is
 * exactly the `budget - 1` highest-scoring paths (ties by insertion), ancestor-closed, topological.
 */
import type { TokenTree } from '../types.js';
import { topMIndices } from '../ctc-decode.js';
import { rootOnly } from '../tree.js';

export interface HeadTopM {
  /** [heads * m] token ids, per head sorted by probability (desc). */
  tokens: Int32Array;
  /** [heads * m] probabilities (softmax over the full vocabulary). */
  probs: Float64Array;
  heads: number;
  m: number;
}

/**
 * Top-m tokens and their softmax probabilities per head, from logits [heads, V] at `offset`.
 * Only the first `heads` heads are read.
 */
export function headTopM(logits: ArrayLike<number>, offset: number, heads: number, V: number, m: number, out?: HeadTopM): HeadTopM {
  const res = out && out.heads === heads && out.m === m
    ? out
    : { tokens: new Int32Array(heads * m), probs: new Float64Array(heads * m), heads, m };
  const idx = new Int32Array(m);
  const val = new Float64Array(m);
  for (let h = 0; h < heads; h++) {
    const base = offset + h * V;
    const n = topMIndices(logits, base, V, m, idx, val);
    const max = val[0];
    let z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(logits[base + i] - max);
    for (let j = 0; j < m; j++) {
      res.tokens[h * m + j] = j < n ? idx[j] : -1;
      res.probs[h * m + j] = j < n ? Math.exp(val[j] - max) / z : 0;
    }
  }
  return res;
}

export interface MedusaTreeOptions {
  budget: number;
  /** Stop when the best remaining path scores below this (adaptive drafting). Default 0. */
  minProb?: number;
}

/** Best-first tree over the heads' top-m lists; returns the tree and each node's path score. */
export function medusaTree(root: number, top: HeadTopM, opts: MedusaTreeOptions): TokenTree & { scores: number[] } {
  const budget = Math.max(1, Math.floor(opts.budget));
  const minProb = opts.minProb ?? 0;
  const { m, heads } = top;
  const tree = { ...rootOnly(root), scores: [1] };
  // frontier entries: (parent tree index, head, rank, score)
  const fParent: number[] = [];
  const fHead: number[] = [];
  const fRank: number[] = [];
  const fScore: number[] = [];
  const push = (parent: number, head: number, rank: number) => {
    if (head >= heads || rank >= m) return;
    const tok = top.tokens[head * m + rank];
    if (tok < 0) return;
    fParent.push(parent);
    fHead.push(head);
    fRank.push(rank);
    fScore.push(tree.scores[parent] * top.probs[head * m + rank]);
  };
  push(0, 0, 0);
  while (tree.tokens.length < budget && fScore.length > 0) {
    let bi = 0;
    for (let i = 1; i < fScore.length; i++) if (fScore[i] > fScore[bi]) bi = i;
    const parent = fParent[bi], head = fHead[bi], rank = fRank[bi], score = fScore[bi];
    if (score < minProb) break;
    const last = fScore.length - 1;
    fParent[bi] = fParent[last]; fHead[bi] = fHead[last]; fRank[bi] = fRank[last]; fScore[bi] = fScore[last];
    fParent.pop(); fHead.pop(); fRank.pop(); fScore.pop();
    const idx = tree.tokens.length;
    tree.tokens.push(top.tokens[head * m + rank]);
    tree.parents.push(parent);
    tree.depths.push(head + 1);
    tree.scores.push(score);
    push(parent, head, rank + 1); // next sibling
    push(idx, head + 1, 0); // best child
  }
  return tree;
}
