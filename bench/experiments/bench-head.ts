/**
 * What a draft head (prefix-head.ts) costs per round, in units of a one-token base decode at the
 * same cached length: the head's run is timed interleaved with a base decode (onnxruntime-web
 * wasm, one thread), both at P cached positions, the head seeing `--accept` new positions per
 * round (the tokens a round accepted). Prints medians and the median of per-repetition ratios.
 *
 *   npx tsx bench/experiments/bench-head.ts [--head <onnx file>]... [--base <onnx file>] [--window 64]
 *       (--head, --base: ONNX files; by default the model folder's ctc_head and medusa_head and its base,
 *       the folder of --manifest, model-shards/default)
 *       (--window: the head's PrefixHead.window, the engine's default; 0 = it reads every position)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { HEAD_WINDOW, LanguageModel, chainTree, createSession, loadArtifact, loadManifest, PrefixHead, type ModelConfig } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    head: { type: 'string', multiple: true },
    manifest: { type: 'string', default: 'model-shards/default/manifest.json' },
    P: { type: 'string', default: '256' },
    accept: { type: 'string', default: '1,3' },
    reps: { type: 'string', default: '40' },
    window: { type: 'string', default: String(HEAD_WINDOW) },
    json: { type: 'string' },
  },
});
setFlagsFromString('--no-liftoff'); // as scripts/generate.ts: time optimized wasm, not V8's baseline tier
const config: ModelConfig = JSON.parse(readFileSync(args.manifest!, 'utf8')).config;
const d = config.d_model;
const P = Number(args.P);
const reps = Number(args.reps);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const min = (a: number[]) => Math.min(...a);
const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((seed * 7919 + i * 104729) % 4000));

const modelDir = dirname(args.manifest!);
const source = fsShardSource(modelDir);
const manifest = await loadManifest(source);
const lm = await LanguageModel.create(args.base ? readFileSync(args.base) : await loadArtifact(source, manifest, 'base'), config);
const cache = lm.newCache();
await lm.prefill(tokens(P, 1), cache);
const decode = async () => {
  const t = performance.now();
  await lm.verifyTree(chainTree(tokens(1, 2)), cache);
  cache.truncate(P);
  return performance.now() - t;
};
/** The heads to time: the files given, or the model folder's heads (labelled <model dir>/<artifact>). */
const headFiles = args.head?.map((path) => ({ path, bytes: () => readFileSync(path) })) ??
  ['ctc_head', 'medusa_head'].map((name) => ({ path: join(modelDir, name), bytes: () => loadArtifact(source, manifest, name) }));
const heads = await Promise.all(headFiles.map(async ({ path, bytes }) => {
  const s = await createSession(await bytes());
  const out = s.outputNames.find((n) => n === 'log_probs' || n === 'logits')!;
  return { path, head: new PrefixHead(s, { d, heads: 4, headDim: d / 4, maxSeqLen: config.max_seq_len }, out, undefined, Number(args.window)) };
}));
const ctxTokens = tokens(P + 64, 3);
const hiddenRows = new Float32Array((P + 64) * d).map((_, i) => Math.sin(i));
/** A round's head call at context length n (the last token pending): the head appends n - 1 - (its cache). */
const headCall = async (h: PrefixHead, n: number) => {
  const t = performance.now();
  await h.output({ tokens: ctxTokens.slice(0, n), pending: ctxTokens[n - 1], hidden: hiddenRows.subarray((n - 2) * d, (n - 1) * d), hiddenRows: hiddenRows.subarray(0, n * d), hiddenRowsFrom: 0, budget: 16 });
  return performance.now() - t;
};
const rows: Record<string, unknown>[] = [];
for (const a of args.accept!.split(',').map(Number)) {
  for (const { path, head } of heads) {
    const hs: number[] = [], ds: number[] = [], rs: number[] = [];
    for (let i = 0; i < reps + 5; i++) {
      await headCall(head, P - a + 1); // the head's cache now ends a positions before P
      const th = await headCall(head, P + 1);
      const td = await decode();
      if (i < 5) continue; // warm-up
      hs.push(th);
      ds.push(td);
      rs.push(th / td);
    }
    const row = { head: path, P, window: Number(args.window), accepted: a, head_ms: +med(hs).toFixed(3), decode_ms: +med(ds).toFixed(3), head_over_decode: +med(rs).toFixed(3),
      // On a loaded machine the fastest run of each is the steadier estimate of the work itself.
      head_min_ms: +min(hs).toFixed(3), decode_min_ms: +min(ds).toFixed(3), min_over_min: +(min(hs) / min(ds)).toFixed(3) };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
if (args.json) writeFileSync(args.json, JSON.stringify({ reps, rows }, null, 2));
