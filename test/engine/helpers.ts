/** Shared by the engine tests (Node only): where the model and fixtures live. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadArtifact, loadManifest } from '../../src/engine/model-store.js';
import { TextTokenizer } from '../../src/engine/tokenizer.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';

export const ROOT = resolve(__dirname, '../..');
/** The model under test: $CTC_MODEL_DIR or model-shards/default. */
export const MODEL_DIR = process.env.CTC_MODEL_DIR ?? join(ROOT, 'model-shards/default');
export const FIXTURES = join(ROOT, 'test/fixtures');

export function modelPresent(): boolean {
  return existsSync(join(MODEL_DIR, 'manifest.json'));
}

/** Fails (never skips) with a message naming what produces the missing file. */
export function requireFile(path: string, producer: string): string {
  if (!existsSync(path)) throw new Error(`missing ${path}: it is written by ${producer}`);
  return readFileSync(path, 'utf8');
}

export function requireModel(): void {
  requireFile(join(MODEL_DIR, 'manifest.json'), 'training/export_onnx.py, quantize.py and shard.py (model-shards/default)');
}

/** The model's tokenizer when the model exists, else the training output (data/tokenizer). */
export async function loadTestTokenizer(): Promise<{ tok: TextTokenizer; from: string }> {
  if (modelPresent()) {
    const src = fsShardSource(MODEL_DIR);
    const m = await loadManifest(src);
    return { tok: new TextTokenizer(await loadArtifact(src, m, 'tokenizer')), from: MODEL_DIR };
  }
  const path = join(ROOT, 'data/tokenizer/tokenizer.json');
  return { tok: new TextTokenizer(requireFile(path, 'training/train_tokenizer.py')), from: path };
}
