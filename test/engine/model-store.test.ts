import { describe, expect, it } from 'vitest';
import { ShardError, loadArtifact, loadManifest, memoryShardSource, sha256Hex } from '../../src/engine/model-store.js';
import type { Manifest } from '../../src/engine/types.js';

const enc = new TextEncoder();

async function fixture() {
  const whole = new Uint8Array(1000).map((_, i) => (i * 7) & 255);
  const a = whole.slice(0, 600);
  const b = whole.slice(600);
  const tok = enc.encode('{"x":1}');
  const manifest: Manifest = {
    format: 1,
    name: 't',
    created: 'now',
    config: { vocab_size: 8, d_model: 4, n_layers: 1, n_heads: 1, head_dim: 4, ffn_hidden: 8, max_seq_len: 16, kv_panel: 4, bos_id: 1, eos_id: 2 },
    files: {
      base: {
        bytes: 1000,
        sha256: await sha256Hex(whole),
        shards: [
          { path: 'base.onnx.000', bytes: 600, sha256: await sha256Hex(a) },
          { path: 'base.onnx.001', bytes: 400, sha256: await sha256Hex(b) },
        ],
      },
      tokenizer: { bytes: tok.length, sha256: await sha256Hex(tok), shards: [{ path: 'tok.000', bytes: tok.length, sha256: await sha256Hex(tok) }] },
    },
  };
  const files: Record<string, Uint8Array> = {
    'manifest.json': enc.encode(JSON.stringify(manifest)),
    'base.onnx.000': a,
    'base.onnx.001': b,
    'tok.000': tok,
  };
  return { whole, manifest, files };
}

async function failure(p: Promise<unknown>): Promise<ShardError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ShardError);
    return e as ShardError;
  }
  throw new Error('expected a ShardError');
}

describe('model store', () => {
  it('sha256Hex matches a known vector', async () => {
    expect(await sha256Hex(enc.encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('loads and reassembles verified shards', async () => {
    const { whole, files } = await fixture();
    const src = memoryShardSource(files);
    const m = await loadManifest(src);
    expect(await loadArtifact(src, m, 'base')).toEqual(whole);
  });

  it('names the shard that is missing, the wrong size, or corrupt', async () => {
    const { files, manifest } = await fixture();
    const missing = { ...files };
    delete missing['base.onnx.001'];
    let e = await failure(loadArtifact(memoryShardSource(missing), manifest, 'base'));
    expect([e.shard, e.reason]).toEqual(['base.onnx.001', 'missing']);

    e = await failure(loadArtifact(memoryShardSource({ ...files, 'base.onnx.000': files['base.onnx.000'].slice(1) }), manifest, 'base'));
    expect([e.shard, e.reason]).toEqual(['base.onnx.000', 'size']);

    const flipped = files['base.onnx.001'].slice();
    flipped[10] ^= 1;
    e = await failure(loadArtifact(memoryShardSource({ ...files, 'base.onnx.001': flipped }), manifest, 'base'));
    expect([e.shard, e.reason]).toEqual(['base.onnx.001', 'corrupt']);

    e = await failure(loadManifest(memoryShardSource({})));
    expect([e.shard, e.reason]).toEqual(['manifest.json', 'missing']);
    e = await failure(loadManifest(memoryShardSource({ 'manifest.json': enc.encode('{nope') })));
    expect(e.reason).toBe('corrupt');
    e = await failure(loadArtifact(memoryShardSource(files), manifest, 'ctc_head'));
    expect(e.reason).toBe('missing');
  });

  it('checks the whole file hash too', async () => {
    const { files, manifest } = await fixture();
    const bad = structuredClone(manifest);
    bad.files.base.sha256 = '0'.repeat(64);
    const e = await failure(loadArtifact(memoryShardSource(files), bad, 'base'));
    expect(e.reason).toBe('corrupt');
  });
});
