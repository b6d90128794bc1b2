/** The default drafter by sampling parameters (src/engine/drafters/choice.ts): what the Worker, Node and the browser ask. */
import { describe, expect, it } from 'vitest';
import { defaultDrafter, DRAFTER_PREFERENCE } from '../../../src/engine/index.js';

const ALL = ['plain', 'ngram', 'ctc', 'ctc-ngram', 'medusa', 'medusa-ngram'];

describe('defaultDrafter', () => {
  it('greedy requests get the greedy preference; sampled ones the sampled preference', () => {
    expect(defaultDrafter(ALL, { temperature: 0 })).toBe(DRAFTER_PREFERENCE.greedy[0]);
    expect(defaultDrafter(ALL)).toBe(DRAFTER_PREFERENCE.greedy[0]);
    for (const t of [0.7, 1, 1.5]) expect(defaultDrafter(ALL, { temperature: t })).toBe(DRAFTER_PREFERENCE.sampled[0]);
  });

  it('falls back along the preference list to what the model has, then to its first drafter', () => {
    expect(defaultDrafter(['plain', 'ctc'], { temperature: 1 })).toBe('plain');
    expect(defaultDrafter(['ctc', 'medusa'], { temperature: 1 })).toBe('ctc');
    expect(defaultDrafter(['plain', 'ctc', 'ctc-ngram'], { temperature: 0 })).toBe('ctc-ngram');
    expect(defaultDrafter(['medusa', 'ctc'], { temperature: 0 })).toBe('medusa');
  });
});
