/**
 * Compare quantization variants of the base model in onnxruntime-web (wasm, one thread):
 * decode and tree-verify latency (interleaved, medians), and row independence: how far a token's
 * logits move when it is computed inside a 16-token batch instead of alone.
 *
 *   npx tsx scripts/bench-quant.ts data/onnx/base.onnx data/onnx/base.rowwise.onnx data/onnx/base.dynamic.onnx
 */
import { readFileSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// Time optimized wasm, as a long-lived isolate runs it: V8's baseline tier (Liftoff) needs hundreds
// of runs to tier up ORT's 14 MB module, so skip it (see scripts/generate.ts).
setFlagsFromString('--no-liftoff');
const ort = await import('onnxruntime-web/wasm');
ort.env.wasm.numThreads = 1;
const L = 6, H = 4, D = 64, V = 4096, P = 256;

function feeds(S: number, past: number) {
  const f: Record<string, InstanceType<typeof ort.Tensor>> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(100 + i * 37)), [1, S]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(past + i)), [1, S]),
  };
  // Causal mask over the new tokens (a chain-shaped tree): rows see the past and earlier rows.
  const mask = new Float32Array(S * (past + S));
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) if (j > i) mask[i * (past + S) + past + j] = -Infinity;
  f.attention_mask = new ort.Tensor('float32', mask, [1, 1, S, past + S]);
  const kv = new Float32Array(H * past * D).map((_, i) => Math.sin(i) * 0.5);
  for (let l = 0; l < L; l++) {
    f[`past_key_${l}`] = new ort.Tensor('float32', kv, [1, H, past, D]);
    f[`past_value_${l}`] = new ort.Tensor('float32', kv, [1, H, past, D]);
  }
  return f;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const files = process.argv.slice(2);
const sessions = await Promise.all(files.map(async (f) => ort.InferenceSession.create(readFileSync(f), { graphOptimizationLevel: 'all' })));
const sizes = [1, 4, 8, 16, 32];
const times: Record<string, number[]> = {};
for (const s of sessions) for (let i = 0; i < 5; i++) await s.run(feeds(8, P)); // warm-up
for (let rep = 0; rep < 15; rep++) {
  for (const S of sizes) {
    for (let m = 0; m < files.length; m++) {
      const t0 = performance.now();
      await sessions[m].run(feeds(S, P));
      (times[`${m}:${S}`] ??= []).push(performance.now() - t0);
    }
  }
}
console.log(`ms per run at ${P} past tokens (median of 15, interleaved)`);
console.log(['file', 'MB', ...sizes.map((s) => `S=${s}`), 'row drift'].join('\t'));
for (let m = 0; m < files.length; m++) {
  // Row independence: the first token alone vs the same first token at the head of a 16-token batch.
  const alone = (await sessions[m].run(feeds(1, P))).logits.data as Float32Array;
  const batch = (await sessions[m].run(feeds(16, P))).logits.data as Float32Array;
  let drift = 0;
  for (let i = 0; i < V; i++) drift = Math.max(drift, Math.abs(alone[i] - batch[i]));
  console.log([files[m], (statSync(files[m]).size / 1e6).toFixed(1), ...sizes.map((S) => median(times[`${m}:${S}`]).toFixed(2)), drift.toExponential(1)].join('\t'));
}
