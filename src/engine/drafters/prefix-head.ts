/**
 * A draft head that attends over the prefix positions (`files.ctc_head`, `files.medusa_head`), with
 * its own KV cache, one ORT run per round. Position t's input is the base model's hidden row at t
 * and the token at t+1, so at a round with n committed tokens (the last one pending) the head has
 * seen positions 0..n-2, and its output at n-2 drafts the tokens after the pending one.
 *
 * Graph (training/export_onnx.py build_prefix_head; m new positions, Ph cached, Hh heads of Dh):
 *   in:  hidden [1,m,d], next_ids int64 [1,m], position_ids int64 [1,m],
 *        attention_mask [1,1,m,Ph+m] (additive, causal), past_key / past_value [1,Hh,Ph,Dh]
 *   out: the read-out of the newest position (log_probs [slots, V'+1] or logits [k, V]),
 *        new_key / new_value [1,Hh,m,Dh]
 *
 * One instance per decoding session (it holds that session's head cache); the ORT session is
 * shared. The head's attention need not be bit-exact: it only proposes, the base model verifies.
 *
 * Fused (when the manifest has `<kind>_fused`, training/fuse_head.py): in a greedy round the tree
 * is verified on a graph that also accepts greedily and runs this head over the accepted path (next
 * token = each path node's greedy token). The path's head rows join the cache and the read-out of
 * its last node drafts the next round, so a round costs one `session.run()`. `fusedPass` needs the
 * cache complete up to the root's parent (after any separate run it is).
 */
import type { DraftContext, FusedPass, TokenTree } from '../types.js';
import { ort, type OrtSession } from '../ort.js';
import type { DraftHead } from './draft-head.js';

export interface PrefixHeadShape {
  d: number;
  heads: number;
  headDim: number;
  maxSeqLen: number;
}

export class PrefixHead implements DraftHead {
  runs = 0;
  private readonly session: OrtSession;
  private readonly shape: PrefixHeadShape;
  private readonly outputName: string;
  /** Head K and V, [Hh, cap, Dh] each; index j holds position base + j, j < len. */
  private k = new Float32Array(0);
  private v = new Float32Array(0);
  private cap = 0;
  private len = 0;
  private base = 0;
  /**
   * The tokens the cache was computed from, tokens[0 .. base + len]: a cached row's K/V depend on
   * every token up to its next one (through the base hidden rows), so the rows before the first
   * changed token are the ones that stay valid, wherever the change is (also before the window).
   */
  private seen: number[] = [];
  /** The verify graph with this head fused in, if the model has one. */
  private readonly fused?: OrtSession;
  /** A read-out the last fused pass made: the draft from position `at`. */
  private ready: { at: number; out: Float32Array } | null = null;
  /** Rounds whose draft came from a fused pass (tests, benchmarks). */
  fusedRounds = 0;

  /**
   * How far back the head reads (0: every known position): with W > 0 it attends over the last W to
   * 2W positions (contextStart), so its pass over a long prompt and its attention every round cost
   * a bounded number of positions, whatever the context's length.
   */
  readonly window: number;

  constructor(session: OrtSession, shape: PrefixHeadShape, outputName: string, fused?: OrtSession, window = 0) {
    if (!(Number.isInteger(window) && window >= 0)) throw new Error(`prefix head: window must be an integer >= 0 (got ${window})`);
    this.window = window;
    for (const n of ['hidden', 'next_ids', 'position_ids', 'attention_mask', 'past_key', 'past_value']) {
      if (!session.inputNames.includes(n)) throw new Error(`prefix head: missing input ${n} (has ${session.inputNames.join(', ')})`);
    }
    for (const n of [outputName, 'new_key', 'new_value']) {
      if (!session.outputNames.includes(n)) throw new Error(`prefix head: missing output ${n}`);
    }
    this.session = session;
    this.shape = shape;
    this.outputName = outputName;
    if (fused) {
      for (const n of ['head_past_key', 'head_past_value', 'tree_parents', 'tree_ancestors']) {
        if (!fused.inputNames.includes(n)) throw new Error(`fused head: missing input ${n}`);
      }
      for (const n of ['greedy_ids', 'head_path', 'head_new_key', 'head_new_value', `head_${outputName}`]) {
        if (!fused.outputNames.includes(n)) throw new Error(`fused head: missing output ${n}`);
      }
      this.fused = fused;
    }
  }

  /** Positions the head's cache covers: [from, from + count) (tests). */
  get cached(): { from: number; count: number } {
    return { from: this.base, count: this.len };
  }

