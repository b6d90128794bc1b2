/**
 * What a head fused into the verify pass costs, and that the fused graph verifies exactly as the
 * base graph: at P cached positions, a tree of S nodes is verified on the base graph and on the
 * fused graph (interleaved, onnxruntime-web wasm, one thread), beside a one-token decode and a
 * separate head run (one new position). Checks that logits, hidden rows and new K/V are
 * bit-identical, and prints medians and the median of per-repetition ratios:
 *   fused extra = (fused verify - base verify) / decode   (the head's cost per round when fused)
 *   separate    = head run / decode                         (its cost as a run of its own)
 *
 *   npx tsx bench/experiments/bench-fused.ts [--kind ctc] [--P 256] [--S 8,16] [--reps 40] [--window 64] [--json out.json]
 *       (--window: the head's PrefixHead.window, the engine's default; 0 = the head reads every position)
 *       (the model folder's <kind>_fused and <kind>_head; --fused / --head take ONNX files instead)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { HEAD_WINDOW, LanguageModel, createSession, loadArtifact, loadManifest, PrefixHead, type TokenTree } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'model-shards/default' },
    kind: { type: 'string', default: 'ctc' },
    fused: { type: 'string' },
    head: { type: 'string' },
    P: { type: 'string', default: '256' },
    S: { type: 'string', default: '8,16' },
    reps: { type: 'string', default: '40' },
    window: { type: 'string', default: String(HEAD_WINDOW) },
    json: { type: 'string' },
  },
});
setFlagsFromString('--no-liftoff'); // time optimized wasm, not V8's baseline tier
const source = fsShardSource(args.model!);
const manifest = await loadManifest(source);
const config = manifest.config;
const d = config.d_model;
const P = Number(args.P);
const reps = Number(args.reps);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((seed * 7919 + i * 104729) % 4000));

const lm = await LanguageModel.create(await loadArtifact(source, manifest, 'base'), config);
const bytes = (path: string | undefined, artifact: string) => (path ? readFileSync(path) : loadArtifact(source, manifest, artifact));
const fused = await createSession(await bytes(args.fused, `${args.kind}_fused`));
const headSession = await createSession(await bytes(args.head, `${args.kind}_head`));
const outName = headSession.outputNames.find((n) => n === 'log_probs' || n === 'logits')!;
const shape = { d, heads: 4, headDim: d / 4, maxSeqLen: config.max_seq_len };

/** A random tree of S nodes (each node's parent drawn among the earlier ones, distinct siblings). */
function randomTree(S: number, seed: number): TokenTree {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31), x / 2 ** 31);
  const t: TokenTree = { tokens: [5], parents: [-1], depths: [0] };
  while (t.tokens.length < S) {
    const p = Math.floor(rnd() * t.tokens.length);
    const tok = 3 + Math.floor(rnd() * 4000);
    if (t.parents.some((q, i) => q === p && t.tokens[i] === tok)) continue;
    t.tokens.push(tok);
    t.parents.push(p);
    t.depths.push(t.depths[p] + 1);
  }
  return t;
}

const prompt = tokens(P + 1, 1);
const cacheA = lm.newCache();
const cacheB = lm.newCache();
const pre = await lm.prefill(prompt.slice(0, P), cacheA);
await lm.prefill(prompt.slice(0, P), cacheB);
// A head whose cache is complete up to position P - 1 (a separate run over the prompt's hidden rows).
const window = Number(args.window);
const head = new PrefixHead(headSession, shape, outName, fused, window);
const ctx = { tokens: prompt, pending: prompt[P], hidden: pre.hidden.subarray((P - 1) * d), hiddenRows: pre.hidden, hiddenRowsFrom: 0, budget: 16 };
await head.output(ctx);

let mismatches = 0;
const rows: Record<string, unknown>[] = [];
for (const S of args.S!.split(',').map(Number)) {
  const tb: number[] = [], tf: number[] = [], td: number[] = [], th: number[] = [];
  const extraR: number[] = [], sepR: number[] = [];
  for (let r = 0; r < reps; r++) {
    const tree = randomTree(S, r + 1);
    tree.tokens[0] = prompt[P];
    let t = performance.now();
    const a = await lm.verifyTree(tree, cacheA);
    const base = performance.now() - t;
    const kvA = cacheA.length;
    cacheA.truncate(P);
    const pass = head.fusedPass(prompt, tree)!;
    t = performance.now();
    const b = await lm.verifyTree(tree, cacheB, pass);
    const fusedMs = performance.now() - t;
    const kvB = cacheB.length;
    cacheB.truncate(P);
    for (const x of Object.values(b.extra!)) x.dispose();
    if (kvA !== kvB || a.logits.some((v, i) => !Object.is(v, b.logits[i])) || a.hidden.some((v, i) => !Object.is(v, b.hidden[i]))) mismatches++;
    t = performance.now();
    await lm.verifyTree({ tokens: [prompt[P]], parents: [-1], depths: [0] }, cacheA);
    const dec = performance.now() - t;
    cacheA.truncate(P);
    // a separate head run reading out one more position (what a round without fusion pays)
    const sep = new PrefixHead(headSession, shape, outName, undefined, window);
    await sep.output(ctx);
    t = performance.now();
    await sep.output({ ...ctx, tokens: [...prompt, 7], pending: 7, hiddenRows: new Float32Array((P + 1) * d).fill(0.1) });
    const sepMs = performance.now() - t;
    tb.push(base); tf.push(fusedMs); td.push(dec); th.push(sepMs);
    extraR.push((fusedMs - base) / dec);
    sepR.push(sepMs / dec);
  }
  const row = { P, S, decode_ms: med(td), verify_ms: med(tb), fused_verify_ms: med(tf), head_run_ms: med(th), fused_extra_over_decode: med(extraR), separate_over_decode: med(sepR) };
  rows.push(row);
  console.log(JSON.stringify(row));
}
console.log(`bit-identical verify (logits, hidden, cache length): ${mismatches === 0 ? 'yes' : `NO (${mismatches} mismatches)`}`);
if (args.json) writeFileSync(args.json, JSON.stringify({ kind: args.kind, window, fused: args.fused ?? `${args.model}/${args.kind}_fused`, head: args.head ?? `${args.model}/${args.kind}_head`, reps, mismatches, rows }, null, 2) + '\n');
