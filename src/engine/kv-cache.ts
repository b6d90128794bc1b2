/**
 * Per-layer key/value cache of the base model, kept in buffers that are appended to and compacted
 * in place.
 *
 * Storage: one Float32Array per layer and kind (K, V), panel-major: positions are grouped into
 * panels of `panel` consecutive positions, each panel laid out [H, panel, D], panels one after the
 * other ([capPanels, H, panel, D]). Position p lives in panel p / panel, row p % panel. Capacity
 * grows by doubling (or once, up front, with `reserve`), so a session pays a handful of
 * re-layouts in its life, not one per step.
 *
 * Why panels: the base graph sums attention over positions panel by panel (so that a token's
 * result does not depend on the batch it is computed in), and it takes the full panels of the
 * cache as one [F, H, panel, D] tensor. The first F panels of a buffer are exactly that, so they
 * are fed as a view: no copy on our side (onnxruntime-web copies every CPU input into its heap
 * once; it has no public way to keep an input resident). Only the partial last panel (the tail,
 * length % panel positions) is packed per run, all buffers into one [2L, H, Pt, D].
 *
 * The graph returns only the S new rows of each run (`new_kv` [2L, H, S, D]); `append` writes them
 * at [length, length + S) and `keep` moves the accepted tree nodes down over the rejected ones.
 *
 * Serialization is position-major so ranges concatenate: token t -> for layer l: K[l][:, t, :]
 * then V[l][:, t, :] ([H, D] each) as little-endian float32 bytes; L*2*H*D*4 bytes per token
 * (12,288 at L=6, H=4, D=64). The bytes are the float bits, so a round trip is bit-exact.
 */

export interface KVShape {
  layers: number;
  heads: number;
  headDim: number;
  /** Positions per panel (the graph's `kv_panel`; 32 for the default model). */
  panel: number;
}

/** The past tensors of one run: per buffer, the full panels (a view) and the packed tail. */
export interface PastFeed {
  /** Full panels F. */
  panels: number;
  /** Tail positions Pt (length = F * panel + Pt). */
  tail: number;
  /** [2L] views of [F, H, panel, D]. */
  full: Float32Array[];
  /** Every buffer's tail, [2L, H, Pt, D], a view of the staging buffer. */
  tails: Float32Array;
}

/**
 * Free KV buffers shared by the caches of one model. Sessions come and go (an ephemeral request, an idle
 * session dropped from memory, one restored from storage): without recycling, every one allocates and
 * drops ~6 MiB of buffers, garbage that the JS engine collects late (V8 lets ArrayBuffer memory grow by
 * tens of MiB before it collects), which an isolate with a 128 MB limit cannot afford. Bounded by maxBytes.
 */
export class KVBufferPool {
  private free: Float32Array[] = [];
  private held = 0;

  constructor(readonly maxBytes: number) {}

  /** The smallest free buffer of at least `floats` floats, if any. */
  take(floats: number): Float32Array | undefined {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].length >= floats && (best < 0 || this.free[i].length < this.free[best].length)) best = i;
    }
    if (best < 0) return undefined;
    const [buf] = this.free.splice(best, 1);
    this.held -= buf.byteLength;
    return buf;
  }

  put(buf: Float32Array): void {
    if (buf.length === 0 || this.held + buf.byteLength > this.maxBytes) return;
    this.free.push(buf);
    this.held += buf.byteLength;
  }

  /** Bytes held for reuse. */
  get bytes(): number {
    return this.held;
  }
}

/** Default size of an exported state chunk: under the 2 MB a Durable Object or SQLite value may hold, with margin. */
export const STATE_CHUNK_BYTES = 1_900_000;

export class KVCache {
  readonly layers: number;
  readonly heads: number;
  readonly headDim: number;
  readonly panel: number;
  /** [layer * 2 + kind] -> [capPanels, H, panel, D]; kind 0 = K, 1 = V (the graph's new_kv order). */
  private bufs: Float32Array[];
  private capPanels = 0;
  private len = 0;

  constructor(shape: KVShape, private readonly pool?: KVBufferPool) {
    if (!(Number.isInteger(shape.panel) && shape.panel > 0)) throw new Error(`KVCache: panel must be a positive integer, got ${shape.panel}`);
    this.layers = shape.layers;
    this.heads = shape.heads;
    this.headDim = shape.headDim;
    this.panel = shape.panel;
    this.bufs = Array.from({ length: 2 * this.layers }, () => new Float32Array(0));
  }

  /** Cached positions. */
  get length(): number {
    return this.len;
  }

