/**
 * Offline draft quality, free of timing noise: for every position of the plain greedy continuation
 * of each prompt, run the draft heads once (hidden rows from one prefill of the whole sequence; the
 * heads read their window of the prefix as in decoding) and count how many tokens each tree would get
 * accepted, for several tree budgets. Prints τ = 1 + mean accepted (tokens per base call if every
 * round were at such a position) and the mean tree size, plus the calibration of the CTC prefix
 * probabilities (predicted vs observed). This is how the CTC tree builder and beam settings were
 * chosen (see the drafter docs).
 *
 *   npx tsx bench/draft-eval.ts [--prompts bench/prompts.jsonl] [--limit 20] [--max-tokens 64]
 *                                 [--model model-shards/default]
 *
 * Caveat: every position counts once here, while decoding visits only round starts, so repetitive
 * stretches (where n-gram lookup shines) weigh more here than in the bench.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  Engine,
  CTCDrafter,
  CTCPrefixBeamSearch,
  MedusaDrafter,
  ctcCollapse,
  buildTree,
  childrenOf,
  drafterFactories,
  NgramDrafter,
  type DraftContext,
  type TokenTree,
} from '../src/engine/index.js';
import { fsShardSource } from '../scripts/node/fs-shard-source.js';

const { values } = parseArgs({
  options: {
    prompts: { type: 'string', default: 'bench/prompts.jsonl' },
    limit: { type: 'string', default: '20' },
    'max-tokens': { type: 'string', default: '64' },
    'max-prompt-tokens': { type: 'string', default: '256' },
    model: { type: 'string', default: 'model-shards/default' },
  },
});

const engine = await Engine.load(fsShardSource(values.model!));
const d = engine.config.d_model;
const factories = drafterFactories(engine.manifest);
// The heads as the engine's drafters hold them (their shape, shortlist and window); a variant with other
// options reuses the head output through treeFromLogProbs / treeFromLogits.
const ctcDrafter = factories.ctc ? ((await factories.ctc(engine)) as CTCDrafter) : null;
const medDrafter = factories.medusa ? ((await factories.medusa(engine)) as MedusaDrafter) : null;
const prompts = readFileSync(values.prompts!, 'utf8').split('\n').filter((l) => l.trim()).slice(0, Number(values.limit))
  .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
const maxPrompt = Number(values['max-prompt-tokens']);

interface Case { ctc: Float32Array | null; med: Float32Array | null; pending: number; truth: number[]; ctx: number[] }
const cases: Case[] = [];
for (const p of prompts) {
  let pt = engine.encodePrompt(p);
  if (pt.length > maxPrompt) pt = [pt[0], ...pt.slice(pt.length - maxPrompt + 1)];
  const gen: number[] = [];
  for await (const ev of engine.createSession().generate({ promptTokens: pt, maxTokens: Number(values['max-tokens']), sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } })) {
    if (ev.type === 'tokens') gen.push(...ev.tokens);
  }
  const all = [...pt, ...gen];
  const { hidden } = await engine.model.prefill(all, engine.model.newCache());
  // one head instance per prompt and drafter: its cache follows the positions in order
  const ctcHead = ctcDrafter ? ((await factories.ctc(engine)) as CTCDrafter).head : null;
  const medHead = medDrafter ? ((await factories.medusa(engine)) as MedusaDrafter).head : null;
  for (let j = pt.length - 1; j < all.length - 1; j++) {
    // the round whose pending token is all[j]: the heads read the hidden rows of positions 0 .. j-1
    const ctx: DraftContext = { tokens: all.slice(0, j + 1), hidden: hidden.slice((j - 1) * d, j * d), hiddenRows: hidden.subarray(0, j * d), hiddenRowsFrom: 0, pending: all[j], budget: 16 };
    cases.push({
      ctc: ctcHead ? await ctcHead.output(ctx) : null,
      med: medHead ? await medHead.output(ctx) : null,
      pending: all[j],
      truth: all.slice(j + 1, j + 17),
      ctx: all.slice(0, j + 1),
    });
  }
}

function acceptLen(tree: TokenTree, truth: number[]): number {
  const ch = childrenOf(tree);
  let node = 0, n = 0;
  for (;;) {
    const nx = n < truth.length ? ch[node].find((c) => tree.tokens[c] === truth[n]) : undefined;
    if (nx === undefined) return n;
    node = nx;
    n++;
  }
}

const BUDGETS = [2, 4, 6, 8, 12, 16];
process.stdout.write(`${cases.length} positions from ${prompts.length} prompts; tau (mean tree size) per budget\n`);
function report(name: string, f: (c: Case, budget: number) => TokenTree) {
  const cells = BUDGETS.map((b) => {
    let acc = 0, nodes = 0;
    for (const c of cases) {
      const t = f(c, b);
      acc += acceptLen(t, c.truth);
      nodes += t.tokens.length;
    }
    return `b${b}: ${(1 + acc / cases.length).toFixed(2)} (${(nodes / cases.length).toFixed(1)})`;
  });
  process.stdout.write(`${name.padEnd(28)} ${cells.join('  ')}\n`);
}

if (ctcDrafter) {
  const cfg = ctcDrafter.cfg;
  const C = cfg.vocab_size + 1; // the read-out's classes and blank
  const token = (cls: number) => cfg.shortlist?.[cls] ?? cls;
  report('ctc best-path chain', (c, b) => {
    const al: number[] = [];
    for (let t = 0; t < cfg.slots; t++) {
      let bi = 0;
      for (let v = 1; v < C; v++) if (c.ctc![t * C + v] > c.ctc![t * C + bi]) bi = v;
      al.push(bi);
    }
    return buildTree(c.pending, [ctcCollapse(al, cfg.blank_id).map(token)], b);
  });
  for (const [B, M] of [[4, 2], [8, 4], [16, 8]]) {
    for (const tree of ['prefix', 'weighted', 'rank'] as const) {
      const variant = new CTCDrafter(ctcDrafter.head, cfg, { beamWidth: B, topM: M, tree, costRatio: 0 });
      report(`ctc beam${B} m${M} ${tree}`, (c, b) => variant.treeFromLogProbs(c.ctc!, c.pending, b));
    }
  }
  // calibration of prefix probabilities (beam 8, top-4, budget 16)
  const s = new CTCPrefixBeamSearch(C, cfg.blank_id, { beamWidth: 8, topM: 4, maxLen: cfg.k });
  const bins = Array.from({ length: 5 }, () => [0, 0, 0]);
  for (const c of cases) {
    s.search(c.ctc!, cfg.slots);
    const t = s.prefixTree(c.pending, 16);
    for (let i = 1; i < t.tokens.length; i++) {
      const path: number[] = [];
      for (let n = i; n > 0; n = t.parents[n]) path.unshift(token(t.tokens[n]));
      const ok = path.every((tok, k) => tok === c.truth[k]);
      const bin = bins[Math.min(4, Math.floor(t.weights[i] * 5))];
      bin[0]++;
      bin[1] += t.weights[i];
      if (ok) bin[2]++;
    }
  }
  process.stdout.write(`ctc prefix-probability calibration (bin: nodes, mean predicted, observed): ${bins
    .map((b, i) => `[${(i / 5).toFixed(1)},${((i + 1) / 5).toFixed(1)}): ${b[0]} ${(b[1] / Math.max(1, b[0])).toFixed(2)} ${(b[2] / Math.max(1, b[0])).toFixed(2)}`)
    .join(' | ')}\n`);
}
if (medDrafter) {
  for (const M of [2, 4]) {
    const variant = new MedusaDrafter(medDrafter.head, { k: medDrafter.k, vocab_size: medDrafter.V, shortlist: medDrafter.shortlist }, { topM: M, costRatio: 0 });
    report(`medusa top-${M}`, (c, b) => variant.treeFromLogits(c.med!, c.pending, b));
  }
}
const ng = await drafterFactories(engine.manifest, { ngram: { costRatio: 0 } }).ngram(engine);
if (!(ng instanceof NgramDrafter)) throw new Error('drafterFactories: ngram is not an NgramDrafter');
report('ngram (no cost cut)', (c, b) => ng.draftSync(c.ctx, c.pending, b));
