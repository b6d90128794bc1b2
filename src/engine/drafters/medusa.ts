/**
 * Medusa-style drafter: the head (ONNX `files.medusa_head`, prefix-head.ts) gives logits [k, V'],
 * read-out i predicting the (i+1)-th token after the pending one. One head pass per round,
 * then Medusa's sparse tree: the best `budget - 1` cartesian-product paths of the heads' top-m
 * tokens, scored by the product of their probabilities (see medusa-tree.ts).
 */
import type { DraftContext, Drafter, FusedPass, TokenTree } from '../types.js';
import type { DraftHead } from './draft-head.js';
import { headTopM, medusaTree, type HeadTopM } from './medusa-tree.js';
import { costCut, rootOnly, type WeightedTree } from '../tree.js';
import { modelVocab } from './ctc.js';
import { appendMedusaSamples, sampledContext, type SampledTreeOptions } from './sampled.js';

export interface MedusaOptions {
  /** Candidates per head. */
  topM: number;
  /** Paths scoring below this are not proposed (adaptive drafting; 0 = fill the budget). */
  minProb: number;
  /** Cost-aware size (0 = off), as in the CTC drafter (see bestTreeSize). */
  costRatio: number;
  /**
   * Calibration: a path's weight is its score^exponent. The score multiplies the heads' independent
   * probabilities, which overstates how often a path is accepted (medusa on bench/prompts-tune.jsonl:
   * mean score 0.152, 0.098 accepted; weight^1.55 fits, bench/experiments/head-calibration.ts), and
   * the cost cut and the merge with prompt lookup read the weight as that probability. Monotone: the
   * order of the paths is unchanged. The factories take it from the head's manifest entry.
   */
  weightExponent: number;
  /** T > 0: the sampled chain's shape (drafters/sampled.ts). */
  sample: SampledTreeOptions;
}

/** costRatio 17: median speedup 0.95x vs 0.78x for full 16-node trees (64 prompts x 64 tokens). */
export const MEDUSA_DEFAULTS: MedusaOptions = { topM: 4, minProb: 0, costRatio: 17, weightExponent: 1, sample: { widths: [2, 1, 1, 1], minContinue: 0 } };

export interface MedusaHeadConfig {
  k: number;
  /** Classes per head: the model's vocabulary, or the shortlist's length. */
  vocab_size: number;
  /** Token id of each class when the head reads out a shortlist of the vocabulary. */
  shortlist?: readonly number[];
  /** The model's vocabulary size (sampled drafts' q is over it); default: the classes' largest id + 1. */
  model_vocab?: number;
}

export class MedusaDrafter implements Drafter {
  readonly name = 'medusa';
  readonly head: DraftHead;
  readonly k: number;
  readonly V: number;
  readonly shortlist?: readonly number[];
  readonly modelVocab: number;
  opts: MedusaOptions;
  private top?: HeadTopM;

  constructor(head: DraftHead, cfg: MedusaHeadConfig, opts: Partial<MedusaOptions> = {}) {
    this.head = head;
    this.k = cfg.k;
    this.V = cfg.vocab_size;
    this.shortlist = cfg.shortlist;
    this.modelVocab = cfg.model_vocab ?? modelVocab(cfg.shortlist, cfg.vocab_size);
    if (cfg.shortlist && cfg.shortlist.length !== cfg.vocab_size) throw new Error(`medusa head: shortlist has ${cfg.shortlist.length} ids, vocab_size says ${cfg.vocab_size}`);
    this.opts = { ...MEDUSA_DEFAULTS, ...opts };
  }

  fusedPass(tokens: readonly number[], tree: TokenTree): FusedPass | undefined {
    return this.head.fusedPass?.(tokens, tree);
  }

  async draft(ctx: DraftContext): Promise<TokenTree> {
    // A budget of one node, or a context of the pending token alone (no position for the head to read).
    if (ctx.budget <= 1 || ctx.tokens.length < 2) return rootOnly(ctx.pending);
    if (sampledContext(ctx)) {
      const tree = rootOnly(ctx.pending);
      await this.appendSamples(tree, ctx);
      return tree;
    }
    return this.treeFromLogits(await this.logits(ctx), ctx.pending, ctx.budget);
  }

  /** T > 0: drafts drawn from the read-outs' softmax (drafters/sampled.ts) under the root of `tree`. */
  async appendSamples(tree: TokenTree, ctx: DraftContext): Promise<number> {
    const s = sampledContext(ctx);
    if (!s || ctx.tokens.length < 2) return 0;
    const vocab = { V: this.modelVocab, shortlist: this.shortlist };
    const target = { tree, parent: 0, vocab, params: s.sampling, rng: s.rng, budget: ctx.budget, opts: this.opts.sample };
    return appendMedusaSamples(target, await this.logits(ctx), this.k);
  }

  /** The best `budget` paths' nodes, best-first, weighted by their path probability (token ids, no cost cut). */
  async weighted(ctx: DraftContext): Promise<WeightedTree> {
    if (ctx.tokens.length < 2) return { ...rootOnly(ctx.pending), weights: [1] };
    const t = this.fullTree(await this.logits(ctx), ctx.pending, ctx.budget);
    return { tokens: t.tokens, parents: t.parents, depths: t.depths, weights: this.calibrated(t.scores) };
  }

  /** The pure part: head logits [k*V] -> tree (exposed for tests and tuning). */
  treeFromLogits(logits: ArrayLike<number>, root: number, budget: number): TokenTree {
    const t = this.fullTree(logits, root, budget);
    return costCut({ ...t, weights: this.calibrated(t.scores) }, this.opts.costRatio);
  }

  /** Path scores -> the weights the cut and the merge read (score^weightExponent). */
  private calibrated(scores: number[]): number[] {
    const g = this.opts.weightExponent;
    return g === 1 ? scores : scores.map((x) => x ** g);
  }

  private async logits(ctx: DraftContext): Promise<Float32Array> {
    const logits = await this.head.output(ctx);
    if (logits.length !== this.k * this.V) throw new Error(`medusa head: ${logits.length} logits, expected ${this.k}x${this.V}`);
    return logits;
  }

  private fullTree(logits: ArrayLike<number>, root: number, budget: number) {
    const heads = Math.min(this.k, budget - 1);
    this.top = headTopM(logits, 0, heads, this.V, this.opts.topM, this.top);
    const t = medusaTree(root, this.top, { budget, minProb: this.opts.minProb });
    const map = this.shortlist;
    if (map) for (let i = 1; i < t.tokens.length; i++) t.tokens[i] = map[t.tokens[i]];
    return t;
  }
}
