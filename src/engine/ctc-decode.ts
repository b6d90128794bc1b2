/**
 * CTC decoding for the draft head, as pure functions over typed arrays (no ORT, no I/O).
 *
 * The CTC head emits `slots` distributions over vocab+blank. An alignment (one symbol per slot)
 * collapses to a draft sequence by merging repeated symbols and dropping blanks. Prefix beam search
 * tracks, for each collapsed prefix, the probability of all alignments so far that collapse to it,
 * split into those ending in a blank (pB) and those ending in the prefix's last token (pNB), because
 * the next symbol merges into the prefix only in the second case.
 *
 * Cost control (vocab 4096 + blank): per slot only the top-m tokens (partial selection, no sort)
 * extend a prefix; the blank and "repeat the prefix's last token" are always scored exactly.
 * Prefixes live in a small trie of integer ids, so the search allocates nothing per slot.
 *
 * Two ways to a token tree, both rebuilt from collapsed prefixes (never by masking an alignment
 * tree), siblings distinct by construction, ancestor-closed and in topological order:
 *  - `prefixTree` (what the CTC drafter uses): every prefix the search created is a node weighted by
 *    its prefix probability P(the head's collapsed output starts with it), accumulated at the slot
 *    of the prefix's first emission; the heaviest nodes are taken best-first. These weights are what
 *    a node adds to the expected accepted length, and they are calibrated on the default model
 *    (predicted 0.28 / 0.49 / 0.70 / 0.93 vs observed 0.31 / 0.53 / 0.73 / 0.93, bench/draft-eval.ts).
 *  - tree.ts `treeFromSequences` over the final candidates: each node weighted by the summed
 *    probability of the full sequences through it (underestimates prefixes; kept for comparison).
 * tree.ts `bestTreeSize` / `costCut` then cut the best-first order where expected tokens per unit
 * of cost peak.
 */
import { bestFirst, type WeightedTree } from './tree.js';

export interface CTCBeamOptions {
  /** Prefixes kept after each slot. */
  beamWidth: number;
  /** Non-blank tokens per slot that may extend a prefix (top-m of the slot). */
  topM: number;
  /** Longest prefix (draft tokens) kept; longer extensions are dropped. 0 = no limit. */
  maxLen?: number;
}

export interface CTCCandidate {
  /** Collapsed draft tokens (after the pending token). */
  tokens: number[];
  /** log P(head emits exactly this collapsed sequence), restricted to the searched alignments. */
  logProb: number;
}

/** Collapse one alignment: merge repeats, then drop blanks. */
export function ctcCollapse(alignment: ArrayLike<number>, blankId: number): number[] {
  const out: number[] = [];
  let prev = -1;
  for (let i = 0; i < alignment.length; i++) {
    const s = alignment[i];
    if (s !== prev && s !== blankId) out.push(s);
    prev = s;
  }
  return out;
}

/**
 * Indices of the m largest values of row[offset .. offset+len), skipping `exclude` (relative index),
 * written to outIdx/outVal in descending order. Returns how many were written (≤ m).
 * O(len) in the common case: a value enters only when it beats the current m-th best.
 */
export function topMIndices(
  row: ArrayLike<number>,
  offset: number,
  len: number,
  m: number,
  outIdx: Int32Array,
  outVal: Float64Array,
  exclude = -1,
): number {
  let n = 0;
  let worst = -Infinity;
  const end = offset + len;
  const ex = exclude >= 0 ? offset + exclude : -1;
  for (let k = offset; k < end; k++) {
    const v = row[k];
    if (n === m && !(v > worst)) continue; // the common case: one compare per element
    if (k === ex) continue;
    // insertion into the descending list
    let j = n < m ? n++ : m - 1;
    while (j > 0 && outVal[j - 1] < v) {
      outVal[j] = outVal[j - 1];
      outIdx[j] = outIdx[j - 1];
      j--;
    }
    outVal[j] = v;
    outIdx[j] = k - offset;
    worst = outVal[n - 1];
  }
  return n;
}

/**
 * Reusable CTC prefix beam search (buffers grow on demand, reused across calls).
 * `classes` = V + 1 symbols per slot; `blankId` is usually V.
 */
export class CTCPrefixBeamSearch {
  readonly classes: number;
  readonly blankId: number;
  opts: Required<CTCBeamOptions>;

