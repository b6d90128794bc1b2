/**
 * Per-run cost of the base graph against the cached length, old KV interface against new, side
 * by side in one process (onnxruntime-web wasm, one thread), interleaved run by run.
 *
 *   npx tsx bench/experiments/bench-kv.ts --old data/onnx-v1/base.rowwise.onnx --new data/onnx/base.rowwise.onnx
 *
 * "old" is KV interface 1 (past_* in, full present_* [1,H,P+S,D] out, adopted as the next past:
 * what the engine did before); "new" is the engine's LanguageModel over interface 2 (new rows out,
 * cache appended in place). Make the old graph from the commit before interface 2:
 *   R=$PWD; git worktree add /tmp/kv1 29c6e83 && (cd /tmp/kv1 && /usr/bin/python3 scripts/export_onnx.py \
 *     --out $R/data/onnx-v1 && /usr/bin/python3 scripts/quantize.py $R/data/onnx-v1/base.onnx $R/data/onnx-v1/base.rowwise.onnx)
 * With --native, the new graph also runs in onnxruntime-node (1 thread) as a reference; install it
 * first with `ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node@1.30.0`.
 * Prints medians over --reps interleaved repetitions and the median of per-repetition ratios.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LanguageModel, tailBlock, causalMask, chainTree, createSession, ort, type ModelConfig } from '../../src/engine/index.js';

const { values: args } = parseArgs({
  options: {
    old: { type: 'string', default: 'data/onnx-v1/base.rowwise.onnx' },
    new: { type: 'string', default: 'data/onnx/base.rowwise.onnx' },
    manifest: { type: 'string', default: 'model-shards/default/manifest.json' },
    reps: { type: 'string', default: '30' },
    native: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const config: ModelConfig = JSON.parse(readFileSync(args.manifest!, 'utf8')).config;
const { n_layers: L, n_heads: H, head_dim: D } = config;
const reps = Number(args.reps);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((seed * 7919 + i * 104729) % 4000));

/** Interface 1, run the way the engine ran it: present adopted as the next past. */
class OldGraph {
  constructor(private s: ort.InferenceSession) {}
  past: Float32Array[] = [];
  P = 0;
  reset(P: number) {
    this.P = P;
    this.past = Array.from({ length: 2 * L }, () => new Float32Array(H * P * D).fill(0.01));
  }
  async run(S: number): Promise<void> {
    const P = this.P;
    const T = P + S;
    const mask = new Float32Array(S * T);
    for (let i = 0; i < S; i++) mask.fill(-Infinity, i * T + P + i + 1, (i + 1) * T);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens(S, P), BigInt), [1, S]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(P + i)), [1, S]),
      attention_mask: new ort.Tensor('float32', mask, [1, 1, S, T]),
    };
    for (let l = 0; l < L; l++) {
      feeds[`past_key_${l}`] = new ort.Tensor('float32', this.past[2 * l], [1, H, P, D]);
      feeds[`past_value_${l}`] = new ort.Tensor('float32', this.past[2 * l + 1], [1, H, P, D]);
    }
    // ORT has already copied present_* [1,H,P+S,D] out of its heap into fresh arrays; the old
    // cache adopted them as they were (free), so the measurement keeps the same past instead.
    await this.s.run(feeds);
  }
}

const oldS = await createSession(readFileSync(args.old!));
const oldG = new OldGraph(oldS);
const lm = await LanguageModel.create(readFileSync(args.new!), config);

let native: ((P: number, S: number) => Promise<number>) | null = null;
if (args.native) {
  // A dev-only dependency (not in package.json): imported by a computed name so that typechecking
  // does not need it installed.
  const name = 'onnxruntime-node';
  const ortNode = (await import(name)) as typeof import('onnxruntime-web');
  const ns = await ortNode.InferenceSession.create(readFileSync(args.new!), {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  });
  native = async (P, S) => {
    const feeds: Record<string, unknown> = {
      input_ids: new ortNode.Tensor('int64', BigInt64Array.from(tokens(S, P), BigInt), [1, S]),
      position_ids: new ortNode.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(P + i)), [1, S]),
    };
    const B = config.kv_panel;
    const F = Math.floor(P / B);
    const Pt = P - F * B;
    const tb = tailBlock(Array.from({ length: S }, (_, i) => P + i), causalMask(S), P, B);
    feeds.attention_mask = new ortNode.Tensor('float32', tb.mask, [1, 1, S, Pt + S]);
    feeds.tail_groups = new ortNode.Tensor('float32', tb.groups, [tb.G, 1, Pt + S]);
    feeds.past_tail = new ortNode.Tensor('float32', new Float32Array(2 * L * H * Pt * D).fill(0.01), [2 * L, H, Pt, D]);
    for (let l = 0; l < L; l++) {
      for (const kind of ['key', 'value']) {
        feeds[`past_${kind}_${l}`] = new ortNode.Tensor('float32', new Float32Array(F * H * B * D).fill(0.01), [F, H, B, D]);
      }
    }
    const t = performance.now();
    await ns.run(feeds as never);
    return performance.now() - t;
  };
}

const cases: [number, number][] = [[1, 1], [64, 1], [128, 1], [256, 1], [384, 1], [480, 1], [256, 8], [256, 16], [480, 16]];
const rows: Record<string, unknown>[] = [];
// a first pass over every case warms both sessions up (ORT's allocator, V8's JIT); it is not reported
for (const pass of [0, 1]) for (const [P, S] of cases) {
  oldG.reset(P);
  const cache = lm.newCache();
  await lm.prefill(tokens(P, 1), cache);
  const tree = chainTree(tokens(S, 2));
  const o: number[] = [], n: number[] = [], r: number[] = [], nat: number[] = [];
  for (let i = 0; i < 10; i++) {
    await oldG.run(S);
    await lm.verifyTree(tree, cache);
    cache.truncate(P);
  }
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await oldG.run(S);
    const t1 = performance.now();
    await lm.verifyTree(tree, cache);
    cache.truncate(P);
    const t2 = performance.now();
    o.push(t1 - t0);
    n.push(t2 - t1);
    r.push((t2 - t1) / (t1 - t0));
    if (native) nat.push(await native(P, S));
  }
  const row = { P, S, old_ms: +med(o).toFixed(3), new_ms: +med(n).toFixed(3), ratio: +med(r).toFixed(3), ...(native ? { native_new_ms: +med(nat).toFixed(3) } : {}) };
  if (pass === 0) continue;
  rows.push(row);
  console.log(JSON.stringify(row));
}
if (args.json) writeFileSync(args.json, JSON.stringify({ reps, rows }, null, 2));
