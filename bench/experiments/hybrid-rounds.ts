/**
 * Where a head + lookup hybrid gains or loses against prompt lookup alone: every round of the hybrid
 * is classed by whether it drew on the head, and each class's tokens, base-model calls and ms are
 * summed, beside the lookup's own totals on the same prompts (interleaved, greedy, wasm, one thread).
 *
 *   npx tsx bench/experiments/hybrid-rounds.ts [--prompts bench/prompts-tune.jsonl] [--limit 20]
 *        [--hybrid ctc-ngram] [--skip 1] [--win 64]
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { drafterFactories, Engine, HybridDrafter, NgramDrafter } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { fitPrompt, readPrompts } from '../lib/prompts.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'model-shards/default' },
    prompts: { type: 'string', default: 'bench/prompts-tune.jsonl' },
    limit: { type: 'string', default: '20' },
    'max-tokens': { type: 'string', default: '64' },
    hybrid: { type: 'string', default: 'ctc-ngram' },
    skip: { type: 'string', default: '1' },
    win: { type: 'string', default: '64' },
  },
});
setFlagsFromString('--no-liftoff');
const engine = await Engine.load(fsShardSource(args.model!));
const factories = drafterFactories(engine.manifest, { hybrid: { skipHead: Number(args.skip) }, headWindow: Number(args.win) });
let hybrid: HybridDrafter | undefined;
engine.registerDrafter('H', async (e) => (hybrid = (await factories[args.hybrid!](e)) as HybridDrafter));
engine.registerDrafter('L', async () => new NgramDrafter());
const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
type Cls = { rounds: number; tokens: number; draft: number; verify: number; other: number; size: number };
const cls = () => ({ rounds: 0, tokens: 0, draft: 0, verify: 0, other: 0, size: 0 });
const total = (a: Cls) => a.draft + a.verify + a.other;
const acc: Record<string, Cls> = { 'L all': cls(), 'H lookup-only': cls(), 'H head': cls(), 'H first': cls() };
const ratios: number[] = [];
for (const p of readPrompts(args.prompts!, Number(args.limit))) {
  const promptTokens = fitPrompt(engine.encodePrompt(p), engine.maxContext - Number(args['max-tokens']));
  const times: Record<string, number> = {};
  for (const name of ['L', 'H']) {
    let round = 0;
    let headBefore = 0;
    let decodeMs = 0;
    for await (const ev of engine.createSession().generate({
      promptTokens, maxTokens: Number(args['max-tokens']), sampling: greedy, drafter: name, treeBudget: 16,
      onRound: (st) => {
        const key = name === 'L' ? 'L all' : round === 0 ? 'H first' : hybrid!.headRounds > headBefore ? 'H head' : 'H lookup-only';
        if (name === 'H') headBefore = hybrid!.headRounds;
        round++;
        const a = acc[key];
        a.rounds++;
        a.tokens += st.accepted + 1;
        a.draft += st.draftMs;
        a.verify += st.verifyMs;
        a.other += st.acceptMs + st.commitMs;
        a.size += st.treeSize;
        decodeMs += st.draftMs + st.verifyMs + st.acceptMs + st.commitMs;
      },
    })) void ev;
    times[name] = decodeMs;
  }
  ratios.push(times.L / times.H);
}
ratios.sort((a, b) => a - b);
console.log(`${args.hybrid} (skip ${args.skip}, window ${args.win}) vs ngram, median speed ratio ${ratios[ratios.length >> 1].toFixed(3)} over ${ratios.length} prompts`);
for (const [k, a] of Object.entries(acc)) {
  const ms = total(a);
  console.log(`${k.padEnd(14)} rounds ${String(a.rounds).padStart(5)} | τ ${(a.tokens / a.rounds).toFixed(2)} | tree ${(a.size / a.rounds).toFixed(2)} | draft ${(a.draft / a.rounds).toFixed(2)} verify ${(a.verify / a.rounds).toFixed(2)} other ${(a.other / a.rounds).toFixed(2)} ms/round | ${(a.tokens / ms * 1000).toFixed(0)} tok/s | tokens ${a.tokens}`);
}
// What the head could give at most: the hybrid's time without its head rounds (as if they cost nothing,
// their tokens still counted) against the lookup's whole time.
const lookupMs = total(acc['L all']);
const hybridMs = total(acc['H lookup-only']) + total(acc['H head']) + total(acc['H first']);
console.log(`head rounds: ${(100 * acc['H head'].tokens / (acc['H lookup-only'].tokens + acc['H head'].tokens + acc['H first'].tokens)).toFixed(1)}% of the tokens; ` +
  `time lookup / hybrid ${(lookupMs / hybridMs).toFixed(3)}; with the head rounds free it would be ${(lookupMs / (hybridMs - total(acc['H head']))).toFixed(3)}`);
