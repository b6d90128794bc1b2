/**
 * HybridDrafter (src/engine/drafters/hybrid.ts): a CTC head drafter over a fake head plus prompt lookup,
 * in its merge and switch modes.
 */
import { describe, expect, it } from 'vitest';
import { HybridDrafter } from '../../../src/engine/drafters/hybrid.js';
import { NgramDrafter } from '../../../src/engine/drafters/ngram.js';
import { validateTree } from '../../../src/engine/tree.js';
import { MedusaDrafter } from '../../../src/engine/drafters/medusa.js';
import { V, ctc, d, fakeHead, peaked } from './fake-head.js';

describe('HybridDrafter (ctc-ngram, medusa-ngram)', () => {
  it('merge: one tree holding both the lookup and the head candidates, shared prefixes once', async () => {
    // lookup: ... 1 2 3 | 4 8 (the earlier occurrence of the suffix "1 2 3"); head: 3 -> 5 6 7 8 (p 0.97 per slot)
    const { drafter: c, calls } = ctc(() => peaked([5, V, 6, V, 7, 8], 0.97), { costRatio: 0 });
    const h = new HybridDrafter(c, new NgramDrafter({ costRatio: 0, minWeight: 0 }), { costRatio: 0, skipHead: Infinity });
    const t = await h.draft({ tokens: [9, 1, 2, 3, 4, 8, 9, 1, 2, 3], hidden: new Float32Array(d), pending: 3, budget: 8 });
    validateTree(t, 3, 8);
    expect(calls.length).toBe(1);
    const paths = t.tokens.map((_, i) => { const p: number[] = []; for (let n = i; n > 0; n = t.parents[n]) p.unshift(t.tokens[n]); return p.join(' '); });
    expect(paths).toContain('5 6 7');
    expect(paths).toContain('4 8');
    expect(new Set(paths).size).toBe(paths.length); // a trie: no path twice
    expect(h.headRounds).toBe(1);
  });

  it('is named after its head and holds it as `head`', () => {
    const { drafter: c } = ctc(() => peaked([5, V, 6, V, 7, 8]));
    const h = new HybridDrafter(c, new NgramDrafter());
    expect([h.name, h.head]).toEqual(['ctc-ngram', c]);
    const m = new MedusaDrafter(fakeHead(() => new Float32Array(2 * V)).head, { k: 2, vocab_size: V });
    expect(new HybridDrafter(m, new NgramDrafter()).name).toBe('medusa-ngram');
  });

  it('merge: skips the head when the lookup alone expects enough tokens', async () => {
    const { drafter: c, calls } = ctc(() => peaked([5, V, 6, V, 7, 8], 0.97), { costRatio: 0 });
    const h = new HybridDrafter(c, new NgramDrafter({ minWeight: 0 }), { skipHead: 1 });
    const long = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    const t = await h.draft({ tokens: long, hidden: new Float32Array(d), pending: 8, budget: 8 });
    expect(calls.length).toBe(0);
    expect(t.tokens.slice(0, 3)).toEqual([8, 9, 0]);
    expect(h.lookupRounds).toBe(1);
  });

  it('switch: the n-gram draft (no head pass) when the context repeats, the CTC head otherwise', async () => {
    const { drafter: c, calls } = ctc(() => peaked([5, V, 6, V, 7, 8], 0.97), { costRatio: 0 });
    const h = new HybridDrafter(c, new NgramDrafter({ costRatio: 0, minWeight: 0 }), { mode: 'switch', minMatch: 3 });
    const repeating = [9, 1, 2, 3, 4, 8, 9, 1, 2, 3];
    const t1 = await h.draft({ tokens: repeating, hidden: new Float32Array(d), pending: 3, budget: 8 });
    expect(calls.length).toBe(0);
    expect(t1.tokens.slice(0, 3)).toEqual([3, 4, 8]);
    const t2 = await h.draft({ tokens: [1, 2, 3], hidden: new Float32Array(d), pending: 3, budget: 8 });
    expect(calls.length).toBe(1);
    expect(t2.tokens.slice(0, 3)).toEqual([3, 5, 6]);
    expect([h.lookupRounds, h.headRounds]).toEqual([1, 1]);
  });
});
