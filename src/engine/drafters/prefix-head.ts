/**
 * A draft head that attends over every prefix position (head v2: `files.ctc2_head`,
 * `files.medusa2_head`), with its own KV cache, one ORT run per round. Position t's input is the
 * base model's hidden row at t and the token at t+1, so at a round with n committed tokens (the
 * last one pending) the head has seen positions 0..n-2, and its output at n-2 drafts the tokens
 * after the pending one.
 *
 * Graph (training/export_onnx.py build_prefix_head; m new positions, Ph cached, Hh heads of Dh):
 *   in:  hidden [1,m,d], next_ids int64 [1,m], position_ids int64 [1,m],
 *        attention_mask [1,1,m,Ph+m] (additive, causal), past_key / past_value [1,Hh,Ph,Dh]
 *   out: the read-out of the newest position (log_probs [slots, V'+1] or logits [k, V]),
 *        new_key / new_value [1,Hh,m,Dh]
 *
 * One instance per decoding session (it holds that session's head cache); the ORT session is
 * shared. The head's attention need not be bit-exact: it only proposes, the base model verifies.
 */
import type { DraftContext } from '../types.js';
import { ort, type OrtSession } from '../ort.js';
import type { DraftHead } from './head-session.js';

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
  /** next_ids of the cached positions (the token after each), to detect a changed context. */
  private ids: number[] = [];

  constructor(session: OrtSession, shape: PrefixHeadShape, outputName: string) {
    for (const n of ['hidden', 'next_ids', 'position_ids', 'attention_mask', 'past_key', 'past_value']) {
      if (!session.inputNames.includes(n)) throw new Error(`prefix head: missing input ${n} (has ${session.inputNames.join(', ')})`);
    }
    for (const n of [outputName, 'new_key', 'new_value']) {
      if (!session.outputNames.includes(n)) throw new Error(`prefix head: missing output ${n}`);
    }
    this.session = session;
    this.shape = shape;
    this.outputName = outputName;
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
    // [base, base + len). A window that starts elsewhere (a restored session) restarts the cache.
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
    if (rowsFrom !== this.base) {
      this.base = rowsFrom;
      this.len = 0;
    }
    // Reuse the cached positions whose next token is still the same (then their hidden rows are too).
    let keep = Math.min(this.len, newest - this.base);
    for (let j = 0; j < keep; j++) {
      if (this.ids[j] !== ctx.tokens[this.base + j + 1]) {
        keep = j;
        break;
      }
    }
    const start = this.base + keep;
    const m = newest + 1 - start;
    const hidden = rows.slice((start - rowsFrom) * d, (newest + 1 - rowsFrom) * d);
    const Ph = keep;
    const mask = new Float32Array(m * (Ph + m));
    for (let i = 0; i < m; i++) mask.fill(-Infinity, i * (Ph + m) + Ph + i + 1, (i + 1) * (Ph + m));
    const pastK = new Float32Array(H * Ph * D);
    const pastV = new Float32Array(H * Ph * D);
    for (let h = 0; h < H; h++) {
      pastK.set(this.k.subarray(h * this.cap * D, (h * this.cap + Ph) * D), h * Ph * D);
      pastV.set(this.v.subarray(h * this.cap * D, (h * this.cap + Ph) * D), h * Ph * D);
    }
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
    this.ids.length = Ph;
    for (let t = start; t <= newest; t++) this.ids.push(ctx.tokens[t + 1]);
    const data = out[this.outputName].data as Float32Array;
    for (const [name, t] of Object.entries(out)) if (name !== this.outputName) t.dispose();
    return data;
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
