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
  mergeWeightedTrees,
  bestTreeSize,
  bestFirst,
  rootOnly,
  treeFromSequences,
  type WeightedTree,
} from '../../src/engine/tree.js';
import { Rng } from '../../src/engine/sampling.js';
import fc from 'fast-check';

/** Uniform [0,1) numbers from the engine's seeded PRNG. */
function rng(seed: number): () => number {
  const r = Rng.fromSeed(seed);
  return () => r.next();
}

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

  it('rejects duplicate siblings, bad depths, bad order and over-budget trees', () => {
    expect(() => validateTree({ tokens: [0, 1, 1], parents: [-1, 0, 0], depths: [0, 1, 1] }, 0, 8)).toThrow(/duplicate/);
    expect(() => validateTree({ tokens: [0, 1, 2], parents: [-1, 0, 0], depths: [0, 1, 2] }, 0, 8)).toThrow(/depth/);
    expect(() => validateTree({ tokens: [0, 1, 2], parents: [-1, 2, 0], depths: [0, 2, 1] }, 0, 8)).toThrow(/parent/);
    expect(() => validateTree({ tokens: [0, 1, 2], parents: [-1, 0, 1], depths: [0, 1, 2] }, 0, 2)).toThrow(/budget/);
    expect(() => validateTree({ tokens: [0, 1, 1], parents: [-1, 0, 1], depths: [0, 1, 2] }, 0, 8)).not.toThrow();
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

describe('mergeWeightedTrees', () => {
  const a: WeightedTree = { tokens: [0, 1, 2, 3], parents: [-1, 0, 1, 0], depths: [0, 1, 2, 1], weights: [1, 0.6, 0.3, 0.2] };
  const b: WeightedTree = { tokens: [0, 1, 4, 5], parents: [-1, 0, 1, 0], depths: [0, 1, 2, 1], weights: [1, 0.5, 0.4, 0.1] };

  it('unions the tries; a node both propose gets 1 - (1 - a)(1 - b); best-first order', () => {
    const m = mergeWeightedTrees([a, b], 10);
    validateTree(m, 0);
    expect(m.tokens).toEqual([0, 1, 4, 2, 3, 5]);
    expect(m.parents).toEqual([-1, 0, 1, 1, 0, 0]);
    expect(m.weights[1]).toBeCloseTo(0.8, 12);
    m.weights.slice(2).forEach((w, i) => expect(w).toBeCloseTo([0.4, 0.3, 0.2, 0.1][i], 12));
  });

  it('stops at the budget with an ancestor-closed tree', () => {
    const m = mergeWeightedTrees([a, b], 3);
    expect(m.tokens).toEqual([0, 1, 4]);
  });

  it('any inputs: a valid tree, weights never grow along a path, every input node kept when the budget allows', () => {
    const tree = fc.array(fc.tuple(fc.nat(5), fc.integer({ min: 0, max: 3 }), fc.double({ min: 0, max: 1, noNaN: true })), { maxLength: 12 }).map((spec) => {
      const t: WeightedTree = { tokens: [9], parents: [-1], depths: [0], weights: [1] };
      for (const [p, tok, w] of spec) {
        const parent = p % t.tokens.length;
        t.tokens.push(tok);
        t.parents.push(parent);
        t.depths.push(t.depths[parent] + 1);
        t.weights.push(Math.min(w, t.weights[parent]));
      }
      return t;
    });
    fc.assert(fc.property(tree, tree, (x, y) => {
      const m = mergeWeightedTrees([x, y], 100);
      validateTree(m, 9);
      for (let i = 1; i < m.tokens.length; i++) expect(m.weights[i]).toBeLessThanOrEqual(m.weights[m.parents[i]] + 1e-12);
      const paths = (t: WeightedTree) => new Set(t.tokens.map((_, i) => { const p: number[] = []; for (let n = i; n > 0; n = t.parents[n]) p.unshift(t.tokens[n]); return p.join(','); }));
      const pm = paths(m);
      for (const p of [...paths(x), ...paths(y)]) expect(pm.has(p)).toBe(true);
      expect(pm.size).toBe(m.tokens.length);
    }));
  });
});

describe('treeFromSequences', () => {
  it('merges equal prefixes, keeps siblings distinct and sums weights', () => {
    const t = treeFromSequences(9, [
      { tokens: [1, 2, 3], weight: 0.5 },
      { tokens: [1, 2, 4], weight: 0.2 },
      { tokens: [5], weight: 0.2 },
      { tokens: [1, 6], weight: 0.1 },
    ], { budget: 100 });
    expect(() => validateTree(t, 9, 100)).not.toThrow();
    expect(t.tokens.length).toBe(7); // root,1,2,3,4,5,6
    const w = (path: number[]) => {
      let node = 0;
      for (const tok of path) node = t.tokens.findIndex((x, i) => t.parents[i] === node && x === tok);
      return t.weights[node];
    };
    expect(w([1])).toBeCloseTo(0.8);
    expect(w([1, 2])).toBeCloseTo(0.7);
    expect(w([1, 2, 3])).toBeCloseTo(0.5);
    expect(w([5])).toBeCloseTo(0.2);
    expect(t.tokens.slice(0, 4)).toEqual([9, 1, 2, 3]); // best-first
  });

  it('respects the budget, stays ancestor-closed, and keeps the heaviest nodes', () => {
    const r = rng(7);
    for (let trial = 0; trial < 100; trial++) {
      const seqs = Array.from({ length: 1 + Math.floor(r() * 12) }, () => ({
        tokens: Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * 4)),
        weight: r(),
      }));
      const budget = 1 + Math.floor(r() * 20);
      const t = treeFromSequences(0, seqs, { budget });
      expect(() => validateTree(t, 0, budget)).not.toThrow();
      const full = treeFromSequences(0, seqs, { budget: 10000 });
      expect(t.tokens.length).toBe(Math.min(budget, full.tokens.length));
      // the kept weights are the top (budget-1) weights of the full trie (ancestor-closed greedy is optimal here)
      const kept = t.weights.slice(1).sort((a, b) => b - a);
      const best = full.weights.slice(1).sort((a, b) => b - a).slice(0, kept.length);
      for (let i = 0; i < kept.length; i++) expect(kept[i]).toBeCloseTo(best[i], 12);
      // weights never increase from parent to child
      for (let i = 1; i < t.tokens.length; i++) if (t.parents[i] > 0) expect(t.weights[i]).toBeLessThanOrEqual(t.weights[t.parents[i]] + 1e-12);
    }
  });

  it('minWeight prunes light branches, maxDepth and depthDecay shape chains', () => {
    const seqs = [{ tokens: [1, 2, 3, 4, 5], weight: 0.9 }, { tokens: [7, 8], weight: 0.05 }];
    expect(treeFromSequences(0, seqs, { budget: 16, minWeight: 0.1 }).tokens).toEqual([0, 1, 2, 3, 4, 5]);
    expect(treeFromSequences(0, seqs, { budget: 16, maxDepth: 2 }).tokens.length).toBe(5);
    const decayed = treeFromSequences(0, seqs, { budget: 16, depthDecay: 0.5, minWeight: 0.2 });
    expect(decayed.tokens).toEqual([0, 1, 2, 3]); // 0.9, 0.45, 0.225, then 0.1125 < 0.2
  });

  it('an empty candidate list gives the root alone; budget 1 gives the root alone', () => {
    expect(treeFromSequences(3, [], { budget: 16 }).tokens).toEqual([3]);
    expect(treeFromSequences(3, [{ tokens: [1], weight: 1 }], { budget: 1 }).tokens).toEqual([3]);
  });
});

