/**
 * The draft heads (PrefixHead over the default model's `ctc_head`): the head's cache, reused across rounds,
 * gives the same drafts as running the head over the whole prefix again; a changed context drops the
 * positions after the change; a session without hidden history still gets drafts; the head fused
 * into the verify pass (`ctc_fused`) verifies exactly as the base graph and drafts exactly as a run of
 * its own; and greedy decoding with ctc / ctc-ngram / medusa / medusa-ngram is token-identical to plain.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/index.js';
import { HybridDrafter, PrefixHead, registerDrafters } from '../../../src/engine/drafters/index.js';
import type { DraftContext } from '../../../src/engine/types.js';
import { fsShardSource } from '../../../scripts/node/fs-shard-source.js';
import { MODEL_DIR, requireModel } from '../helpers.js';

let engine: Engine;
let d: number;
const TEXT = 'import os\nimport sys\n\n\ndef main(argv):\n    """Parse the arguments and run."""\n    for arg in argv[1:]:\n        print(arg)\n';

beforeAll(async () => {
  requireModel();
  engine = await Engine.load(fsShardSource(MODEL_DIR));
  for (const h of ['ctc_head', 'medusa_head']) {
    if (!engine.manifest.files[h]) throw new Error(`${MODEL_DIR}/manifest.json has no ${h}: training/train_heads.py, then training/export_onnx.py and training/shard.py`);
  }
  registerDrafters(engine);
  d = engine.config.d_model;
});

/** Hidden rows of every position of `tokens` (a prefill), as a session holds them. */
async function rowsOf(tokens: number[]): Promise<Float32Array> {
  return (await engine.model.prefill(tokens, engine.model.newCache())).hidden;
}

function ctx(tokens: number[], rows: Float32Array): DraftContext {
  const n = tokens.length;
  return { tokens, hidden: rows.slice((n - 2) * d, (n - 1) * d), hiddenRows: rows.subarray(0, (n - 1) * d), pending: tokens[n - 1], budget: 16 };
}

const newHead = async (fused = false, window = 0) => {
  const c = engine.manifest.files.ctc_head.config as { n_heads: number };
  return new PrefixHead(await engine.artifactSession('ctc_head'), { d, heads: c.n_heads, headDim: d / c.n_heads, maxSeqLen: 512 }, 'log_probs', fused ? await engine.artifactSession('ctc_fused') : undefined, window);
};

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('PrefixHead', () => {
  it('reuses its cache across rounds with the same output as a fresh pass over the prefix', async () => {
    const tokens = engine.encodePrompt(TEXT);
    const rows = await rowsOf(tokens);
    const inc = await newHead();
    let last: Float32Array = new Float32Array(0);
    for (const n of [10, 11, 14, 20, tokens.length]) last = await inc.output(ctx(tokens.slice(0, n), rows));
    expect(inc.cached).toEqual({ from: 0, count: tokens.length - 1 });
    const fresh = await newHead();
    const once = await fresh.output(ctx(tokens, rows));
    expect(fresh.runs).toBe(1);
    // exact: cached K/V depend on their own row only, and the newest row attends in one pass
    expect(maxDiff(last, once)).toBe(0);
  });

  it('drops the positions after a changed token', async () => {
    const a = engine.encodePrompt(TEXT);
    const b = [...a];
    b[12] = b[12] === 5 ? 6 : 5;
    const head = await newHead();
    await head.output(ctx(a, await rowsOf(a)));
    const rowsB = await rowsOf(b);
    const got = await head.output(ctx(b, rowsB));
    const want = await (await newHead()).output(ctx(b, rowsB));
    expect(maxDiff(got, want)).toBe(0);
  });

  it('after a restore it drafts from the rows it has and grows its window from there', async () => {
    const tokens = engine.encodePrompt(TEXT);
    const rows = await rowsOf(tokens);
    const n = tokens.length;
    const head = await newHead();
    // a restored session knows only the row before the pending token
    const c = ctx(tokens.slice(0, n - 6), rows);
    const out = await head.output({ ...c, hiddenRows: rows.slice((n - 8) * d, (n - 7) * d), hiddenRowsFrom: n - 8 });
    const { slots, vocab_size } = engine.manifest.files.ctc_head.config as { slots: number; vocab_size: number };
    expect(out.length).toBe(slots * (vocab_size + 1));
    expect(out.every(Number.isFinite)).toBe(true);
    expect(head.cached).toEqual({ from: n - 8, count: 1 });
    // later rounds: the window covers the restore point onward
    await head.output({ ...ctx(tokens, rows), hiddenRows: rows.slice((n - 8) * d, (n - 1) * d), hiddenRowsFrom: n - 8 });
    expect(head.cached).toEqual({ from: n - 8, count: 7 });
    expect(head.runs).toBe(2);
  });
});

