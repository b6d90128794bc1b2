/** A request's cost bounds and the token buckets (src/worker/limits.ts), and the deploy check of tenant tables, in Node. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { choiceTokenLimit, formatReset, MAX_LOGPROB_ENTRIES, msUntil, refill, type BudgetInput } from '../../../src/worker/limits.js';
import { deployRefusal } from '../../../src/worker/tenants.js';

const base: BudgetInput = { n: 1, prompts: 1, maxTokens: null, maxTokensParam: 'max_tokens', tenantMaxTokens: 512, requestTokens: 2048, logprobs: null, logprobsParam: 'logprobs' };
const refusal = (b: Partial<BudgetInput>) => {
  try {
    choiceTokenLimit({ ...base, ...b });
    return null;
  } catch (e) {
    const { status, param } = e as { status: number; param: string };
    return { status, param };
  }
};

describe('choiceTokenLimit', () => {
  it('an explicit max_tokens must fit the tenant, the request budget and the logprobs bound', () => {
    expect(choiceTokenLimit({ ...base, maxTokens: 100 })).toBe(100);
    expect(choiceTokenLimit({ ...base, n: 4, maxTokens: 512 })).toBe(512); // 2048: exactly the budget
    expect(refusal({ n: 4, prompts: 2, maxTokens: 300 })).toEqual({ status: 400, param: 'max_tokens' });
    expect(refusal({ maxTokens: 513 })).toEqual({ status: 400, param: 'max_tokens' });
    expect(refusal({ maxTokens: 400, maxTokensParam: 'max_completion_tokens', n: 8 })).toEqual({ status: 400, param: 'max_completion_tokens' });
    expect(refusal({ n: 16, maxTokens: 100, logprobs: 20 })).toEqual({ status: 400, param: 'logprobs' }); // 1600 x 21 > 16384
    expect(choiceTokenLimit({ ...base, n: 2, maxTokens: 390, logprobs: 20 })).toBe(390); // 780 x 21 = 16380
  });

  it('without max_tokens every choice gets an equal share, so no request exceeds the bounds', () => {
    expect(choiceTokenLimit(base)).toBe(512);
    expect(choiceTokenLimit({ ...base, n: 16 })).toBe(128);
    expect(choiceTokenLimit({ ...base, n: 4, prompts: 3 })).toBe(170);
    const lp = choiceTokenLimit({ ...base, n: 16, logprobs: 20 });
    expect(16 * lp * 21).toBeLessThanOrEqual(MAX_LOGPROB_ENTRIES);
    expect(refusal({ n: 16, requestTokens: 8 })).toEqual({ status: 400, param: 'n' });
  });
});

describe('token buckets', () => {
  it('refill at capacity per minute, never above it; debt takes proportionally longer to repay', () => {
    const b = { level: 0, at: 0 };
    refill(b, 600, 1000); // 10 a second
    expect(b.level).toBeCloseTo(10);
    refill(b, 600, 10 * 60_000);
    expect(b.level).toBe(600);
    b.level = -50;
    expect(msUntil(b, 600, 1)).toBe(5100);
    expect(msUntil({ level: 600, at: 0 }, 600, 600)).toBe(0);
  });

  it("reset times in OpenAI's format", () => {
    expect([formatReset(0), formatReset(20.2), formatReset(1000), formatReset(59_001), formatReset(360_000)]).toEqual(['0ms', '21ms', '1s', '1m0s', '6m0s']);
  });
});

describe('deployRefusal', () => {
  const hash = (k: string) => createHash('sha256').update(k).digest('hex');
  it('refuses the example placeholder key, the dev key and local_only tenants; accepts a real key', () => {
    expect(deployRefusal(JSON.stringify({ acme: { key_sha256: [hash('sk-acme-replace-me')] } }))).toMatch(/public example key/);
    expect(deployRefusal(JSON.stringify({ acme: { key_sha256: [hash('sk-local-dev')] } }))).toMatch(/public example key/);
    expect(deployRefusal(JSON.stringify({ dev: { key_sha256: [hash('sk-x')], local_only: true } }))).toMatch(/local_only/);
    expect(deployRefusal('{')).toMatch(/invalid/);
    expect(deployRefusal(JSON.stringify({ acme: { key_sha256: [hash('sk-a-real-secret-key')] } }))).toBeNull();
  });
});