describe('bestTreeSize', () => {
  it('maximizes expected tokens per cost over the best-first prefixes', () => {
    const w = [1, 0.9, 0.8, 0.5, 0.1, 0.05];
    for (const R of [0.5, 2, 5, 20, 100]) {
      const n = bestTreeSize(w, R);
      let bestN = 1, bestRate = -1;
      for (let k = 1; k <= w.length; k++) {
        const tokens = 1 + w.slice(1, k).reduce((a, b) => a + b, 0);
        const rate = tokens / (R + k - 1);
        if (rate > bestRate + 1e-15) { bestRate = rate; bestN = k; }
      }
      expect(n).toBe(bestN);
    }
    expect(bestTreeSize([1, 0.01, 0.01], 5)).toBe(1); // unlikely drafts are not worth verifying
    expect(bestTreeSize([1, 0.99, 0.98, 0.97], 5)).toBe(4); // confident chains are
  });
});

describe('rootOnly / bestFirst', () => {
  it('rootOnly is the pending token alone, a fresh tree each time', () => {
    const a = rootOnly(5);
    expect(a).toEqual({ tokens: [5], parents: [-1], depths: [0] });
    a.tokens.push(1);
    expect(rootOnly(5).tokens).toEqual([5]);
  });

  it('takes the best frontier node until the budget or until take() refuses; always ancestor-closed', () => {
    // trie: 0 -> 1 (0.5), 2 (0.9); 1 -> 3 (0.45); 2 -> 4 (0.2)
    const kids = [[1, 2], [3], [4], [], []];
    const w = [1, 0.5, 0.9, 0.45, 0.2];
    const trie = {
      token: (id: number) => 10 + id,
      depth: (id: number) => (id <= 2 ? 1 : 2),
      weight: (id: number) => w[id],
      children: (id: number, visit: (c: number) => void) => kids[id].forEach((c) => visit(c)),
    };
    const before = (a: number, b: number) => w[a] > w[b];
    const t = bestFirst(trie, 7, 1, 10, before);
    validateTree(t, 7);
    expect(t.tokens).toEqual([7, 12, 11, 13, 14]);
    expect(t.parents).toEqual([-1, 0, 0, 2, 1]);
    expect(t.weights).toEqual([1, 0.9, 0.5, 0.45, 0.2]);
    expect(bestFirst(trie, 7, 1, 3, before).tokens).toEqual([7, 12, 11]);
    expect(bestFirst(trie, 7, 1, 10, before, (id) => w[id] >= 0.5).tokens).toEqual([7, 12, 11]);
    expect(bestFirst(trie, 7, 0.3, 1, before)).toEqual({ tokens: [7], parents: [-1], depths: [0], weights: [0.3] });
  });
});
