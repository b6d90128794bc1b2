/**
 * Bit-identity at every context length the model accepts: a token verified inside a tree or a
 * prefill chunk gets exactly the logits, hidden row and K/V that decoding it alone gives, for
 * P cached positions from 0 to max_seq_len - S and S from 1 to 32 (panel and MLAS block
 * boundaries included), and greedy speculative decoding of long prompts (300-450 tokens) is
 * token-identical to plain decoding for every drafter.
 *
 * The reference is one-token decoding of a 512-token sequence of real third-party Python
 * (bench/prompts-long.jsonl), position by position.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine, type GenerateRequest } from '../../src/engine/index.js';
import { KVCache } from '../../src/engine/kv-cache.js';
import { OracleDrafter, registerDrafters } from '../../src/engine/drafters/index.js';
import { Rng } from '../../src/engine/sampling.js';
import { buildTree, chainTree, pathTo, pathTokens } from '../../src/engine/tree.js';
import type { SamplingParams } from '../../src/engine/types.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { MODEL_DIR, ROOT, requireFile, requireModel } from './helpers.js';

const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0, seed: 0 };
const LONG_PROMPTS = 20;
const NEW_TOKENS = 64;

let engine: Engine;
let N: number; // max_seq_len
let V: number;
let d: number;
let seq: number[]; // N tokens of real text
let refLogits: Float32Array[]; // refLogits[t]: next-token logits after seq[0..t], decoded one by one
let refHidden: Float32Array[];
let ref: KVCache; // the one-by-one cache of all N tokens
let longPrompts: number[][];

/** Bitwise equality of two float arrays (NaN-safe, -0 distinct from +0). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

beforeAll(async () => {
  requireModel();
  engine = await Engine.load(fsShardSource(MODEL_DIR));
  registerDrafters(engine);
  ({ max_seq_len: N, vocab_size: V, d_model: d } = engine.config);
  const lines = requireFile(join(ROOT, 'bench/prompts-long.jsonl'), 'bench/make-long-prompts.ts')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
  longPrompts = lines.slice(0, LONG_PROMPTS).map((p) => engine.encodePrompt(p));
  seq = [];
  for (const p of lines) {
    seq.push(...engine.encodePrompt(p));
    if (seq.length >= N) break;
  }
  seq = seq.slice(0, N);
  const lm = engine.model;
  ref = lm.newCache();
  refLogits = [];
  refHidden = [];
  for (const t of seq) {
    const out = await lm.decodeOne(t, ref);
    refLogits.push(out.logits);
    refHidden.push(out.hidden);
  }
}, 600_000);

/** Verifies seq[P .. P+S-1] as one chain from the reference cache cut to P; returns mismatches. */
async function chainMismatches(cache: KVCache, P: number, S: number): Promise<string[]> {
  if (cache.length < P) cache.importRange(cache.length, ref.exportRange(cache.length, P));
  cache.truncate(P);
  const out = await engine.model.verifyTree(chainTree(seq.slice(P, P + S)), cache);
  const bad: string[] = [];
  for (let j = 0; j < S; j++) {
    if (!sameBits(out.logits.subarray(j * V, (j + 1) * V), refLogits[P + j])) bad.push(`P=${P} S=${S} row ${j}: logits`);
    if (!sameBits(out.hidden.subarray(j * d, (j + 1) * d), refHidden[P + j])) bad.push(`P=${P} S=${S} row ${j}: hidden`);
  }
  if (!bytesEqual(cache.exportRange(P, P + S), ref.exportRange(P, P + S))) bad.push(`P=${P} S=${S}: new K/V rows`);
  return bad;
}

