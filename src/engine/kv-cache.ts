/**
 * Per-layer key/value cache of the base model.
 *
 * Storage per layer: K and V as Float32Array laid out [H, cap, D] (cap >= length); the logical
 * content is [H, length, D]. The graph wants `past_*` as contiguous [1, H, P, D], so a buffer is
 * fed directly only when cap === length; otherwise it is packed once (and the packed buffer
 * becomes the storage, so the next feed is free).
 *
 * Why `append` adopts ORT's present buffers instead of copying into a grown buffer: the graph
 * returns `present_*` = [1, H, P+S, D] (past with the new S appended), already copied out of the
 * wasm heap into fresh JS arrays. Adopting them makes plain decoding copy-free on the JS side;
 * a speculative round pays one copy in `keep` (compaction to the accepted path).
 *
 * Serialization is position-major so ranges concatenate: token t -> for layer l: K[l][:, t, :]
 * then V[l][:, t, :] ([H, D] each) as little-endian float32 bytes; L*2*H*D*4 bytes per token
 * (12,288 at L=6, H=4, D=64). The bytes are the float bits, so a round trip is bit-exact.
 */

export interface KVShape {
  layers: number;
  heads: number;
  headDim: number;
}

export class KVCache {
  readonly layers: number;
  readonly heads: number;
  readonly headDim: number;
  private keys: Float32Array[];
  private values: Float32Array[];
  private cap = 0;
  private len = 0;

  constructor(shape: KVShape) {
    this.layers = shape.layers;
    this.heads = shape.heads;
    this.headDim = shape.headDim;
    this.keys = Array.from({ length: this.layers }, () => new Float32Array(0));
    this.values = Array.from({ length: this.layers }, () => new Float32Array(0));
  }

  /** Cached positions. */
  get length(): number {
    return this.len;
  }

  /** Capacity in positions of the current storage. */
  get capacity(): number {
    return this.cap;
  }

  get bytesPerToken(): number {
    return this.layers * 2 * this.heads * this.headDim * 4;
  }

  /**
   * Takes the graph's present tensors, present[l] = [H, from + S, D], whose first `from`
   * positions are this cache (the graph concatenates past and new). `from` must equal length.
   */
  append(presentKeys: Float32Array[], presentValues: Float32Array[], from: number): void {
    if (from !== this.len) throw new Error(`KVCache.append: from ${from} != length ${this.len}`);
    const HD = this.heads * this.headDim;
    const total = presentKeys[0].length / HD;
    if (!Number.isInteger(total) || total < from) throw new Error('KVCache.append: bad present shape');
    for (let l = 0; l < this.layers; l++) {
      if (presentKeys[l].length !== total * HD || presentValues[l].length !== total * HD) {
        throw new Error(`KVCache.append: layer ${l} present has the wrong size`);
      }
      this.keys[l] = presentKeys[l];
      this.values[l] = presentValues[l];
    }
    this.cap = total;
    this.len = total;
  }

  /**
   * Keeps positions [0, base) plus base + nodes[j] for each j, in that order (compaction of a
   * verified tree to its accepted path). nodes must be ascending (a root-first tree path is).
   */
  keep(base: number, nodes: readonly number[]): void {
    const newLen = base + nodes.length;
    for (let j = 0; j < nodes.length; j++) {
      const src = base + nodes[j];
      if (src >= this.len || (j > 0 && nodes[j] <= nodes[j - 1])) throw new Error('KVCache.keep: bad node list');
    }
    if (base > this.len) throw new Error('KVCache.keep: base beyond length');
    // Fast path: a prefix of the tree positions (plain decoding, a chain's first branch) is a
    // truncation, which is lazy (and free when nothing is dropped).
    if (nodes.every((n, j) => n === j)) {
      this.truncate(newLen);
      return;
    }
    const { heads: H, headDim: D, cap } = this;
    for (let l = 0; l < this.layers; l++) {
      for (const store of [this.keys, this.values]) {
        const old = store[l];
        const out = new Float32Array(H * newLen * D);
        for (let h = 0; h < H; h++) {
          const o = h * cap * D;
          const n = h * newLen * D;
          out.set(old.subarray(o, o + base * D), n);
          for (let j = 0; j < nodes.length; j++) {
            const s = o + (base + nodes[j]) * D;
            out.set(old.subarray(s, s + D), n + (base + j) * D);
          }
        }
        store[l] = out;
      }
    }
    this.cap = newLen;
    this.len = newLen;
  }

