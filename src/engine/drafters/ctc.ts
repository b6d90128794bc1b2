/**
 * The CTC drafter (Wen, Gui & Feng 2024): the head (ONNX `files.ctc_head`, prefix-head.ts) gives
 * log-probs [slots, V'+1] (blank = V', the read-out's classes). One head pass per round; CTC prefix
 * beam search over the slots (ctc-decode.ts) builds a trie of collapsed prefixes with their prefix
 * probabilities P(head output starts with this prefix); the heaviest prefixes (ancestor-closed)
 * become the tree, up to the budget. Nodes whose probability of being a correct prefix is below
 * `minWeight` are dropped, and `costRatio` keeps the size that maximizes expected tokens per cost
 * (adaptive drafting: small trees when the head is unsure).
 *
 * The tree is built from the collapsed sequences, never by masking an alignment tree, and the
 * engine derives positions (depth) and the ancestors-only mask from it: masking nodes of an
 * alignment tree after the CTC collapse keeps stale positions and indices, which duplicates words.
 */
import type { DraftContext, Drafter, FusedPass, TokenTree } from '../types.js';
import { buildTree, costCut, rootOnly, treeFromSequences, type WeightedTree } from '../tree.js';
import { CTCPrefixBeamSearch } from '../ctc-decode.js';
import type { DraftHead } from './draft-head.js';
import { appendCTCSamples, sampledContext, type SampledTreeOptions } from './sampled.js';

export interface CTCOptions {
  /** Prefix beam width. */
  beamWidth: number;
  /** Tokens per slot considered by the beam search. */
  topM: number;
  /** Longest draft (tokens after the pending one); 0 = the head's k. */
  maxLen: number;
  /** Drop tree nodes whose weight (probability of being a correct prefix) is below this (0 = off). */
  minWeight: number;
  /**
   * How candidates become the tree:
   *  'prefix' (default): every prefix in the search's trie, weighted by its prefix probability
   *    P(head output starts with it), heaviest first (calibrated; bench/draft-eval.ts);
   *  'weighted': final beams only, node weight = sum of the probabilities of the full sequences
   *    through it, heaviest first;
   *  'rank': tree.ts buildTree over the final beams in rank order.
   */
  tree: 'prefix' | 'weighted' | 'rank';
  /**
   * Cost-aware size (0 = off): keep the best-first prefix of the tree that maximizes expected
   * tokens per cost, with R = (fixed round cost) / (marginal cost per node); see bestTreeSize.
   */
  costRatio: number;
  /** T > 0: the sampled chain's shape and where it stops (drafters/sampled.ts). */
  sample: SampledTreeOptions;
}

/**
 * Defaults, measured on the default model (bench/prompts.jsonl, Node, 1 wasm thread):
 * - tree 'prefix': offline τ at 8 / 16 nodes 2.57 / 2.87, vs 2.40 / 2.61 ('weighted') and
 *   2.37 / 2.60 ('rank'), beam 8 top-4 (bench/draft-eval.ts, 1239 positions);
 * - beam 8, top-4: beam 16 / top-8 adds ≤ 0.03 τ; the search costs ~0.2-0.7 ms per round;
 * - costRatio 15: median speedup vs plain 0.85x, vs 0.72x for a full 16-node tree and 0.83x for a
 *   full 8-node tree (64 prompts x 64 tokens); R = 10 / 20 / 40 gave 0.90x / 0.89x / 0.78x on 24.
 */
export const CTC_DEFAULTS: CTCOptions = {
  beamWidth: 8,
  topM: 4,
  maxLen: 0,
  minWeight: 0,
  tree: 'prefix',
  costRatio: 15,
  sample: { widths: [2, 1, 1, 1], minContinue: 0.3 },
};

export interface CTCHeadConfig {
  k: number;
  slots: number;
  blank_id: number;
  /** Output classes besides blank: the model's vocabulary, or the shortlist's length. */
  vocab_size: number;
  /**
   * Token id of each output class when the head reads out a shortlist of the vocabulary (the most
   * frequent tokens: most of the head's cost is its 16-slot read-out); absent = identity.
   */
  shortlist?: readonly number[];
  /** The model's vocabulary size (sampled drafts' q is over it); default: the classes' largest id + 1. */
  model_vocab?: number;
}

/** Reads the head's settings from manifest `files.ctc_head.config` (with the model's vocab). */
export function ctcHeadConfig(config: Record<string, unknown> | undefined, vocabSize: number): CTCHeadConfig {
  const c = config ?? {};
  const num = (k: string, dflt: number) => (typeof c[k] === 'number' ? (c[k] as number) : dflt);
  const shortlist = Array.isArray(c.shortlist) ? (c.shortlist as number[]) : undefined;
  const classes = num('vocab_size', shortlist?.length ?? vocabSize);
  if (shortlist && shortlist.length !== classes) throw new Error(`ctc head: shortlist has ${shortlist.length} ids, vocab_size says ${classes}`);
  return { k: num('k', 8), slots: num('slots', 16), blank_id: num('blank_id', classes), vocab_size: classes, shortlist, model_vocab: vocabSize };
}