  /** Positions the buffers hold without growing. */
  get capacity(): number {
    return this.capPanels * this.panel;
  }

  get bytesPerToken(): number {
    return this.layers * 2 * this.heads * this.headDim * 4;
  }

  /** Bytes the buffers occupy (capacity, not length). */
  get allocatedBytes(): number {
    return this.capacity * this.bytesPerToken;
  }

  /** Float offset of (head h, position p) in a buffer. */
  private at(h: number, p: number): number {
    const B = this.panel;
    return ((Math.floor(p / B) * this.heads + h) * B + (p % B)) * this.headDim;
  }

  /** Grows the buffers to hold at least n positions (callers that know a request's size
   *  reserve it up front; append otherwise doubles). */
  reserve(n: number): void {
    const need = Math.ceil(n / this.panel);
    if (need > this.capPanels) this.regrow(need);
  }

  /**
   * Appends the rows of one graph run: newKV = [2L, H, S, D] (row 2l = layer l's K, 2l+1 its V),
   * written at positions [length, length + S).
   */
  append(newKV: Float32Array, S: number): void {
    const { heads: H, headDim: D, panel: B } = this;
    if (!Number.isInteger(S) || S < 0 || newKV.length !== 2 * this.layers * H * S * D) {
      throw new Error(`KVCache.append: new_kv has ${newKV.length} values, expected [${2 * this.layers}, ${H}, ${S}, ${D}]`);
    }
    const P = this.len;
    if (P + S > this.capacity) this.regrow(Math.max(Math.ceil((P + S) / B), 2 * this.capPanels));
    for (let b = 0; b < this.bufs.length; b++) {
      const dst = this.bufs[b];
      for (let h = 0; h < H; h++) {
        // rows P .. P+S-1 are contiguous within a panel: copy them run by run
        for (let j = 0; j < S; ) {
          const run = Math.min(S - j, B - ((P + j) % B));
          const src = ((b * H + h) * S + j) * D;
          dst.set(newKV.subarray(src, src + run * D), this.at(h, P + j));
          j += run;
        }
      }
    }
    this.len = P + S;
  }

  /**
   * Keeps positions [0, base) plus base + nodes[j] for each j, in that order (compaction of a
   * verified tree to its accepted path), moving rows in place. nodes must be ascending (a
   * root-first tree path is), so every row moves down or stays and nothing is overwritten early.
   */
  keep(base: number, nodes: readonly number[]): void {
    if (base > this.len) throw new Error('KVCache.keep: base beyond length');
    for (let j = 0; j < nodes.length; j++) {
      if (base + nodes[j] >= this.len || nodes[j] < 0 || (j > 0 && nodes[j] <= nodes[j - 1])) {
        throw new Error('KVCache.keep: bad node list');
      }
    }
    const { heads: H, headDim: D } = this;
    for (let j = 0; j < nodes.length; j++) {
      if (nodes[j] === j) continue; // already in place (a path's first nodes often are)
      for (let h = 0; h < H; h++) {
        const src = this.at(h, base + nodes[j]);
        const dst = this.at(h, base + j);
        for (const buf of this.bufs) buf.copyWithin(dst, src, src + D);
      }
    }
    this.len = base + nodes.length;
  }

  /** Drops positions from n on. */
  truncate(n: number): void {
    if (n < 0 || n > this.len) throw new Error(`KVCache.truncate: ${n} outside [0, ${this.len}]`);
    this.len = n;
  }

  /**
   * The past tensors for a run. The full panels are views of the buffers; the tails of all
   * buffers are packed into `stage` (at least 2L * H * panel * D floats) as one [2L, H, Pt, D].
   */
  feed(stage: Float32Array): PastFeed {
    const { heads: H, headDim: D, panel: B, len: P } = this;
    const F = Math.floor(P / B);
    const Pt = P - F * B;
    const per = H * Pt * D;
    if (stage.length < this.bufs.length * per) throw new Error('KVCache.feed: staging buffer too small');
    const full: Float32Array[] = [];
    for (let b = 0; b < this.bufs.length; b++) {
      const buf = this.bufs[b];
      full.push(buf.subarray(0, F * H * B * D));
      for (let h = 0; h < H; h++) {
        const src = ((F * H + h) * B) * D;
        stage.set(buf.subarray(src, src + Pt * D), b * per + h * Pt * D);
      }
    }
    return { panels: F, tail: Pt, full, tails: stage.subarray(0, this.bufs.length * per) };
  }