  // prefix trie: node 0 = empty prefix
  private nodeParent = new Int32Array(0);
  private nodeToken = new Int32Array(0);
  private nodeDepth = new Int32Array(0);
  /** P(collapsed output starts with the node's prefix), summed over the slot of its first emission. */
  private nodeMass = new Float64Array(0);
  private nodeCount = 0;
  private children = new Map<number, number>();
  // beams (current and next), as node ids with pB / pNB (linear probabilities)
  private curNode = new Int32Array(0);
  private curPB = new Float64Array(0);
  private curPNB = new Float64Array(0);
  private curCount = 0;
  private nxtNode = new Int32Array(0);
  private nxtPB = new Float64Array(0);
  private nxtPNB = new Float64Array(0);
  private nxtCount = 0;
  private slotOf = new Int32Array(0); // node -> index in nxt, valid when stamp matches
  private stamp = new Int32Array(0);
  private gen = 0;
  private order = new Int32Array(0);
  private topIdx = new Int32Array(0);
  private topVal = new Float64Array(0);
  private topP = new Float64Array(0);
  private firstChild = new Int32Array(0);
  private nextSib = new Int32Array(0);

  constructor(classes: number, blankId: number, opts: CTCBeamOptions) {
    if (blankId < 0 || blankId >= classes) throw new Error(`blank id ${blankId} outside [0, ${classes})`);
    this.classes = classes;
    this.blankId = blankId;
    this.opts = { maxLen: 0, ...opts };
    if (!(this.opts.beamWidth >= 1) || !(this.opts.topM >= 1)) throw new Error('beamWidth and topM must be >= 1');
  }

  private ensure(slots: number): void {
    const { beamWidth: B, topM: M } = this.opts;
    const maxNodes = 1 + slots * B * M;
    if (this.nodeParent.length < maxNodes) {
      this.nodeParent = new Int32Array(maxNodes);
      this.nodeToken = new Int32Array(maxNodes);
      this.nodeDepth = new Int32Array(maxNodes);
      this.nodeMass = new Float64Array(maxNodes);
      this.slotOf = new Int32Array(maxNodes);
      this.stamp = new Int32Array(maxNodes);
      this.gen = 0;
    }
    const maxNext = B * (M + 2);
    if (this.nxtNode.length < maxNext) {
      this.curNode = new Int32Array(maxNext);
      this.curPB = new Float64Array(maxNext);
      this.curPNB = new Float64Array(maxNext);
      this.nxtNode = new Int32Array(maxNext);
      this.nxtPB = new Float64Array(maxNext);
      this.nxtPNB = new Float64Array(maxNext);
      this.order = new Int32Array(maxNext);
    }
    if (this.topIdx.length < M) {
      this.topIdx = new Int32Array(M);
      this.topVal = new Float64Array(M);
      this.topP = new Float64Array(M);
    }
  }

  private child(node: number, token: number): number {
    const key = node * this.classes + token;
    let c = this.children.get(key);
    if (c === undefined) {
      c = this.nodeCount++;
      this.nodeParent[c] = node;
      this.nodeToken[c] = token;
      this.nodeDepth[c] = this.nodeDepth[node] + 1;
      this.nodeMass[c] = 0;
      this.children.set(key, c);
    }
    return c;
  }

  /** Index of `node` in the next beam set, creating an empty entry. */
  private nextEntry(node: number): number {
    if (this.stamp[node] === this.gen) return this.slotOf[node];
    const i = this.nxtCount++;
    this.stamp[node] = this.gen;
    this.slotOf[node] = i;
    this.nxtNode[i] = node;
    this.nxtPB[i] = 0;
    this.nxtPNB[i] = 0;
    return i;
  }

