/**
 * processLogits and targetDistribution against values worked out by hand: each penalty, the logit bias,
 * temperature, top-k and top-p alone, then pairs whose result depends on the order they run in
 * (penalties -> logit bias -> temperature -> top-k -> top-p). The other sampling tests compare plain and
 * speculative decoding with each other, so a wrong formula used by both would pass them; these would not.
 */
import { describe, expect, it } from 'vitest';
import { processLogits, targetDistribution, TokenHistory } from '../../src/engine/sampling.js';
import type { SamplingParams } from '../../src/engine/types.js';

const BASE: SamplingParams = { temperature: 1, topP: 1, topK: 0, seed: 0 };
const params = (p: Partial<SamplingParams>): SamplingParams => ({ ...BASE, ...p });

/** A history whose prompt is `prompt` and whose generated tokens are `generated`, in order. */
function history(prompt: number[], generated: number[] = []): TokenHistory {
  const h = TokenHistory.fromPrompt(prompt);
  for (const t of generated) h.push(t);
  return h;
}

const L2 = Math.log(2);
const L4 = Math.log(4);

/** Close to float32 precision: the penalties and the bias are applied to a float32 copy of the row. */
function expectDistribution(p: ArrayLike<number>, expected: number[]): void {
  expect(p.length).toBe(expected.length);
  expected.forEach((e, i) => expect(p[i]).toBeCloseTo(e, 6));
}

describe('processLogits', () => {
  it('returns the row itself when nothing changes the logits', () => {
    const row = new Float32Array([1, 2, 3]);
    expect(processLogits(row, params({ repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, logitBias: {} }), history([0, 1]))).toBe(row);
  });

  it('repetition penalty divides a seen positive logit by r and multiplies a seen negative one, prompt included', () => {
    const out = processLogits([2, -1, 0.5, 3], params({ repetitionPenalty: 2 }), history([0, 1], [2]));
    expect(Array.from(out)).toEqual([1, -2, 0.25, 3]);
  });

  it('frequency penalty subtracts f per generated occurrence; presence subtracts p once; prompt tokens are not counted', () => {
    const h = history([0, 1], [2, 2, 3]);
    expect(Array.from(processLogits([1, 1, 1, 1], params({ frequencyPenalty: 0.5 }), h))).toEqual([1, 1, 0, 0.5]);
    expect(Array.from(processLogits([1, 1, 1, 1], params({ presencePenalty: 0.25 }), h))).toEqual([1, 1, 0.75, 0.75]);
    expect(Array.from(processLogits([1, 1, 1, 1], params({ frequencyPenalty: 0.5, presencePenalty: 0.25 }), h))).toEqual([1, 1, -0.25, 0.25]);
    // negative values reward repetition
    expect(Array.from(processLogits([1, 1, 1, 1], params({ frequencyPenalty: -1 }), h))).toEqual([1, 1, 3, 2]);
  });

  it('logit bias adds to the named tokens, with or without a history', () => {
    const p = params({ logitBias: { 1: 5, 3: -100 } });
    expect(Array.from(processLogits([0, 1, 2, 3], p))).toEqual([0, 6, 2, -97]);
    expect(Array.from(processLogits([0, 1, 2, 3], p, history([1, 3], [1])))).toEqual([0, 6, 2, -97]);
  });

  it('penalties need the history: without one only the bias applies', () => {
    const out = processLogits([4, 4], params({ repetitionPenalty: 2, frequencyPenalty: 1, logitBias: { 0: 1 } }));
    expect(Array.from(out)).toEqual([5, 4]);
  });

  it('repetition penalty runs before the frequency penalty: (3 / 2) - 1, not (3 - 1) / 2', () => {
    const out = processLogits([3, -3], params({ repetitionPenalty: 2, frequencyPenalty: 1 }), history([], [0, 1]));
    expect(Array.from(out)).toEqual([0.5, -7]);
  });

  it('the bias is added after the penalties: 1 / 2 + 1, not (1 + 1) / 2', () => {
    const out = processLogits([1], params({ repetitionPenalty: 2, presencePenalty: 0.25, logitBias: { 0: 1 } }), history([], [0]));
    expect(Array.from(out)).toEqual([1.25]);
  });
});

