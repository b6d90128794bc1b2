/**
 * How much memory a model folder needs in the engine, measured in Node (onnxruntime-web wasm, one thread,
 * as in a Worker): ORT's wasm heap (model loaded, then its peak after full-context sessions), the JS heap
 * after a full GC, and the ArrayBuffers the sessions' KV caches live in. Each model runs in a fresh process
 * (the wasm heap only grows).
 *
 *   npx tsx scripts/measure-model-memory.ts <model-dir>... [--sessions 2] [--new 32]
 *
 * Each session fills the model's context: a prompt of max_seq_len - new tokens, then `new` greedy tokens.
 * The sum (wasm + JS heap + ArrayBuffers) is what these take in an isolate; a Workers isolate has 128 MB,
 * and the Worker's own code, request buffers and uncollected garbage come on top (test/worker/memory.test.ts
 * measures that in workerd for the default model).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sessions: { type: 'string', default: '2' },
    new: { type: 'string', default: '32' },
    one: { type: 'boolean', default: false },
  },
});
const ROOT = resolve(import.meta.dirname, '..');
const MiB = 2 ** 20;
const mib = (b: number) => (b / MiB).toFixed(1);

if (!values.one) {
  if (positionals.length === 0) {
    process.stderr.write('usage: npx tsx scripts/measure-model-memory.ts <model-dir>... [--sessions 2] [--new 32]\n');
    process.exit(2);
  }
  for (const dir of positionals) {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--one', '--sessions', values.sessions!, '--new', values.new!, dir], {
      stdio: 'inherit',
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  process.exit(0);
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const { Engine } = await import('../src/engine/index.js');
const { fsShardSource } = await import('./node/fs-shard-source.js');
const { watchWasmHeap, wasmHeapBytes } = await import('../src/wasm-heap.js');
watchWasmHeap();

const dir = positionals[0];
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
  config: { vocab_size: number; d_model: number; n_layers: number; n_heads: number; head_dim: number; max_seq_len: number };
  files: Record<string, { bytes: number }>;
  metrics?: { parameters?: number };
};
/** After a full GC, twice with a turn of the event loop between (buffers a settled promise still held
 *  are only free after it). */
const snap = async () => {
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  const m = process.memoryUsage();
  return { js: m.heapUsed, buffers: m.arrayBuffers, wasm: wasmHeapBytes() ?? 0 };
};
const before = await snap();
const t0 = performance.now();
const engine = await Engine.load(fsShardSource(dir));
const loadMs = performance.now() - t0;
const loaded = await snap();

const NEW = Number(values.new);
const c = engine.config;
// a long prompt in the model's tokenizer, cut to fill the context
const text = readFileSync(join(ROOT, 'bench/prompts-long.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => (JSON.parse(l) as { prompt: string }).prompt)
  .join('\n');
let ids = engine.encodePrompt(text);
while (ids.length < c.max_seq_len) ids = [...ids, ...ids.slice(1)];
const prompt = ids.slice(0, c.max_seq_len - NEW);
const sessions = [];
for (let i = 0; i < Number(values.sessions); i++) {
  const s = engine.createSession();
  sessions.push(s);
  for await (const ev of s.generate({ promptTokens: prompt, maxTokens: NEW, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } })) void ev;
}
const full = await snap();
const kvPerToken = 2 * c.n_layers * c.n_heads * c.head_dim * 4 + c.d_model * 4; // K and V of every layer, f32, plus the hidden row
const total = full.wasm + full.js + full.buffers;
const params = manifest.metrics?.parameters;
console.log(
  `${dir}: ${params ? `${(params / 1e6).toFixed(1)}M parameters, ` : ''}d ${c.d_model}, ${c.n_layers} layers, ${c.n_heads} heads, vocab ${c.vocab_size}, ` +
    `context ${c.max_seq_len}; base file ${(manifest.files.base.bytes / 1e6).toFixed(1)} MB, tokenizer ${(manifest.files.tokenizer.bytes / 1e6).toFixed(2)} MB\n` +
    `  loaded in ${(loadMs / 1000).toFixed(1)} s: ORT wasm heap ${mib(loaded.wasm)} MiB, JS heap ${mib(loaded.js)} MiB (+${mib(loaded.js - before.js)}), ArrayBuffers ${mib(loaded.buffers)} MiB\n` +
    `  ${sessions.length} sessions of ${prompt.length + NEW} tokens (KV ${mib(kvPerToken * c.max_seq_len)} MiB each at full context): ` +
    `wasm heap ${mib(full.wasm)} MiB, JS heap ${mib(full.js)} MiB, ArrayBuffers ${mib(full.buffers)} MiB; total ${mib(total)} MiB`,
);
