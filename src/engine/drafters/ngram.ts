/**
 * Prompt-lookup drafter (training-free): find the longest suffix of the context (n = maxN .. minN
 * tokens) that occurred earlier, and propose what followed it. Several earlier occurrences (most
 * recent first, longer n first) become branches of the tree; equal continuations merge.
 *
 * Each match gets a weight confidence[n] * recencyDecay^rank (an estimate of P(first token right)),
 * and contributes weight * depthDecay[n]^(d-1) at depth d, so long chains from weak (short)
 * matches are cut by `minWeight` (or cost-aware sizing) instead of paying for verification they
 * will rarely repay.
 */
import type { DraftContext, Drafter, TokenTree } from '../types.js';
import { costCut, rootOnly, treeFromSequences, type WeightedSequence, type WeightedTree } from '../tree.js';
import { sampledContext } from './sampled.js';

export interface NgramOptions {
  /** Longest suffix tried (tokens). */
  maxN: number;
  /** Shortest suffix tried. */
  minN: number;
  /** Distinct earlier occurrences used as branches (across all n). */
  maxMatches: number;
  /** Longest proposed continuation (draft tokens). */
  maxDepth: number;
  /** Estimated P(first continuation token is right) for a match of length n (index n; missing = last). */
  confidence: number[];
  /** Weight factor per extra depth along a continuation, per match length n (index n; missing = last). */
  depthDecay: number[];
  /** Weight factor for each older match at the same n. */
  recencyDecay: number;
  /** Nodes whose accumulated weight is below this are not proposed. */
  minWeight: number;
  /**
   * minWeight when the request samples (T > 0): a looked-up token x is then accepted with the target's
   * p(x), below the greedy-calibrated weights, so only the surest candidates pay for their nodes. A
   * number, or 'auto': T - 0.4 within [minWeight, 0.8] (sampledMinWeight below).
   */
  sampledMinWeight: number | 'auto';
  /** Only use matches at the longest n that has any (no lower-n branches). */
  longestOnly: boolean;
  /** Cost-aware size (0 = off): see bestTreeSize; R = one-token verify / marginal cost per node. */
  costRatio: number;
}

/**
 * The lookup's minWeight at temperature T > 0 ('auto'). On 20 long tuning prompts (bench/prompts-tune.jsonl,
 * 64 tokens) the best of 0.1 / 0.3 / 0.45 / 0.6 was 0.3 at T 0.7 / top-p 0.95 (1.51x plain vs 1.33x at
 * 0.1) and 0.6 at T 1 (1.05x vs 0.87x; 0.4: 1.01x): the line through both, kept within [minWeight, 0.8].
 */
export function sampledMinWeight(o: Pick<NgramOptions, 'minWeight' | 'sampledMinWeight'>, temperature: number): number {
  if (o.sampledMinWeight !== 'auto') return o.sampledMinWeight;
  return Math.min(0.8, Math.max(o.minWeight, temperature - 0.4));
}

/**
 * Calibrated on greedy continuations of held-out prompts (bench/prompts.jsonl 21-50, default
 * model): P(first continuation token right | longest match n) = 0.46, 0.63, 0.74, 0.78, 0.88,
 * 0.82, 0.94, 0.96 for n = 1..8, and P(first d right) decays by about 0.8 (n = 1) .. 0.95 (n = 8)
 * per extra token. costRatio 7 (cost-aware size): on long third-party prompts (bench/prompts-tune.jsonl,
 * 30 x 64 tokens) 1.83x vs 1.64x at 15, trees of 5.6 nodes vs 7.7: in wasm one more tree node costs
 * about 0.13 of a one-token decode (R = 1 / 0.13).
 */