describe('targetDistribution', () => {
  // probabilities 1 : 2 : 4 at temperature 1
  const ROW = [0, L2, L4];

  it('temperature 1 is the softmax', () => {
    expectDistribution(targetDistribution(ROW, params({})), [1 / 7, 2 / 7, 4 / 7]);
  });

  it('temperature T divides the logits by T', () => {
    expectDistribution(targetDistribution(ROW, params({ temperature: 0.5 })), [1 / 21, 4 / 21, 16 / 21]);
    const s2 = Math.SQRT2;
    expectDistribution(targetDistribution(ROW, params({ temperature: 2 })), [1 / (3 + s2), s2 / (3 + s2), 2 / (3 + s2)]);
  });

  it('temperature 0 is a one-hot at the argmax of the processed logits (first on ties)', () => {
    expectDistribution(targetDistribution(ROW, params({ temperature: 0 })), [0, 0, 1]);
    expectDistribution(targetDistribution([1, 3, 3], params({ temperature: 0 })), [0, 1, 0]);
    expectDistribution(targetDistribution(ROW, params({ temperature: 0, logitBias: { 0: 2 } })), [1, 0, 0]);
  });

  it('top-k keeps the k largest and renormalises; ties at the k-th value are all kept', () => {
    expectDistribution(targetDistribution(ROW, params({ topK: 2 })), [0, 1 / 3, 2 / 3]);
    expectDistribution(targetDistribution([0, L2, L2, L4], params({ topK: 2 })), [0, 1 / 4, 1 / 4, 1 / 2]);
    expectDistribution(targetDistribution(ROW, params({ topK: 3 })), [1 / 7, 2 / 7, 4 / 7]);
  });

  it('top-p keeps the smallest most-likely prefix whose mass reaches p (ties: lower index first)', () => {
    // probabilities 1/8, 2/8, 4/8, 1/8
    const row = [0, L2, L4, 0];
    expectDistribution(targetDistribution(row, params({ topP: 0.7 })), [0, 1 / 3, 2 / 3, 0]);
    expectDistribution(targetDistribution(row, params({ topP: 0.5 })), [0, 0, 1, 0]); // reaching p exactly is enough
    expectDistribution(targetDistribution(row, params({ topP: 0.8 })), [1 / 7, 2 / 7, 4 / 7, 0]); // of the two 1/8s, token 0
    expectDistribution(targetDistribution([0, 0, 0, 0], params({ topP: 0.5 })), [0.5, 0.5, 0, 0]);
  });

  it('penalties and bias apply before temperature: a bias of ln 2 at T 0.5 weighs 4, not 2', () => {
    expectDistribution(targetDistribution([0, 0], params({ temperature: 0.5, logitBias: { 1: L2 } })), [1 / 5, 4 / 5]);
    // repetition penalty 2 on a logit of ln 4 leaves ln 2, then T 0.5 makes it weigh 4
    expectDistribution(targetDistribution([0, L4], params({ temperature: 0.5, repetitionPenalty: 2 }), history([1])), [1 / 5, 4 / 5]);
  });

  it('penalties apply before top-k: a penalised token can leave the top k', () => {
    // [0, ln 2, ln 4] with presence 2 * ln 2 on token 2 → [0, ln 2, 0]: top-1 is token 1
    expectDistribution(targetDistribution(ROW, params({ topK: 1, presencePenalty: 2 * L2 }), history([], [2])), [0, 1, 0]);
  });

  it('temperature applies before top-p: the cut is made on the tempered distribution', () => {
    const row = [0, L2, L4, 0];
    // T 1: 4/8 < 0.7 needs a second token; T 0.5: 16/22 > 0.7 alone
    expectDistribution(targetDistribution(row, params({ topP: 0.7 })), [0, 1 / 3, 2 / 3, 0]);
    expectDistribution(targetDistribution(row, params({ topP: 0.7, temperature: 0.5 })), [0, 0, 1, 0]);
  });

  it('top-k runs before top-p, which cuts the renormalised top-k mass', () => {
    // top-k 2 → {1: 1/3, 2: 2/3}; then 2/3 >= 0.6 keeps token 2 alone (top-p first would keep 1 and 2)
    expectDistribution(targetDistribution([0, L2, L4, 0], params({ topK: 2, topP: 0.6 })), [0, 0, 1, 0]);
  });
});
