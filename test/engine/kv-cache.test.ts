import { describe, expect, it } from 'vitest';
import { KVBufferPool, KVCache } from '../../src/engine/kv-cache.js';

// A panel of 4 positions so that short sequences already cross panel boundaries.
const shape = { layers: 2, heads: 3, headDim: 4, panel: 4 };
const { layers: L, heads: H, headDim: D, panel: B } = shape;

/** Value encoding (layer, k/v, head, position, dim) so every element is identifiable. */
function val(l: number, kv: number, h: number, t: number, d: number): number {
  return l * 1e4 + kv * 5e3 + h * 1e3 + t * 10 + d + 0.25;
}
/** A graph run's new_kv [2L, H, S, D] for logical positions pos(0..S-1). */
function newKV(S: number, pos: (j: number) => number): Float32Array {
  const a = new Float32Array(2 * L * H * S * D);
  for (let l = 0; l < L; l++)
    for (let kv = 0; kv < 2; kv++)
      for (let h = 0; h < H; h++)
        for (let j = 0; j < S; j++)
          for (let d = 0; d < D; d++) a[((((2 * l + kv) * H + h) * S) + j) * D + d] = val(l, kv, h, pos(j), d);
  return a;
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
/** Checks the cache holds the listed logical positions. */
function expectHolds(kv: KVCache, positions: number[]): void {
  expect(kv.length).toBe(positions.length);
  for (let l = 0; l < L; l++) {
    const [k, v] = kv.past(l);
    expect(k.length).toBe(positions.length * H * D);
    for (let h = 0; h < H; h++)
      positions.forEach((p, t) => {
        for (let d = 0; d < D; d++) {
          expect(k[(h * positions.length + t) * D + d]).toBe(val(l, 0, h, p, d));
          expect(v[(h * positions.length + t) * D + d]).toBe(val(l, 1, h, p, d));
        }
      });
  }
}

describe('KVCache', () => {
  it('append writes new rows across panel boundaries; keep compacts in place; truncate drops', () => {
    const kv = new KVCache(shape);
    expect(kv.length).toBe(0);
    expect(kv.past(0)[0].length).toBe(0);
    kv.append(newKV(5, (j) => j), 5);
    expectHolds(kv, range(0, 5));
    // a "tree" of 4 nodes after P=5, stored at 5..8 and tagged 100..103
    kv.append(newKV(4, (j) => 100 + j), 4);
    kv.keep(5, [0, 2, 3]);
    expectHolds(kv, [...range(0, 5), 100, 102, 103]);
    kv.truncate(6);
    expectHolds(kv, [...range(0, 5), 100]);
    expect(() => kv.append(new Float32Array(7), 1)).toThrow(/new_kv/);
    expect(() => kv.keep(6, [1, 0])).toThrow();
    expect(() => kv.keep(6, [0])).toThrow(); // base + node beyond length
    expect(() => kv.truncate(7)).toThrow();
  });

  it('keeps rows that move from one panel to an earlier one', () => {
    const kv = new KVCache(shape);
    kv.append(newKV(3, (j) => j), 3);
    kv.append(newKV(9, (j) => 50 + j), 9); // positions 3..11: panels 0, 1 and 2
    kv.keep(3, [0, 4, 8]); // rows at 3, 7, 11 -> 3, 4, 5
    expectHolds(kv, [0, 1, 2, 50, 54, 58]);
  });

  it('grows by doubling, keeps content, and reserve pre-sizes', () => {
    const kv = new KVCache(shape);
    kv.reserve(10);
    expect(kv.capacity).toBe(12); // whole panels
    const before = kv.capacity;
    kv.append(newKV(10, (j) => j), 10);
    expect(kv.capacity).toBe(before); // no regrowth inside the reservation
    kv.append(newKV(7, (j) => 10 + j), 7);
    expect(kv.capacity).toBeGreaterThanOrEqual(17);
    expect(kv.allocatedBytes).toBe(kv.capacity * kv.bytesPerToken);
    expectHolds(kv, range(0, 17));
  });

  it('feeds full panels as views of its storage and packs only the tail', () => {
    const kv = new KVCache(shape);
    kv.append(newKV(10, (j) => j), 10); // 2 full panels + 2 tail positions
    const stage = new Float32Array(2 * L * H * B * D);
    const f = kv.feed(stage);
    expect(f.panels).toBe(2);
    expect(f.tail).toBe(2);
    expect(f.full).toHaveLength(2 * L);
    expect(f.tails.length).toBe(2 * L * H * 2 * D);
    for (let b = 0; b < 2 * L; b++) {
      const [l, kind] = [b >> 1, b & 1];
      expect(f.full[b].length).toBe(2 * H * B * D);
      for (let p = 0; p < 2; p++)
        for (let h = 0; h < H; h++)
          for (let r = 0; r < B; r++)
            for (let d = 0; d < D; d++) expect(f.full[b][((p * H + h) * B + r) * D + d]).toBe(val(l, kind, h, p * B + r, d));
      for (let h = 0; h < H; h++)
        for (let r = 0; r < 2; r++)
          for (let d = 0; d < D; d++) expect(f.tails[((b * H + h) * 2 + r) * D + d]).toBe(val(l, kind, h, 8 + r, d));
    }
    // a view, not a copy: the full panels share the cache's memory
    kv.keep(0, [1]);
    expect(f.full[0][0]).toBe(val(0, 0, 0, 1, 0));
    kv.truncate(0);
    kv.append(newKV(8, (j) => j), 8);
    expect(kv.feed(new Float32Array(0)).tail).toBe(0); // whole panels: nothing to pack
    kv.append(newKV(3, (j) => j), 3);
    expect(() => kv.feed(new Float32Array(1))).toThrow(/staging/);
  });

  it('serializes bit-exactly, in ranges and chunks', () => {
    const kv = new KVCache(shape);
    const rows = newKV(10, (j) => j);
    // awkward bit patterns: -0, a subnormal, the largest float
    rows[0] = -0;
    rows[1] = 1e-45;
    rows[rows.length - 1] = 3.4028234663852886e38;
    kv.append(rows, 10);
    expect(kv.bytesPerToken).toBe(2 * 2 * 3 * 4 * 4);
    const all = kv.exportRange();
    expect(all.byteLength).toBe(10 * kv.bytesPerToken);
    const back = KVCache.fromChunks(shape, [all]);
    for (let l = 0; l < L; l++) {
      expect(new Uint8Array(back.past(l)[0].buffer)).toEqual(new Uint8Array(kv.past(l)[0].buffer));
      expect(new Uint8Array(back.past(l)[1].buffer)).toEqual(new Uint8Array(kv.past(l)[1].buffer));
    }
    expect(Object.is(back.past(0)[0][0], -0)).toBe(true);
    // chunked: ranges of at most 3 tokens, sliced at odd byte offsets
    const ranges = kv.chunkRanges(3 * kv.bytesPerToken + 5);
    expect(ranges).toEqual([[0, 3], [3, 6], [6, 9], [9, 10]]);
    const chunks = ranges.map(([s, e]) => {
      const b = kv.exportRange(s, e);
      const odd = new Uint8Array(b.byteLength + 1);
      odd.set(b, 1);
      return odd.subarray(1);
    });
    const c = KVCache.fromChunks(shape, chunks);
    expect(c.exportRange()).toEqual(all);
    // importRange overwrites from a position, growing capacity
    const d = KVCache.fromChunks(shape, chunks.slice(0, 2));
    d.importRange(3, kv.exportRange(3, 10));
    expect(d.exportRange()).toEqual(all);
    const e = new KVCache(shape);
    e.append(newKV(10, (j) => j), 10);
    expectHolds(KVCache.fromChunks(shape, [e.exportRange(0, 4), e.exportRange(4, 10)]), range(0, 10));
    expect(() => d.importRange(0, new Uint8Array(7))).toThrow();
  });

  it('default chunk size fits the 12,288-byte/token model in 1.9 MB values', () => {
    const kv = new KVCache({ layers: 6, heads: 4, headDim: 64, panel: 32 });
    expect(kv.bytesPerToken).toBe(12288);
    const per = kv.chunkRanges(1_900_000, 0, 512)[0][1];
    expect(per * 12288).toBeLessThanOrEqual(1_900_000);
    expect(per).toBe(154);
  });

  it('clone is independent', () => {
    const kv = new KVCache(shape);
    kv.append(newKV(3, (j) => j), 3);
    const c = kv.clone();
    kv.truncate(1);
    kv.append(newKV(2, (j) => 70 + j), 2);
    expectHolds(c, [0, 1, 2]);
  });

  it('a released cache hands its buffers to the next one, which holds exactly its own rows', () => {
    const pool = new KVBufferPool(1 << 20);
    const a = new KVCache(shape, pool);
    a.append(newKV(3, (j) => 100 + j), 3);
    a.append(newKV(17, (j) => 103 + j), 17); // grows: the outgrown buffers go to the pool
    const grownBytes = pool.bytes;
    expect(grownBytes).toBeGreaterThan(0);
    a.release();
    expect(a.length).toBe(0);
    expect(pool.bytes).toBeGreaterThan(grownBytes);
    const b = new KVCache(shape, pool);
    b.reserve(6);
    expect(b.capacity).toBeGreaterThanOrEqual(20); // it got a's larger buffers
    expect(pool.bytes).toBeLessThan(grownBytes + a.allocatedBytes + 1);
    b.append(newKV(6, (j) => j), 6);
    b.append(newKV(3, (j) => 6 + j), 3);
    expectHolds(b, range(0, 9)); // nothing of a's rows shows through
    const again = KVCache.fromChunks(shape, [b.exportRange()]);
    expectHolds(again, range(0, 9));
    // The pool never holds more than its bound.
    const tiny = new KVBufferPool(16);
    const c = new KVCache(shape, tiny);
    c.append(newKV(5, (j) => j), 5);
    c.release();
    expect(tiny.bytes).toBe(0);
  });

  it('rejects a panel that is not a positive integer', () => {
    expect(() => new KVCache({ ...shape, panel: 0 })).toThrow(/panel/);
  });
});
