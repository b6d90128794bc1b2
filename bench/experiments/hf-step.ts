/**
 * Where transformers.js's time per token goes: one decode step at P cached tokens, interleaved
 * repetition by repetition (onnxruntime-web wasm, one thread, medians):
 *   - engine: the engine's LanguageModel.decodeOne over the shipped graph (model-shards/default: new K/V
 *     rows out, the cache appended in place);
 *   - hf graph: model-hf/default/onnx/model_quantized.onnx run directly (the standard interface: every
 *     layer's full past in, full present out, attention_mask and position_ids), what each generate()
 *     step of transformers.js runs;
 *   - transformers.js: a whole generate() step, measured as (generate of P+1+n new tokens' time - the
 *     same with 1 new token) / n from the same P-token prompt.
 *
 *   npx tsx bench/experiments/hf-step.ts [--p 448] [--reps 20]
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine, createSession, ort } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { HF_MODEL_ROOT, loadTransformersJs } from '../lib/transformers-js.js';

const { values: args } = parseArgs({ options: { p: { type: 'string', default: '448' }, reps: { type: 'string', default: '20' }, n: { type: 'string', default: '16' } } });
const P = Number(args.p), reps = Number(args.reps), n = Number(args.n);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

const engine = await Engine.load(fsShardSource(resolve(import.meta.dirname, '../../model-shards/default')));
const { n_layers: L, n_heads: H, head_dim: D } = engine.config;
const prompt = [engine.config.bos_id, ...Array.from({ length: P - 1 }, (_, i) => 3 + ((i * 104729) % 4000))];
const lm = engine.model;
const cache = lm.newCache();
await lm.prefill(prompt, cache);

const hf = await createSession(new Uint8Array(readFileSync(join(HF_MODEL_ROOT, 'default/onnx/model_quantized.onnx'))));
const past: Record<string, ort.Tensor> = {};
for (let i = 0; i < L; i++) for (const kind of ['key', 'value']) past[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(H * P * D).fill(0.01), [1, H, P, D]);
const hfFeeds = () => ({
  ...past,
  input_ids: new ort.Tensor('int64', BigInt64Array.from([5n]), [1, 1]),
  attention_mask: new ort.Tensor('int64', new BigInt64Array(P + 1).fill(1n), [1, P + 1]),
  position_ids: new ort.Tensor('int64', BigInt64Array.from([BigInt(P)]), [1, 1]),
});
const tjs = await loadTransformersJs('wasm');

const t = { engine: [] as number[], hf: [] as number[], tjs: [] as number[] };
for (let r = 0; r < reps + 2; r++) {
  const c = cache.clone();
  let t0 = performance.now();
  await lm.decodeOne(5, c);
  const e = performance.now() - t0;
  const feeds = hfFeeds();
  t0 = performance.now();
  const out = await hf.run(feeds);
  const h = performance.now() - t0;
  for (const v of Object.values(out)) v.dispose?.();
  // transformers.js: generate() may stop early at <s>, so its per-step time is over the tokens it made
  const a = await tjs.generate(prompt, 1);
  const b = await tjs.generate(prompt, 1 + n);
  const steps = b.tokens.length - a.tokens.length;
  if (r >= 2) {
    t.engine.push(e);
    t.hf.push(h);
    if (steps > 0) t.tjs.push((b.totalMs - a.totalMs) / steps);
  }
}
const row = (name: string, xs: number[]) => `${name.padEnd(16)} ${med(xs).toFixed(2)} ms  (${(med(xs) / med(t.engine)).toFixed(2)}x the engine)`;
process.stdout.write(`one decode step at ${P} cached tokens, medians of ${reps} (onnxruntime-web wasm, 1 thread):\n` +
  [row('engine', t.engine), row('hf graph', t.hf), row('transformers.js', t.tjs)].join('\n') + '\n');
