import { describe, expect, it } from 'vitest';
import { accept, acceptGreedy, acceptSampling } from '../../src/engine/acceptance.js';
import { Rng, argmax, sampleFrom, targetDistribution } from '../../src/engine/sampling.js';
import { buildTree } from '../../src/engine/tree.js';
import type { SamplingParams } from '../../src/engine/types.js';

const V = 6;
/** logits [S*V] from per-node rows. */
function logitsOf(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}
/** A row whose argmax is `tok`. */
function peak(tok: number, height = 5): number[] {
  return [...Array(V)].map((_, i) => (i === tok ? height : 0));
}

const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0, seed: 0 };

describe('Rng', () => {
  it('is deterministic, restorable from its state, and roughly uniform', () => {
    const a = Rng.fromSeed(42);
    const b = Rng.fromSeed(42);
    const xs = [...Array(5)].map(() => a.next());
    expect([...Array(5)].map(() => b.next())).toEqual(xs);
    const state = a.getState();
    const c = new Rng(JSON.parse(JSON.stringify(state)));
    expect(c.next()).toBe(a.next());
    expect(Rng.fromSeed(43).next()).not.toBe(Rng.fromSeed(42).next());
    let mean = 0;
    const r = Rng.fromSeed(1);
    for (let i = 0; i < 20000; i++) {
      const u = r.next();
      expect(u >= 0 && u < 1).toBe(true);
      mean += u / 20000;
    }
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
  });
});

describe('targetDistribution', () => {
  const row = [2, 1, 0, -1, 3, 3];
  it('greedy is one-hot at the first argmax', () => {
    expect(argmax(row)).toBe(4);
    expect(Array.from(targetDistribution(row, GREEDY))).toEqual([0, 0, 0, 0, 1, 0]);
  });
  it('the smallest positive temperatures tend to greedy (ties share the mass), never NaN', () => {
    for (const temperature of [5e-324, 1e-300, 1e-12]) {
      const p = targetDistribution(row, { temperature, topP: 1, topK: 0, seed: 0 });
      expect(Array.from(p), String(temperature)).toEqual([0, 0, 0, 0, 0.5, 0.5]);
    }
  });
  it('temperature softmax', () => {
    const p = targetDistribution(row, { temperature: 2, topP: 1, topK: 0, seed: 0 });
    const e = row.map((x) => Math.exp(x / 2));
    const z = e.reduce((a, b) => a + b);
    e.forEach((x, i) => expect(p[i]).toBeCloseTo(x / z, 12));
  });
  it('top-k keeps boundary ties, top-p keeps the smallest prefix reaching p', () => {
    const k = targetDistribution(row, { temperature: 1, topP: 1, topK: 2, seed: 0 });
    expect(Array.from(k).map((x) => x > 0)).toEqual([false, false, false, false, true, true]);
    const k3 = targetDistribution(row, { temperature: 1, topP: 1, topK: 3, seed: 0 });
    expect(Array.from(k3).map((x) => x > 0)).toEqual([true, false, false, false, true, true]);
    // probs ~ [.16,.06,.02,.01,.37,.37] (sorted: 4,5,0,1,...): top-p .8 keeps 4,5,0
    const p = targetDistribution(row, { temperature: 1, topP: 0.8, topK: 0, seed: 0 });
    expect(Array.from(p).map((x) => x > 0)).toEqual([true, false, false, false, true, true]);
    expect(p.reduce((a, b) => a + b)).toBeCloseTo(1, 12);
  });
  it('sampleFrom follows the distribution', () => {
    const p = [0.1, 0, 0.6, 0.3];
    const r = Rng.fromSeed(3);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[sampleFrom(p, r)]++;
    expect(counts[1]).toBe(0);
    p.forEach((x, i) => expect(Math.abs(counts[i] / 20000 - x)).toBeLessThan(0.015));
  });
});