  /**
   * Runs the search over `slots` rows of log-probs starting at `offset` (row stride = classes).
   * Returns up to beamWidth candidates, best first. The empty sequence is included when it survives.
   */
  search(logProbs: ArrayLike<number>, slots: number, offset = 0): CTCCandidate[] {
    this.ensure(slots);
    const C = this.classes;
    const blank = this.blankId;
    const { beamWidth: B, topM: M, maxLen } = this.opts;
    this.children.clear();
    this.nodeCount = 1;
    this.nodeParent[0] = -1;
    this.nodeToken[0] = -1;
    this.nodeDepth[0] = 0;
    this.nodeMass[0] = 1;
    this.curCount = 1;
    this.curNode[0] = 0;
    this.curPB[0] = 1;
    this.curPNB[0] = 0;

    for (let t = 0; t < slots; t++) {
      const row = offset + t * C;
      if (++this.gen > 0x3fffffff) {
        this.stamp.fill(-1);
        this.gen = 1;
      }
      this.nxtCount = 0;
      const pBlank = Math.exp(logProbs[row + blank]);
      const nUse = topMIndices(logProbs, row, C, M, this.topIdx, this.topVal, blank);
      for (let j = 0; j < nUse; j++) this.topP[j] = Math.exp(this.topVal[j]);
      for (let b = 0; b < this.curCount; b++) {
        const node = this.curNode[b];
        const pb = this.curPB[b];
        const pnb = this.curPNB[b];
        const total = pb + pnb;
        const last = this.nodeToken[node];
        // blank: prefix unchanged, now ends in blank
        let e = this.nextEntry(node);
        this.nxtPB[e] += total * pBlank;
        // repeat of the last token without a blank in between: merges into the same prefix
        if (last >= 0) {
          e = this.nextEntry(node);
          this.nxtPNB[e] += pnb * Math.exp(logProbs[row + last]);
        }
        if (maxLen > 0 && this.nodeDepth[node] >= maxLen) continue;
        for (let j = 0; j < nUse; j++) {
          const c = this.topIdx[j];
          const p = this.topP[j];
          const ext = c === last ? pb : total; // same token again needs a blank in between
          if (ext === 0) continue;
          const ch = this.child(node, c);
          e = this.nextEntry(ch);
          this.nxtPNB[e] += ext * p;
          this.nodeMass[ch] += ext * p; // first emission of the new token at this slot
        }
        // the repeated token may extend (after a blank) even when outside the slot's top-m
        if (last >= 0 && pb > 0 && !(maxLen > 0 && this.nodeDepth[node] >= maxLen)) {
          let inTop = false;
          for (let j = 0; j < nUse; j++) if (this.topIdx[j] === last) inTop = true;
          if (!inTop) {
            const ch = this.child(node, last);
            e = this.nextEntry(ch);
            const m = pb * Math.exp(logProbs[row + last]);
            this.nxtPNB[e] += m;
            this.nodeMass[ch] += m;
          }
        }
      }
      // keep the best B
      const n = this.nxtCount;
      const order = this.order;
      for (let i = 0; i < n; i++) order[i] = i;
      const keep = Math.min(B, n);
      partialSortByScore(order, n, keep, this.nxtPB, this.nxtPNB);
      for (let i = 0; i < keep; i++) {
        const s = order[i];
        this.curNode[i] = this.nxtNode[s];
        this.curPB[i] = this.nxtPB[s];
        this.curPNB[i] = this.nxtPNB[s];
      }
      this.curCount = keep;
    }

    const out: CTCCandidate[] = [];
    for (let i = 0; i < this.curCount; i++) {
      const p = this.curPB[i] + this.curPNB[i];
      if (!(p > 0)) continue;
      out.push({ tokens: this.prefixTokens(this.curNode[i]), logProb: Math.log(p) });
    }
    out.sort((a, b) => b.logProb - a.logProb);
    return out;
  }

  /**
   * The token tree of the last search, straight from its prefix trie: every prefix the search
   * created is a node weighted by its prefix probability P(the head's collapsed output starts with
   * it) (exact for prefixes never pruned from the beam, a lower bound otherwise). Nodes are taken
   * best-first from the frontier (ancestor-closed, topological, siblings distinct) until `budget`
   * nodes or until the best frontier node weighs less than `minWeight`.
   */
  prefixTree(root: number, budget: number, minWeight = 0): WeightedTree {
    const n = this.nodeCount;
    if (this.firstChild.length < n) {
      this.firstChild = new Int32Array(this.nodeParent.length);
      this.nextSib = new Int32Array(this.nodeParent.length);
    }
    const first = this.firstChild, next = this.nextSib;
    first.fill(-1, 0, n);
    for (let c = n - 1; c >= 1; c--) {
      const p = this.nodeParent[c];
      next[c] = first[p];
      first[p] = c;
    }
    const mass = this.nodeMass;
    return bestFirst(
      {
        token: (id) => this.nodeToken[id],
        depth: (id) => this.nodeDepth[id],
        weight: (id) => mass[id],
        children: (id, visit) => {
          for (let c = first[id]; c >= 0; c = next[c]) visit(c);
        },
      },
      root,
      1,
      budget,
      (a, b) => mass[a] > mass[b] || (mass[a] === mass[b] && a < b),
      (id) => mass[id] >= minWeight && mass[id] > 0,
    );
  }

  /** Prefix probability of a token sequence in the last search's trie (0 if never reached). */
  prefixMass(tokens: readonly number[]): number {
    let node = 0;
    for (const t of tokens) {
      const c = this.children.get(node * this.classes + t);
      if (c === undefined) return 0;
      node = c;
    }
    return this.nodeMass[node];
  }