  /** Drops positions from n on. Lazy: storage is repacked on the next feed. */
  truncate(n: number): void {
    if (n < 0 || n > this.len) throw new Error(`KVCache.truncate: ${n} outside [0, ${this.len}]`);
    this.len = n;
  }

  /** Contiguous past for layer l: [keys, values], each [H, length, D] (views into storage). */
  past(l: number): [Float32Array, Float32Array] {
    if (this.cap !== this.len) this.pack();
    return [this.keys[l], this.values[l]];
  }

  /** Re-lays the storage out with cap === length (a copy). */
  private pack(): void {
    this.resize(this.len);
  }

  /** Changes capacity to `cap` (>= length), preserving the content. */
  private resize(cap: number): void {
    const { heads: H, headDim: D } = this;
    const n = Math.min(this.len, cap);
    for (let l = 0; l < this.layers; l++) {
      for (const store of [this.keys, this.values]) {
        const old = store[l];
        const out = new Float32Array(H * cap * D);
        for (let h = 0; h < H; h++) {
          out.set(old.subarray(h * this.cap * D, h * this.cap * D + n * D), h * cap * D);
        }
        store[l] = out;
      }
    }
    this.cap = cap;
  }

  /** Bytes of positions [start, end) (position-major, see the file comment). */
  exportRange(start = 0, end = this.len): Uint8Array {
    if (start < 0 || end > this.len || start > end) throw new Error(`KVCache.exportRange: bad range [${start}, ${end})`);
    const { heads: H, headDim: D, cap } = this;
    const perTok = this.layers * 2 * H * D;
    const out = new Float32Array((end - start) * perTok);
    let w = 0;
    for (let t = start; t < end; t++) {
      for (let l = 0; l < this.layers; l++) {
        for (const src of [this.keys[l], this.values[l]]) {
          for (let h = 0; h < H; h++) {
            const s = (h * cap + t) * D;
            out.set(src.subarray(s, s + D), w);
            w += D;
          }
        }
      }
    }
    return new Uint8Array(out.buffer);
  }

  /**
   * Writes positions [start, start + n) from bytes made by exportRange (n = bytes / bytesPerToken),
   * dropping anything at or after `start` first. start must be <= length. Grows capacity
   * geometrically, so importing consecutive chunks costs amortised linear time.
   */
  importRange(start: number, bytes: Uint8Array): void {
    const per = this.bytesPerToken;
    if (bytes.byteLength % per !== 0) throw new Error(`KVCache.importRange: ${bytes.byteLength} bytes is not a whole number of tokens`);
    if (start < 0 || start > this.len) throw new Error(`KVCache.importRange: start ${start} beyond length ${this.len}`);
    const n = bytes.byteLength / per;
    this.len = start;
    if (start + n > this.cap) this.resize(Math.max(start + n, Math.ceil(this.cap * 1.5)));
    // Copy into an aligned buffer: the caller's bytes may sit at an odd offset.
    const src = new Float32Array(n * (per / 4));
    new Uint8Array(src.buffer).set(bytes);
    const { heads: H, headDim: D, cap } = this;
    let r = 0;
    for (let t = start; t < start + n; t++) {
      for (let l = 0; l < this.layers; l++) {
        for (const dst of [this.keys[l], this.values[l]]) {
          for (let h = 0; h < H; h++) {
            dst.set(src.subarray(r, r + D), (h * cap + t) * D);
            r += D;
          }
        }
      }
    }
    this.len = start + n;
  }

  /** A cache from consecutive exportRange chunks starting at position 0. */
  static fromChunks(shape: KVShape, chunks: readonly Uint8Array[]): KVCache {
    const kv = new KVCache(shape);
    const total = chunks.reduce((a, c) => a + c.byteLength, 0) / kv.bytesPerToken;
    if (Number.isInteger(total) && total > 0) kv.resize(total);
    for (const c of chunks) kv.importRange(kv.length, c);
    return kv;
  }

  /** [start, end) position ranges whose exportRange is at most maxBytes each. */
  chunkRanges(maxBytes = 1_900_000, start = 0, end = this.len): [number, number][] {
    const per = Math.max(1, Math.floor(maxBytes / this.bytesPerToken));
    const out: [number, number][] = [];
    for (let s = start; s < end; s += per) out.push([s, Math.min(end, s + per)]);
    return out;
  }

  clone(): KVCache {
    const kv = new KVCache(this);
    kv.keys = this.keys.map((a) => a.slice());
    kv.values = this.values.map((a) => a.slice());
    kv.cap = this.cap;
    kv.len = this.len;
    return kv;
  }
}
