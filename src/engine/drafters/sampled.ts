/**
 * The heads' sampled trees (temperature > 0), from one head pass; pure functions over the head's
 * output (no ORT). A chain of drafts, each drawn from the head's q given the drafts before it, with
 * `widths[j]` siblings drawn without replacement at depth j + 1 (draft-sampling.ts appendSampled):
 * depth matters more than width here, since a node costs a fraction of a decode and a chain pays
 * only while each step is likely accepted.
 *
 *   CTC:    q(x | y) from the slots' prefix conditionals over all alignments (CTCPrefixConditionals),
 *           so each draft knows which tokens were drawn before it. The chain stops where the head
 *           expects its output to end: P(continues after y) / P(y) < minContinue.
 *   Medusa: q_j = softmax of read-out j, the same whatever was drawn before (non-autoregressive).
 *
 * Both read out a shortlist of the vocabulary: q is 0 outside it, which the verifier handles (such a
 * token can still be emitted from the residual).
 */
import { CTCPrefixConditionals } from '../ctc-decode.js';
import { appendSampled, proposalFromLogits } from '../draft-sampling.js';
import { isGreedy, type Rng } from '../sampling.js';
import type { DraftContext, SamplingParams, TokenTree } from '../types.js';

/** The round's sampling parameters and generator when it samples (T > 0), else undefined: draft deterministically. */
export function sampledContext(ctx: DraftContext): { sampling: SamplingParams; rng: Rng } | undefined {
  return ctx.sampling && ctx.rng && !isGreedy(ctx.sampling) ? { sampling: ctx.sampling, rng: ctx.rng } : undefined;
}

export interface SampledTreeOptions {
  /** Siblings drawn at each depth (its length is the deepest draft). */
  widths: readonly number[];
  /** CTC: stop the chain when P(the head's output continues after the drafted prefix | prefix) is below this. */
  minContinue: number;
  /** q is drawn at the request's temperature times this (1: as the request; > 1 flattens a head that is surer than the base). */
  qTemperature?: number;
}

/** The request's parameters with the draft temperature the options ask for. */
function draftSampling(params: SamplingParams, opts: SampledTreeOptions): SamplingParams {
  const s = opts.qTemperature ?? 1;
  return s === 1 ? params : { ...params, temperature: params.temperature * s };
}

/** What the head's output is over: C classes besides blank, each class a token id (shortlist) or itself. */
export interface HeadVocabulary {
  /** The model's vocabulary size. */
  V: number;
  /** Token id of each read-out class (absent: class = token id). */
  shortlist?: readonly number[];
}

/** Where sampled drafts go and how they are drawn: under `parent` of `tree` (the root, or after other
 *  drafters' children there), at most `budget` nodes in all, with the request's parameters and generator. */
export interface SampleTarget {
  tree: TokenTree;
  parent: number;
  vocab: HeadVocabulary;
  params: SamplingParams;
  rng: Rng;
  budget: number;
  opts: SampledTreeOptions;
}

/** CTC: log-probs [slots, C + 1] (blank = blankId) -> sampled nodes in the target's tree. Returns the nodes added. */
export function appendCTCSamples(target: SampleTarget, logProbs: ArrayLike<number>, slots: number, blankId: number): number {
  const { tree, parent, vocab, params, rng, budget, opts } = target;
  const C = logProbs.length / slots;
  const cond = new CTCPrefixConditionals(logProbs, slots, C, blankId);
  const q = draftSampling(params, opts);
  const logits = new Float64Array(C - 1);
  let mass = 1; // P(the head's output starts with the prefix drawn so far)
  let drawn = 0;
  let last: Float64Array | undefined; // the scores of the prefix the previous call drew from
  return appendSampled(tree, parent, opts.widths, (prefix) => {
    // the chain continues under the first token drawn at each depth: extend the conditionals by it
    for (; drawn < prefix.length; drawn++) {
      const c = classOf(prefix[drawn], vocab);
      mass = (last ?? cond.scores())[c];
      cond.extend(c);
      last = undefined;
    }
    const scores = (last = cond.scores());
    let next = 0;
    for (let c = 0; c < C; c++) if (c !== blankId) next += scores[c];
    if (!(next > 0) || next / mass < opts.minContinue) return undefined;
    let j = 0;
    for (let c = 0; c < C; c++) if (c !== blankId) logits[j++] = Math.log(scores[c]);
    return proposalFromLogits(logits, q, vocab.V, vocab.shortlist);
  }, rng, budget);
}

/** Medusa: logits [k, C] -> sampled nodes in the target's tree. Returns the nodes added. */
export function appendMedusaSamples(target: SampleTarget, logits: Float32Array, k: number): number {
  const { tree, parent, vocab, params, rng, budget, opts } = target;
  const C = logits.length / k;
  const widths = opts.widths.slice(0, k);
  const row = (j: number) => logits.subarray(j * C, (j + 1) * C);
  const q = draftSampling(params, opts);
  return appendSampled(tree, parent, widths, (prefix) => proposalFromLogits(row(prefix.length), q, vocab.V, vocab.shortlist), rng, budget);
}

/** Token id -> read-out class (the shortlist's index; built once per shortlist). */
function classOf(token: number, vocab: HeadVocabulary): number {
  const list = vocab.shortlist;
  if (!list) return token;
  let inv = inverses.get(list);
  if (!inv) {
    inv = new Map(list.map((t, c) => [t, c]));
    inverses.set(list, inv);
  }
  const c = inv.get(token);
  if (c === undefined) throw new Error(`sampled draft ${token} is not in the head's read-out`);
  return c;
}
const inverses = new WeakMap<readonly number[], Map<number, number>>();
