/**
 * Compare quantization variants of the base model in onnxruntime-web (wasm, one thread):
 * decode and tree-verify latency (interleaved, medians), and row independence: how far a token's
 * logits move when it is computed inside a 16-token batch instead of alone.
 *
 *   npx tsx bench/bench-quant.ts data/onnx/base.onnx data/onnx/base.rowwise.onnx data/onnx/base.dynamic.onnx
 */
import { readFileSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// Time optimized wasm, as a long-lived isolate runs it: V8's baseline tier (Liftoff) needs hundreds
// of runs to tier up ORT's 14 MB module, so skip it (see scripts/generate.ts).
setFlagsFromString('--no-liftoff');
const ort = await import('onnxruntime-web/wasm');
const { tailBlock, causalMask } = await import('../src/engine/index.js');
ort.env.wasm.numThreads = 1;
const L = 6, H = 4, D = 64, V = 4096, P = 256, B = 32; // B: the graph's KV panel (manifest kv_panel)

/** Feeds of KV interface 2 (training/export_onnx.py build_base) for S new tokens after `past`. */
function feeds(S: number, past: number) {
  const f: Record<string, InstanceType<typeof ort.Tensor>> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(100 + i * 37)), [1, S]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(past + i)), [1, S]),
  };
  const F = Math.floor(past / B);
  const Pt = past - F * B;
  // A chain-shaped tree: rows see the cache and earlier rows.
  const tb = tailBlock(Array.from({ length: S }, (_, i) => past + i), causalMask(S), past, B);
  f.attention_mask = new ort.Tensor('float32', tb.mask, [1, 1, S, Pt + S]);
  f.tail_groups = new ort.Tensor('float32', tb.groups, [tb.G, 1, Pt + S]);
  const full = new Float32Array(F * H * B * D).map((_, i) => Math.sin(i) * 0.5);
  f.past_tail = new ort.Tensor('float32', new Float32Array(2 * L * H * Pt * D).map((_, i) => Math.cos(i) * 0.5), [2 * L, H, Pt, D]);
  for (let l = 0; l < L; l++) {
    f[`past_key_${l}`] = new ort.Tensor('float32', full, [F, H, B, D]);
    f[`past_value_${l}`] = new ort.Tensor('float32', full, [F, H, B, D]);
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
