/**
 * The drafter a request gets when neither it nor its tenant names one, chosen from its sampling
 * parameters (the Worker, Node and the browser all ask this function). Measured on long held-out code
 * and English prose (docs/RESULTS.md, "Sampling (T > 0)", with the commands): prompt lookup is the
 * fastest at T = 0 and, with its smaller trees for sampled requests (ngram.ts sampledMinWeight), at
 * T = 0.7 and 1 too; the heads' sampled drafts are accepted too rarely there to pay for their pass.
 */
import { isGreedy } from '../sampling.js';
import type { SamplingParams } from '../types.js';

/** Preference lists: the first name the model has wins. */
export const DRAFTER_PREFERENCE = {
  greedy: ['ngram', 'ctc-ngram', 'plain'],
  sampled: ['ngram', 'plain'],
} as const;

/** The default drafter among a model's drafter names for these parameters (the first registered one if none is preferred). */
export function defaultDrafter(names: readonly string[], sampling?: Pick<SamplingParams, 'temperature'>): string {
  const prefs = !sampling || isGreedy(sampling as SamplingParams) ? DRAFTER_PREFERENCE.greedy : DRAFTER_PREFERENCE.sampled;
  for (const name of prefs) if (names.includes(name)) return name;
  return names[0];
}
