/**
 * Lossless tree sampling, checked statistically with the engine's real acceptance code.
 *
 * A small synthetic "language model" (V = 5, logits depend on the last two tokens) lets us compute
 * the exact distribution of the first 4 generated tokens. We sample them many times through
 * speculative rounds (a deterministic candidate tree from a different "draft model", verified by
 * `acceptSampling` from src/engine/acceptance.ts, with the engine's round semantics: root =
 * pending token, emitted = accepted draft tokens + bonus) and through plain sampling, and run a
 * chi-square goodness-of-fit test against the exact distribution. The same statistic must reject
 * deliberately broken acceptance rules (always accept the argmax child, no renormalization after a
 * rejection, Medusa's typical acceptance). Seeds are fixed, so the test is deterministic.
 *
 * A penalised case (frequency, presence and repetition penalties, a logit bias) checks that the
 * penalties act on the target distribution at every tree node as plain decoding applies them (the
 * history extended along the path): tree sampling must fit the exact penalised distribution, and a
 * rule that penalises every node with the round's starting history only must be rejected.
 */
import { describe, expect, it } from 'vitest';
import { acceptSampling, type Acceptance } from '../../src/engine/acceptance.js';
import { Rng, TokenHistory, argmax, sampleFrom, sampleToken, targetDistribution } from '../../src/engine/sampling.js';
import { buildTree, childrenOf, validateTree } from '../../src/engine/tree.js';
import { appendSampled, proposalFromLogits } from '../../src/engine/draft-sampling.js';
import { appendCTCSamples, appendMedusaSamples } from '../../src/engine/drafters/sampled.js';
import { goodnessOfFit } from './stats.js';
import type { SamplingParams, TokenTree } from '../../src/engine/types.js';

const V = 5;
const GEN = 4; // generated tokens per sample (the first from the prompt's logits, then rounds)
const PROMPT = [0, 1];

/** Logit table [V*V*V]: logits after context (..., a, b) = table[(a*V + b)*V + v]. */
function table(seed: number, scale: number): Float32Array {
  const r = Rng.fromSeed(seed);
  const t = new Float32Array(V * V * V);
  for (let i = 0; i < t.length; i++) t[i] = scale * (r.next() * 2 - 1) * 1.7;
  return t;
}
const TARGET = table(1, 1.0);
const DRAFT = table(2, 1.0); // a different model: drafts are often wrong

function logitsAfter(tab: Float32Array, ctx: readonly number[]): Float32Array {
  const a = ctx[ctx.length - 2];
  const b = ctx[ctx.length - 1];
  return tab.subarray((a * V + b) * V, (a * V + b + 1) * V);
}

/** Deterministic candidate tree: the draft model's top-2 first tokens, each continued greedily,
 *  plus the draft model's 2nd choice at the second level, cut to `budget`. */
function draftTree(ctx: readonly number[], budget: number): TokenTree {
  const cands: number[][] = [];
  const first = topK(logitsAfter(DRAFT, ctx), 2);
  for (const f of first) {
    const c1 = [...ctx, f];
    const second = topK(logitsAfter(DRAFT, c1), 2);
    for (const s of second) {
      const seq = [f, s];
      let c = [...c1, s];
      for (let d = 0; d < 2; d++) {
        const n = argmax(logitsAfter(DRAFT, c));
        seq.push(n);
        c = [...c, n];
      }
      cands.push(seq);
    }
  }
  const tree = buildTree(ctx[ctx.length - 1], cands, budget);
  validateTree(tree, ctx[ctx.length - 1]);
  return tree;
}

function topK(row: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b).slice(0, k);
}

/** Verification logits [S*V]: row i = target logits after ctx-without-root + path(root..i). */
function verifyLogits(ctx: readonly number[], tree: TokenTree): Float32Array {
  const S = tree.tokens.length;
  const out = new Float32Array(S * V);
  const base = ctx.slice(0, -1);
  for (let i = 0; i < S; i++) {
    const path: number[] = [];
    for (let n = i; n >= 0; n = tree.parents[n]) path.unshift(tree.tokens[n]);
    out.set(logitsAfter(TARGET, [...base, ...path]), i * V);
  }
  return out;
}

type AcceptFn = (tree: TokenTree, logits: Float32Array, V: number, params: SamplingParams, rng: Rng, history?: TokenHistory) => Acceptance;

function row(l: Float32Array, i: number) {
  return l.subarray(i * V, (i + 1) * V);
}

