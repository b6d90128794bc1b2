/**
 * The base model in ORT-web: tree verification must equal decoding each path token by token.
 * Needs model-shards/default (fails, never skips, when it is missing).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { KVCache } from '../../src/engine/kv-cache.js';
import { LanguageModel, type ForwardResult } from '../../src/engine/language-model.js';
import { loadArtifact, loadManifest } from '../../src/engine/model-store.js';
import { Rng, argmax } from '../../src/engine/sampling.js';
import { TextTokenizer } from '../../src/engine/tokenizer.js';
import { buildTree, pathTo, pathTokens, validateTree } from '../../src/engine/tree.js';
import type { TokenTree } from '../../src/engine/types.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { MODEL_DIR, requireModel } from './helpers.js';

/**
 * Tolerance of tree verification vs sequential decoding: zero. The exported graph is built for it:
 * matmuls quantize activations per row (a token never shares a scale with its batch), and
 * attention sums over positions in fixed panels in a fixed order, so neither the batch size nor
 * the number of masked columns changes a single bit (context-identity.test.ts sweeps every length). Any difference at all means the mask, positions or KV gather are wrong, or
 * the export lost that property (which would make speculative greedy output drift from plain at
 * near-ties, amplified by int8 re-quantization).
 */
const TOL_MEDIAN = 0;
const TOL_LOGITS = 0;
const TOL_HIDDEN = 0;

let lm: LanguageModel;
let tok: TextTokenizer;
let V: number;
let d: number;

beforeAll(async () => {
  requireModel();
  const src = fsShardSource(MODEL_DIR);
  const m = await loadManifest(src);
  lm = await LanguageModel.create(await loadArtifact(src, m, 'base'), m.config);
  tok = new TextTokenizer(await loadArtifact(src, m, 'tokenizer'));
  V = m.config.vocab_size;
  d = m.config.d_model;
});

const PROMPT = 'import os\nimport sys\n\n\ndef main(argv):\n    """Parse the arguments and run."""\n    for arg in argv[1:]:\n        print(';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Decodes `tokens` one at a time from a copy of `cache`; returns the last logits and hidden rows. */
async function sequential(cache: KVCache, tokens: number[]): Promise<{ logits: Float32Array; hidden: Float32Array; cache: KVCache }> {
  const c = cache.clone();
  let out: ForwardResult = { logits: new Float32Array(0), hidden: new Float32Array(0) };
  for (const t of tokens) out = await lm.decodeOne(t, c);
  return { ...out, cache: c };
}

/** A random tree of `size` nodes whose first branch is the model's greedy continuation. */
function randomTree(root: number, greedy: number[], size: number, rng: Rng): TokenTree {
  const cands: number[][] = [greedy.slice(0, 5)];
  while (cands.length < 12) {
    const base = greedy.slice(0, Math.floor(rng.next() * 3));
    const len = 1 + Math.floor(rng.next() * 4);
    cands.push([...base, ...[...Array(len)].map(() => 3 + Math.floor(rng.next() * (V - 3)))]);
  }
  return buildTree(root, cands, size);
}

describe('LanguageModel (ORT-web wasm)', () => {
  it('prefill of S tokens in one run ~= decoding them one by one', async () => {
    const ids = [1, ...tok.encode(PROMPT)];
    const one = lm.newCache();
    const batch = await lm.prefill(ids, one);
    const seq = await sequential(lm.newCache(), ids);
    const S = ids.length;
    const dl = maxAbsDiff(batch.logits.subarray((S - 1) * V), seq.logits);
    const dh = maxAbsDiff(batch.hidden.subarray((S - 1) * d), seq.hidden);
    console.log(`prefill(${S}) vs sequential: max|dlogits|=${dl.toExponential(2)} max|dhidden|=${dh.toExponential(2)}`);
    expect(dl).toBeLessThanOrEqual(TOL_LOGITS);
    expect(dh).toBeLessThanOrEqual(TOL_HIDDEN);
    expect(one.length).toBe(S);
  });

  it('tree verify: every node equals decoding its path token by token', async () => {
    const ids = [1, ...tok.encode(PROMPT)];
    const cache = lm.newCache();
    await lm.prefill(ids.slice(0, -1), cache);
    const root = ids[ids.length - 1];
    // the model's own greedy continuation, so the tree has realistic accepted paths too
    const g = await sequential(cache, [root]);
    const greedy: number[] = [];
    let c = g.cache;
    let next = argmax(g.logits);
    for (let i = 0; i < 5; i++) {
      greedy.push(next);
      const o = await lm.decodeOne(next, c);
      next = argmax(o.logits);
    }
    const diffsL: number[] = [];
    let worstH = 0;
    let argmaxAgree = 0;
    let nodes = 0;
    for (const seed of [1, 2, 3]) {
      const tree = randomTree(root, greedy, 16, Rng.fromSeed(seed));
      validateTree(tree, root);
      const vc = cache.clone();
      const P = vc.length;
      const out = await lm.verifyTree(tree, vc);
      expect(vc.length).toBe(P + tree.tokens.length);
      for (let i = 0; i < tree.tokens.length; i++) {
        const path = pathTo(tree, i);
        const s = await sequential(cache, pathTokens(tree, path));
        const rowL = out.logits.subarray(i * V, (i + 1) * V);
        diffsL.push(maxAbsDiff(rowL, s.logits));
        worstH = Math.max(worstH, maxAbsDiff(out.hidden.subarray(i * d, (i + 1) * d), s.hidden));
        if (argmax(rowL) === argmax(s.logits)) argmaxAgree++;
        nodes++;
        // KV compaction to this path = the sequential cache of the path
        const kc = vc.clone();
        kc.keep(P, path);
        expect(kc.length).toBe(s.cache.length);
        let worstKV = 0;
        for (let l = 0; l < lm.config.n_layers; l++) {
          worstKV = Math.max(worstKV, maxAbsDiff(kc.past(l)[0], s.cache.past(l)[0]), maxAbsDiff(kc.past(l)[1], s.cache.past(l)[1]));
        }
        expect(worstKV).toBeLessThanOrEqual(TOL_HIDDEN);
      }
    }
    diffsL.sort((a, b) => a - b);
    const median = diffsL[diffsL.length >> 1];
    const worstL = diffsL[diffsL.length - 1];
    console.log(
      `tree verify vs sequential over ${nodes} nodes: max|dlogits| median ${median.toExponential(2)}, ` +
        `max ${worstL.toExponential(2)} (${diffsL.filter((x) => x > 1e-4).length} nodes > 1e-4); ` +
        `max|dhidden| ${worstH.toExponential(2)}; argmax agreement ${argmaxAgree}/${nodes}`,
    );
    expect(median).toBeLessThanOrEqual(TOL_MEDIAN);
    expect(worstL).toBeLessThanOrEqual(TOL_LOGITS);
    expect(worstH).toBeLessThanOrEqual(TOL_HIDDEN);
    expect(argmaxAgree).toBe(nodes);
  });

  it('accepts an empty past (P = 0) and rejects shape mismatches', async () => {
    const c = lm.newCache();
    const out = await lm.decodeOne(1, c);
    expect(out.logits.length).toBe(V);
    expect(c.length).toBe(1);
    await expect(lm.forward([1, 2], [1], new Float32Array(4), c)).rejects.toThrow(/shape/);
  });
});
