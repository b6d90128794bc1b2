/**
 * A draft head + prompt lookup ("ctc-ngram", "medusa-ngram"): one tree from both sources.
 *
 * mode 'merge' (default): each round the prompt-lookup candidates (weighted by their calibrated
 *   P(accepted), ngram.ts) and the head's candidates (weighted by their prefix probability) are
 *   merged into one trie (tree.ts mergeWeightedTrees), then cut where expected tokens per unit of
 *   cost peak (bestTreeSize). When the lookup alone already expects `skipHead` or more tokens,
 *   the head's pass is skipped: it would cost more than the few tokens it could add.
 * mode 'switch': the lookup's tree when the context's suffix of `minMatch` tokens occurred
 *   before, otherwise the head's (one source per round; kept for comparison).
 */
import type { DraftContext, Drafter, FusedPass, TokenTree } from '../types.js';
import { costCut, mergeWeightedTrees, rootOnly, type WeightedTree } from '../tree.js';
import { findNgramMatches, NgramDrafter } from './ngram.js';
import { sampledContext } from './sampled.js';

/** A drafter that can hand over its weighted candidates instead of a finished tree. */
export interface WeightedDrafter extends Drafter {
  weighted(ctx: DraftContext): Promise<WeightedTree>;
  /** T > 0: adds drafts sampled from the head's distribution under the root of `tree`, after its children. */
  appendSamples(tree: TokenTree, ctx: DraftContext): Promise<number>;
}

export interface HybridOptions {
  mode: 'merge' | 'switch';
  /** switch: shortest earlier match (tokens) that makes the lookup's draft replace the head's. */
  minMatch: number;
  /** merge: skip the head when the lookup's cost-cut tree expects at least this many extra tokens (Infinity: never). */
  skipHead: number;
  /** merge: R of the cost-aware cut (fixed round cost incl. the head's pass / cost of one more node). */
  costRatio: number;
}

/**
 * skipHead 1: on bench/prompts-tune.jsonl (30 long prompts) ctc-ngram ran 1.72x plain at 1 vs 1.49x at
 * 2 and 1.59x at 3, medusa-ngram 1.74x vs 1.59x: the heads' pass pays only where the lookup has little.
 */
export const HYBRID_DEFAULTS: HybridOptions = { mode: 'merge', minMatch: 3, skipHead: 1, costRatio: 18 };

export class HybridDrafter implements Drafter {
  /** `<head name>-ngram`: ctc-ngram, medusa-ngram. */
  readonly name: string;
  /** The head drafter (CTC or Medusa). */
  readonly head: WeightedDrafter;
  readonly ngram: NgramDrafter;
  readonly opts: HybridOptions;
  /** Rounds drafted by the lookup alone / with the head (benchmarks). */
  lookupRounds = 0;
  headRounds = 0;

  constructor(head: WeightedDrafter, ngram: NgramDrafter, opts: Partial<HybridOptions> = {}) {
    this.name = `${head.name}-ngram`;
    this.head = head;
    this.ngram = ngram;
    this.opts = { ...HYBRID_DEFAULTS, ...opts };
  }

  /** Whether this round's tree drew on the head. */
  private headRound = false;

  /**
   * The head's fused verify pass in rounds that drew on the head: its read-out is then ready for the
   * next round. A round the lookup drafted alone verifies on the base graph and costs no head
   * arithmetic; the head catches up with one run of its own when it is next needed.
   */
  fusedPass(tokens: readonly number[], tree: TokenTree): FusedPass | undefined {
    return this.headRound ? this.head.fusedPass?.(tokens, tree) : undefined;
  }

  async draft(ctx: DraftContext): Promise<TokenTree> {
    this.headRound = false;
    if (ctx.budget <= 1) return rootOnly(ctx.pending);
    if (this.opts.mode === 'switch') {
      if (findNgramMatches(ctx.tokens, this.opts.minMatch, this.opts.minMatch, 1).length > 0) {
        this.lookupRounds++;
        return this.ngram.draftSync(ctx.tokens, ctx.pending, ctx.budget, sampledContext(ctx)?.sampling.temperature ?? 0);
      }
      this.headRounds++;
      this.headRound = true;
      return this.head.draft(ctx);
    }
    const lookup = this.ngram.weighted(ctx.tokens, ctx.pending, ctx.budget, sampledContext(ctx)?.sampling.temperature ?? 0);
    const lookupCut = costCut(lookup, this.ngram.opts.costRatio);
    let expected = 0;
    for (let i = 1; i < lookupCut.tokens.length; i++) expected += lookup.weights[i];
    if (expected >= this.opts.skipHead) {
      this.lookupRounds++;
      return lookupCut;
    }
    this.headRounds++;
    this.headRound = true;
    if (sampledContext(ctx)) {
      // T > 0: the lookup's deterministic candidates first, then the head's samples beside them at the
      // root, drawn without the lookup's tokens there (the verifier's rule for that order)
      const tree = { tokens: [...lookupCut.tokens], parents: [...lookupCut.parents], depths: [...lookupCut.depths] };
      await this.head.appendSamples(tree, ctx);
      return tree;
    }
    const merged = mergeWeightedTrees([lookup, await this.head.weighted(ctx)], ctx.budget);
    return costCut(merged, this.opts.costRatio);
  }
}
