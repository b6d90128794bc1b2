/**
 * Held-out loss of base-model ONNX files as the engine runs them (onnxruntime-web wasm): mean
 * next-token cross-entropy over windows of the held-out token file, prefilled in chunks the way
 * sessions prefill. Same windows for every file, so graphs can be compared.
 *
 *   npx tsx bench/experiments/heldout-loss.ts data/onnx/base.rowwise.onnx [more.onnx ...] [--windows 256]
 *
 * Needs data/tokens/val.bin (scripts/tokenize-corpus.ts) and reads the model config from
 * --manifest (default model-shards/default/manifest.json).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LanguageModel } from '../../src/engine/index.js';

const { values: args, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    manifest: { type: 'string', default: 'model-shards/default/manifest.json' },
    tokens: { type: 'string', default: 'data/tokens/val.bin' },
    windows: { type: 'string', default: '256' },
    chunk: { type: 'string', default: '128' },
    'kv-panel': { type: 'string' },
  },
});
const manifest = JSON.parse(readFileSync(args.manifest!, 'utf8'));
const config = { ...manifest.config, ...(args['kv-panel'] ? { kv_panel: Number(args['kv-panel']) } : {}) };
const raw = readFileSync(args.tokens!);
const val = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
const T = config.max_seq_len;
// deterministic window starts (xorshift), the same for every file
let s = 1234;
const starts = Array.from({ length: Number(args.windows) }, () => {
  s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
  return (s >>> 0) % (val.length - T - 1);
});
const V = config.vocab_size;
for (const file of files) {
  const lm = await LanguageModel.create(readFileSync(file), config);
  let nll = 0, n = 0;
  for (const st of starts) {
    const w = Array.from(val.subarray(st, st + T + 1));
    const cache = lm.newCache();
    for (let c = 0; c < T; c += Number(args.chunk)) {
      const part = w.slice(c, Math.min(T, c + Number(args.chunk)));
      const { logits } = await lm.prefill(part, cache);
      for (let i = 0; i < part.length; i++) {
        const row = logits.subarray(i * V, (i + 1) * V);
        let m = -Infinity;
        for (const x of row) if (x > m) m = x;
        let z = 0;
        for (const x of row) z += Math.exp(x - m);
        nll += m + Math.log(z) - row[w[c + i + 1]];
        n++;
      }
    }
  }
  console.log(JSON.stringify({ file, windows: starts.length, tokens: n, nats_per_token: +(nll / n).toFixed(4) }));
}
