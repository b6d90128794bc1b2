/**
 * CTCDrafter (src/engine/drafters/ctc.ts) over a fake head with hand-made log-probs: option
 * plumbing, budgets, adaptive sizing, and the trees it builds.
 */
import { describe, expect, it } from 'vitest';
import { validateTree } from '../../../src/engine/tree.js';
import { V, ctc, ctx, peaked } from './fake-head.js';

describe('CTCDrafter', () => {
  it("runs the head once on the round's context, and drafts the collapsed alignment", async () => {
    const { drafter, calls, head } = ctc(() => peaked([5, 5, V, 6, 7, V]), { costRatio: 0 });
    const tree = await drafter.draft(ctx(16));
    expect(calls).toEqual([{ tokens: [1, 2, 3], pending: 3 }]);
    expect(head.runs).toBe(1);
    expect(() => validateTree(tree, 3, 16)).not.toThrow();
    // the chain 5 6 7 comes first (heaviest prefixes), other branches after
    expect(tree.tokens.slice(0, 4)).toEqual([3, 5, 6, 7]);
    expect(tree.parents.slice(0, 4)).toEqual([-1, 0, 1, 2]);
  });

  it('respects the budget and maxLen (= k by default) for every budget', async () => {
    const { drafter } = ctc(() => peaked([1, 2, 3, 4, 5, 6], 0.5), { costRatio: 0 });
    for (let b = 1; b <= 24; b++) {
      const t = await drafter.draft(ctx(b));
      expect(() => validateTree(t, 3, b)).not.toThrow();
      expect(Math.max(...t.depths)).toBeLessThanOrEqual(4);
      if (b <= 8) expect(t.tokens.length).toBe(b);
    }
  });

  it('adaptive: a confident head gets a deep tree, an unsure one a small tree (cost-aware)', async () => {
    const sure = ctc(() => peaked([5, V, 6, V, 7, 8], 0.97), { costRatio: 15 });
    const unsure = ctc(() => peaked([5, V, 6, V, 7, 8], 0.2), { costRatio: 15 });
    const a = await sure.drafter.draft(ctx(16));
    const b = await unsure.drafter.draft(ctx(16));
    expect(a.tokens.slice(0, 5)).toEqual([3, 5, 6, 7, 8]);
    expect(Math.max(...b.depths)).toBeLessThan(Math.max(...a.depths));
    const none = ctc(() => peaked([V, V, V, V, V, V], 0.99), { costRatio: 15 });
    expect((await none.drafter.draft(ctx(16))).tokens).toEqual([3]); // the head predicts nothing
    const all = await ctc(() => peaked([5, V, 6, V, 7, 8], 0.5), { costRatio: 0 }).drafter.draft(ctx(16));
    const cut = await ctc(() => peaked([5, V, 6, V, 7, 8], 0.5), { costRatio: 0, minWeight: 0.3 }).drafter.draft(ctx(16));
    expect(cut.tokens.length).toBeGreaterThan(1);
    expect(cut.tokens.length).toBeLessThan(all.tokens.length);
    expect(all.tokens.slice(0, cut.tokens.length)).toEqual(cut.tokens); // a best-first prefix
  });

  it('the three tree modes give valid trees; budget 1 skips the head', async () => {
    for (const tree of ['prefix', 'weighted', 'rank'] as const) {
      const { drafter, calls } = ctc(() => peaked([2, 2, V, 2, 9, 4], 0.6), { tree, costRatio: 0 });
      const t = await drafter.draft(ctx(10));
      expect(() => validateTree(t, 3, 10), tree).not.toThrow();
      expect(t.tokens[1]).toBe(2);
      expect(await drafter.draft(ctx(1))).toEqual({ tokens: [3], parents: [-1], depths: [0] });
      expect(calls.length).toBe(1);
    }
  });

  it('rejects a head output of the wrong size', async () => {
    const { drafter } = ctc(() => new Float32Array(7));
    await expect(drafter.draft(ctx(8))).rejects.toThrow(/log-probs/);
  });
});
