/**
 * Drafters side by side, in Node (onnxruntime-web wasm, one thread), greedy or sampled. The CLI of the
 * benchmark library bench/lib/ (engine.ts; with --api, api.ts: the same as bench/bench-api.ts).
 *
 *   npm run bench -- [--prompts bench/prompts.jsonl] [--limit N] [--max-tokens 64] [--max-prompt-tokens N]
 *                    [--drafters plain,ngram,ctc,medusa,ctc-ngram,medusa-ngram,oracle] [--budget 16] [--beam 8] [--top-m 4]
 *                    [--min-weight 0] [--json bench/results/bench.json] [--model model-shards/default]
 *                    [--temperature 0] [--top-p 1] [--top-k 0] [--seed 1]   (T > 0: prompt i samples with seed + i)
 *   npm run bench -- --api http://127.0.0.1:8787 [--api-key sk-local-dev] ...   (through the HTTP API)
 *   npm run bench -- --anchor transformers.js [--anchor-runtime wasm|cpu] [--drafters plain,ngram] ...
 *                    (transformers.js generate() on model-hf/default vs the engine: bench/lib/anchor.ts)
 *
 * Prompts longer than --max-prompt-tokens keep <s> and their last tokens; the default (0) keeps as
 * much as the context allows: prompt + max tokens <= the model's context (512). Prompt files:
 * bench/prompts.jsonl (held-out corpus files, short), bench/prompts-thirdparty.jsonl (third-party
 * Python, short), bench/prompts-long.jsonl (third-party Python, 300-450 tokens).
 *
 * The spec `default` runs what the API picks for a request with these sampling parameters and no drafter.
 * A drafter may carry its own settings: `ctc:budget=12:beam=4:minw=0.02`, `medusa:topm=3`,
 * `ngram:minw=0.2`, so variants run interleaved in one pass (keys: budget, beam, topm, minw,
 * maxlen, tree=prefix|weighted|rank, cost (cost-aware size, R = fixed/per-node cost), minprob and gamma
 * (medusa), maxn (ngram), fused=1 (the head inside greedy verify passes), win (the head's window), sw (T > 0: the
 * heads' sampled siblings per depth, e.g. sw=2.1.1.1), mincont (T > 0: where the CTC chain stops) and
 * qtemp (T > 0: the heads' q drawn at the request's temperature times this), sminw (T > 0: the lookup's
 * minimum candidate weight; default auto, T - 0.4); for the
 * head + lookup drafters (ctc-ngram, medusa-ngram): mode=merge|switch, skip (merge: skip the head when
 * the lookup expects this many tokens), hcost (merge: R of the merged tree's cut), minmatch (switch:
 * shortest repeat that replaces the head)).
 *
 * Interleaving: for each prompt every drafter runs once (plain first: its output is the oracle's
 * reference; the others in an order rotated per prompt), so machine noise (this VM has heavy steal
 * time) hits all drafters alike. Speedup = median over prompts of (drafter tok/s / plain tok/s).
 * tokens/s counts completion tokens over decoding time (prefill excluded; every drafter runs on a
 * fresh session, so prefill is the same work for all). τ = tokens emitted per base-model call.
 */
import { parseBenchArgs } from './lib/options.js';

const values = parseBenchArgs(import.meta.url);
try {
  if (values.anchor) await (await import('./lib/anchor.js')).runAnchorBench(values);
  else if (values.api) await (await import('./lib/api.js')).runApiBench(values);
  else await (await import('./lib/engine.js')).runEngineBench(values);
} catch (e) {
  process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
}
