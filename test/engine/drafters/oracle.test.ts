import { describe, expect, it } from 'vitest';
import { OracleDrafter } from '../../../src/engine/drafters/oracle.js';
import { validateTree } from '../../../src/engine/tree.js';

describe('OracleDrafter', () => {
  const ref = [1, 2, 3, 4, 5, 6, 7, 8];
  it('drafts the reference continuation as a chain of budget-1 nodes', () => {
    const o = new OracleDrafter(ref);
    const t = o.draftSync([1, 2, 3], 3, 4);
    expect(() => validateTree(t, 3, 4)).not.toThrow();
    expect(t).toEqual({ tokens: [3, 4, 5, 6], parents: [-1, 0, 1, 2], depths: [0, 1, 2, 3] });
  });
  it('stops at the end of the reference and honours maxDepth', () => {
    expect(new OracleDrafter(ref).draftSync([1, 2, 3, 4, 5, 6, 7], 7, 16).tokens).toEqual([7, 8]);
    expect(new OracleDrafter(ref, 2).draftSync([1, 2], 2, 16).tokens).toEqual([2, 3, 4]);
  });
  it('gives the root alone when the context left the reference', async () => {
    const o = new OracleDrafter(ref);
    expect(o.draftSync([1, 9, 3], 3, 8).tokens).toEqual([3]);
    expect(o.draftSync([1, 2, 3, 4, 5, 6, 7, 8, 9], 9, 8).tokens).toEqual([9]);
    o.setReference([5, 6, 7]);
    expect((await o.draft({ tokens: [5], hidden: new Float32Array(1), pending: 5, budget: 3 })).tokens).toEqual([5, 6, 7]);
  });
});
