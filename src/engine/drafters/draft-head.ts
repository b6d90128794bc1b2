/** What a drafter needs from a draft head (prefix-head.ts; tests use stand-ins). */
import type { DraftContext, FusedPass, TokenTree } from '../types.js';

/** A head's output for the round (and a run counter for tests). */
export interface DraftHead {
  runs: number;
  output(ctx: DraftContext): Promise<Float32Array>;
  /** A head that can run inside the verify pass (prefix-head.ts). */
  fusedPass?(tokens: readonly number[], tree: TokenTree): FusedPass | undefined;
}