describe('bit-identity at every context length', () => {
  it('a 16-token chain verify equals one-token decoding at every P from 0 to max_seq_len - 16', async () => {
    const cache = ref.clone();
    const bad: string[] = [];
    for (let P = 0; P + 16 <= N; P++) bad.push(...(await chainMismatches(cache, P, 16)));
    expect(bad).toEqual([]);
  });

  it('every S from 1 to 32 at the panel and kernel-block boundaries and the end of the context', async () => {
    const cache = ref.clone();
    const bad: string[] = [];
    const Ps = [0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 250, 255, 256, 257, 300, 383, 384, 385, 400, 479, 480, 481, 496];
    for (let S = 1; S <= 32; S++) {
      for (const P of [...Ps, N - S]) if (P + S <= N) bad.push(...(await chainMismatches(cache, P, S)));
    }
    expect(bad).toEqual([]);
  });

  it('branching trees at every P: every node equals its path verified alone, and keep() leaves that path\'s K/V', async () => {
    // A tree node's row is its index, its position is P + depth: rows and positions fall in
    // different panels whenever a tree crosses a panel boundary, which a chain never shows.
    const lm = engine.model;
    const bad: string[] = [];
    const cache = ref.clone();
    const rng = Rng.fromSeed(11);
    for (let P = 0; P + 12 <= N - 6; P++) {
      if (cache.length < P) cache.importRange(cache.length, ref.exportRange(cache.length, P));
      cache.truncate(P);
      const truth = seq.slice(P + 1, P + 6);
      const cands = [truth];
      while (cands.length < 8) {
        const keep = truth.slice(0, Math.floor(rng.next() * 3));
        cands.push([...keep, ...Array.from({ length: 1 + Math.floor(rng.next() * 3) }, () => 3 + Math.floor(rng.next() * (V - 3)))]);
      }
      const tree = buildTree(seq[P], cands, 12);
      const snapshot = cache.clone();
      const out = await lm.verifyTree(tree, cache);
      for (let i = 0; i < tree.tokens.length; i++) {
        const path = pathTo(tree, i);
        const alone = snapshot.clone();
        const solo = await lm.verifyTree(chainTree(pathTokens(tree, path)), alone);
        const last = path.length - 1;
        if (!sameBits(out.logits.subarray(i * V, (i + 1) * V), solo.logits.subarray(last * V, (last + 1) * V))) bad.push(`P=${P} node ${i}: logits`);
        if (!sameBits(out.hidden.subarray(i * d, (i + 1) * d), solo.hidden.subarray(last * d, (last + 1) * d))) bad.push(`P=${P} node ${i}: hidden`);
        if (i === tree.tokens.length - 1) {
          const kept = cache.clone();
          kept.keep(P, path);
          if (!bytesEqual(kept.exportRange(P), alone.exportRange(P))) bad.push(`P=${P} node ${i}: K/V after keep`);
        }
      }
      cache.truncate(P);
    }
    expect(bad).toEqual([]);
  });

  it('prefill in chunks of any size equals one-token decoding', async () => {
    const lm = engine.model;
    const bad: string[] = [];
    for (const chunk of [7, 32, 100, 128, 511]) {
      const c = lm.newCache();
      for (let s = 0; s < N; s += chunk) {
        const part = seq.slice(s, Math.min(N, s + chunk));
        const out = await lm.prefill(part, c);
        for (let j = 0; j < part.length; j++) {
          if (!sameBits(out.logits.subarray(j * V, (j + 1) * V), refLogits[s + j])) bad.push(`chunk ${chunk} pos ${s + j}`);
        }
      }
      if (!bytesEqual(c.exportRange(), ref.exportRange())) bad.push(`chunk ${chunk}: K/V`);
    }
    expect(bad).toEqual([]);
  });
});

describe('greedy speculative decoding of long prompts is identical to plain', () => {
  async function run(drafter: string, prompt: number[], oracle?: OracleDrafter): Promise<number[]> {
    const s = engine.createSession();
    if (oracle) engine.registerDrafter('oracle', () => oracle);
    const req: GenerateRequest = { promptTokens: prompt, maxTokens: NEW_TOKENS, sampling: GREEDY, drafter };
    const out: number[] = [];
    for await (const ev of s.generate(req)) if (ev.type === 'tokens') out.push(...ev.tokens);
    return out;
  }

  it(`${LONG_PROMPTS} prompts of 300-450 tokens, ${NEW_TOKENS} new tokens, every drafter`, async () => {
    const drafters = ['ngram', 'ctc', 'ctc-ngram', 'medusa', 'medusa-ngram', 'oracle'];
    const differ: string[] = [];
    let total = 0;
    for (const [i, p] of longPrompts.entries()) {
      expect(p.length).toBeGreaterThanOrEqual(300);
      expect(p.length + NEW_TOKENS).toBeLessThanOrEqual(N);
      const plain = await run('plain', p);
      total += plain.length;
      for (const name of drafters) {
        const got = await run(name, p, name === 'oracle' ? new OracleDrafter([...p, ...plain]) : undefined);
        if (got.join(',') !== plain.join(',')) differ.push(`prompt ${i} (${p.length} tokens): ${name}`);
      }
    }
    expect(total).toBeGreaterThan(LONG_PROMPTS * NEW_TOKENS * 0.5); // real continuations, not instant stops
    expect(differ).toEqual([]);
  });
});