describe('a head with a window (PrefixHead.window)', () => {
  it('reads the last W to 2W positions, with the output of a fresh head over exactly those', async () => {
    const tokens = engine.encodePrompt(TEXT + TEXT + TEXT);
    const rows = await rowsOf(tokens);
    const W = 16;
    const head = await newHead(false, W);
    expect(tokens.length).toBeGreaterThan(3 * W + 2);
    for (const n of [30, 31, 33, 40, 47, 48, 49, 50, 66, tokens.length]) {
      const out = await head.output(ctx(tokens.slice(0, n), rows));
      const newest = n - 2;
      const start = Math.max(0, W * Math.floor((newest + 1) / W) - W);
      expect(head.cached, `n=${n}`).toEqual({ from: start, count: newest + 1 - start });
      expect(head.cached.count).toBeGreaterThanOrEqual(W);
      expect(head.cached.count).toBeLessThan(2 * W);
      // a fresh head that knows only the rows from `start` on reads the same context
      const fresh = await newHead();
      const want = await fresh.output({ ...ctx(tokens.slice(0, n), rows), hiddenRows: rows.slice(start * d, (n - 1) * d), hiddenRowsFrom: start });
      expect(maxDiff(out, want), `n=${n}`).toBe(0);
    }
  });

  it('forgets its cache when a token before the window changes (the cached rows depend on it)', async () => {
    const a = engine.encodePrompt(TEXT + TEXT + TEXT);
    const b = [...a];
    b[2] = b[2] === 5 ? 6 : 5;
    const W = 16;
    const head = await newHead(false, W);
    await head.output(ctx(a, await rowsOf(a)));
    const start = head.cached.from;
    expect(start).toBeGreaterThan(2);
    const rowsB = await rowsOf(b);
    const got = await head.output(ctx(b, rowsB));
    const want = await (await newHead()).output({ ...ctx(b, rowsB), hiddenRows: rowsB.slice(start * d, (b.length - 1) * d), hiddenRowsFrom: start });
    expect(maxDiff(got, want)).toBe(0);
  });

  it('forgets the rows after a change that its window moves past (cached from 16, then reading from 32, token 20 changed)', async () => {
    const a = engine.encodePrompt(TEXT + TEXT + TEXT);
    const W = 16;
    const head = await newHead(false, W);
    await head.output(ctx(a.slice(0, 40), await rowsOf(a.slice(0, 40))));
    expect(head.cached).toEqual({ from: 16, count: 23 });
    const b = a.slice(0, 56);
    b[20] = b[20] === 5 ? 6 : 5;
    const rowsB = await rowsOf(b);
    const got = await head.output(ctx(b, rowsB));
    expect(head.cached.from).toBe(32);
    const want = await (await newHead()).output({ ...ctx(b, rowsB), hiddenRows: rowsB.slice(32 * d, (b.length - 1) * d), hiddenRowsFrom: 32 });
    expect(maxDiff(got, want)).toBe(0);
  });

  it('drafts every greedy round fused but the ones that cross into a new block, and stays lossless', async () => {
    const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    const windowed = await Engine.load(fsShardSource(MODEL_DIR));
    registerDrafters(windowed, { headWindow: 16, fused: true });
    const prompt = engine.encodePrompt(TEXT + TEXT);
    const run = async (e: Engine, drafter: string) => {
      const s = e.createSession();
      const out: number[] = [];
      let rounds = 0;
      for await (const ev of s.generate({ promptTokens: prompt, maxTokens: 48, sampling: greedy, drafter, onRound: () => rounds++ })) if (ev.type === 'tokens') out.push(...ev.tokens);
      const d = (s as unknown as { drafters: Map<string, { head: PrefixHead } | HybridDrafter> }).drafters.get(drafter);
      return { out, rounds, head: d instanceof HybridDrafter ? (d.head as unknown as { head: PrefixHead }).head : d?.head };
    };
    const plain = await run(engine, 'plain');
    for (const drafter of ['ctc', 'medusa', 'ctc-ngram']) {
      const w = await run(windowed, drafter);
      expect(w.out, drafter).toEqual(plain.out);
      const head = w.head!;
      expect(head.window).toBe(16);
      expect(head.cached.count, drafter).toBeLessThan(2 * 16);
      if (drafter !== 'ctc-ngram') {
        // 48 tokens cross at most 4 blocks of 16: the other rounds draft from the fused pass
        expect(head.runs, drafter).toBeLessThanOrEqual(1 + 4);
        expect(head.runs + head.fusedRounds, drafter).toBe(w.rounds);
      }
    }
  });
});