  private prefixTokens(node: number): number[] {
    const d = this.nodeDepth[node];
    const toks = new Array<number>(d);
    for (let i = d - 1; i >= 0; i--) {
      toks[i] = this.nodeToken[node];
      node = this.nodeParent[node];
    }
    return toks;
  }
}

/** Moves the `keep` best entries (by pb+pnb, descending) to the front of order[0..n). */
function partialSortByScore(order: Int32Array, n: number, keep: number, pb: Float64Array, pnb: Float64Array): void {
  for (let i = 0; i < keep; i++) {
    let best = i;
    let bestV = pb[order[i]] + pnb[order[i]];
    for (let j = i + 1; j < n; j++) {
      const v = pb[order[j]] + pnb[order[j]];
      if (v > bestV) {
        bestV = v;
        best = j;
      }
    }
    if (best !== i) {
      const tmp = order[i];
      order[i] = order[best];
      order[best] = tmp;
    }
  }
}

/** One-shot convenience wrapper around {@link CTCPrefixBeamSearch}. */
export function ctcPrefixBeamSearch(
  logProbs: ArrayLike<number>,
  slots: number,
  classes: number,
  blankId: number,
  opts: CTCBeamOptions,
): CTCCandidate[] {
  return new CTCPrefixBeamSearch(classes, blankId, opts).search(logProbs, slots);
}

/**
 * The CTC head's distribution of the next draft token given the draft tokens before it, exact over
 * every alignment (what the sampling drafter draws from; no beam). Probabilities P [S, C] (blank =
 * `blankId`). For the prefix y drawn so far it keeps, per slot boundary s = 0..S (before slot 0 ..
 * after slot S-1), the probability of the alignments of slots < s that collapse to y ending in a
 * blank (pb) or in y's last token (pnb). The score of extending y by x is the probability that x is
 * first emitted as y's next token at some slot s:
 *
 *   psi(x | y) = sum_s P[s, x] * (pb[s] + pnb[s] * [x != last(y)])       (all x at once: S x C)
 *
 * = P(the head's collapsed output starts with y, x), so q(x | y) = psi(x | y) / sum_x psi(x | y)
 * (the rest, P(output is exactly y), is "stop"). `extend(x)` moves to y + x in O(S).
 */
export class CTCPrefixConditionals {
  private readonly P: Float64Array;
  private pb: Float64Array;
  private pnb: Float64Array;
  private last = -1;

  /** logProbs [slots, classes] at `offset` (the head's output rows). */
  constructor(logProbs: ArrayLike<number>, readonly slots: number, readonly classes: number, readonly blankId: number, offset = 0) {
    const S = slots;
    this.P = new Float64Array(S * classes);
    for (let i = 0; i < S * classes; i++) this.P[i] = Math.exp(logProbs[offset + i]);
    // the empty prefix: blanks only so far
    this.pb = new Float64Array(S + 1);
    this.pnb = new Float64Array(S + 1);
    this.pb[0] = 1;
    for (let s = 0; s < S; s++) this.pb[s + 1] = this.pb[s] * this.P[s * classes + blankId];
  }

  /** psi(x | y) for every class x [C] (blank's entry 0); its sum is P(output continues after y). */
  scores(): Float64Array {
    const { P, classes: C, slots: S, blankId } = this;
    const out = new Float64Array(C);
    for (let s = 0; s < S; s++) {
      const w = this.pb[s] + this.pnb[s];
      if (w === 0) continue;
      const row = s * C;
      for (let x = 0; x < C; x++) out[x] += w * P[row + x];
    }
    if (this.last >= 0) {
      // repeating y's last token merges into it unless a blank separates them
      let merged = 0;
      for (let s = 0; s < S; s++) merged += this.pnb[s] * P[s * C + this.last];
      out[this.last] = Math.max(0, out[this.last] - merged);
    }
    out[blankId] = 0;
    return out;
  }

  /** Moves to the prefix y + x. */
  extend(x: number): void {
    const { P, classes: C, slots: S, blankId } = this;
    const nb = new Float64Array(S + 1);
    const b = new Float64Array(S + 1);
    for (let s = 0; s < S; s++) {
      const carry = this.pb[s] + (x !== this.last ? this.pnb[s] : 0);
      nb[s + 1] = P[s * C + x] * (carry + nb[s]);
      b[s + 1] = P[s * C + blankId] * (b[s] + nb[s]);
    }
    this.pb = b;
    this.pnb = nb;
    this.last = x;
  }
}
