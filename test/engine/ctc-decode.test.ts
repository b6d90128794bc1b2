import { describe, expect, it } from 'vitest';
import { CTCPrefixBeamSearch, CTCPrefixConditionals, ctcCollapse, ctcPrefixBeamSearch, topMIndices } from '../../src/engine/ctc-decode.js';
import { validateTree } from '../../src/engine/tree.js';
import { Rng } from '../../src/engine/sampling.js';

/** Uniform [0,1) numbers from the engine's seeded PRNG. */
function rng(seed: number): () => number {
  const r = Rng.fromSeed(seed);
  return () => r.next();
}

/** Random log-softmax rows [slots, classes], peaked with `sharp` > 1. */
function randomLogProbs(slots: number, classes: number, seed: number, sharp = 3): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(slots * classes);
  for (let t = 0; t < slots; t++) {
    let z = 0;
    const row = new Float64Array(classes);
    for (let c = 0; c < classes; c++) {
      row[c] = Math.exp(sharp * (r() * 2 - 1) * 2);
      z += row[c];
    }
    for (let c = 0; c < classes; c++) out[t * classes + c] = Math.log(row[c] / z);
  }
  return out;
}

/** Exact distribution of collapsed sequences by enumerating all classes^slots alignments. */
function bruteForce(lp: Float32Array, slots: number, classes: number, blank: number): Map<string, number> {
  const dist = new Map<string, number>();
  const align = new Array<number>(slots).fill(0);
  const total = classes ** slots;
  for (let k = 0; k < total; k++) {
    let x = k;
    let logp = 0;
    for (let t = 0; t < slots; t++) {
      align[t] = x % classes;
      x = Math.floor(x / classes);
      logp += lp[t * classes + align[t]];
    }
    const key = ctcCollapse(align, blank).join(',');
    dist.set(key, (dist.get(key) ?? 0) + Math.exp(logp));
  }
  return dist;
}

describe('ctcCollapse', () => {
  it('merges repeats then drops blanks', () => {
    expect(ctcCollapse([1, 1, 0, 1, 2, 2, 0, 0, 3], 0)).toEqual([1, 1, 2, 3]);
    expect(ctcCollapse([0, 0, 0], 0)).toEqual([]);
    expect(ctcCollapse([5, 5, 5], 9)).toEqual([5]);
    expect(ctcCollapse([5, 9, 5], 9)).toEqual([5, 5]);
  });
});

describe('topMIndices', () => {
  it('matches a full sort, skipping the excluded index', () => {
    const r = rng(1);
    for (let trial = 0; trial < 50; trial++) {
      const len = 1 + Math.floor(r() * 60);
      const row = Array.from({ length: len + 3 }, () => Math.floor(r() * 20) / 3);
      const m = 1 + Math.floor(r() * 8);
      const exclude = Math.floor(r() * len);
      const idx = new Int32Array(m);
      const val = new Float64Array(m);
      const n = topMIndices(row, 3, len, m, idx, val, exclude);
      const ref = Array.from({ length: len }, (_, i) => i)
        .filter((i) => i !== exclude)
        .sort((a, b) => row[3 + b] - row[3 + a]);
      expect(n).toBe(Math.min(m, len - 1));
      for (let i = 0; i < n; i++) expect(val[i]).toBe(row[3 + ref[i]]); // values equal (ties may reorder)
      for (let i = 0; i < n; i++) expect(row[3 + idx[i]]).toBe(val[i]);
      expect(new Set(Array.from(idx.subarray(0, n))).size).toBe(n);
      expect(Array.from(idx.subarray(0, n))).not.toContain(exclude);
    }
  });
});