/** Broken: accept a child outright when it is the target's argmax (greedy shortcut at T>0). */
const brokenTopChild: AcceptFn = (tree, logits, _V, params, rng) => {
  const ch = childrenOf(tree);
  const path = [0];
  let node = 0;
  for (;;) {
    const p = targetDistribution(row(logits, node), params);
    const best = argmax(p);
    let acc = ch[node].find((c) => tree.tokens[c] === best) ?? -1;
    if (acc < 0) {
      // otherwise the correct rule at this node
      for (const c of ch[node]) {
        let mass = 0;
        for (const x of p) mass += x;
        const px = p[tree.tokens[c]];
        if (px > 0 && (px >= mass || rng.next() * mass < px)) { acc = c; break; }
        p[tree.tokens[c]] = 0;
      }
    }
    if (acc < 0) return { path, bonus: sampleFrom(p, rng) };
    path.push(acc);
    node = acc;
  }
};

/** Broken: accept x with probability p(x) of the ORIGINAL distribution (no renormalization after
 *  a rejected sibling). */
const brokenNoRenorm: AcceptFn = (tree, logits, _V, params, rng) => {
  const ch = childrenOf(tree);
  const path = [0];
  let node = 0;
  for (;;) {
    const p = targetDistribution(row(logits, node), params);
    const orig = Float64Array.from(p);
    let acc = -1;
    for (const c of ch[node]) {
      if (rng.next() < orig[tree.tokens[c]]) { acc = c; break; }
      p[tree.tokens[c]] = 0;
    }
    if (acc < 0) return { path, bonus: sampleFrom(p.some((x) => x > 0) ? p : orig, rng) };
    path.push(acc);
    node = acc;
  }
};

/** Broken: Medusa's typical acceptance (accept x if p(x) > min(eps, delta * exp(-H(p)))). */
const brokenTypical: AcceptFn = (tree, logits, _V, params, rng) => {
  const ch = childrenOf(tree);
  const path = [0];
  let node = 0;
  for (;;) {
    const p = targetDistribution(row(logits, node), params);
    let H = 0;
    for (const x of p) if (x > 0) H -= x * Math.log(x);
    const thr = Math.min(0.3, 0.09 * Math.exp(-H));
    const acc = ch[node].find((c) => p[tree.tokens[c]] > thr);
    if (acc === undefined) return { path, bonus: sampleFrom(p, rng) };
    path.push(acc);
    node = acc;
  }
};

/** Broken (penalised case): every node's distribution uses the round's starting history, as if the
 *  accepted path's tokens had not been generated. */
const brokenStaleHistory: AcceptFn = (tree, logits, V_, params, rng, history) => acceptSamplingWith(tree, logits, V_, params, rng, () => history);

/** The correct rule with a chosen history per node (for brokenStaleHistory). */
function acceptSamplingWith(tree: TokenTree, logits: Float32Array, _V: number, params: SamplingParams, rng: Rng, historyAt: () => TokenHistory | undefined): Acceptance {
  const ch = childrenOf(tree);
  const path = [0];
  let node = 0;
  for (;;) {
    const p = targetDistribution(row(logits, node), params, historyAt());
    let acc = -1;
    for (const c of ch[node]) {
      let mass = 0;
      for (const x of p) mass += x;
      const px = p[tree.tokens[c]];
      if (px > 0 && (px >= mass || rng.next() * mass < px)) { acc = c; break; }
      p[tree.tokens[c]] = 0;
    }
    if (acc < 0) return { path, bonus: sampleFrom(p, rng) };
    path.push(acc);
    node = acc;
  }
}

/**
 * Sampled drafts (draft-sampling.ts, as the heads draft at T > 0): under the root, optionally a
 * deterministic chain first (the draft model's argmax twice, as prompt lookup would propose it),
 * then siblings drawn without replacement from the draft model's q (tempered / truncated with the
 * request's parameters) and a chain under the first: widths [2, 1, 1]. q depends on the drafted
 * prefix, as the CTC head's prefix conditionals do.
 */
function sampledDraftTree(ctx: readonly number[], params: SamplingParams, rng: Rng, budget: number, lookupFirst: boolean): TokenTree {
  const tree: TokenTree = { tokens: [ctx[ctx.length - 1]], parents: [-1], depths: [0] };
  if (lookupFirst) {
    const a = argmax(logitsAfter(DRAFT, ctx));
    const b = argmax(logitsAfter(DRAFT, [...ctx, a]));
    tree.tokens.push(a, b);
    tree.parents.push(0, 1);
    tree.depths.push(1, 2);
  }
  appendSampled(tree, 0, [2, 1, 1], (prefix) => proposalFromLogits(logitsAfter(DRAFT, [...ctx, ...prefix]), params, V), rng, budget);
  validateTree(tree, ctx[ctx.length - 1]);
  return tree;
}