export class CTCDrafter implements Drafter {
  readonly name = 'ctc';
  readonly head: DraftHead;
  readonly cfg: CTCHeadConfig;
  private readonly opts: CTCOptions;
  private readonly search: CTCPrefixBeamSearch;

  constructor(head: DraftHead, cfg: CTCHeadConfig, opts: Partial<CTCOptions> = {}) {
    this.head = head;
    this.cfg = cfg;
    this.opts = { ...CTC_DEFAULTS, ...opts };
    this.search = this.makeSearch();
  }

  private makeSearch(): CTCPrefixBeamSearch {
    const o = this.opts;
    return new CTCPrefixBeamSearch(this.cfg.vocab_size + 1, this.cfg.blank_id, {
      beamWidth: o.beamWidth,
      topM: o.topM,
      maxLen: o.maxLen > 0 ? o.maxLen : this.cfg.k,
    });
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
    return this.treeFromLogProbs(await this.logProbs(ctx), ctx.pending, ctx.budget);
  }

  /**
   * T > 0: drafts drawn from the head's own distribution, a chain of prefix conditionals
   * (drafters/sampled.ts), added under the root of `tree` after the children it has. Returns the
   * nodes added (0 without sampling parameters in ctx).
   */
  async appendSamples(tree: TokenTree, ctx: DraftContext): Promise<number> {
    const s = sampledContext(ctx);
    if (!s || ctx.tokens.length < 2) return 0;
    const vocab = { V: this.cfg.model_vocab ?? modelVocab(this.cfg.shortlist, this.cfg.vocab_size), shortlist: this.cfg.shortlist };
    const target = { tree, parent: 0, vocab, params: s.sampling, rng: s.rng, budget: ctx.budget, opts: this.opts.sample };
    return appendCTCSamples(target, await this.logProbs(ctx), this.cfg.slots, this.cfg.blank_id);
  }

  /**
   * Every candidate prefix up to `budget` nodes, best-first, weighted by its prefix probability
   * (token ids; no cost-aware cut): what a merged tree with other drafters is built from.
   */
  async weighted(ctx: DraftContext): Promise<WeightedTree> {
    if (ctx.tokens.length < 2) return { ...rootOnly(ctx.pending), weights: [1] };
    this.search.search(await this.logProbs(ctx), this.cfg.slots);
    return this.toTokenIds(this.search.prefixTree(ctx.pending, ctx.budget, this.opts.minWeight));
  }

  private async logProbs(ctx: DraftContext): Promise<Float32Array> {
    const logProbs = await this.head.output(ctx);
    const C = this.cfg.vocab_size + 1;
    if (logProbs.length !== this.cfg.slots * C) {
      throw new Error(`ctc head: ${logProbs.length} log-probs, expected ${this.cfg.slots}x${C}`);
    }
    return logProbs;
  }

  /** The pure part: log-probs [slots*(V+1)] -> tree (exposed for tests and tuning). */
  treeFromLogProbs(logProbs: ArrayLike<number>, root: number, budget: number): TokenTree {
    const cands = this.search.search(logProbs, this.cfg.slots);
    let tree: TokenTree;
    if (this.opts.tree === 'prefix') {
      tree = costCut(this.search.prefixTree(root, budget, this.opts.minWeight), this.opts.costRatio);
    } else if (this.opts.tree === 'rank') {
      tree = buildTree(root, cands.filter((c) => Math.exp(c.logProb) >= this.opts.minWeight).map((c) => c.tokens), budget);
    } else {
      const seqs = cands.map((c) => ({ tokens: c.tokens, weight: Math.exp(c.logProb) }));
      tree = costCut(treeFromSequences(root, seqs, { budget, minWeight: this.opts.minWeight }), this.opts.costRatio);
    }
    return this.toTokenIds(tree);
  }

  /** Read-out classes -> token ids in place (a shortlist head); the root is a token id already. */
  private toTokenIds<T extends TokenTree>(tree: T): T {
    const map = this.cfg.shortlist;
    if (map) for (let i = 1; i < tree.tokens.length; i++) tree.tokens[i] = map[tree.tokens[i]];
    return tree;
  }
}

/** The vocabulary size a shortlist implies when the config does not say (its largest id + 1). */
export function modelVocab(shortlist: readonly number[] | undefined, classes: number): number {
  return shortlist ? shortlist.reduce((m, t) => Math.max(m, t + 1), 0) : classes;
}
