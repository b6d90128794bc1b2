/**
 * MedusaDrafter (src/engine/drafters/medusa.ts) over a fake head with hand-made logits.
 */
import { describe, expect, it } from 'vitest';
import { MedusaDrafter } from '../../../src/engine/drafters/medusa.js';
import { validateTree } from '../../../src/engine/tree.js';
import { V, ctx, fakeHead } from './fake-head.js';

describe('MedusaDrafter', () => {
  const K = 3;
  function medusa(logits: Float32Array, costRatio = 0) {
    const { head, calls } = fakeHead(() => logits);
    return { drafter: new MedusaDrafter(head, { k: K, vocab_size: V }, { costRatio, topM: 3 }), calls };
  }
  it('builds the product tree from per-head top tokens', async () => {
    const logits = new Float32Array(K * V);
    logits[0 * V + 4] = 6; logits[1 * V + 5] = 6; logits[2 * V + 6] = 6; logits[0 * V + 7] = 4;
    const { drafter, calls } = medusa(logits);
    const t = await drafter.draft(ctx(6));
    expect(calls.length).toBe(1);
    expect(() => validateTree(t, 3, 6)).not.toThrow();
    expect(t.tokens.slice(0, 4)).toEqual([3, 4, 5, 6]);
    expect(t.tokens.length).toBe(6);
    // uniform heads over a larger vocabulary: nothing worth verifying (cost-aware size)
    const { head } = fakeHead(() => new Float32Array(K * 200));
    const uniform = new MedusaDrafter(head, { k: K, vocab_size: 200 }, { costRatio: 17 });
    expect((await uniform.draft(ctx(16))).tokens).toEqual([3]);
  });

  it('weightExponent calibrates the weights the cut and the merge read, without reordering the paths', async () => {
    const logits = new Float32Array(K * V);
    logits[0 * V + 4] = 2; logits[1 * V + 5] = 1.5; logits[2 * V + 6] = 1; logits[0 * V + 7] = 1.8;
    const make = (weightExponent: number) => {
      const { head } = fakeHead(() => logits);
      return new MedusaDrafter(head, { k: K, vocab_size: V }, { costRatio: 0, topM: 3, weightExponent });
    };
    const raw = await make(1).weighted(ctx(8));
    const cal = await make(1.5).weighted(ctx(8));
    expect(cal.tokens).toEqual(raw.tokens);
    expect(cal.parents).toEqual(raw.parents);
    cal.weights.forEach((w, i) => expect(w).toBeCloseTo(raw.weights[i] ** 1.5, 12));
    // a lower weight per node: the cost-aware cut keeps fewer of them
    const cut = (g: number) => {
      const { head } = fakeHead(() => logits);
      return new MedusaDrafter(head, { k: K, vocab_size: V }, { costRatio: 4, topM: 3, weightExponent: g });
    };
    expect((await cut(3).draft(ctx(8))).tokens.length).toBeLessThan((await cut(1).draft(ctx(8))).tokens.length);
  });
});