/**
 * Recursive rejection sampling written out with switches that break it (negative controls):
 * 'no-residual' accepts with min(1, p/q) but on rejection only removes x (no p - q residual);
 * 'with-replacement' uses q itself for every sibling instead of q without the earlier siblings;
 * 'zero-skip' rejects a sampled x with p(x) = 0 without taking q off the residual (as a point mass
 * may). 'ignore-q' is not broken: it accepts a sampled child with p(x), as if it were deterministic,
 * which is exact for any list of drafts drawn independently of the verifier's randomness, only
 * accepted less often.
 */
function brokenSampled(kind: 'ignore-q' | 'no-residual' | 'with-replacement' | 'zero-skip'): AcceptFn {
  return (tree, logits, _V, params, rng, history) => {
    const ch = childrenOf(tree);
    const path = [0];
    let node = 0;
    const h = history?.fork();
    for (;;) {
      let p = targetDistribution(row(logits, node), params, h);
      let acc = -1;
      const kids = ch[node];
      for (let i = 0; i < kids.length && acc < 0; i++) {
        const c = kids[i];
        const x = tree.tokens[c];
        const q = tree.proposals?.[c];
        const mass = p.reduce((a, b) => a + b, 0);
        if (!q || kind === 'ignore-q' || (kind === 'zero-skip' && !(p[x] > 0))) {
          if (p[x] > 0 && (p[x] >= mass || rng.next() * mass < p[x])) acc = c;
          else p[x] = 0;
          continue;
        }
        let z = 1;
        if (kind !== 'with-replacement') for (let j = 0; j < i; j++) z -= q[tree.tokens[kids[j]]];
        const qx = q[x] / z;
        const px = p[x] / mass;
        if (px >= qx || rng.next() * qx < px) { acc = c; continue; }
        if (kind === 'no-residual') { p[x] = 0; continue; }
        const earlier = new Set(kids.slice(0, i).map((k) => tree.tokens[k]));
        const res = p.map((v, y) => Math.max(0, earlier.has(y) && kind !== 'with-replacement' ? v : v - (q[y] / z) * mass));
        if (res.some((v) => v > 0)) p = res;
      }
      if (acc < 0) return { path, bonus: sampleFrom(p, rng) };
      path.push(acc);
      h?.push(tree.tokens[acc]);
      node = acc;
    }
  };
}

/**
 * The heads' own samplers (drafters/sampled.ts) over synthetic head outputs that depend on the
 * context: a CTC head (4 slots over a shortlist of 4 of the 5 tokens + blank; q from its prefix
 * conditionals) and a Medusa head (3 read-outs over the same shortlist). Token 4 is outside the
 * read-out: q = 0 there, so only the residual can emit it. 'ctc-lookup': the hybrid's shape, the
 * draft model's argmax first (deterministic), then the CTC head's samples after it at the root.
 */
