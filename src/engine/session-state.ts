/**
 * What a decoding session holds between rounds and between requests, and the invariant the
 * round loop keeps: the KV cache covers every committed token except the last one; the last
 * committed token is "pending" (chosen, not yet run through the model) and is the root of the
 * next round's tree; `hidden` is the base model's hidden row at the position before it.
 */
import type { KVCache } from './kv-cache.js';
import type { Rng } from './sampling.js';

export class SessionState {
  /** Committed tokens (prompt + generated), the last one pending. */
  tokens: number[] = [];
  readonly kv: KVCache;
  /** Hidden row [d] at position kv.length - 1; null when unknown (then a prefill recomputes it). */
  hidden: Float32Array | null = null;
  readonly rows: HiddenRows;
  /** The sampling RNG and the seed it came from (a same-seed continuation keeps the stream). */
  rng: Rng | null = null;
  rngSeed: number | null = null;

  constructor(kv: KVCache, d: number, maxContext: number) {
    this.kv = kv;
    this.rows = new HiddenRows(d, maxContext);
  }
}

/**
 * Base hidden rows of committed positions, indexed by position ([capacity, d]); positions
 * [from, end) are known. Prefix-attending draft heads read them. They travel with the KV
 * (snapshot.ts exportState); a session restored without them knows only the snapshot's last
 * row, and the window grows from there.
 */
export class HiddenRows {
  readonly d: number;
  private readonly maxContext: number;
  private data = new Float32Array(0);
  private _from = 0;
  private _end = 0;

  constructor(d: number, maxContext: number) {
    this.d = d;
    this.maxContext = maxContext;
  }

  get from(): number {
    return this._from;
  }

  get end(): number {
    return this._end;
  }

  /**
   * Keeps the hidden rows of positions from `at` on: rows[j] of `hidden` ([*, d]), or
   * rows[nodes[j]] when `nodes` selects a tree's accepted path. Rows after a gap start a new window.
   */
  record(at: number, hidden: Float32Array, nodes: readonly number[] | null): void {
    const d = this.d;
    const n = nodes ? nodes.length : hidden.length / d;
    if (at !== this._end) this._from = at; // a gap (or a rewrite): the window restarts here
    if ((at + n) * d > this.data.length) {
      const grown = new Float32Array(Math.max((at + n) * d, 2 * this.data.length, this.maxContext * d));
      grown.set(this.data.subarray(0, this._end * d));
      this.data = grown;
    }
    for (let j = 0; j < n; j++) {
      const src = (nodes ? nodes[j] : j) * d;
      this.data.set(hidden.subarray(src, src + d), (at + j) * d);
    }
    this._end = at + n;
  }

  /** Positions from n on are no longer committed: their rows are forgotten. */
  forget(n: number): void {
    this._end = Math.min(this._end, n);
    if (this._from > this._end) this._from = this._end;
  }

  /** The known rows of positions [from, upTo) as a view [n, d] (what a drafter sees). */
  window(upTo: number): Float32Array {
    const d = this.d;
    return this.data.subarray(this._from * d, Math.max(this._from, Math.min(this._end, upTo)) * d);
  }

  /** Writes the rows of positions [start, end) into out ([end - start, d]); unknown rows are left as they are. */
  copyInto(out: Float32Array, start: number, end: number): void {
    const d = this.d;
    const from = Math.max(start, this._from), to = Math.min(end, this._end);
    if (to > from) out.set(this.data.subarray(from * d, to * d), (from - start) * d);
  }
}
