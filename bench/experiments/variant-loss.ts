/**
 * Held-out loss of base-model files as the engine runs them (onnxruntime-web wasm in Node), on the texts
 * of a prompts file (default bench/prompts-long.jsonl: third-party Python, a domain kept out of training):
 * mean next-token cross-entropy over every token of every prompt (`<s>` + its tokens, prefilled in chunks
 * of 128 as sessions do). Compares the shipped int8 graph, the fp32 export and the WebGPU variant on the
 * same tokens (the WebGPU variant's numbers on the GPU differ from these by float rounding only).
 *
 *   npx tsx bench/experiments/variant-loss.ts data/onnx/base.rowwise.onnx data/onnx/base.onnx data/onnx/base.webgpu.onnx
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LanguageModel, TextTokenizer } from '../../src/engine/index.js';

const { values: args, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    manifest: { type: 'string', default: 'model-shards/default/manifest.json' },
    tokenizer: { type: 'string', default: 'data/tokenizer/tokenizer.json' },
    prompts: { type: 'string', default: 'bench/prompts-long.jsonl' },
    limit: { type: 'string', default: '100' },
  },
});
const manifest = JSON.parse(readFileSync(args.manifest!, 'utf8'));
const config = manifest.config;
const tok = new TextTokenizer(new Uint8Array(readFileSync(args.tokenizer!)));
const texts = readFileSync(args.prompts!, 'utf8').split('\n').filter(Boolean).slice(0, Number(args.limit)).map((l) => JSON.parse(l).prompt as string);
const seqs = texts.map((t) => [config.bos_id, ...tok.encode(t)].slice(0, config.max_seq_len));
const V = config.vocab_size;
for (const file of files) {
  const lm = await LanguageModel.create(new Uint8Array(readFileSync(file)), config);
  let nll = 0, n = 0;
  for (const ids of seqs) {
    const cache = lm.newCache();
    const { logits } = await lm.prefill(ids, cache);
    for (let i = 0; i + 1 < ids.length; i++) {
      const row = logits.subarray(i * V, (i + 1) * V);
      let m = -Infinity;
      for (const x of row) m = Math.max(m, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - m);
      nll += Math.log(z) + m - row[ids[i + 1]];
      n++;
    }
    cache.release();
  }
  console.log(`${file}\t${(statSync(file).size / 1e6).toFixed(2)} MB\t${(nll / n).toFixed(4)} nats/token over ${n} tokens of ${seqs.length} prompts`);
}