describe('the head fused into the verify pass', () => {
  it('verifies exactly as the base graph, and its read-out and cache rows are those of a run of its own', async () => {
    expect(engine.manifest.files.ctc_fused, 'manifest has ctc_fused (training/fuse_head.py, training/shard.py)').toBeDefined();
    const prompt = engine.encodePrompt(TEXT + TEXT + TEXT);
    for (const P of [12, 40, prompt.length - 1]) {
      const tokens = prompt.slice(0, P + 1);
      const cacheA = engine.model.newCache();
      const pre = await engine.model.prefill(tokens.slice(0, P), cacheA);
      const cacheB = engine.model.newCache();
      await engine.model.prefill(tokens.slice(0, P), cacheB);
      const one = await engine.model.decodeOne(tokens[P], cacheA);
      cacheA.truncate(P);
      const V = engine.config.vocab_size;
      // the pending token's greedy continuation and a wrong sibling: the path is longer than the root
      const g1 = one.logits.subarray(0, V).reduce((best, v, i, a) => (v > a[best] ? i : best), 0);
      const tree = { tokens: [tokens[P], g1, g1 === 7 ? 8 : 7, 9], parents: [-1, 0, 0, 1], depths: [0, 1, 1, 2] };
      const head = await newHead(true);
      await head.output(ctx(tokens, pre.hidden));
      const pass = head.fusedPass(tokens, tree)!;
      expect(pass).toBeDefined();
      const a = await engine.model.verifyTree(tree, cacheA);
      const b = await engine.model.verifyTree(tree, cacheB, pass);
      expect(maxDiff(b.logits, a.logits)).toBe(0);
      expect(maxDiff(b.hidden, a.hidden)).toBe(0);
      const greedy = [0, 1, 2, 3].map((i) => a.logits.subarray(i * V, (i + 1) * V).reduce((best, v, j, arr) => (v > arr[best] ? j : best), 0));
      const path = greedy[1] === 9 ? [0, 1, 3] : [0, 1];
      const emitted = [...path.slice(1).map((i) => tree.tokens[i]), greedy[path[path.length - 1]]];
      pass.absorb(b.extra!, path, emitted);
      // the next round: the fused read-out, no run; a fresh head over the committed prefix gives the same bits
      const next = [...tokens, ...emitted];
      const rows = await rowsOf(next);
      const runs = head.runs;
      const fusedOut = await head.output(ctx(next, rows));
      expect(head.runs).toBe(runs);
      expect(head.fusedRounds).toBe(1);
      expect(head.cached).toEqual({ from: 0, count: next.length - 1 });
      const fresh = await newHead();
      expect(maxDiff(fusedOut, await fresh.output(ctx(next, rows)))).toBe(0);
    }
  });

  it('with fused: true drafts every greedy round after the first without a run of its own, with the same tokens and trees as the default', async () => {
    const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    const fused = await Engine.load(fsShardSource(MODEL_DIR));
    registerDrafters(fused, { fused: true });
    const unfused = engine; // the default: the head runs on its own
    const run = async (e: Engine, drafter: string, sampling = greedy) => {
      const s = e.createSession();
      const out: number[] = [];
      const trees: string[] = [];
      for await (const ev of s.generate({ promptTokens: e.encodePrompt(TEXT), maxTokens: 40, sampling, drafter, onRound: (r) => trees.push(`${r.treeSize}/${r.accepted}`) })) if (ev.type === 'tokens') out.push(...ev.tokens);
      // the session's drafter instance (one per session and name) and its head
      const head = (s as unknown as { drafters: Map<string, { head: PrefixHead }> }).drafters.get(drafter)!.head;
      return { out, trees, runs: head.runs, fusedRounds: head.fusedRounds };
    };
    for (const drafter of ['ctc', 'medusa']) {
      const f = await run(fused, drafter);
      const u = await run(unfused, drafter);
      expect(f.out, drafter).toEqual(u.out);
      expect(f.trees, drafter).toEqual(u.trees);
      expect(f.trees.length).toBeGreaterThan(3);
      expect([f.runs, f.fusedRounds], `${drafter}: separate runs, fused drafts`).toEqual([1, f.trees.length - 1]);
      expect([u.runs, u.fusedRounds]).toEqual([u.trees.length, 0]);
      // sampling keeps the separate run: the fused head follows greedy tokens
      const sampled = await run(fused, drafter, { temperature: 0.8, topP: 1, topK: 0, seed: 3 });
      expect(sampled.fusedRounds).toBe(0);
      expect(sampled.runs).toBe(sampled.trees.length);
    }
  });
});

