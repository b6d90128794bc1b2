/**
 * transformers.js as it runs in Node out of the box (onnxruntime-node, native CPU kernels, one thread
 * here) over model-hf/default vs the engine's plain decoding (onnxruntime-web wasm) of
 * model-shards/default: the same weights and graph, another runtime's kernels. Native SIMD exp, sums
 * and rounding differ from wasm's in the last bits, and on x86 CPUs without VNNI onnxruntime's native
 * u8 x s8 matmul adds byte products in pairs into saturating int16 lanes (AVX2 vpmaddubsw), so its int8
 * matmuls are not exact there: logits then differ by up to about a logit (1.25 measured). So the greedy tokens agree until
 * the engine's top two candidates are closer than the two runtimes' logits are apart at that step, and
 * where they part, each runtime's token is its own argmax.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_NEW_TOKENS, enginePlain, equivalencePrompts, firstDifference, promptIds, setup, type Setup } from './equivalence.js';

/** A divergence must be a near-tie in the engine's own logits (its token's lead over transformers.js's
 *  token): under this, or under twice the largest difference between the two runtimes' logits there. */
const NEAR_TIE = 0.05;
/** The runtimes' logits at a step never differ by more than this (a wrong weight mapping differs by many). */
const MAX_RUNTIME_DIFF = 2;

let s: Setup;
const outcomes: { prompt: number; firstDiff: number; margin: number | null; apart?: number }[] = [];
beforeAll(async () => {
  s = await setup('cpu');
});

describe('transformers.js (onnxruntime-node cpu) vs the engine, greedy', () => {
  it('runs on onnxruntime-node', () => {
    expect(s.tjs.runtimeName).toMatch(/^onnxruntime-node 1\.30\.\d+ cpu, 1 thread$/);
  });

  it.each(equivalencePrompts().map((p, i) => [i, p] as const))('prompt %i: same tokens as plain decoding, or a near-tie where they part', async (i, p) => {
    const ids = promptIds(s.engine, p);
    const ours = await enginePlain(s.engine, ids);
    const theirs = await s.tjs.generate(ids, MAX_NEW_TOKENS);
    expect(ours.tokens.length).toBeGreaterThan(0);
    const k = firstDifference(theirs.tokens, ours.tokens);
    if (k === -1) {
      outcomes.push({ prompt: i, firstDiff: -1, margin: null });
      return;
    }
    // both ran to the same length: a difference is a different token at k, not a shorter output
    expect(k).toBeLessThan(Math.min(ours.tokens.length, theirs.tokens.length));
    const lm = s.engine.model;
    const { logits } = await lm.prefill([...ids, ...ours.tokens.slice(0, k)], lm.newCache());
    const V = s.engine.config.vocab_size;
    const row = logits.subarray(logits.length - V);
    const margin = row[ours.tokens[k]] - row[theirs.tokens[k]];
    const native = await s.tjs.logits([...ids, ...ours.tokens.slice(0, k)]);
    let apart = 0;
    for (let j = 0; j < V; j++) apart = Math.max(apart, Math.abs(native[j] - row[j]));
    outcomes.push({ prompt: i, firstDiff: k, margin, apart });
    expect(margin).toBeGreaterThanOrEqual(0); // the engine's token is its argmax
    expect(native[theirs.tokens[k]]).toBeGreaterThanOrEqual(native[ours.tokens[k]]); // and theirs is the native argmax
    expect(apart).toBeLessThan(MAX_RUNTIME_DIFF);
    expect(margin).toBeLessThan(Math.max(NEAR_TIE, 2 * apart));
  });

  it('most prompts agree token for token (all but two where the native int8 matmuls are exact)', () => {
    process.stderr.write(`transformers.js on onnxruntime-node vs the engine: ${JSON.stringify(outcomes)}\n`);
    expect(outcomes.length).toBe(equivalencePrompts().length);
    const inexact = outcomes.some((o) => (o.apart ?? 0) > 0.1);
    const agree = outcomes.filter((o) => o.firstDiff === -1).length;
    expect(agree).toBeGreaterThanOrEqual(inexact ? Math.ceil(outcomes.length / 2) : outcomes.length - 2);
  });
});
