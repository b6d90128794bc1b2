import { describe, expect, it } from 'vitest';
import { headTopM, medusaTree } from '../../../src/engine/drafters/medusa-tree.js';
import { validateTree } from '../../../src/engine/tree.js';
import { Rng } from '../../../src/engine/sampling.js';

/** Uniform [0,1) numbers from the engine's seeded PRNG. */
function rng(seed: number): () => number {
  const r = Rng.fromSeed(seed);
  return () => r.next();
}

/** All paths of the full product tree with their scores (brute force). */
function allPaths(tokens: Int32Array, probs: Float64Array, heads: number, m: number) {
  const out: { path: number[]; score: number }[] = [];
  const rec = (path: number[], score: number, h: number) => {
    if (h > 0) out.push({ path: [...path], score });
    if (h === heads) return;
    for (let r = 0; r < m; r++) rec([...path, tokens[h * m + r]], score * probs[h * m + r], h + 1);
  };
  rec([], 1, 0);
  return out;
}

describe('headTopM', () => {
  it('softmax probabilities of each head top-m, sorted', () => {
    const V = 6, heads = 2;
    const logits = new Float32Array([0, 1, 2, 3, 4, 5, 5, 0, 0, 0, 0, 1]);
    const t = headTopM(logits, 0, heads, V, 3);
    expect(Array.from(t.tokens)).toEqual([5, 4, 3, 0, 5, 1]);
    const z0 = [0, 1, 2, 3, 4, 5].reduce((s, x) => s + Math.exp(x), 0);
    expect(t.probs[0]).toBeCloseTo(Math.exp(5) / z0, 6);
    expect(t.probs[2]).toBeCloseTo(Math.exp(3) / z0, 6);
    const z1 = Math.exp(5) + 4 + Math.exp(1);
    expect(t.probs[3]).toBeCloseTo(Math.exp(5) / z1, 6);
  });
});

describe('medusaTree', () => {
  it('takes exactly the highest-scoring product paths, ancestor-closed and within budget', () => {
    const r = rng(3);
    for (let trial = 0; trial < 60; trial++) {
      const heads = 1 + Math.floor(r() * 4), m = 1 + Math.floor(r() * 3), V = 8;
      const logits = new Float32Array(heads * V).map(() => r() * 4);
      const top = headTopM(logits, 0, heads, V, m);
      const budget = 1 + Math.floor(r() * 20);
      const t = medusaTree(99, top, { budget });
      expect(() => validateTree(t, 99, budget)).not.toThrow();
      const paths = allPaths(top.tokens, top.probs, heads, m).sort((a, b) => b.score - a.score);
      expect(t.tokens.length).toBe(Math.min(budget, paths.length + 1));
      const got = t.scores.slice(1).sort((a, b) => b - a);
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(paths[i].score, 12);
      for (let i = 1; i < t.tokens.length; i++) expect(t.depths[i]).toBeLessThanOrEqual(heads);
    }
  });

  it('minProb cuts unlikely paths; a confident head gives a chain', () => {
    const V = 4, heads = 3;
    const logits = new Float32Array(heads * V).fill(0);
    logits[1] = 10; logits[V + 2] = 10; logits[2 * V + 3] = 10;
    const t = medusaTree(0, headTopM(logits, 0, heads, V, 2), { budget: 16, minProb: 0.5 });
    expect(t.tokens).toEqual([0, 1, 2, 3]);
    expect(t.parents).toEqual([-1, 0, 1, 2]);
  });
});
