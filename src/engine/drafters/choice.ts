/**
 * The drafter a request gets when neither it nor its tenant names one, chosen from its sampling
 * parameters (the Worker, Node and the browser all ask this function). Greedy requests get prompt
 * lookup: the fastest measured on long held-out prompts at T = 0. Sampled requests get the drafter
 * measured fastest at T = 0.7-1 (docs/RESULTS.md has the tables and their commands).
 */
import { isGreedy } from '../sampling.js';
import type { SamplingParams } from '../types.js';

/** Preference lists: the first name the model has wins. */
export const DRAFTER_PREFERENCE = {
  greedy: ['ngram', 'ctc-ngram', 'plain'],
  sampled: ['ctc-ngram', 'ngram', 'plain'],
} as const;

/** The default drafter among a model's drafter names for these parameters (the first registered one if none is preferred). */
export function defaultDrafter(names: readonly string[], sampling?: Pick<SamplingParams, 'temperature'>): string {
  const prefs = !sampling || isGreedy(sampling as SamplingParams) ? DRAFTER_PREFERENCE.greedy : DRAFTER_PREFERENCE.sampled;
  for (const name of prefs) if (names.includes(name)) return name;
  return names[0];
}
