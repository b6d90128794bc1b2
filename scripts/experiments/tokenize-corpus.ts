/**
 * Token files for the held-out metrics from the shipped tokenizer (no SentencePiece needed):
 * data/corpus/{train,val}.txt -> data/tokens/{train,val}.bin (uint16, each document = <s> + tokens).
 *
 *   npx tsx scripts/experiments/tokenize-corpus.ts [--split val]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadArtifact, loadManifest, TextTokenizer } from '../../src/engine/index.js';
import { fsShardSource } from '../../src/node/fs-shard-source.js';

const { values: args } = parseArgs({
  options: { model: { type: 'string', default: 'model-shards/default' }, split: { type: 'string', default: 'val' } },
});
const src = fsShardSource(args.model!);
const manifest = await loadManifest(src);
const tok = new TextTokenizer(await loadArtifact(src, manifest, 'tokenizer'));
const DOC_SEP = '\n\x1e\n';
const text = readFileSync(`data/corpus/${args.split}.txt`, 'utf8');
const ids: number[] = [];
for (const doc of text.split(DOC_SEP)) {
  if (!doc) continue;
  ids.push(manifest.config.bos_id, ...tok.encode(doc));
}
mkdirSync('data/tokens', { recursive: true });
writeFileSync(`data/tokens/${args.split}.bin`, new Uint8Array(Uint16Array.from(ids).buffer));
console.log(`${args.split}: ${Buffer.byteLength(text)} bytes -> ${ids.length} tokens`);
