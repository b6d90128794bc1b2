/**
 * A fake draft-head ORT session with hand-made outputs, and CTC log-probs peaked on a chosen
 * alignment: what the head drafter tests (ctc, medusa, hybrid) drive the drafters with.
 */
import { CTCDrafter, type CTCOptions } from '../../../src/engine/drafters/ctc.js';
import { DraftHeadSession } from '../../../src/engine/drafters/head-session.js';
import type { OrtSession } from '../../../src/engine/ort.js';

export const V = 10, C = V + 1, SLOTS = 6, d = 4;

/** A stand-in for an ORT session: records calls, returns `data` under `output`. */
export function fakeSession(output: string, data: () => Float32Array) {
  const calls: { hidden: number[]; token: bigint }[] = [];
  const session = {
    inputNames: ['hidden', 'token_ids'],
    outputNames: [output],
    async run(feeds: Record<string, { data: unknown }>) {
      calls.push({ hidden: Array.from(feeds.hidden.data as Float32Array), token: (feeds.token_ids.data as BigInt64Array)[0] });
      return { [output]: { data: data(), dispose() {} } };
    },
  };
  return { session: session as unknown as OrtSession, calls };
}

/** CTC log-probs whose best alignment is `align` (prob 0.9 each slot), spread elsewhere. */
export function peaked(align: number[], p = 0.9): Float32Array {
  const lp = new Float32Array(SLOTS * C).fill(Math.log((1 - p) / (C - 1)));
  align.forEach((s, t) => (lp[t * C + s] = Math.log(p)));
  return lp;
}

/** A CTCDrafter (k 4, SLOTS slots, blank V) over a fake head that returns `data`. */
export function ctc(data: () => Float32Array, opts: Partial<CTCOptions> = {}) {
  const { session, calls } = fakeSession('log_probs', data);
  const head = new DraftHeadSession(session, d, 'log_probs');
  return { drafter: new CTCDrafter(head, { k: 4, slots: SLOTS, blank_id: V, vocab_size: V }, opts), calls, head };
}

/** A draft context: tokens 1 2 3, pending 3, a 4-wide hidden row. */
export const ctx = (budget: number) => ({ tokens: [1, 2, 3], hidden: new Float32Array([0.5, -1, 2, 0]), pending: 3, budget });
