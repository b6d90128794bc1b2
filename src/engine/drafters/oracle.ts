/**
 * Oracle drafter (benchmark only): proposes the true continuation, taken from a reference token
 * sequence (e.g. the plain greedy output, prompt included) as a chain of budget-1 nodes. Under
 * greedy decoding every draft token is accepted, so its τ is the ceiling for a chain of that size.
 * When the context does not follow the reference (sampling, or a different prompt), it proposes the
 * root alone (a plain decoding step).
 */
import type { DraftContext, Drafter, TokenTree } from '../types.js';
import { rootOnly } from '../tree.js';

export class OracleDrafter implements Drafter {
  readonly name = 'oracle';
  private reference: readonly number[];
  /** Max draft tokens per round (besides the budget). 0 = budget - 1. */
  maxDepth: number;

  constructor(reference: readonly number[], maxDepth = 0) {
    this.reference = reference;
    this.maxDepth = maxDepth;
  }

  /** Replace the reference (e.g. one per prompt). */
  setReference(reference: readonly number[]): void {
    this.reference = reference;
  }

  async draft(ctx: DraftContext): Promise<TokenTree> {
    return this.draftSync(ctx.tokens, ctx.pending, ctx.budget);
  }

  draftSync(tokens: readonly number[], pending: number, budget: number): TokenTree {
    const tree = rootOnly(pending);
    const ref = this.reference;
    const L = tokens.length;
    if (L === 0 || L > ref.length || ref[L - 1] !== pending) return tree;
    for (let i = 0; i < L; i++) if (ref[i] !== tokens[i]) return tree;
    let depth = budget - 1;
    if (this.maxDepth > 0) depth = Math.min(depth, this.maxDepth);
    for (let d = 1; d <= depth && L - 1 + d < ref.length; d++) {
      tree.tokens.push(ref[L - 1 + d]);
      tree.parents.push(d - 1);
      tree.depths.push(d);
    }
    return tree;
  }
}
