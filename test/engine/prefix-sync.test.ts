/** The token comparisons prefix sync and the hosts use (src/engine/prefix-sync.ts). */
import { describe, expect, it } from 'vitest';
import { commonPrefix, sameTokens } from '../../src/engine/prefix-sync.js';

describe('prefix-sync comparisons', () => {
  it('sameTokens compares element by element', () => {
    expect(sameTokens([1, 2, 3], [1, 2, 3])).toBe(true);
    expect(sameTokens([1, 2, 3], [1, 2])).toBe(false);
    expect(sameTokens([1, 2, 3], [1, 2, 4])).toBe(false);
    expect(sameTokens([], [])).toBe(true);
  });

  it('commonPrefix counts the leading positions that agree', () => {
    expect(commonPrefix([1, 2, 3], [1, 2, 4, 5])).toBe(2);
    expect(commonPrefix([1, 2], [1, 2, 3])).toBe(2);
    expect(commonPrefix([9], [1])).toBe(0);
  });
});