describe('head state across a snapshot', () => {
  it('a session restored from its snapshot and state chunks drafts exactly as the uninterrupted one, with and without a window', async () => {
    const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    const windowed = await Engine.load(fsShardSource(MODEL_DIR));
    registerDrafters(windowed, { headWindow: 8 });
    const cases = [...['ctc', 'medusa', 'ctc-ngram'].map((n) => [engine, n] as const), ...['ctc', 'ctc-ngram'].map((n) => [windowed, n] as const)];
    for (const [eng, drafter] of cases) {
      const rounds = (s: ReturnType<Engine['createSession']>, promptTokens: number[], out: string[]) =>
        (async () => {
          const toks: number[] = [];
          for await (const ev of s.generate({ promptTokens, maxTokens: 24, sampling: greedy, drafter, onRound: (r) => out.push(`${r.treeSize}/${r.accepted}`) })) {
            if (ev.type === 'tokens') toks.push(...ev.tokens);
          }
          return toks;
        })();
      const a = eng.createSession();
      await rounds(a, eng.encodePrompt(TEXT), []);
      const snap = JSON.parse(JSON.stringify(a.snapshot()));
      const chunks = a.kvChunks(100_000);
      expect(chunks.length).toBeGreaterThan(1);
      const b = eng.restoreSession(snap, chunks);
      const ra: string[] = [], rb: string[] = [];
      const ta = await rounds(a, [...a.tokens], ra);
      const tb = await rounds(b, [...b.tokens], rb);
      expect(tb, `${drafter} ${eng === windowed ? '(window 8)' : ''}`).toEqual(ta);
      expect(rb, `${drafter}: tree size / accepted per round`).toEqual(ra);
      expect(ra.length).toBeGreaterThan(2);
    }
  });
});

describe('the head drafters are lossless', () => {
  it('greedy ctc, ctc-ngram, medusa and medusa-ngram equal plain on prompts of growing length, in one session', async () => {
    const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
    const prompts = [TEXT, TEXT + 'def helper(x):\n    return x * 2\n', 'class Config:\n    """Settings."""\n\n    def __init__(self):\n'];
    for (const name of ['ctc', 'ctc-ngram', 'medusa', 'medusa-ngram']) {
      const spec = engine.createSession(); // one session: the head's cache follows prefix reuse
      for (const text of prompts) {
        const p = engine.encodePrompt(text);
        const run = async (s: ReturnType<Engine['createSession']>, drafter: string) => {
          const out: number[] = [];
          for await (const ev of s.generate({ promptTokens: p, maxTokens: 32, sampling: greedy, drafter })) if (ev.type === 'tokens') out.push(...ev.tokens);
          return out;
        };
        expect(await run(spec, name), `${name}: ${text.slice(0, 20)}`).toEqual(await run(engine.createSession(), 'plain'));
      }
    }
  });
});
