/**
 * Token files from a model folder's tokenizer (no SentencePiece needed): data/corpus/<split>.txt ->
 * <out>/<split>.bin (uint16, each document = <s> + tokens), the layout training.train_tokenizer writes.
 * For the held-out metrics of the shipped model, and for the draft-head recipe of a converted model
 * (training/convert_hf.py), whose own tokenizer must cut the corpus for training.distill.
 *
 *   npx tsx scripts/tokenize-corpus.ts [--split val] [--model model-shards/default]
 *                                                  [--corpus data/corpus] [--out data/tokens]
 *
 * --split takes a comma-separated list (train,val). A progress bar (bytes, rate, ETA) runs on stderr.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { loadArtifact, loadManifest, TextTokenizer } from '../src/engine/index.js';
import { fsShardSource } from './node/fs-shard-source.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'model-shards/default' },
    split: { type: 'string', default: 'val' },
    corpus: { type: 'string', default: 'data/corpus' },
    out: { type: 'string', default: 'data/tokens' },
  },
});
const src = fsShardSource(args.model!);
const manifest = await loadManifest(src);
// the token files are uint16, as training/common.py load_tokens and training.distill read them
if (manifest.config.vocab_size > 65536) {
  process.stderr.write(`${args.model}: vocab_size ${manifest.config.vocab_size} does not fit the uint16 token files\n`);
  process.exit(1);
}
const tok = new TextTokenizer(await loadArtifact(src, manifest, 'tokenizer'));
const DOC_SEP = '\n\x1e\n';
mkdirSync(args.out!, { recursive: true });
for (const split of args.split!.split(',').filter(Boolean)) {
  const t0 = performance.now();
  const text = readFileSync(join(args.corpus!, `${split}.txt`), 'utf8');
  const docs = text.split(DOC_SEP).filter((d) => d);
  // progress in bytes of text: documents differ in size by orders of magnitude
  const total = docs.reduce((a, d) => a + d.length, 0);
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const bar = new cliProgress.SingleBar(
    { format: `${split} |{bar}| {percentage}% {done}/{size} M chars, ETA {eta_formatted}`, noTTYOutput: true, notTTYSchedule: 10_000 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { done: mb(0), size: mb(total) });
  const ids: number[] = [];
  let seen = 0;
  let yielded = performance.now();
  for (const doc of docs) {
    ids.push(manifest.config.bos_id, ...tok.encode(doc));
    seen += doc.length;
    // encoding is synchronous: let the bar's timer run a few times a second
    if (performance.now() - yielded > 200) {
      bar.update(seen, { done: mb(seen) });
      await new Promise((r) => setImmediate(r));
      yielded = performance.now();
    }
  }
  bar.update(total, { done: mb(total) });
  bar.stop();
  writeFileSync(join(args.out!, `${split}.bin`), new Uint8Array(Uint16Array.from(ids).buffer));
  const bytes = Buffer.byteLength(text);
  console.log(
    `${split}: ${docs.length} documents, ${bytes} bytes -> ${ids.length} tokens (${(bytes / ids.length).toFixed(2)} bytes/token) ` +
      `in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${join(args.out!, `${split}.bin`)}`,
  );
}
