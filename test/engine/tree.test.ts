import { describe, expect, it } from 'vitest';
import {
  MASKED,
  buildTree,
  causalMask,
  chainTree,
  childrenOf,
  cutBudget,
  cutDepth,
  pathTo,
  pathTokens,
  treeMask,
  treePositions,
  validateTree,
} from '../../src/engine/tree.js';

describe('buildTree', () => {
  it('merges equal prefixes, keeps siblings distinct and ordered by candidate rank', () => {
    const t = buildTree(7, [
      [1, 2, 3],
      [1, 2, 4],
      [5],
      [1, 6],
      [1, 2, 3], // duplicate: no new nodes
    ], 100);
    validateTree(t, 7);
    expect(t.tokens).toEqual([7, 1, 2, 3, 4, 5, 6]);
    expect(t.parents).toEqual([-1, 0, 1, 2, 2, 0, 1]);
    expect(t.depths).toEqual([0, 1, 2, 3, 3, 1, 2]);
    expect(childrenOf(t)).toEqual([[1, 5], [2, 6], [3, 4], [], [], [], []]);
    expect(pathTo(t, 4)).toEqual([0, 1, 2, 4]);
    expect(pathTokens(t, pathTo(t, 4))).toEqual([7, 1, 2, 4]);
  });

  it('cuts at the node budget (root included) and at maxDepth', () => {
    const t = buildTree(0, [[1, 2, 3], [4, 5]], 5);
    expect(t.tokens).toEqual([0, 1, 2, 3, 4]);
    validateTree(t);
    const d = buildTree(0, [[1, 2, 3], [4, 5]], 100, 1);
    expect(d.tokens).toEqual([0, 1, 4]);
    expect(buildTree(9, [], 16).tokens).toEqual([9]);
    expect(buildTree(9, [[1, 2]], 1).tokens).toEqual([9]);
  });

  it('cutDepth / cutBudget keep valid subtrees', () => {
    const t = buildTree(0, [[1, 2, 3], [4, 5], [1, 6]], 100);
    const c = cutDepth(t, 1);
    validateTree(c);
    expect(c.tokens).toEqual([0, 1, 4]);
    expect(c.parents).toEqual([-1, 0, 0]);
    const b = cutBudget(t, 3);
    validateTree(b);
    expect(b.tokens).toEqual([0, 1, 2]);
  });
});

describe('validateTree', () => {
  it('rejects broken trees', () => {
    expect(() => validateTree({ tokens: [1, 2], parents: [-1, 1], depths: [0, 1] })).toThrow();
    expect(() => validateTree({ tokens: [1, 2], parents: [-1, 0], depths: [0, 2] })).toThrow();
    expect(() => validateTree({ tokens: [1, 2, 2], parents: [-1, 0, 0], depths: [0, 1, 1] })).toThrow(/sibling/);
    expect(() => validateTree({ tokens: [1], parents: [-1], depths: [0] }, 2)).toThrow(/root/);
    expect(() => validateTree({ tokens: [1, 2, 2], parents: [-1, 0, 1], depths: [0, 1, 2] })).not.toThrow();
  });
});

describe('masks and positions', () => {
  it('tree mask: ancestors and self among the tree nodes (the cache is always visible)', () => {
    const t = buildTree(0, [[1, 2], [3]], 100); // nodes: 0, 1(p0), 2(p1), 3(p0)
    const m = treeMask(t);
    expect(m.length).toBe(16);
    const rows = [...Array(4)].map((_, i) => Array.from(m.subarray(i * 4, (i + 1) * 4)).map((v) => (v === 0 ? 1 : 0)));
    expect(rows).toEqual([
      [1, 0, 0, 0],
      [1, 1, 0, 0],
      [1, 1, 1, 0],
      [1, 0, 0, 1],
    ]);
    expect(m[3 * 4 + 1]).toBe(MASKED);
    expect(treePositions(t, 2)).toEqual([2, 3, 4, 3]);
  });

  it('causal mask equals the tree mask of a chain', () => {
    expect(Array.from(causalMask(4))).toEqual(Array.from(treeMask(chainTree([5, 6, 7, 8]))));
    expect(causalMask(3).length).toBe(9);
  });
});