describe('CTC prefix beam search', () => {
  it('with an unbounded beam and full top-m equals brute-force enumeration of alignments', () => {
    for (const [slots, V, seed] of [[4, 3, 1], [5, 3, 2], [5, 2, 3], [6, 2, 4], [3, 4, 5]]) {
      const classes = V + 1;
      const blank = V; // blank last, as in the model
      const lp = randomLogProbs(slots, classes, seed, 1.5);
      const exact = bruteForce(lp, slots, classes, blank);
      const cands = ctcPrefixBeamSearch(lp, slots, classes, blank, { beamWidth: 100000, topM: V });
      // every collapsed sequence found, with the same probability
      expect(cands.length).toBe(exact.size);
      let sum = 0;
      for (const c of cands) {
        const p = exact.get(c.tokens.join(','));
        expect(p, `sequence ${c.tokens}`).toBeDefined();
        expect(Math.exp(c.logProb)).toBeCloseTo(p!, 10);
        sum += Math.exp(c.logProb);
      }
      expect(sum).toBeCloseTo(1, 6); // float32 log-probs
      // sorted best-first
      for (let i = 1; i < cands.length; i++) expect(cands[i - 1].logProb).toBeGreaterThanOrEqual(cands[i].logProb);
    }
  });

  it('prefix masses equal the brute-force probability that the output starts with the prefix', () => {
    for (const [slots, V, seed] of [[4, 3, 41], [5, 2, 42], [6, 2, 43]]) {
      const classes = V + 1, blank = V;
      const lp = randomLogProbs(slots, classes, seed, 1.5);
      const exact = bruteForce(lp, slots, classes, blank);
      const s = new CTCPrefixBeamSearch(classes, blank, { beamWidth: 100000, topM: V });
      s.search(lp, slots);
      const startsWith = (prefix: number[]) => {
        let sum = 0;
        for (const [k, p] of exact) {
          const seq = k === '' ? [] : k.split(',').map(Number);
          if (prefix.every((t, i) => seq[i] === t)) sum += p;
        }
        return sum;
      };
      expect(s.prefixMass([])).toBeCloseTo(1, 12);
      for (const k of exact.keys()) {
        const seq = k === '' ? [] : k.split(',').map(Number);
        for (let len = 1; len <= seq.length; len++) {
          expect(s.prefixMass(seq.slice(0, len)), `prefix ${seq.slice(0, len)}`).toBeCloseTo(startsWith(seq.slice(0, len)), 6);
        }
      }
      // the prefix tree: heaviest prefixes, valid, weights never increase downwards
      const t = s.prefixTree(7, 12);
      expect(() => validateTree(t, 7, 12)).not.toThrow();
      for (let i = 1; i < t.tokens.length; i++) {
        const path: number[] = [];
        for (let n = i; n > 0; n = t.parents[n]) path.unshift(t.tokens[n]);
        expect(t.weights[i]).toBeCloseTo(startsWith(path), 6);
        if (t.parents[i] > 0) expect(t.weights[i]).toBeLessThanOrEqual(t.weights[t.parents[i]] + 1e-9);
      }
      // optimal among ancestor-closed trees of that size: its weights are the top ones overall
      const all: number[] = [];
      const seen = new Set<string>();
      for (const k of exact.keys()) {
        const seq = k === '' ? [] : k.split(',').map(Number);
        for (let len = 1; len <= seq.length; len++) {
          const key = seq.slice(0, len).join(',');
          if (!seen.has(key)) { seen.add(key); all.push(startsWith(seq.slice(0, len))); }
        }
      }
      all.sort((a, b) => b - a);
      const got = t.weights.slice(1).sort((a, b) => b - a);
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(all[i], 6);
      expect(s.prefixTree(7, 12, 0.5).weights.slice(1).every((w) => w >= 0.5)).toBe(true);
    }
  });

  it('handles a blank id that is not the last class', () => {
    const lp = randomLogProbs(5, 4, 11, 1.5);
    const exact = bruteForce(lp, 5, 4, 0);
    const cands = ctcPrefixBeamSearch(lp, 5, 4, 0, { beamWidth: 1000, topM: 3 });
    for (const c of cands) expect(Math.exp(c.logProb)).toBeCloseTo(exact.get(c.tokens.join(','))!, 10);
    expect(cands.length).toBe(exact.size);
  });

  it('maxLen keeps exact probabilities of the sequences up to that length', () => {
    const slots = 6, V = 2, classes = 3, blank = 2;
    const lp = randomLogProbs(slots, classes, 21, 1.5);
    const exact = bruteForce(lp, slots, classes, blank);
    const cands = ctcPrefixBeamSearch(lp, slots, classes, blank, { beamWidth: 100000, topM: V, maxLen: 3 });
    const expected = [...exact.entries()].filter(([k]) => (k === '' ? 0 : k.split(',').length) <= 3);
    expect(cands.length).toBe(expected.length);
    for (const c of cands) {
      expect(c.tokens.length).toBeLessThanOrEqual(3);
      expect(Math.exp(c.logProb)).toBeCloseTo(exact.get(c.tokens.join(','))!, 10);
    }
  });

  it('a narrow beam returns probabilities that are lower bounds and finds the dominant sequence', () => {
    const slots = 6, V = 3, classes = 4, blank = 3;
    for (let seed = 30; seed < 40; seed++) {
      const lp = randomLogProbs(slots, classes, seed, 3);
      const exact = bruteForce(lp, slots, classes, blank);
      const best = [...exact.entries()].sort((a, b) => b[1] - a[1])[0];
      const cands = ctcPrefixBeamSearch(lp, slots, classes, blank, { beamWidth: 4, topM: 2 });
      expect(cands.length).toBeLessThanOrEqual(4);
      for (const c of cands) expect(Math.exp(c.logProb)).toBeLessThanOrEqual(exact.get(c.tokens.join(','))! * (1 + 1e-9));
      if (best[1] > 0.5) expect(cands[0].tokens.join(',')).toBe(best[0]);
    }
  });

  it('a peaked head yields its alignment collapsed, including a repeated token separated by a blank', () => {
    const V = 10, C = 11, blank = 10, slots = 8;
    const align = [3, 3, blank, 3, 7, blank, 7, 2]; // -> 3 3 7 7 2
    const lp = new Float32Array(slots * C).fill(Math.log(0.01 / (C - 1)));
    for (let t = 0; t < slots; t++) lp[t * C + align[t]] = Math.log(0.99);
    const s = new CTCPrefixBeamSearch(C, blank, { beamWidth: 8, topM: 4 });
    const cands = s.search(lp, slots);
    expect(cands[0].tokens).toEqual([3, 3, 7, 7, 2]);
    expect(Math.exp(cands[0].logProb)).toBeGreaterThan(0.9);
    // reusable: a second search on the same object gives the same answer
    expect(s.search(lp, slots)[0].tokens).toEqual([3, 3, 7, 7, 2]);
    expect(V).toBe(10);
  });

  it('reads rows at an offset and with a real vocabulary size quickly', () => {
    const V = 4096, C = V + 1, slots = 16;
    const lp = new Float32Array(7 + slots * C);
    const r = rng(5);
    for (let t = 0; t < slots; t++) {
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp((lp[7 + t * C + c] = r() * 8));
      for (let c = 0; c < C; c++) lp[7 + t * C + c] -= Math.log(z);
    }
    const s = new CTCPrefixBeamSearch(C, V, { beamWidth: 8, topM: 4, maxLen: 8 });
    s.search(lp, slots, 7);
    const t0 = performance.now();
    const n = 20;
    let cands = s.search(lp, slots, 7);
    for (let i = 1; i < n; i++) cands = s.search(lp, slots, 7);
    const ms = (performance.now() - t0) / n;
    expect(cands.length).toBe(8);
    for (const c of cands) expect(c.tokens.length).toBeLessThanOrEqual(8);
    expect(ms).toBeLessThan(20); // typically well under 1 ms
  });
});

