/**
 * transformers.js as it runs in Node out of the box (onnxruntime-node, native CPU kernels, one thread
 * here) over model-hf/default vs the engine's plain decoding (onnxruntime-web wasm) of
 * model-shards/default: the same weights and graph, another runtime's float kernels (native SIMD
 * exp, sums and rounding differ from wasm's in the last bits; the int8 matmuls are exact in both). So the
 * greedy tokens agree until the engine's top two candidates are within a few hundredths of a logit,
 * where the last-bit differences, re-quantized per row, may pick the other one.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_NEW_TOKENS, enginePlain, equivalencePrompts, firstDifference, promptIds, setup, type Setup } from './equivalence.js';

/** A divergence must be a near-tie in the engine's own logits: its token's lead over transformers.js's token. */
const NEAR_TIE = 0.05;

let s: Setup;
const outcomes: { prompt: number; firstDiff: number; margin: number | null }[] = [];
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
    outcomes.push({ prompt: i, firstDiff: k, margin });
    expect(margin).toBeGreaterThanOrEqual(0); // the engine's token is its argmax
    expect(margin).toBeLessThan(NEAR_TIE);
  });

  it('most prompts agree token for token', () => {
    process.stderr.write(`transformers.js on onnxruntime-node vs the engine: ${JSON.stringify(outcomes)}\n`);
    expect(outcomes.length).toBe(equivalencePrompts().length);
    expect(outcomes.filter((o) => o.firstDiff === -1).length).toBeGreaterThanOrEqual(outcomes.length - 2);
  });
});
