/** The default drafter (src/worker/drafter-choice.ts), in Node. */
import { describe, expect, it } from 'vitest';
import { defaultDrafter } from '../../../src/worker/drafter-choice.js';

describe('defaultDrafter', () => {
  it('prompt lookup when the model has it, else ctc-ngram, else plain, else the first registered', () => {
    expect(defaultDrafter(['plain', 'ctc', 'ctc-ngram', 'ngram', 'medusa'])).toBe('ngram');
    expect(defaultDrafter(['plain', 'ctc', 'ctc-ngram'])).toBe('ctc-ngram');
    expect(defaultDrafter(['ctc', 'plain'])).toBe('plain');
    expect(defaultDrafter(['medusa', 'ctc'])).toBe('medusa');
  });
});
