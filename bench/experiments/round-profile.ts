/**
 * Where a drafter's round time goes, round by round: the first round (which pays the head's pass
 * over the prompt) apart from the rest, draft and verify ms per round, tree sizes. Greedy, wasm,
 * one thread, the default model.
 *
 *   npx tsx bench/experiments/round-profile.ts [--prompts bench/prompts-tune.jsonl] [--limit 8] [--drafters plain,ctc,ctc-ngram]
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { Engine } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { fitPrompt, readPrompts } from '../lib/prompts.js';
import { registerSpecs } from '../lib/drafters.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'model-shards/default' },
    prompts: { type: 'string', default: 'bench/prompts-tune.jsonl' },
    limit: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '64' },
    drafters: { type: 'string', default: 'plain,ctc,ctc-ngram' },
  },
});
setFlagsFromString('--no-liftoff');
const engine = await Engine.load(fsShardSource(args.model!));
const prompts = readPrompts(args.prompts!, Number(args.limit));
const specs = args.drafters!.split(',');
const { budgets } = registerSpecs(engine, specs, { budget: 16 });
const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
type Acc = { first: number[]; draft: number[]; verify: number[]; size: number[]; prefill: number[]; decode: number[]; tokens: number };
const acc = new Map<string, Acc>(specs.map((s) => [s, { first: [], draft: [], verify: [], size: [], prefill: [], decode: [], tokens: 0 }]));
for (const spec of specs) {
  for await (const _ of engine.createSession().generate({ promptTokens: engine.encodePrompt('def main():'), maxTokens: 8, sampling: greedy, drafter: spec, treeBudget: budgets.get(spec) })) void _;
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
for (const p of prompts) {
  const promptTokens = fitPrompt(engine.encodePrompt(p), engine.maxContext - Number(args['max-tokens']));
  for (const spec of specs) {
    const a = acc.get(spec)!;
    let r = 0, prefill = 0;
    const t0 = performance.now();
    for await (const ev of engine.createSession().generate({
      promptTokens, maxTokens: Number(args['max-tokens']), sampling: greedy, drafter: spec, treeBudget: budgets.get(spec),
      onRound: (st) => {
        if (r++ === 0) a.first.push(st.draftMs);
        else a.draft.push(st.draftMs);
        a.verify.push(st.verifyMs);
        a.size.push(st.treeSize);
      },
    })) {
      if (ev.type === 'tokens') a.tokens += ev.tokens.length;
      else prefill = ev.usage.prefillMs;
    }
    a.prefill.push(prefill);
    a.decode.push(performance.now() - t0 - prefill);
  }
}
for (const [s, a] of acc) {
  const rounds = a.verify.length;
  console.log(`${s.padEnd(14)} rounds ${rounds} τ ${(a.tokens / rounds).toFixed(2)} | first-round draft ${mean(a.first).toFixed(2)} ms | later draft ${mean(a.draft).toFixed(3)} ms | verify ${mean(a.verify).toFixed(2)} ms | tree ${mean(a.size).toFixed(2)} | prefill ${mean(a.prefill).toFixed(1)} ms | decode ${mean(a.decode).toFixed(1)} ms/prompt | first-round share of decode ${((100 * a.first.reduce((x, y) => x + y, 0)) / a.decode.reduce((x, y) => x + y, 0)).toFixed(1)}%`);
}