  async output(ctx: DraftContext): Promise<Float32Array> {
    const { d, heads: H, headDim: D } = this.shape;
    const n = ctx.tokens.length;
    const newest = n - 2; // the position whose output drafts after the pending token
    if (newest < 0) throw new Error('prefix head: no position before the pending token');
    // The session's hidden rows cover positions [from, from + avail); the head's cache covers
    // [base, base + len).
    const from = ctx.hiddenRowsFrom ?? 0;
    const avail = ctx.hiddenRows ? ctx.hiddenRows.length / d : 0;
    let rows: Float32Array;
    let rowsFrom: number;
    if (from + avail >= newest + 1 && from <= newest) {
      rows = ctx.hiddenRows!;
      rowsFrom = from;
    } else {
      rows = ctx.hidden; // only the newest row is known
      rowsFrom = newest;
    }
    const target = this.contextStart(newest, rowsFrom);
    const ready = this.ready;
    this.ready = null;
    if (ready && ready.at === newest && this.base === target && this.complete(ctx.tokens)) {
      this.fusedRounds++;
      return ready.out;
    }
    if (this.base < target && target <= this.base + this.len) this.dropBefore(target);
    else if (this.base !== target) {
      // a window of rows that starts elsewhere (a restored session) restarts the cache
      this.base = target;
      this.len = 0;
    }
    // Reuse the cached positions before the first changed token (position t needs tokens[0 .. t + 1]).
    const keep = Math.max(0, Math.min(this.len, newest - this.base, this.sameTokens(ctx.tokens) - this.base - 1));
    const start = this.base + keep;
    const m = newest + 1 - start;
    const hidden = rows.slice((start - rowsFrom) * d, (newest + 1 - rowsFrom) * d);
    const Ph = keep;
    const mask = new Float32Array(m * (Ph + m));
    for (let i = 0; i < m; i++) mask.fill(-Infinity, i * (Ph + m) + Ph + i + 1, (i + 1) * (Ph + m));
    const [pastK, pastV] = this.past(Ph);
    const out = await this.session.run({
      hidden: new ort.Tensor('float32', hidden, [1, m, d]),
      next_ids: new ort.Tensor('int64', BigInt64Array.from(ctx.tokens.slice(start + 1, newest + 2), BigInt), [1, m]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: m }, (_, i) => BigInt(start + i)), [1, m]),
      attention_mask: new ort.Tensor('float32', mask, [1, 1, m, Ph + m]),
      past_key: new ort.Tensor('float32', pastK, [1, H, Ph, D]),
      past_value: new ort.Tensor('float32', pastV, [1, H, Ph, D]),
    });
    this.runs++;
    this.append(Ph, out.new_key.data as Float32Array, out.new_value.data as Float32Array, m);
    this.seen = ctx.tokens.slice(0, newest + 2);
    const data = out[this.outputName].data as Float32Array;
    for (const [name, t] of Object.entries(out)) if (name !== this.outputName) t.dispose();
    return data;
  }

  /** The first Ph cached positions as the graphs take them: K and V [1,Hh,Ph,Dh] each. */
  private past(Ph: number): [Float32Array, Float32Array] {
    const { heads: H, headDim: D } = this.shape;
    const pastK = new Float32Array(H * Ph * D);
    const pastV = new Float32Array(H * Ph * D);
    for (let h = 0; h < H; h++) {
      pastK.set(this.k.subarray(h * this.cap * D, (h * this.cap + Ph) * D), h * Ph * D);
      pastV.set(this.v.subarray(h * this.cap * D, (h * this.cap + Ph) * D), h * Ph * D);
    }
    return [pastK, pastV];
  }

  /** The cache holds every position before the pending token, each with its current next token. */
  private complete(tokens: readonly number[]): boolean {
    return this.base + this.len === tokens.length - 1 && this.sameTokens(tokens) === tokens.length;
  }

  /**
   * The verify pass on the fused graph for `tree` (root = tokens[n-1] at position n-1), or
   * undefined (no fused graph, or the cache is not complete: the base graph verifies, and the next
   * separate run catches the cache up).
   *   head_past_key/value [1,Hh,Ph,Dh] (Ph = n-1-base), tree_parents int64 [S] (root 0),
   *   tree_ancestors [S,S] (1 where column j > 0 is row i or one of its ancestors)
   */
  fusedPass(tokens: readonly number[], tree: TokenTree): FusedPass | undefined {
    if (!this.fused || tokens.length < 2 || !this.complete(tokens)) return undefined;
    const { heads: H, headDim: D } = this.shape;
    const S = tree.tokens.length;
    const Ph = this.len;
    const [pastK, pastV] = this.past(Ph);
    const ancestors = new Float32Array(S * S);
    for (let i = 0; i < S; i++) for (let a = i; a > 0; a = tree.parents[a]) ancestors[i * S + a] = 1;
    const at = tokens.length - 1; // the root's position
    return {
      session: this.fused,
      feeds: {
        head_past_key: new ort.Tensor('float32', pastK, [1, H, Ph, D]),
        head_past_value: new ort.Tensor('float32', pastV, [1, H, Ph, D]),
        tree_parents: new ort.Tensor('int64', BigInt64Array.from(tree.parents, (p) => BigInt(Math.max(p, 0))), [S]),
        tree_ancestors: new ort.Tensor('float32', ancestors, [S, S]),
      },
      outputs: ['greedy_ids', 'head_path', 'head_new_key', 'head_new_value', `head_${this.outputName}`],
      absorb: (extra, path, emitted) => this.absorb(extra, at, path, emitted),
    };
  }

  /**
   * Keeps the head rows of the graph's path [m] that the round committed with the greedy token as
   * their next token (committed node k's next token is emitted[k]), and the read-out when every
   * path row was kept (always in greedy decoding, unless a stop cut the round short).
   */
  private absorb(extra: Record<string, ort.Tensor>, at: number, path: readonly number[], emitted: readonly number[]): void {
    const { heads: H, headDim: D } = this.shape;
    const greedy = extra.greedy_ids.data as BigInt64Array;
    const gpath = extra.head_path.data as BigInt64Array;
    const newK = extra.head_new_key.data as Float32Array; // [1,H,m,D]
    const newV = extra.head_new_value.data as Float32Array;
    const out = extra[`head_${this.outputName}`].data as Float32Array;
    for (const t of Object.values(extra)) t.dispose();
    if (this.base + this.len !== at) return; // the cache moved meanwhile (not expected)
    const m = gpath.length;
    const n = Math.min(m, emitted.length);
    let ok = 0;
    while (ok < n && Number(gpath[ok]) === path[ok] && Number(greedy[path[ok]]) === emitted[ok]) ok++;
    if (ok === 0) return;
    const k = new Float32Array(H * ok * D);
    const v = new Float32Array(H * ok * D);
    for (let h = 0; h < H; h++) {
      k.set(newK.subarray(h * m * D, (h * m + ok) * D), h * ok * D);
      v.set(newV.subarray(h * m * D, (h * m + ok) * D), h * ok * D);
    }
    const Ph = this.len;
    this.append(Ph, k, v, ok);
    this.seen.length = this.base + Ph + 1;
    for (let j = 0; j < ok; j++) this.seen.push(emitted[j]);
    if (ok === m && ok === emitted.length) this.ready = { at: at + ok - 1, out };
  }

  /**
   * The first position the head reads when its newest position is n: the first known row, or with a
   * window W the start of the W-aligned block before n's block (W to 2W positions; a function of n
   * alone, so a restored session reads exactly what the uninterrupted one does, and the cache drops
   * W positions once every W instead of shifting every round).
   */
  private contextStart(n: number, rowsFrom: number): number {
    const W = this.window;
    return W > 0 ? Math.max(rowsFrom, W * Math.floor((n + 1) / W) - W) : rowsFrom;
  }

  /** How many leading tokens `tokens` shares with the ones the cache was computed from. */
  private sameTokens(tokens: readonly number[]): number {
    const n = Math.min(this.seen.length, tokens.length);
    let i = 0;
    while (i < n && this.seen[i] === tokens[i]) i++;
    return i;
  }

  /** Drops the cached positions before `at` (base < at <= base + len). */
  private dropBefore(at: number): void {
    const { heads: H, headDim: D } = this.shape;
    const drop = at - this.base;
    for (let h = 0; h < H; h++) {
      const o = h * this.cap * D;
      this.k.copyWithin(o, o + drop * D, o + this.len * D);
      this.v.copyWithin(o, o + drop * D, o + this.len * D);
    }
    this.base = at;
    this.len -= drop;
  }

  private append(at: number, k: Float32Array, v: Float32Array, m: number): void {
    const { heads: H, headDim: D, maxSeqLen } = this.shape;
    if (at + m > this.cap) {
      const cap = Math.min(Math.max(at + m, 2 * this.cap, 64), Math.max(maxSeqLen, at + m));
      const grow = (old: Float32Array) => {
        const out = new Float32Array(H * cap * D);
        for (let h = 0; h < H; h++) out.set(old.subarray(h * this.cap * D, (h * this.cap + at) * D), h * cap * D);
        return out;
      };
      this.k = grow(this.k);
      this.v = grow(this.v);
      this.cap = cap;
    }
    for (let h = 0; h < H; h++) {
      this.k.set(k.subarray(h * m * D, (h + 1) * m * D), (h * this.cap + at) * D);
      this.v.set(v.subarray(h * m * D, (h + 1) * m * D), (h * this.cap + at) * D);
    }
    this.len = at + m;
  }
}
