/**
 * The anchor bench (`npm run bench -- --anchor transformers.js`): the same held-out prompts through
 * transformers.js `generate()` (greedy, over model-hf/default: the default model's Hugging Face export,
 * the same weights) and through this engine (model-shards/default), plain decoding and the default
 * drafter, interleaved per prompt (the order rotated per prompt), one thread each. Ratios are medians
 * over prompts of per-prompt tokens/s ratios, with transformers.js as the baseline.
 *
 * --anchor-runtime wasm (default): transformers.js on onnxruntime-web wasm, what it runs in a browser,
 * here the same onnxruntime-web module as the engine (bench/lib/transformers-js.ts); cpu: on
 * onnxruntime-node (native), what it uses in Node by default. --drafters names the engine's drafters
 * (default: plain and the serving default, the greedy default, DRAFTER_PREFERENCE.greedy[0] of src/engine/drafters/choice.ts: ngram).
 *
 * Two speeds per run: decode tokens/s (completion tokens over the time after the first new token's
 * prefill: the engine's `prefillMs`, transformers.js's time to its first streamed token) and end-to-end
 * tokens/s (completion tokens over the whole call, prefill included).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Engine } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { DRAFTER_PREFERENCE } from '../../src/engine/index.js';
import { registerSpecs } from './drafters.js';
import { DEFAULT_DRAFTERS, num, type BenchValues } from './options.js';
import { fitPrompt, readPrompts } from './prompts.js';
import { machineInfo } from './report.js';
import { median, summarize, type PromptRun } from './stats.js';
import { loadTransformersJs, type TransformersJsRuntime } from './transformers-js.js';

const ANCHORS = ['transformers.js'];
const TJS = 'transformers.js';

interface Run extends PromptRun {
  totalMs: number;
}

export async function runAnchorBench(values: BenchValues): Promise<void> {
  if (!ANCHORS.includes(values.anchor!)) {
    process.stderr.write(`--anchor: one of ${ANCHORS.join(', ')}\n`);
    process.exit(2);
  }
  const runtime = values['anchor-runtime'] as TransformersJsRuntime;
  if (runtime !== 'wasm' && runtime !== 'cpu') {
    process.stderr.write('--anchor-runtime: wasm or cpu\n');
    process.exit(2);
  }
  const maxTokens = num(values['max-tokens'], 'max-tokens');
  const prompts = readPrompts(values.prompts!, num(values.limit, 'limit'));
  const drafters = values.drafters === DEFAULT_DRAFTERS ? ['plain', DRAFTER_PREFERENCE.greedy[0]] : values.drafters!.split(',').map((s) => s.trim()).filter(Boolean);
  const engine = await Engine.load(fsShardSource(values.model!));
  if (drafters.includes('oracle')) {
    process.stderr.write('--drafters: the oracle needs a plain reference run; not in the anchor bench\n');
    process.exit(2);
  }
  // the engine bench's drafter specs and tree budgets (bench/lib/drafters.ts)
  const { budgets } = registerSpecs(engine, drafters, { budget: num(values.budget, 'budget') });
  const tjs = await loadTransformersJs(runtime);
  const maxPromptArg = num(values['max-prompt-tokens'], 'max-prompt-tokens');
  const maxPromptTokens = Math.min(maxPromptArg > 0 ? maxPromptArg : Infinity, engine.maxContext - maxTokens);
  const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
  const names = [TJS, ...drafters];
  process.stderr.write(`transformers.js ${tjs.version} on ${tjs.runtimeName} vs the engine (onnxruntime-web wasm, 1 thread): ${prompts.length} prompts x ${names.length}, ${maxTokens} new tokens each\n`);

  async function runEngine(spec: string, promptTokens: number[], n: number): Promise<Run> {
    const tokens: number[] = [];
    let prefillMs = 0, rounds = 0, treeNodes = 0, draftMs = 0, verifyMs = 0, accepted = 0;
    const t0 = performance.now();
    for await (const ev of engine.createSession().generate({
      promptTokens, maxTokens: n, sampling: greedy, drafter: spec, treeBudget: budgets.get(spec),
      onRound: (st) => {
        rounds++;
        treeNodes += st.treeSize;
        draftMs += st.draftMs;
        verifyMs += st.verifyMs;
        accepted += st.accepted;
      },
    })) {
      if (ev.type === 'tokens') tokens.push(...ev.tokens);
      else prefillMs = ev.usage.prefillMs;
    }
    const totalMs = performance.now() - t0;
    return { tokens, decodeMs: totalMs - prefillMs, totalMs, rounds, treeNodes, draftMs, verifyMs, accepted };
  }
  async function runTjs(promptTokens: number[], n: number): Promise<Run> {
    const r = await tjs.generate(promptTokens, n);
    return { tokens: r.tokens, decodeMs: r.totalMs - r.prefillMs, totalMs: r.totalMs, rounds: r.tokens.length, treeNodes: r.tokens.length, draftMs: 0, verifyMs: 0, accepted: 0 };
  }
  const run = (name: string, ids: number[], n: number) => (name === TJS ? runTjs(ids, n) : runEngine(name, ids, n));

  // warm-up (JIT, allocations, first sessions)
  for (const name of names) await run(name, engine.encodePrompt('def main():'), 8);

  const runs = new Map<string, Run[]>(names.map((n) => [n, []]));
  for (let i = 0; i < prompts.length; i++) {
    const ids = fitPrompt(engine.encodePrompt(prompts[i]), maxPromptTokens);
    const order = names.map((_, j) => names[(i + j) % names.length]);
    for (const name of order) runs.get(name)!.push(await run(name, ids, maxTokens));
    if (!values.quiet) {
      const base = runs.get(TJS)![i];
      process.stderr.write(`[${i + 1}/${prompts.length}] ` + names.map((n) => {
        const r = runs.get(n)![i];
        const same = n === TJS || r.tokens.join() === base.tokens.join();
        return `${n} ${((r.tokens.length * 1000) / r.decodeMs).toFixed(0)}/s${same ? '' : ' DIFF'}`;
      }).join(' | ') + '\n');
    }
  }

  const base = runs.get(TJS)!;
  const endToEnd = (r: Run, b: Run) => (r.tokens.length / r.totalMs) / (b.tokens.length / b.totalMs);
  const rows = names.map((n) => {
    const rs = runs.get(n)!;
    const s = summarize(rs, base);
    return [n, {
      ...s,
      speedup_vs_transformers_js: s.speedup,
      end_to_end_tokens_per_s: (rs.reduce((a, r) => a + r.tokens.length, 0) * 1000) / rs.reduce((a, r) => a + r.totalMs, 0),
      end_to_end_speedup_vs_transformers_js: median(rs.map((r, i) => endToEnd(r, base[i]))),
      identical_to_transformers_js: s.identical,
    }] as const;
  });
  const lines = [
    `| | decode tokens/s | vs transformers.js (decode) | end-to-end tokens/s | vs transformers.js (end-to-end) | identical to transformers.js |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(([n, r]) => `| ${n === TJS ? `transformers.js ${tjs.version} (${tjs.runtimeName})` : `engine, ${n}`} | ${r.tokens_per_s.toFixed(0)} | ${r.speedup.toFixed(2)}x | ${r.end_to_end_tokens_per_s.toFixed(0)} | ${r.end_to_end_speedup_vs_transformers_js.toFixed(2)}x | ${r.identical}/${r.prompts} |`),
  ];
  process.stdout.write(`\n${lines.join('\n')}\n(${prompts.length} prompts from ${values.prompts}, ${maxTokens} new tokens, greedy; medians of per-prompt ratios)\n`);
  const json = values.json === 'bench/results/bench.json' ? 'bench/results/anchor-transformers-js.json' : values.json!;
  mkdirSync(dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify({
    anchor: TJS,
    transformers_js: { version: tjs.version, runtime: tjs.runtimeName },
    engine_runtime: 'onnxruntime-web wasm, 1 thread, Node',
    rows: Object.fromEntries(rows),
    options: { prompts: values.prompts, n_prompts: prompts.length, max_tokens: maxTokens, max_prompt_tokens: maxPromptTokens, drafters, greedy: true },
    machine: machineInfo(),
  }, null, 2) + '\n');
  process.stderr.write(`wrote ${json}\n`);
}
