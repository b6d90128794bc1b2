/**
 * Plain decoding as a drafter: the tree is the pending root alone, so each round is one
 * single-token forward pass plus one token from the target distribution (the baseline).
 */
import type { DraftContext, Drafter, TokenTree } from '../types.js';
import { rootOnly } from '../tree.js';

export class PlainDrafter implements Drafter {
  readonly name = 'plain';

  async draft(ctx: DraftContext): Promise<TokenTree> {
    return rootOnly(ctx.pending);
  }
}
