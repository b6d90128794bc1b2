/**
 * A fake draft head with hand-made outputs, and CTC log-probs peaked on a chosen alignment: what the
 * head drafter tests (ctc, medusa, hybrid) drive the drafters with.
 */
import { CTCDrafter, type CTCOptions } from '../../../src/engine/drafters/ctc.js';
import type { DraftHead } from '../../../src/engine/drafters/draft-head.js';
import type { DraftContext } from '../../../src/engine/types.js';

export const V = 10, C = V + 1, SLOTS = 6, d = 4;

/** A stand-in for a head: records the contexts it is run on, returns `data`. */
export function fakeHead(data: () => Float32Array) {
  const calls: { tokens: number[]; pending: number }[] = [];
  const head: DraftHead = {
    runs: 0,
    async output(ctx: DraftContext) {
      calls.push({ tokens: [...ctx.tokens], pending: ctx.pending });
      head.runs++;
      return data();
    },
  };
  return { head, calls };
}

/** CTC log-probs whose best alignment is `align` (prob 0.9 each slot), spread elsewhere. */
export function peaked(align: number[], p = 0.9): Float32Array {
  const lp = new Float32Array(SLOTS * C).fill(Math.log((1 - p) / (C - 1)));
  align.forEach((s, t) => (lp[t * C + s] = Math.log(p)));
  return lp;
}

/** A CTCDrafter (k 4, SLOTS slots, blank V) over a fake head that returns `data`. */
export function ctc(data: () => Float32Array, opts: Partial<CTCOptions> = {}) {
  const { head, calls } = fakeHead(data);
  return { drafter: new CTCDrafter(head, { k: 4, slots: SLOTS, blank_id: V, vocab_size: V }, opts), calls, head };
}

/** A draft context: tokens 1 2 3, pending 3, a 4-wide hidden row. */
export const ctx = (budget: number) => ({ tokens: [1, 2, 3], hidden: new Float32Array([0.5, -1, 2, 0]), pending: 3, budget });
