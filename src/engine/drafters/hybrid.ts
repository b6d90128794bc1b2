/**
 * CTC + prompt lookup ("ctc-ngram"): when the context's suffix of at least `minMatch` tokens
 * occurred before, the n-gram continuation is drafted and the CTC head is skipped (its pass costs
 * about half a base decode on one wasm thread); otherwise the CTC head drafts. Small models'
 * greedy continuations repeat a lot, and a head that sees one hidden state cannot copy from the
 * context as cheaply as a lookup can; the head covers the novel text.
 */
import type { DraftContext, Drafter, TokenTree } from '../types.js';
import { findNgramMatches, NgramDrafter } from './ngram.js';

export interface HybridOptions {
  /** Shortest earlier match (tokens) that makes the n-gram draft replace the head. */
  minMatch: number;
}

export const HYBRID_DEFAULTS: HybridOptions = { minMatch: 3 };

export class HybridDrafter implements Drafter {
  readonly name = 'ctc-ngram';
  /** The head drafter used when the context does not repeat (a CTC or Medusa head, v1 or v2). */
  readonly ctc: Drafter;
  readonly ngram: NgramDrafter;
  readonly opts: HybridOptions;
  /** Rounds drafted by each side (benchmarks). */
  ngramRounds = 0;
  ctcRounds = 0;

  constructor(ctc: Drafter, ngram: NgramDrafter, opts: Partial<HybridOptions> = {}) {
    this.ctc = ctc;
    this.ngram = ngram;
    this.opts = { ...HYBRID_DEFAULTS, ...opts };
  }

  async draft(ctx: DraftContext): Promise<TokenTree> {
    if (ctx.budget <= 1) return { tokens: [ctx.pending], parents: [-1], depths: [0] };
    if (findNgramMatches(ctx.tokens, this.opts.minMatch, this.opts.minMatch, 1).length > 0) {
      this.ngramRounds++;
      return this.ngram.draftSync(ctx.tokens, ctx.pending, ctx.budget);
    }
    this.ctcRounds++;
    return this.ctc.draft(ctx);
  }
}
