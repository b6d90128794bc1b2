/**
 * The drafter used when neither the request nor the tenant names one: prompt lookup (`ngram`), the
 * fastest measured on long held-out prompts (README "Results", bench-results/). The draft-head drafters
 * (`ctc`, `medusa`, `ctc-ngram`, `medusa-ngram`) are there to be chosen per request or tenant.
 */
export const DRAFTER_PREFERENCE = ['ngram', 'ctc-ngram', 'plain'] as const;

/** The default drafter among a model's drafter names (the first registered one if none is preferred). */
export function defaultDrafter(names: readonly string[]): string {
  for (const name of DRAFTER_PREFERENCE) if (names.includes(name)) return name;
  return names[0];
}
