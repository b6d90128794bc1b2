/**
 * The head drafters (CTC, Medusa, CTC+n-gram) over a fake ORT session with hand-made outputs:
 * option plumbing, budgets, adaptive sizing, and the trees they build.
 */
import { describe, expect, it } from 'vitest';
import { CTCDrafter, type CTCOptions } from '../../../src/engine/drafters/ctc.js';
import { MedusaDrafter } from '../../../src/engine/drafters/medusa.js';
import { HybridDrafter } from '../../../src/engine/drafters/hybrid.js';
import { NgramDrafter } from '../../../src/engine/drafters/ngram.js';
import { DraftHeadSession } from '../../../src/engine/drafters/head-session.js';
import { validateTree } from '../../../src/engine/tree.js';
import type { OrtSession } from '../../../src/engine/ort.js';

const V = 10, C = V + 1, SLOTS = 6, d = 4;

/** A stand-in for an ORT session: records calls, returns `data` under `output`. */
function fakeSession(output: string, data: () => Float32Array) {
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
function peaked(align: number[], p = 0.9): Float32Array {
  const lp = new Float32Array(SLOTS * C).fill(Math.log((1 - p) / (C - 1)));
  align.forEach((s, t) => (lp[t * C + s] = Math.log(p)));
  return lp;
}

function ctc(data: () => Float32Array, opts: Partial<CTCOptions> = {}) {
  const { session, calls } = fakeSession('log_probs', data);
  const head = new DraftHeadSession(session, d, 'log_probs');
  return { drafter: new CTCDrafter(head, { k: 4, slots: SLOTS, blank_id: V, vocab_size: V }, opts), calls, head };
}

const ctx = (budget: number) => ({ tokens: [1, 2, 3], hidden: new Float32Array([0.5, -1, 2, 0]), pending: 3, budget });

describe('CTCDrafter', () => {
  it('runs the head once with the hidden state and the pending token, and drafts the collapsed alignment', async () => {
    const { drafter, calls, head } = ctc(() => peaked([5, 5, V, 6, 7, V]), { costRatio: 0 });
    const tree = await drafter.draft(ctx(16));
    expect(calls).toEqual([{ hidden: [0.5, -1, 2, 0], token: 3n }]);
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

describe('MedusaDrafter', () => {
  const K = 3;
  function medusa(logits: Float32Array, costRatio = 0) {
    const { session, calls } = fakeSession('logits', () => logits);
    return { drafter: new MedusaDrafter(new DraftHeadSession(session, d, 'logits'), { k: K, vocab_size: V }, { costRatio, topM: 3 }), calls };
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
    const { session } = fakeSession('logits', () => new Float32Array(K * 200));
    const uniform = new MedusaDrafter(new DraftHeadSession(session, d, 'logits'), { k: K, vocab_size: 200 }, { costRatio: 17 });
    expect((await uniform.draft(ctx(16))).tokens).toEqual([3]);
  });
});

describe('HybridDrafter (ctc-ngram)', () => {
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
    expect(h.ctcRounds).toBe(1);
  });

  it('merge: skips the head when the lookup alone expects enough tokens', async () => {
    const { drafter: c, calls } = ctc(() => peaked([5, V, 6, V, 7, 8], 0.97), { costRatio: 0 });
    const h = new HybridDrafter(c, new NgramDrafter({ minWeight: 0 }), { skipHead: 1 });
    const long = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    const t = await h.draft({ tokens: long, hidden: new Float32Array(d), pending: 8, budget: 8 });
    expect(calls.length).toBe(0);
    expect(t.tokens.slice(0, 3)).toEqual([8, 9, 0]);
    expect(h.ngramRounds).toBe(1);
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
    expect([h.ngramRounds, h.ctcRounds]).toEqual([1, 1]);
  });
});
