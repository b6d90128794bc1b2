/**
 * training/export_onnx.py's draft head graph (build_prefix_head: what `ctc_head` and `medusa_head` are)
 * against the PyTorch module it was written from: random heads on a small random base model
 * (test/convert/head_reference.py), the CTC head
 * with its slot layer and without it (`slot_layers` 0), and the Medusa head. The fp32 graph, run by
 * onnxruntime-web over 37 new positions with an empty cache, must give PyTorch's output at the newest
 * position and the trunk's rotated keys to 1e-4 of their magnitude. Needs Debian's python3 with torch, onnx, numpy and tqdm; skips without.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSession, ort } from '../../src/engine/index.js';
import { PY, PY_MISSING, py, readF32 } from './python.js';

if (!PY) console.log(`head-export: skipped: ${PY_MISSING}`);
const dir = PY ? mkdtempSync(join(tmpdir(), 'ctc-edge-head-export-')) : '';
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** max |a - b| / max |b| */
function relErr(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0, mag = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return diff / mag;
}

const CASES = [
  ['ctc', 1],
  ['ctc', 0],
  ['medusa', 1],
] as const;

describe.skipIf(!PY)('draft head export matches PyTorch', () => {
  it.each(CASES)('%s, slot layers %i', async (kind, slotLayers) => {
    const out = join(dir, `${kind}-${slotLayers}`);
    py(['test/convert/head_reference.py', out, '--kind', kind, '--slot-layers', String(slotLayers), '--seed', String(3 + slotLayers)]);
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as {
      d: number; heads: number; head_dim: number; m: number; next_ids: number[]; out_shape: number[]; output: string;
    };
    const { d, heads, head_dim: D, m } = meta;
    const session = await createSession(readFileSync(join(out, 'head.onnx')));
    const mask = new Float32Array(m * m);
    for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) mask[i * m + j] = -1e9; // causal
    const res = await session.run({
      hidden: new ort.Tensor('float32', readF32(join(out, 'hidden.f32')), [1, m, d]),
      next_ids: new ort.Tensor('int64', BigInt64Array.from(meta.next_ids.map(BigInt)), [1, m]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: m }, (_, i) => BigInt(i)), [1, m]),
      attention_mask: new ort.Tensor('float32', mask, [1, 1, m, m]),
      past_key: new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, D]),
      past_value: new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, D]),
    });
    const got = res[meta.output];
    expect(got.dims).toEqual(meta.out_shape);
    expect(relErr(got.data as Float32Array, readF32(join(out, 'out.f32')))).toBeLessThan(1e-4);
    expect(relErr(res.new_key.data as Float32Array, readF32(join(out, 'keys.f32')))).toBeLessThan(1e-4);
    await session.release();
  }, 120_000);
});