  /** Contiguous copy of layer l's [keys, values], each [H, length, D] (tests, tools). */
  past(l: number): [Float32Array, Float32Array] {
    const { heads: H, headDim: D, len: P } = this;
    return [0, 1].map((kind) => {
      const buf = this.bufs[2 * l + kind];
      const out = new Float32Array(H * P * D);
      for (let h = 0; h < H; h++) {
        for (let t = 0; t < P; t++) {
          const s = this.at(h, t);
          out.set(buf.subarray(s, s + D), (h * P + t) * D);
        }
      }
      return out;
    }) as [Float32Array, Float32Array];
  }

  /** Grows to at least `panels` panels; panel-major storage keeps every offset, so this is one copy.
   *  A recycled buffer may be larger: the capacity is then what it holds. */
  private regrow(panels: number): void {
    const per = this.heads * this.panel * this.headDim;
    const used = this.capPanels * per;
    this.bufs = this.bufs.map((old) => {
      const out = this.pool?.take(panels * per) ?? new Float32Array(panels * per);
      out.set(old.subarray(0, used));
      this.pool?.put(old);
      return out;
    });
    this.capPanels = Math.min(...this.bufs.map((b) => Math.floor(b.length / per)));
  }

  /** Gives the buffers back to the pool: the cache is empty afterwards (and may grow again). */
  release(): void {
    for (const b of this.bufs) this.pool?.put(b);
    this.bufs = this.bufs.map(() => new Float32Array(0));
    this.capPanels = 0;
    this.len = 0;
  }

  /** Bytes of positions [start, end) (position-major, see the file comment). */
  exportRange(start = 0, end = this.len): Uint8Array {
    if (start < 0 || end > this.len || start > end) throw new Error(`KVCache.exportRange: bad range [${start}, ${end})`);
    const { heads: H, headDim: D } = this;
    const out = new Float32Array((end - start) * 2 * this.layers * H * D);
    let w = 0;
    for (let t = start; t < end; t++) {
      for (const buf of this.bufs) {
        for (let h = 0; h < H; h++) {
          const s = this.at(h, t);
          out.set(buf.subarray(s, s + D), w);
          w += D;
        }
      }
    }
    return new Uint8Array(out.buffer);
  }

  /**
   * Writes positions [start, start + n) from bytes made by exportRange (n = bytes / bytesPerToken),
   * dropping anything at or after `start` first. start must be <= length.
   */
  importRange(start: number, bytes: Uint8Array): void {
    const per = this.bytesPerToken;
    if (bytes.byteLength % per !== 0) throw new Error(`KVCache.importRange: ${bytes.byteLength} bytes is not a whole number of tokens`);
    if (start < 0 || start > this.len) throw new Error(`KVCache.importRange: start ${start} beyond length ${this.len}`);
    const n = bytes.byteLength / per;
    this.len = start;
    this.reserve(start + n);
    // Read the floats in place when aligned (SQLite blobs are); else copy into an aligned buffer.
    const src = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Float32Array(bytes.slice().buffer);
    const { heads: H, headDim: D } = this;
    let r = 0;
    for (let t = start; t < start + n; t++) {
      for (const buf of this.bufs) {
        for (let h = 0; h < H; h++) {
          buf.set(src.subarray(r, r + D), this.at(h, t));
          r += D;
        }
      }
    }
    this.len = start + n;
  }

  /** A cache from consecutive exportRange chunks starting at position 0. */
  static fromChunks(shape: KVShape, chunks: readonly Uint8Array[]): KVCache {
    const kv = new KVCache(shape);
    const total = chunks.reduce((a, c) => a + c.byteLength, 0) / kv.bytesPerToken;
    if (Number.isInteger(total) && total > 0) kv.reserve(total);
    for (const c of chunks) kv.importRange(kv.length, c);
    return kv;
  }

  /** [start, end) position ranges of at most maxBytes each, at bytesPerPosition (exportRange's by default). */
  chunkRanges(maxBytes = STATE_CHUNK_BYTES, start = 0, end = this.len, bytesPerPosition = this.bytesPerToken): [number, number][] {
    const per = Math.max(1, Math.floor(maxBytes / bytesPerPosition));
    const out: [number, number][] = [];
    for (let s = start; s < end; s += per) out.push([s, Math.min(end, s + per)]);
    return out;
  }

  clone(): KVCache {
    const kv = new KVCache(this);
    kv.bufs = this.bufs.map((a) => a.slice());
    kv.capPanels = this.capPanels;
    kv.len = this.len;
    return kv;
  }
}
