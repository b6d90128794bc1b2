/**
 * The engine bench: drafters side by side in Node (onnxruntime-web wasm, one thread), interleaved per
 * prompt, greedy or sampled (--temperature, --top-p, --top-k, --seed: every drafter of prompt i samples
 * with seed + i); the CLI and its options: bench/bench.ts. A spec `default` runs what the API would
 * choose for a request with these parameters and no drafter named (defaultDrafter).
 */
import { defaultDrafter, drafterFactories, Engine, type SamplingParams } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { wasmHeapBytes, watchWasmHeap } from '../../src/wasm-heap.js';
import { registerSpecs } from './drafters.js';
import { num, type BenchValues } from './options.js';
import { fitPrompt, readPrompts } from './prompts.js';
import { machineInfo, printTable, writeOutputs } from './report.js';
import { summarize, type DrafterSummary, type PromptRun } from './stats.js';

export async function runEngineBench(values: BenchValues): Promise<void> {
  const maxTokens = num(values['max-tokens'], 'max-tokens');
  const globalBudget = num(values.budget, 'budget');
  const maxPromptArg = num(values['max-prompt-tokens'], 'max-prompt-tokens');
  const prompts = readPrompts(values.prompts!, num(values.limit, 'limit'));
  const specs = values.drafters!.split(',').map((s) => s.trim()).filter(Boolean);
  if (!specs.includes('plain')) specs.unshift('plain');
  const temperature = num(values.temperature, 'temperature');
  const sampling = (i: number): SamplingParams => ({
    temperature,
    topP: num(values['top-p'], 'top-p'),
    topK: num(values['top-k'], 'top-k'),
    seed: num(values.seed, 'seed') + i,
  });
  const greedyRun = !(temperature > 0);

  const t0 = performance.now();
  watchWasmHeap();
  const engine = await Engine.load(fsShardSource(values.model!));
  const loadMs = performance.now() - t0;
  const m = engine.manifest;
  const maxPromptTokens = Math.min(maxPromptArg > 0 ? maxPromptArg : Infinity, engine.maxContext - maxTokens);
  // `default`: the drafter the API picks for these parameters, registered under the name `default`
  const chosen = defaultDrafter(['plain', ...Object.keys(drafterFactories(engine.manifest))], sampling(0));
  const { budgets, oracle } = registerSpecs(engine, specs.map((s) => (s === 'default' ? chosen : s)), {
    budget: globalBudget,
    beam: values.beam !== undefined ? num(values.beam, 'beam') : undefined,
    topM: values['top-m'] !== undefined ? num(values['top-m'], 'top-m') : undefined,
    minWeight: values['min-weight'] !== undefined ? num(values['min-weight'], 'min-weight') : undefined,
  });

  process.stderr.write(`model ${values.model} loaded in ${loadMs.toFixed(0)} ms; ${prompts.length} prompts x ${specs.length} drafters, ${maxTokens} new tokens each\n`);

  const runs = new Map<string, (PromptRun | null)[]>(specs.map((s) => [s, []]));
  const drafterOf = (spec: string) => (spec === 'default' ? chosen : spec);
  if (specs.includes('default')) process.stderr.write(`default: ${chosen} at temperature ${temperature}\n`);
  // warm-up (first runs pay JIT and allocation)
  for (const spec of specs) {
    const s = engine.createSession();
    const d = drafterOf(spec);
    for await (const _ of s.generate({ promptTokens: engine.encodePrompt('def main():'), maxTokens: 8, sampling: sampling(0), drafter: d, treeBudget: budgets.get(d) })) void _;
  }

  for (let i = 0; i < prompts.length; i++) {
    const promptTokens = fitPrompt(engine.encodePrompt(prompts[i]), maxPromptTokens);
    const others = specs.filter((s) => s !== 'plain');
    const order = ['plain', ...others.map((_, j) => others[(i + j) % others.length])];
    for (const spec of order) {
      const session = engine.createSession();
      let treeNodes = 0, rounds = 0, draftMs = 0, verifyMs = 0, acceptMs = 0, accepted = 0;
      const tokens: number[] = [];
      let prefillMs = 0;
      const tStart = performance.now();
      for await (const ev of session.generate({
        promptTokens,
        maxTokens,
        sampling: sampling(i),
        drafter: drafterOf(spec),
        treeBudget: budgets.get(drafterOf(spec)),
        onRound: (st) => {
          rounds++;
          treeNodes += st.treeSize;
          draftMs += st.draftMs;
          acceptMs += st.acceptMs;
          verifyMs += st.verifyMs;
          accepted += st.accepted;
        },
      })) {
        if (ev.type === 'tokens') tokens.push(...ev.tokens);
        else prefillMs = ev.usage.prefillMs;
      }
      const decodeMs = performance.now() - tStart - prefillMs;
      if (spec === 'plain') oracle.setReference([...promptTokens, ...tokens]);
      runs.get(spec)!.push({ tokens, decodeMs, rounds, treeNodes, draftMs, verifyMs, acceptMs, accepted });
    }
    if (!values.quiet) {
      const pr = runs.get('plain')![i]!;
      const line = specs
        .map((s) => {
          const r = runs.get(s)![i]!;
          const diff = greedyRun && s !== 'plain' && r.tokens.join() !== pr.tokens.join();
          return `${s} ${((r.tokens.length * 1000) / r.decodeMs).toFixed(0)}/s τ${(r.tokens.length / Math.max(1, r.rounds)).toFixed(1)}${diff ? ' DIFF' : ''}`;
        })
        .join(' | ');
      process.stderr.write(`[${i + 1}/${prompts.length}] ${line}\n`);
    }
  }

  const plainRuns = runs.get('plain')!;
  const rows: [string, DrafterSummary][] = specs.map((s) => [s, summarize(runs.get(s)!, plainRuns)]);
  const options = {
    prompts: values.prompts,
    n_prompts: prompts.length,
    max_tokens: maxTokens,
    max_prompt_tokens: maxPromptTokens,
    budget: globalBudget,
    beam: values.beam ?? null,
    top_m: values['top-m'] ?? null,
    min_weight: values['min-weight'] ?? null,
    model: values.model,
    runtime: 'onnxruntime-web wasm, 1 thread, Node',
    greedy: greedyRun,
    // sampled runs differ from plain by design (same distribution, other draws): `identical` is greedy's check
    sampling: greedyRun ? null : { temperature, top_p: sampling(0).topP, top_k: sampling(0).topK, seed: sampling(0).seed },
    default_drafter: specs.includes('default') ? chosen : null,
  };
  const heap = wasmHeapBytes();
  const result = {
    drafters: Object.fromEntries(rows),
    machine: machineInfo(),
    options,
    model: { name: m.name, created: m.created, files: Object.keys(m.files), metrics: m.metrics ?? null },
    wasm_heap_mib: heap === null ? null : heap / 2 ** 20,
  };
  const how = greedyRun ? 'greedy' : `T ${temperature}, top-p ${sampling(0).topP}, top-k ${sampling(0).topK}, seed ${sampling(0).seed} + prompt`;
  process.stdout.write('\n' + printTable(rows, `(${prompts.length} prompts, ${maxTokens} new tokens, budget ${globalBudget}, ${how}; speedup = median per-prompt tok/s ratio vs plain)`));
  writeOutputs(values.json!, result, rows, `ctc-edge drafters: ${prompts.length} prompts, ${maxTokens} tokens, 1 wasm thread`);
}
