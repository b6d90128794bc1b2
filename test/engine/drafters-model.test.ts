/**
 * Every drafter over the real model (model-shards/default, with its ctc_head and medusa_head):
 *  1. greedy output is token-identical to plain decoding on held-out prompts (bench/prompts.jsonl);
 *  2. at T=1 (top-k 3) and at T=0.8 (top-p 0.9) the distribution of the first 3 generated tokens
 *     through CTC and Medusa trees (alone and merged with prompt lookup) fits the model's exact
 *     distribution (chi-square), as plain sampling does.
 * Fails (never skips) when the model, its heads or the prompts are missing.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine, type DecodingSession, type GenerateRequest } from '../../src/engine/index.js';
import type { SamplingParams } from '../../src/engine/types.js';
import { targetDistribution } from '../../src/engine/sampling.js';
import { OracleDrafter, drafterFactories, registerDrafters } from '../../src/engine/drafters/index.js';
import { validateTree } from '../../src/engine/tree.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { MODEL_DIR, ROOT, requireFile, requireModel } from './helpers.js';
import { goodnessOfFit } from './stats.js';

const N_PROMPTS = 50;
const NEW_TOKENS = 32;
const MAX_PROMPT = 160; // tokens kept from each prompt (<s> + its tail): keeps prefill cheap
const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0, seed: 0 };
// ctc-full / medusa-full: the same heads without cost-aware sizing (full 16-node trees), so the
// identity check also covers wide, deep trees and the weighted / rank tree builders.
const DRAFTERS = ['ngram', 'medusa', 'medusa-full', 'medusa-ngram', 'ctc', 'ctc-full', 'ctc-rank', 'ctc-ngram', 'oracle'];

let engine: Engine;
let prompts: number[][];
const oracle = new OracleDrafter([]);
const plainOut: number[][] = [];

async function generate(session: DecodingSession, req: GenerateRequest) {
  const tokens: number[] = [];
  let rounds = 0;
  const trees: number[] = [];
  for await (const ev of session.generate({ ...req, onRound: (s) => { rounds++; trees.push(s.treeSize); } })) {
    if (ev.type === 'tokens') tokens.push(...ev.tokens);
  }
  return { tokens, rounds, trees };
}

beforeAll(async () => {
  requireModel();
  const lines = requireFile(join(ROOT, 'bench/prompts.jsonl'), 'training/make_fixtures.py (held-out prompts, one {"prompt"} per line)')
    .split('\n')
    .filter((l) => l.trim());
  engine = await Engine.load(fsShardSource(MODEL_DIR));
  for (const head of ['ctc_head', 'medusa_head']) {
    if (!engine.manifest.files[head]) throw new Error(`${MODEL_DIR}/manifest.json has no ${head}: it is written by training/shard.py from the exported heads`);
  }
  registerDrafters(engine);
  engine.registerDrafter('oracle', () => oracle);
  engine.registerDrafter('ctc-full', drafterFactories(engine.manifest, { ctc: { costRatio: 0 } }).ctc);
  engine.registerDrafter('ctc-rank', drafterFactories(engine.manifest, { ctc: { costRatio: 0, tree: 'rank', beamWidth: 16 } }).ctc);
  engine.registerDrafter('medusa-full', drafterFactories(engine.manifest, { medusa: { costRatio: 0 } }).medusa);
  prompts = lines.slice(0, N_PROMPTS).map((l) => {
    const t = engine.encodePrompt((JSON.parse(l) as { prompt: string }).prompt);
    return t.length > MAX_PROMPT ? [t[0], ...t.slice(t.length - MAX_PROMPT + 1)] : t;
  });
  expect(prompts.length).toBeGreaterThanOrEqual(N_PROMPTS);
  for (const p of prompts) {
    const { tokens } = await generate(engine.createSession(), { promptTokens: p, maxTokens: NEW_TOKENS, sampling: GREEDY, drafter: 'plain' });
    plainOut.push(tokens);
  }
}, 300_000);

describe('greedy decoding is token-identical to plain for every drafter', () => {
  for (const name of DRAFTERS) {
    it(`${name}: ${N_PROMPTS} held-out prompts x ${NEW_TOKENS} tokens`, async () => {
      let tokens = 0, rounds = 0, nodes = 0;
      const mismatches: number[] = [];
      for (let i = 0; i < prompts.length; i++) {
        oracle.setReference([...prompts[i], ...plainOut[i]]);
        const r = await generate(engine.createSession(), { promptTokens: prompts[i], maxTokens: NEW_TOKENS, sampling: GREEDY, drafter: name, treeBudget: 16 });
        if (r.tokens.join(',') !== plainOut[i].join(',')) mismatches.push(i);
        tokens += r.tokens.length;
        rounds += r.rounds;
        nodes += r.trees.reduce((a, b) => a + b, 0);
        for (const t of r.trees) expect(t).toBeLessThanOrEqual(16);
      }
      console.log(`${name}: tau ${(tokens / rounds).toFixed(2)} tokens/round, mean tree ${(nodes / rounds).toFixed(1)} nodes, ${mismatches.length} mismatches`);
      expect(mismatches).toEqual([]);
      if (name === 'oracle') expect(tokens / rounds).toBeGreaterThan(8); // 15 draft tokens + bonus per round, minus stops
      if (name === 'ctc') expect(tokens / rounds).toBeGreaterThan(1.2); // the head must be doing something
    });
  }

  it('the drafters return valid trees within the budget for budgets 1..20', async () => {
    const drafters = await Promise.all(['ngram', 'medusa', 'ctc', 'ctc-full', 'ctc-ngram', 'medusa-full', 'medusa-ngram'].map((n) => engine.makeDrafter(n)));
    const p = prompts[0];
    // hidden state before the pending (last prompt) token: run the model on all but the last token
    const cache = engine.model.newCache();
    const out = await engine.model.prefill(p.slice(0, -1), cache);
    const d = engine.config.d_model;
    const hidden = out.hidden.slice(out.hidden.length - d);
    for (const dr of drafters) {
      for (let budget = 1; budget <= 20; budget++) {
        const tree = await dr.draft({ tokens: p, hidden, pending: p[p.length - 1], budget });
        expect(() => validateTree(tree, p[p.length - 1], budget), `${dr.name} budget ${budget}`).not.toThrow();
      }
    }
  });
});

const SAMPLING_CASES: [string, SamplingParams][] = [
  ['T=1 top-k 3', { temperature: 1, topP: 1, topK: 3, seed: 0 }],
  ['T=0.8 top-p 0.9', { temperature: 0.8, topP: 0.9, topK: 0, seed: 0 }],
];

describe.each(SAMPLING_CASES)('sampling through trees matches the model distribution (real model, %s)', (_label, params) => {
  const GEN = 3;
  const SAMPLES = 600;

  /** Exact P(first GEN tokens) from the model: sum over the top-k tree of continuations. */
  async function exact(prompt: number[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const V = engine.config.vocab_size;
    const rec = async (ctx: number[], prob: number, depth: number, key: number[]) => {
      if (depth === GEN) { out.set(key.join(','), prob); return; }
      const cache = engine.model.newCache();
      const { logits } = await engine.model.prefill(ctx, cache);
      const p = targetDistribution(logits.subarray(logits.length - V), params);
      for (let v = 0; v < V; v++) if (p[v] > 0) await rec([...ctx, v], prob * p[v], depth + 1, [...key, v]);
    };
    await rec(prompt, 1, 0, []);
    return out;
  }

  for (const name of ['plain', 'ctc', 'ctc-ngram', 'medusa', 'medusa-ngram']) {
    it(`${name}: chi-square fit of ${SAMPLES} samples of the first ${GEN} tokens`, async () => {
      // a prompt where the heads draft (and get accepted) often: a repetitive code prompt
      const prompt = engine.encodePrompt('import os\nimport sys\n\n\ndef main():\n    for name in sys.argv[1:]:\n        print(');
      const dist = await exact(prompt);
      expect(dist.size).toBeLessThan(SAMPLES / 5); // few enough outcomes for a chi-square fit
      const counts = new Map<string, number>();
      const session = engine.createSession();
      let accepted = 0;
      for (let i = 0; i < SAMPLES; i++) {
        const r: number[] = [];
        for await (const ev of session.generate({ promptTokens: prompt, maxTokens: GEN, sampling: { ...params, seed: 1000 + i }, drafter: name, treeBudget: 16, onRound: (s) => { accepted += s.accepted; } })) {
          if (ev.type === 'tokens') r.push(...ev.tokens);
        }
        const key = r.slice(0, GEN).join(',');
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const keys = [...dist.keys()];
      const { chi2, df, pValue, tv } = goodnessOfFit(keys.map((k) => counts.get(k) ?? 0), keys.map((k) => dist.get(k)!), SAMPLES);
      // outcomes outside the exact support (must be none: top-k / top-p bound every step)
      let outside = 0;
      for (const [k, o] of counts) if (!dist.has(k)) outside += o;
      console.log(`${name}: chi2=${chi2.toFixed(1)} df=${df} p=${pValue.toExponential(2)} tv=${tv.toFixed(3)} accepted draft tokens/sample=${(accepted / SAMPLES).toFixed(2)}`);
      expect(outside).toBe(0);
      expect(pValue).toBeGreaterThan(1e-4);
      if (name !== 'plain') expect(accepted / SAMPLES).toBeGreaterThan(0.3); // the tree path is exercised
    }, 180_000);
  }
});
