import { describe, expect, it } from 'vitest';
import { NGRAM_DEFAULTS, NgramDrafter, findNgramMatches, sampledMinWeight } from '../../../src/engine/drafters/ngram.js';
import { Rng } from '../../../src/engine/sampling.js';
import { validateTree } from '../../../src/engine/tree.js';

describe('findNgramMatches', () => {
  it('finds the longest suffix first, most recent occurrence first', () => {
    //            0  1  2  3  4  5  6  7  8  9 10
    const toks = [1, 2, 3, 9, 1, 2, 3, 8, 5, 2, 3];
    const m = findNgramMatches(toks, 4, 1, 10);
    // suffix [2,3] occurs at 1 and 5 (n=2; [1,2,3]? toks[8]=5, so n=3 fails)
    expect(m[0]).toEqual({ n: 2, start: 7 }); // most recent: [2,3] at 5..6 -> continuation at 7
    expect(m[1]).toEqual({ n: 2, start: 3 });
    // then n=1 occurrences of [3] not already used: 3 at index 2 and 6 give starts 3 and 7 (used) -> none new
    expect(m.length).toBe(2);
  });

  it('respects maxMatches, minN and longestOnly', () => {
    const toks = [4, 1, 5, 1, 6, 1, 7, 0, 1];
    expect(findNgramMatches(toks, 3, 1, 2)).toEqual([{ n: 1, start: 6 }, { n: 1, start: 4 }]);
    expect(findNgramMatches(toks, 3, 2, 10)).toEqual([]);
    const t2 = [7, 8, 9, 3, 8, 9, 5, 9];
    expect(findNgramMatches(t2, 4, 1, 10, true)).toEqual([{ n: 1, start: 6 }, { n: 1, start: 3 }]);
    const t3 = [7, 8, 9, 1, 2, 9, 8, 9];
    expect(findNgramMatches(t3, 4, 1, 10, true)).toEqual([{ n: 2, start: 3 }]);
    expect(findNgramMatches(t3, 4, 1, 10, false)).toEqual([{ n: 2, start: 3 }, { n: 1, start: 6 }]);
  });

  it('never matches the suffix with itself and handles tiny contexts', () => {
    expect(findNgramMatches([5], 4, 1, 10)).toEqual([]);
    expect(findNgramMatches([5, 5], 4, 1, 10)).toEqual([{ n: 1, start: 1 }]);
    expect(findNgramMatches([], 4, 1, 10)).toEqual([]);
  });
});

describe('NgramDrafter', () => {
  it('proposes the continuation of the repeated text as a chain', () => {
    const text = [10, 11, 12, 13, 14, 15, 16, 17, 20, 10, 11, 12];
    const d = new NgramDrafter({ minWeight: 0 });
    const t = d.draftSync(text, 12, 6);
    expect(() => validateTree(t, 12, 6)).not.toThrow();
    expect(t.tokens).toEqual([12, 13, 14, 15, 16, 17]);
    expect(t.depths).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('branches on different continuations, merges equal ones, and stays within budget', () => {
    const text = [1, 2, 3, 4, 9, 1, 2, 3, 5, 9, 1, 2, 3, 4, 7, 1, 2, 3];
    const d = new NgramDrafter({ minWeight: 0, maxMatches: 8 });
    for (const budget of [1, 2, 3, 5, 8, 16, 32]) {
      const t = d.draftSync(text, 3, budget);
      expect(() => validateTree(t, 3, budget)).not.toThrow();
    }
    const t = d.draftSync(text, 3, 32);
    const firstLevel = t.tokens.filter((_, i) => t.parents[i] === 0);
    expect(new Set(firstLevel)).toEqual(new Set([4, 5]));
    expect(t.tokens[1]).toBe(4); // [4] is supported by two matches, the most recent first
  });

  it('returns the root alone without a match or budget', async () => {
    const d = new NgramDrafter();
    const t = await d.draft({ tokens: [1, 2, 3], hidden: new Float32Array(4), pending: 3, budget: 16 });
    expect(t).toEqual({ tokens: [3], parents: [-1], depths: [0] });
    expect(d.draftSync([1, 2, 1, 2], 2, 1).tokens).toEqual([2]);
  });

  it('weak matches give short drafts (depth decay and minWeight)', () => {
    const d = new NgramDrafter({ confidence: [0, 0.3], depthDecay: [0.5], minWeight: 0.1, costRatio: 0 });
    const t = d.draftSync([7, 1, 2, 3, 4, 5, 6, 0, 7], 7, 16); // 1-gram match only
    expect(t.tokens).toEqual([7, 1, 2]); // 0.3, 0.15, then 0.075 < 0.1
  });
});

describe('prompt lookup when the request samples', () => {
  it("keeps only candidates above the temperature's minimum weight: T - 0.4 within [minWeight, 0.8], or a set value", () => {
    expect(sampledMinWeight(NGRAM_DEFAULTS, 0.7)).toBeCloseTo(0.3, 12);
    expect(sampledMinWeight(NGRAM_DEFAULTS, 1)).toBeCloseTo(0.6, 12);
    expect(sampledMinWeight(NGRAM_DEFAULTS, 0.2)).toBe(NGRAM_DEFAULTS.minWeight);
    expect(sampledMinWeight(NGRAM_DEFAULTS, 2)).toBe(0.8);
    expect(sampledMinWeight({ ...NGRAM_DEFAULTS, sampledMinWeight: 0.45 }, 1)).toBe(0.45);
  });

  it('drafts a smaller tree at T 1 than greedy on the same context, a subset of its nodes', async () => {
    const d = new NgramDrafter();
    const tokens = [5, 6, 7, 8, 9, 10, 5, 6, 7, 11, 12, 5, 6, 7, 8, 9, 3, 5, 6];
    const greedy = await d.draft({ tokens, hidden: new Float32Array(0), pending: 6, budget: 16 });
    const rng = Rng.fromSeed(1);
    const sampled = await d.draft({ tokens, hidden: new Float32Array(0), pending: 6, budget: 16, sampling: { temperature: 1, topP: 1, topK: 0, seed: 0 }, rng });
    expect(sampled.tokens.length).toBeGreaterThan(1);
    expect(sampled.tokens.length).toBeLessThan(greedy.tokens.length);
    const paths = (t: { tokens: number[]; parents: number[] }) => t.tokens.map((_, i) => { const p: number[] = []; for (let n = i; n >= 0; n = t.parents[n]) p.unshift(t.tokens[n]); return p.join(','); });
    for (const p of paths(sampled)) expect(paths(greedy)).toContain(p);
  });
});
