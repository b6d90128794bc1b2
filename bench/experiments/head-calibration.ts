/**
 * How well a draft head's candidate weights predict acceptance: the tree cut (expected tokens per
 * cost) and the merge with prompt lookup both read a node's weight as its probability of being
 * accepted. Greedy sessions over the prompts with a head drafter (ctc, medusa, ...); each round
 * the head's weighted candidates (up to the tree budget, before the cost cut) are recorded and
 * judged against the tokens that round committed: a node is right when its path from the root
 * equals them. The round itself drafts the cost-cut tree, as the drafter alone would.
 *
 *   npx tsx bench/experiments/head-calibration.ts [--prompts bench/prompts-tune.jsonl] [--limit 40]
 *       [--drafter ctc] [--max-tokens 64] [--budget 16] [--model model-shards/default] [--json out.json]
 *
 * Prints, per depth and weight bin, the nodes, their mean weight (the weight the drafter uses: after a
 * manifest weight_exponent, so a shipped exponent multiplies the one fitted here) and the fraction right, and the
 * exponent g for which weight^g fits the observed fractions best (least squares over nodes).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  costCut,
  CTC_DEFAULTS,
  drafterFactories,
  Engine,
  type DraftContext,
  type Drafter,
  type TokenTree,
  type WeightedTree,
} from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { fitPrompt, readPrompts } from '../lib/prompts.js';

const { values } = parseArgs({
  options: {
    prompts: { type: 'string', default: 'bench/prompts-tune.jsonl' },
    limit: { type: 'string', default: '40' },
    drafter: { type: 'string', default: 'ctc' },
    'max-tokens': { type: 'string', default: '64' },
    budget: { type: 'string', default: '16' },
    model: { type: 'string', default: 'model-shards/default' },
    json: { type: 'string' },
  },
});

interface Judged { weight: number; depth: number; right: boolean }
const judged: Judged[] = [];

type WeightedSource = Drafter & { weighted(ctx: DraftContext): Promise<WeightedTree> };

/** Drafts what `inner` drafts (its weighted tree, cost-cut) and judges last round's candidates. */
class Recorder implements Drafter {
  readonly name = 'calibration';
  private last: { tree: WeightedTree; committed: number } | null = null;
  constructor(private readonly inner: WeightedSource) {}

  fusedPass(tokens: readonly number[], tree: TokenTree) {
    return this.inner.fusedPass?.(tokens, tree);
  }

  async draft(ctx: DraftContext): Promise<TokenTree> {
    if (this.last) judge(this.last.tree, ctx.tokens.slice(this.last.committed));
    const tree = await this.inner.weighted(ctx);
    this.last = { tree, committed: ctx.tokens.length };
    return costCut(tree, CTC_DEFAULTS.costRatio);
  }
}

/** Node i is right when every token on its path equals the committed tokens after the root. */
function judge(t: WeightedTree, committed: readonly number[]): void {
  const right = [true];
  for (let i = 1; i < t.tokens.length; i++) {
    const d = t.depths[i];
    right[i] = right[t.parents[i]] && d - 1 < committed.length && t.tokens[i] === committed[d - 1];
    judged.push({ weight: t.weights[i], depth: d, right: right[i] });
  }
}

const engine = await Engine.load(fsShardSource(values.model!));
const factory = drafterFactories(engine.manifest)[values.drafter!];
if (!factory) throw new Error(`no drafter ${values.drafter} in ${values.model}`);
engine.registerDrafter('calibration', async (e) => {
  const inner = (await factory(e)) as WeightedSource;
  if (typeof inner.weighted !== 'function') throw new Error(`${values.drafter} has no weighted candidates`);
  return new Recorder(inner);
});

const maxTokens = Number(values['max-tokens']);
const prompts = readPrompts(values.prompts!, Number(values.limit));
for (const [i, p] of prompts.entries()) {
  const promptTokens = fitPrompt(engine.encodePrompt(p), engine.maxContext - maxTokens);
  const s = engine.createSession();
  for await (const _ of s.generate({
    promptTokens, maxTokens, drafter: 'calibration', treeBudget: Number(values.budget),
    sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 },
  })) void _;
  process.stderr.write(`\r${i + 1}/${prompts.length} prompts, ${judged.length} nodes judged`);
}
process.stderr.write('\n');

const edges = [0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001];
const rows: { depth: string; bin: string; nodes: number; mean_weight: number; right: number }[] = [];
const depths = [...new Set(judged.map((j) => Math.min(j.depth, 4)))].sort((a, b) => a - b);
for (const d of [0, ...depths]) {
  const sel = judged.filter((j) => d === 0 || Math.min(j.depth, 4) === d);
  for (let b = 0; b + 1 < edges.length; b++) {
    const inBin = sel.filter((j) => j.weight >= edges[b] && j.weight < edges[b + 1]);
    if (inBin.length === 0) continue;
    rows.push({
      depth: d === 0 ? 'all' : d === 4 ? '4+' : String(d),
      bin: `${edges[b].toFixed(2)}-${Math.min(1, edges[b + 1]).toFixed(2)}`,
      nodes: inBin.length,
      mean_weight: inBin.reduce((a, j) => a + j.weight, 0) / inBin.length,
      right: inBin.filter((j) => j.right).length / inBin.length,
    });
  }
}
// weight^g against right (0/1), least squares over every judged node, g on a grid
let best = { g: 1, sse: Infinity };
for (let g = 0.3; g <= 3.001; g += 0.05) {
  let sse = 0;
  for (const j of judged) sse += (j.weight ** g - (j.right ? 1 : 0)) ** 2;
  if (sse < best.sse) best = { g, sse };
}
const sum = (f: (j: Judged) => number) => judged.reduce((a, j) => a + f(j), 0);
console.log(`${values.drafter}: ${judged.length} nodes judged on ${prompts.length} prompts; mean weight ${(sum((j) => j.weight) / judged.length).toFixed(3)}, ` +
  `fraction right ${(sum((j) => (j.right ? 1 : 0)) / judged.length).toFixed(3)}; best fit weight^${best.g.toFixed(2)}`);
console.log('depth | weight bin | nodes | mean weight | fraction right');
for (const r of rows) console.log(`${r.depth} | ${r.bin} | ${r.nodes} | ${r.mean_weight.toFixed(3)} | ${r.right.toFixed(3)}`);
if (values.json) writeFileSync(values.json, JSON.stringify({ drafter: values.drafter, prompts: values.prompts, limit: prompts.length, exponent: best.g, rows }, null, 1));