const SHORTLIST = [0, 1, 2, 3];
const SLOTS = 4;
const CTC_TABLE = table(3, 1.5);
function headDraftTree(kind: 'ctc' | 'medusa' | 'ctc-lookup', ctx: readonly number[], params: SamplingParams, rng: Rng, budget: number): TokenTree {
  const tree: TokenTree = { tokens: [ctx[ctx.length - 1]], parents: [-1], depths: [0] };
  const vocab = { V, shortlist: SHORTLIST };
  const C = SHORTLIST.length + 1;
  if (kind === 'medusa') {
    const logits = new Float32Array(3 * SHORTLIST.length);
    for (let j = 0; j < 3; j++) {
      const l = logitsAfter(DRAFT, [...ctx, j % V]);
      for (let c = 0; c < SHORTLIST.length; c++) logits[j * SHORTLIST.length + c] = l[SHORTLIST[c]];
    }
    appendMedusaSamples({ tree, parent: 0, vocab, params, rng, budget, opts: { widths: [2, 1, 1], minContinue: 0 } }, logits, 3);
  } else {
    if (kind === 'ctc-lookup') {
      tree.tokens.push(argmax(logitsAfter(DRAFT, ctx)));
      tree.parents.push(0);
      tree.depths.push(1);
    }
    const lp = new Float32Array(SLOTS * C);
    for (let s = 0; s < SLOTS; s++) {
      const l = logitsAfter(CTC_TABLE, [...ctx, s % V]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(l[c]);
      for (let c = 0; c < C; c++) lp[s * C + c] = l[c] - Math.log(z); // class 4 (the table's token 4) is the blank
    }
    appendCTCSamples({ tree, parent: 0, vocab, params, rng, budget, opts: { widths: [2, 1, 1], minContinue: 0.05 } }, lp, SLOTS, C - 1);
  }
  validateTree(tree, ctx[ctx.length - 1]);
  return tree;
}

type Draft = (ctx: readonly number[], params: SamplingParams, rng: Rng, budget: number) => TokenTree;
const deterministicDraft: Draft = (ctx, _params, _rng, budget) => draftTree(ctx, budget);

/** One sample of GEN tokens through speculative rounds (the penalties' history as the engine keeps it). */
function sampleSpeculative(accept: AcceptFn, params: SamplingParams, rng: Rng, budget: number, draft: Draft = deterministicDraft): number[] {
  const ctx = [...PROMPT];
  const h = TokenHistory.fromPrompt(PROMPT);
  ctx.push(sampleToken(logitsAfter(TARGET, ctx), params, rng, h)); // the first pending token (prefill)
  h.push(ctx[ctx.length - 1]);
  while (ctx.length - PROMPT.length < GEN) {
    const tree = draft(ctx, params, rng, budget);
    const { path, bonus } = accept(tree, verifyLogits(ctx, tree), V, params, rng, h);
    const emitted = [...path.slice(1).map((n) => tree.tokens[n]), bonus];
    for (const t of emitted) {
      ctx.push(t);
      h.push(t);
    }
  }
  return ctx.slice(PROMPT.length, PROMPT.length + GEN);
}

function samplePlain(params: SamplingParams, rng: Rng): number[] {
  const ctx = [...PROMPT];
  const h = TokenHistory.fromPrompt(PROMPT);
  while (ctx.length - PROMPT.length < GEN) {
    ctx.push(sampleToken(logitsAfter(TARGET, ctx), params, rng, h));
    h.push(ctx[ctx.length - 1]);
  }
  return ctx.slice(PROMPT.length);
}

/** Exact probability of every GEN-token outcome (index = base-V number), penalties included. */
function exactDistribution(params: SamplingParams): Float64Array {
  const out = new Float64Array(V ** GEN);
  const rec = (ctx: number[], prob: number, depth: number, idx: number) => {
    if (depth === GEN) { out[idx] += prob; return; }
    const h = TokenHistory.fromPrompt(PROMPT);
    for (const t of ctx.slice(PROMPT.length)) h.push(t);
    const p = targetDistribution(logitsAfter(TARGET, ctx), params, h);
    for (let v = 0; v < V; v++) if (p[v] > 0) rec([...ctx, v], prob * p[v], depth + 1, idx * V + v);
  };
  rec([...PROMPT], 1, 0, 0);
  return out;
}

function histogram(n: number, draw: () => number[]): Float64Array {
  const counts = new Float64Array(V ** GEN);
  for (let i = 0; i < n; i++) {
    const s = draw();
    let idx = 0;
    for (const t of s) idx = idx * V + t;
    counts[idx]++;
  }
  return counts;
}

const N = 25000;
// Decision rule: a correct sampler must give p > ALPHA; the broken ones must give p < ALPHA.
// With fixed seeds the outcome is deterministic; ALPHA = 1e-4 makes a false alarm for the correct
// sampler a 1-in-10^4 event over seed choices, and the broken rules' biases give p-values ~0.
const ALPHA = 1e-4;

describe('lossless tree sampling (engine acceptance.ts) against the exact distribution', () => {
  const cases: [string, SamplingParams][] = [
    ['T=1', { temperature: 1, topP: 1, topK: 0, seed: 0 }],
    ['T=0.8 top-k 4 top-p 0.9', { temperature: 0.8, topP: 0.9, topK: 4, seed: 0 }],
  ];
  for (const [label, params] of cases) {
    it(`${label}: plain and tree sampling both fit; broken acceptance rules are rejected`, () => {
      const exact = exactDistribution(params);
      let s = 0;
      for (const x of exact) s += x;
      expect(s).toBeCloseTo(1, 12);
      const rngPlain = Rng.fromSeed(11);
      const plain = goodnessOfFit(histogram(N, () => samplePlain(params, rngPlain)), exact, N);
      const rngSpec = Rng.fromSeed(12);
      const spec = goodnessOfFit(histogram(N, () => sampleSpeculative(acceptSampling, params, rngSpec, 12)), exact, N);
      const rngSpec2 = Rng.fromSeed(13);
      const specSmall = goodnessOfFit(histogram(N, () => sampleSpeculative(acceptSampling, params, rngSpec2, 3)), exact, N);
      const broken: Record<string, ReturnType<typeof goodnessOfFit>> = {};
      for (const [name, fn] of [['top-child', brokenTopChild], ['no-renorm', brokenNoRenorm], ['typical', brokenTypical]] as const) {
        const r = Rng.fromSeed(14);
        broken[name] = goodnessOfFit(histogram(N, () => sampleSpeculative(fn, params, r, 12)), exact, N);
      }
      const fmt = (g: ReturnType<typeof goodnessOfFit>) => `chi2=${g.chi2.toFixed(1)} df=${g.df} p=${g.pValue.toExponential(2)} tv=${g.tv.toFixed(4)}`;
      console.log(`[${label}] plain ${fmt(plain)}\n  tree(12) ${fmt(spec)}\n  tree(3) ${fmt(specSmall)}\n` +
        Object.entries(broken).map(([k, g]) => `  broken ${k}: ${fmt(g)}`).join('\n'));
      expect(plain.pValue).toBeGreaterThan(ALPHA);
      expect(spec.pValue).toBeGreaterThan(ALPHA);
      expect(specSmall.pValue).toBeGreaterThan(ALPHA);
      for (const g of Object.values(broken)) expect(g.pValue).toBeLessThan(ALPHA);
    }, 60000);
  }

  it('penalised (frequency 0.7, presence 0.5, repetition 1.4, a logit bias): plain and tree sampling fit; a stale history is rejected', () => {
    const params: SamplingParams = { temperature: 1, topP: 1, topK: 0, seed: 0, frequencyPenalty: 0.7, presencePenalty: 0.5, repetitionPenalty: 1.4, logitBias: { 3: 0.6 } };
    const exact = exactDistribution(params);
    const unpenalised = exactDistribution({ temperature: 1, topP: 1, topK: 0, seed: 0 });
    let tv = 0;
    for (let i = 0; i < exact.length; i++) tv += Math.abs(exact[i] - unpenalised[i]) / 2;
    expect(tv).toBeGreaterThan(0.1); // the penalties change the distribution a lot
    const rngPlain = Rng.fromSeed(21);
    const plainFit = goodnessOfFit(histogram(N, () => samplePlain(params, rngPlain)), exact, N);
    const rngSpec = Rng.fromSeed(22);
    const spec = goodnessOfFit(histogram(N, () => sampleSpeculative(acceptSampling, params, rngSpec, 12)), exact, N);
    const rngSpec2 = Rng.fromSeed(23);
    const specSmall = goodnessOfFit(histogram(N, () => sampleSpeculative(acceptSampling, params, rngSpec2, 3)), exact, N);
    const rngStale = Rng.fromSeed(24);
    const stale = goodnessOfFit(histogram(N, () => sampleSpeculative(brokenStaleHistory, params, rngStale, 12)), exact, N);
    const fmt = (g: ReturnType<typeof goodnessOfFit>) => `chi2=${g.chi2.toFixed(1)} df=${g.df} p=${g.pValue.toExponential(2)} tv=${g.tv.toFixed(4)}`;
    console.log(`[penalised] tv to unpenalised ${tv.toFixed(3)}\n  plain ${fmt(plainFit)}\n  tree(12) ${fmt(spec)}\n  tree(3) ${fmt(specSmall)}\n  broken stale history: ${fmt(stale)}`);
    expect(plainFit.pValue).toBeGreaterThan(ALPHA);
    expect(spec.pValue).toBeGreaterThan(ALPHA);
    expect(specSmall.pValue).toBeGreaterThan(ALPHA);
    expect(stale.pValue).toBeLessThan(ALPHA);
  }, 60000);

  const sampledCases: [string, SamplingParams][] = [
    ['T=1', { temperature: 1, topP: 1, topK: 0, seed: 0 }],
    ['T=0.8 top-p 0.9', { temperature: 0.8, topP: 0.9, topK: 0, seed: 0 }],
    ['T=1 with penalties', { temperature: 1, topP: 1, topK: 0, seed: 0, frequencyPenalty: 0.7, presencePenalty: 0.5, repetitionPenalty: 1.4, logitBias: { 3: 0.6 } }],
  ];
  for (const [label, params] of sampledCases) {
    it(`${label}: sampled drafts (alone and after deterministic ones) fit (and so do drafts verified as if deterministic); no residual, with-replacement q and a skipped residual are rejected`, () => {
      const exact = exactDistribution(params);
      const fmt = (g: ReturnType<typeof goodnessOfFit>) => `chi2=${g.chi2.toFixed(1)} df=${g.df} p=${g.pValue.toExponential(2)} tv=${g.tv.toFixed(4)}`;
      const fit = (seed: number, accept: AcceptFn, lookupFirst: boolean, budget = 12) => {
        const rng = Rng.fromSeed(seed);
        const draft: Draft = (ctx, pr, r, b) => sampledDraftTree(ctx, pr, r, b, lookupFirst);
        return goodnessOfFit(histogram(N, () => sampleSpeculative(accept, params, rng, budget, draft)), exact, N);
      };
      const sampled = fit(31, acceptSampling, false);
      const mixed = fit(32, acceptSampling, true);
      const mixedSmall = fit(33, acceptSampling, true, 4); // the budget cuts the sampled siblings
      const ignoreQ = fit(34, brokenSampled('ignore-q'), false);
      const broken: Record<string, ReturnType<typeof goodnessOfFit>> = {
        'no-residual': fit(35, brokenSampled('no-residual'), false),
        'with-replacement': fit(36, brokenSampled('with-replacement'), false),
      };
      // p(x) = 0 happens under top-p and with a large penalty, not at T = 1 without them
      if (params.topP < 1) broken['zero-skip'] = fit(37, brokenSampled('zero-skip'), false);
      console.log(`[sampled ${label}] sampled ${fmt(sampled)}\n  lookup + sampled ${fmt(mixed)}\n  budget 4 ${fmt(mixedSmall)}\n  q ignored ${fmt(ignoreQ)}\n` +
        Object.entries(broken).map(([k, g]) => `  broken ${k}: ${fmt(g)}`).join('\n'));
      expect(sampled.pValue).toBeGreaterThan(ALPHA);
      expect(mixed.pValue).toBeGreaterThan(ALPHA);
      expect(mixedSmall.pValue).toBeGreaterThan(ALPHA);
      expect(ignoreQ.pValue).toBeGreaterThan(ALPHA);
      for (const g of Object.values(broken)) expect(g.pValue).toBeLessThan(ALPHA);
    }, 120000);
  }

  for (const [label, params] of sampledCases) {
    it(`${label}: the CTC head's, Medusa's and the hybrid's sampled trees fit; without the residual they are rejected`, () => {
      const exact = exactDistribution(params);
      const fmt = (g: ReturnType<typeof goodnessOfFit>) => `chi2=${g.chi2.toFixed(1)} df=${g.df} p=${g.pValue.toExponential(2)} tv=${g.tv.toFixed(4)}`;
      const lines: string[] = [];
      for (const [i, kind] of (['ctc', 'medusa', 'ctc-lookup'] as const).entries()) {
        const fit = (seed: number, accept: AcceptFn) => {
          const rng = Rng.fromSeed(seed);
          return goodnessOfFit(histogram(N, () => sampleSpeculative(accept, params, rng, 12, (c, p, r, b) => headDraftTree(kind, c, p, r, b))), exact, N);
        };
        const good = fit(41 + i, acceptSampling);
        const bad = fit(51 + i, brokenSampled('no-residual'));
        lines.push(`  ${kind}: ${fmt(good)}\n  ${kind} broken no-residual: ${fmt(bad)}`);
        expect(good.pValue).toBeGreaterThan(ALPHA);
        expect(bad.pValue).toBeLessThan(ALPHA);
      }
      console.log(`[heads ${label}]\n${lines.join('\n')}`);
    }, 180000);
  }

  it('the drafted trees actually get accepted sometimes (the test exercises the tree path)', () => {
    const params = { temperature: 1, topP: 1, topK: 0, seed: 0 };
    const rng = Rng.fromSeed(3);
    let accepted = 0, rounds = 0;
    for (let i = 0; i < 2000; i++) {
      const ctx = [...PROMPT, sampleToken(logitsAfter(TARGET, PROMPT), params, rng)];
      const tree = draftTree(ctx, 12);
      const { path } = acceptSampling(tree, verifyLogits(ctx, tree), V, params, rng);
      accepted += path.length - 1;
      rounds++;
    }
    expect(accepted / rounds).toBeGreaterThan(0.3);
  });
});
