import { describe, expect, it } from 'vitest';
import { KVCache } from '../../src/engine/kv-cache.js';

const shape = { layers: 2, heads: 3, headDim: 4 };
const HD = shape.heads * shape.headDim;

/** Value encoding (layer, k/v, head, position, dim) so every element is identifiable. */
function val(l: number, kv: number, h: number, t: number, d: number): number {
  return l * 1e4 + kv * 5e3 + h * 1e3 + t * 10 + d + 0.25;
}
/** present arrays [H, T, D] holding positions 0..T-1 (with a position remap for tree nodes). */
function present(T: number, pos = (t: number) => t): [Float32Array[], Float32Array[]] {
  const mk = (l: number, kv: number) => {
    const a = new Float32Array(shape.heads * T * shape.headDim);
    for (let h = 0; h < shape.heads; h++)
      for (let t = 0; t < T; t++)
        for (let d = 0; d < shape.headDim; d++) a[(h * T + t) * shape.headDim + d] = val(l, kv, h, pos(t), d);
    return a;
  };
  return [
    [...Array(shape.layers)].map((_, l) => mk(l, 0)),
    [...Array(shape.layers)].map((_, l) => mk(l, 1)),
  ];
}
/** Checks the cache holds the listed logical positions. */
function expectHolds(kv: KVCache, positions: number[]): void {
  expect(kv.length).toBe(positions.length);
  for (let l = 0; l < shape.layers; l++) {
    const [k, v] = kv.past(l);
    expect(k.length).toBe(positions.length * HD);
    for (let h = 0; h < shape.heads; h++)
      positions.forEach((p, t) => {
        for (let d = 0; d < shape.headDim; d++) {
          expect(k[(h * positions.length + t) * shape.headDim + d]).toBe(val(l, 0, h, p, d));
          expect(v[(h * positions.length + t) * shape.headDim + d]).toBe(val(l, 1, h, p, d));
        }
      });
  }
}

describe('KVCache', () => {
  it('append adopts present; keep compacts to an accepted path; truncate drops', () => {
    const kv = new KVCache(shape);
    expect(kv.length).toBe(0);
    expect(kv.past(0)[0].length).toBe(0);
    kv.append(...present(5), 0);
    expectHolds(kv, [0, 1, 2, 3, 4]);
    // a "tree" of 4 nodes after P=5, stored at 5..8 and tagged 100..103
    kv.append(...present(9, (t) => (t < 5 ? t : 100 + t - 5)), 5);
    kv.keep(5, [0, 2, 3]);
    expectHolds(kv, [0, 1, 2, 3, 4, 100, 102, 103]);
    kv.truncate(6);
    expectHolds(kv, [0, 1, 2, 3, 4, 100]);
    expect(() => kv.append(...present(9), 5)).toThrow(); // from must equal length
    expect(() => kv.keep(6, [1, 0])).toThrow();
  });

  it('truncate then keep works on unpacked storage', () => {
    const kv = new KVCache(shape);
    kv.append(...present(8), 0);
    kv.truncate(6);
    kv.keep(4, [0, 1]);
    expectHolds(kv, [0, 1, 2, 3, 4, 5]);
    kv.truncate(4);
    kv.keep(2, [1]);
    expectHolds(kv, [0, 1, 3]);
  });

  it('serializes bit-exactly, in ranges and chunks', () => {
    const kv = new KVCache(shape);
    const [ks, vs] = present(10);
    // awkward bit patterns: subnormals, -0, NaN payload-free extremes
    ks[0][0] = -0;
    ks[0][1] = 1e-45;
    vs[1][2] = 3.4028234663852886e38;
    kv.append(ks, vs, 0);
    expect(kv.bytesPerToken).toBe(2 * 2 * 3 * 4 * 4);
    const all = kv.exportRange();
    expect(all.byteLength).toBe(10 * kv.bytesPerToken);
    const back = KVCache.fromChunks(shape, [all]);
    for (let l = 0; l < shape.layers; l++) {
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
    e.append(...present(10), 0);
    expectHolds(KVCache.fromChunks(shape, [e.exportRange(0, 4), e.exportRange(4, 10)]), [...Array(10).keys()]);
    expect(() => d.importRange(0, new Uint8Array(7))).toThrow();
  });

  it('default chunk size fits the 12,288-byte/token model in 1.9 MB values', () => {
    const kv = new KVCache({ layers: 6, heads: 4, headDim: 64 });
    expect(kv.bytesPerToken).toBe(12288);
    const per = kv.chunkRanges(1_900_000, 0, 512)[0][1];
    expect(per * 12288).toBeLessThanOrEqual(1_900_000);
    expect(per).toBe(154);
  });

  it('clone is independent', () => {
    const kv = new KVCache(shape);
    kv.append(...present(3), 0);
    const c = kv.clone();
    kv.truncate(1);
    expectHolds(c, [0, 1, 2]);
  });
});
