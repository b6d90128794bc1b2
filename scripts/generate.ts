/**
 * Stream a completion in the terminal (Node, onnxruntime-web wasm, one thread).
 *
 *   npm run generate -- "def fib(n):" --max-tokens 64 [--temperature 0.8 --top-p 0.95 --top-k 0
 *                        --seed 0 --drafter plain --tree-budget 16 --model model-shards/default]
 *
 * The prompt starts a document (`<s>` + its tokens). Ends with prefill time and tokens/s
 * (completion tokens over the decoding time, prefill excluded) on stderr.
 *
 * Warm-up: by default V8 runs ORT's 14 MB wasm on its baseline compiler (Liftoff) and tiers
 * hot functions up in the background; on this 2-core VM that takes several hundred decode
 * steps (3-10x slower meanwhile), so a 64-token run would mostly time V8. This CLI therefore
 * turns Liftoff off (optimized code from the first call; ~2 s more at the first run, which is
 * reported as warm-up) and decodes --warmup N (default 16) throwaway tokens before timing.
 * --liftoff keeps V8's default (what workerd does); --warmup 0 times a cold start.
 */
import { setFlagsFromString } from 'node:v8';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'max-tokens': { type: 'string', default: '64' },
    temperature: { type: 'string', default: '0' },
    'top-p': { type: 'string', default: '1' },
    'top-k': { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    drafter: { type: 'string', default: 'plain' },
    'tree-budget': { type: 'string', default: '16' },
    model: { type: 'string', default: 'model-shards/default' },
    stop: { type: 'string', multiple: true },
    warmup: { type: 'string', default: '16' },
    liftoff: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help || positionals.length !== 1) {
  process.stderr.write('usage: npm run generate -- "<prompt>" [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--drafter NAME] [--tree-budget N] [--stop STR]... [--model DIR]\n');
  process.exit(values.help ? 0 : 2);
}

function num(name: keyof typeof values): number {
  const v = Number(values[name]);
  if (!Number.isFinite(v)) {
    process.stderr.write(`--${String(name)}: not a number: ${values[name]}\n`);
    process.exit(2);
  }
  return v;
}

// Must precede the first WebAssembly compilation (ORT compiles its wasm on the first session).
if (!values.liftoff) setFlagsFromString('--no-liftoff');
const { Engine, registerDrafters } = await import('../src/engine/index.js');
const { fsShardSource } = await import('./node/fs-shard-source.js');
const { watchWasmHeap, wasmHeapBytes } = await import('../src/wasm-heap.js');
type GenerateEvent = import('../src/engine/index.js').GenerateEvent;

watchWasmHeap();
const t0 = performance.now();
const engine = await Engine.load(fsShardSource(values.model!));
registerDrafters(engine); // plain, ngram, ctc, ctc-ngram, medusa, medusa-ngram (those whose heads the manifest has)
const loadMs = performance.now() - t0;
const prompt = positionals[0];
let warmMs = 0;
if (num('warmup') > 0) {
  const tw = performance.now();
  const w = engine.createSession();
  for await (const _ of w.generate({ promptTokens: engine.encodePrompt('import os\n'), maxTokens: num('warmup'), sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } })) void _;
  warmMs = performance.now() - tw;
}
const session = engine.createSession();
process.stdout.write(prompt);

let done: Extract<GenerateEvent, { type: 'done' }> | undefined;
const tStart = performance.now();
let tFirst = 0;
for await (const ev of session.generate({
  promptTokens: engine.encodePrompt(prompt),
  maxTokens: num('max-tokens'),
  sampling: { temperature: num('temperature'), topP: num('top-p'), topK: num('top-k'), seed: num('seed') },
  drafter: values.drafter,
  treeBudget: num('tree-budget'),
  stop: values.stop,
})) {
  if (ev.type === 'tokens') {
    if (!tFirst) tFirst = performance.now();
    process.stdout.write(ev.text);
  } else done = ev;
}
const total = performance.now() - tStart;
const u = done!.usage;
const decodeMs = total - u.prefillMs;
const heap = wasmHeapBytes();
process.stdout.write('\n');
process.stderr.write(
  `\n[${done!.finishReason}] load ${loadMs.toFixed(0)} ms, warm-up ${warmMs.toFixed(0)} ms | prompt ${u.promptTokens} tok, prefill ${u.prefillMs.toFixed(1)} ms | ` +
    `${u.completionTokens} tok in ${decodeMs.toFixed(0)} ms = ${((u.completionTokens * 1000) / decodeMs).toFixed(1)} tok/s | ` +
    `${u.rounds} rounds (${(u.completionTokens / Math.max(1, u.rounds)).toFixed(2)} tok/round, draft ${u.draftMs.toFixed(0)} ms, verify ${u.verifyMs.toFixed(0)} ms) | ` +
    `wasm heap ${heap === null ? 'n/a' : (heap / 2 ** 20).toFixed(1) + ' MiB'}\n`,
);