describe('acceptGreedy', () => {
  // root 0 -> children a=1 (-> 2 -> 3), b=4 (-> 5)
  const tree = buildTree(0, [[1, 2, 3], [4, 5]], 100); // nodes: 0,1,2,3,4,5
  it('takes the longest path matching argmax, bonus = argmax at the last node', () => {
    const logits = logitsOf([peak(1), peak(2), peak(5), peak(0), peak(0), peak(0)]);
    expect(acceptGreedy(tree, logits, V)).toEqual({ path: [0, 1, 2], bonus: 5 });
  });
  it('follows the second sibling when it is the argmax', () => {
    const logits = logitsOf([peak(4), peak(0), peak(0), peak(0), peak(5), peak(3)]);
    expect(acceptGreedy(tree, logits, V)).toEqual({ path: [0, 4, 5], bonus: 3 });
  });
  it('rejects everything: root only + bonus', () => {
    const logits = logitsOf([peak(2), peak(0), peak(0), peak(0), peak(0), peak(0)]);
    expect(acceptGreedy(tree, logits, V)).toEqual({ path: [0], bonus: 2 });
  });
  it('accepts a full chain', () => {
    const logits = logitsOf([peak(1), peak(2), peak(3), peak(1), peak(0), peak(0)]);
    expect(acceptGreedy(tree, logits, V)).toEqual({ path: [0, 1, 2, 3], bonus: 1 });
    expect(accept(tree, logits, V, GREEDY, Rng.fromSeed(0))).toEqual({ path: [0, 1, 2, 3], bonus: 1 });
  });
});

describe('acceptSampling', () => {
  const tree = buildTree(0, [[1, 2], [3]], 100); // nodes 0, 1(tok1), 2(tok2), 3(tok3)
  const T1: SamplingParams = { temperature: 1, topP: 1, topK: 0, seed: 0 };

  it('accepts a child with probability 1 when p(child) = 1, consuming no randomness', () => {
    const big = 60;
    const logits = logitsOf([peak(1, big), peak(2, big), peak(4, big), peak(0, big)]);
    const r = Rng.fromSeed(5);
    const before = r.getState();
    const res = acceptSampling(tree, logits, V, T1, r);
    expect(res.path).toEqual([0, 1, 2]);
    expect(res.bonus).toBe(4);
    expect(r.getState()).not.toEqual(before); // the bonus draw
  });

  it('never accepts a child with p = 0 and never emits a rejected token as the bonus', () => {
    const topk: SamplingParams = { temperature: 1, topP: 1, topK: 2, seed: 0 };
    // root row: tokens 3 and 5 are the top-2; child tokens 1 (p=0) and 3 (p>0)
    const root = [0, 0.5, 0, 2, 0, 2];
    const logits = logitsOf([root, peak(0), peak(0), peak(2)]);
    const r = Rng.fromSeed(9);
    let took3 = 0;
    const N = 4000;
    for (let i = 0; i < N; i++) {
      const res = acceptSampling(tree, logits, V, topk, r);
      expect(res.path).not.toContain(1);
      if (res.path[1] === 3) took3++;
      else {
        expect(res.path).toEqual([0]);
        expect(res.bonus).toBe(5); // 3 was rejected and set to 0; only 5 is left
      }
    }
    expect(Math.abs(took3 / N - 0.5)).toBeLessThan(0.03);
  });

  it('marginal of the first emitted token equals p (exact test of the rejection chain)', () => {
    const root = [0.3, 1.2, -0.5, 0.9, 0.1, -1];
    const logits = logitsOf([root, peak(0), peak(0), peak(0)]);
    const p = targetDistribution(root, T1);
    const r = Rng.fromSeed(11);
    const counts = new Array(V).fill(0);
    const N = 40000;
    for (let i = 0; i < N; i++) {
      const res = acceptSampling(tree, logits, V, T1, r);
      const first = res.path.length > 1 ? tree.tokens[res.path[1]] : res.bonus;
      counts[first]++;
    }
    for (let v = 0; v < V; v++) expect(Math.abs(counts[v] / N - p[v])).toBeLessThan(0.01);
  });

  it('greedy params delegate to acceptGreedy', () => {
    const logits = logitsOf([peak(3), peak(0), peak(0), peak(1)]);
    const r = Rng.fromSeed(1);
    const s = r.getState();
    expect(acceptSampling(tree, logits, V, GREEDY, r)).toEqual({ path: [0, 3], bonus: 1 });
    expect(r.getState()).toEqual(s);
  });
});