export const NGRAM_DEFAULTS: NgramOptions = {
  maxN: 8,
  minN: 1,
  maxMatches: 4,
  maxDepth: 15,
  confidence: [0, 0.46, 0.63, 0.74, 0.78, 0.85, 0.85, 0.9, 0.96],
  depthDecay: [0.8, 0.8, 0.82, 0.85, 0.88, 0.89, 0.9, 0.9, 0.95],
  recencyDecay: 0.5,
  minWeight: 0.1,
  sampledMinWeight: 'auto',
  longestOnly: false,
  costRatio: 7,
};

export interface NgramMatch {
  /** Length of the matched suffix. */
  n: number;
  /** Index in `tokens` where the continuation starts. */
  start: number;
}

/**
 * Earlier occurrences of the context's suffixes, longest n first, most recent first within an n.
 * Occurrences whose continuation is identical to an already listed one (same next token sequence
 * start position) are skipped; at most `maxMatches` results.
 */
export function findNgramMatches(tokens: readonly number[], maxN: number, minN: number, maxMatches: number, longestOnly = false): NgramMatch[] {
  const L = tokens.length;
  const out: NgramMatch[] = [];
  const used = new Set<number>();
  for (let n = Math.min(maxN, L - 1); n >= Math.max(1, minN); n--) {
    let found = false;
    // candidate occurrence tokens[i .. i+n) with continuation starting at i+n < L
    for (let i = L - n - 1; i >= 0; i--) {
      let ok = true;
      for (let j = n - 1; j >= 0; j--) {
        if (tokens[i + j] !== tokens[L - n + j]) { ok = false; break; }
      }
      if (!ok) continue;
      found = true;
      const start = i + n;
      if (used.has(start)) continue;
      used.add(start);
      out.push({ n, start });
      if (out.length >= maxMatches) return out;
    }
    if (found && longestOnly) break;
  }
  return out;
}

export class NgramDrafter implements Drafter {
  readonly name = 'ngram';
  readonly opts: NgramOptions;

  constructor(opts: Partial<NgramOptions> = {}) {
    this.opts = { ...NGRAM_DEFAULTS, ...opts };
  }

  /** Weighted continuations for the context (exposed for tests and the bench). */
  sequences(tokens: readonly number[], depth: number): WeightedSequence[] {
    const o = this.opts;
    const matches = findNgramMatches(tokens, o.maxN, o.minN, o.maxMatches, o.longestOnly);
    const seqs: WeightedSequence[] = [];
    let prevN = -1;
    let rank = 0;
    for (const m of matches) {
      if (m.n !== prevN) { prevN = m.n; rank = 0; }
      const conf = o.confidence[Math.min(m.n, o.confidence.length - 1)];
      const w = conf * Math.pow(o.recencyDecay, rank++);
      const end = Math.min(tokens.length, m.start + depth);
      const decay = o.depthDecay[Math.min(m.n, o.depthDecay.length - 1)];
      seqs.push({ tokens: tokens.slice(m.start, end), weight: w, decay });
    }
    return seqs;
  }

  async draft(ctx: DraftContext): Promise<TokenTree> {
    return this.draftSync(ctx.tokens, ctx.pending, ctx.budget, sampledContext(ctx)?.sampling.temperature ?? 0);
  }

  /** `temperature` > 0: the request samples (sampledMinWeight). */
  draftSync(tokens: readonly number[], pending: number, budget: number, temperature = 0): TokenTree {
    return costCut(this.weighted(tokens, pending, budget, temperature), this.opts.costRatio);
  }

  /** The candidates as a best-first weighted tree, no cost cut (weights[0] = 1: the root is given). */
  weighted(tokens: readonly number[], pending: number, budget: number, temperature = 0): WeightedTree {
    const o = this.opts;
    const depth = Math.min(o.maxDepth, budget - 1);
    if (depth <= 0) return { ...rootOnly(pending), weights: [1] };
    const minWeight = temperature > 0 ? sampledMinWeight(o, temperature) : o.minWeight;
    const t = treeFromSequences(pending, this.sequences(tokens, depth), { budget, minWeight, maxDepth: depth });
    t.weights[0] = 1;
    return t;
  }
}
