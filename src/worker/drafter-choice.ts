/**
 * The drafter used when neither the request nor the tenant names one: the fastest measured on long
 * held-out prompts (README "Results"). That is prompt lookup today: each draft head's pass costs more
 * than the tokens it adds to the lookup's tree (`ctc2-ngram` 1.59x plain vs `ngram` 1.79x), so a head
 * drafter is there to be chosen per request or tenant, not the default.
 */
export const DRAFTER_PREFERENCE = ['ngram', 'ctc-ngram', 'plain'] as const;

/** The default drafter among a model's drafter names (the first registered one if none is preferred). */
export function defaultDrafter(names: readonly string[]): string {
  for (const name of DRAFTER_PREFERENCE) if (names.includes(name)) return name;
  return names[0];
}