describe('CTCPrefixConditionals: the exact next-token distribution given a drafted prefix', () => {
  /** Every alignment of S slots over C classes with its probability (brute force, small S and C). */
  function alignments(P: number[][], blank: number): { seq: number[]; p: number }[] {
    const S = P.length;
    const C = P[0].length;
    const out: { seq: number[]; p: number }[] = [];
    const rec = (s: number, a: number[], p: number) => {
      if (s === S) { out.push({ seq: ctcCollapse(a, blank), p }); return; }
      for (let c = 0; c < C; c++) rec(s + 1, [...a, c], p * P[s][c]);
    };
    rec(0, [], 1);
    return out;
  }

  it('scores(x) after each prefix = P(collapsed output starts with prefix + x), by enumeration', () => {
    const S = 5, C = 4, blank = 3;
    const rng = Rng.fromSeed(5);
    const P: number[][] = [];
    for (let s = 0; s < S; s++) {
      const r = Array.from({ length: C }, () => Math.exp(3 * rng.next()));
      const z = r.reduce((a, b) => a + b, 0);
      P.push(r.map((x) => x / z));
    }
    const all = alignments(P, blank);
    const startsWith = (seq: number[], pre: number[]) => pre.every((t, i) => seq[i] === t);
    const lp = P.flat().map(Math.log);
    // prefixes with and without a repeated token (the merge rule matters for [1, 1])
    for (const prefix of [[], [0], [1], [1, 1], [0, 2], [2, 0, 2]]) {
      const cond = new CTCPrefixConditionals(lp, S, C, blank);
      for (const t of prefix) cond.extend(t);
      const scores = cond.scores();
      expect(scores[blank]).toBe(0);
      for (let x = 0; x < C - 1; x++) {
        const exact = all.filter((a) => startsWith(a.seq, [...prefix, x])).reduce((s, a) => s + a.p, 0);
        expect(scores[x]).toBeCloseTo(exact, 12);
      }
    }
  });

  it('the scores of all next tokens plus "stops here" add up to P(prefix)', () => {
    const S = 6, C = 5, blank = 4;
    const rng = Rng.fromSeed(9);
    const lp: number[] = [];
    for (let s = 0; s < S; s++) {
      const r = Array.from({ length: C }, () => rng.next() + 0.05);
      const z = r.reduce((a, b) => a + b, 0);
      lp.push(...r.map((x) => Math.log(x / z)));
    }
    const P = Array.from({ length: S }, (_, s) => lp.slice(s * C, (s + 1) * C).map(Math.exp));
    const all = alignments(P, blank);
    const cond = new CTCPrefixConditionals(lp, S, C, blank);
    const prefix = [2, 2];
    let pre = 1;
    for (const t of prefix) {
      pre = cond.scores()[t];
      cond.extend(t);
    }
    const exactly = all.filter((a) => a.seq.length === 2 && a.seq[0] === 2 && a.seq[1] === 2).reduce((s, a) => s + a.p, 0);
    const next = cond.scores().reduce((s, x) => s + x, 0);
    expect(next + exactly).toBeCloseTo(pre, 12);
  });
});
