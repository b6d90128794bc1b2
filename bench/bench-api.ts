/**
 * The bench through the real HTTP API (the Worker in workerd: `npm start` serves
 * http://127.0.0.1:8787):
 *
 *   npx tsx bench/bench-api.ts --api URL [--api-key sk-local-dev] [--api-model default] [--drafters plain,ctc]
 *                                [--prompts F] [--limit N] [--max-tokens N] [--max-prompt-tokens N] [--budget N]
 *                                [--model model-shards/default] [--json OUT] [--quiet]
 *
 * (the same as `npm run bench -- --api URL ...`; the library: bench/lib/api.ts).
 *
 * Per prompt, every drafter runs once (plain first, then the others rotated), greedy, streamed
 * (`POST /v1/completions`, `stream: true`, `stream_options.include_usage`), each on a fresh
 * ephemeral session. Time = wall time of the whole request as a client sees it (HTTP, prefill and
 * all), so the speedup here is end-to-end and a bit below the engine-only bench. τ = completion
 * tokens / rounds, with rounds (and draft / verify ms) from the server's `ctc_edge` usage extension,
 * else estimated as completion_tokens - accepted_prediction_tokens (every round emits its accepted
 * draft tokens plus one bonus token). Prompts are fitted to the context as in the engine bench: one
 * longer than --max-prompt-tokens, or than the model's context less --max-tokens, keeps <s> and its
 * newest tokens, and goes out as token ids (tokenizer and context from --model, the served model's folder).
 */
import { parseBenchArgs } from './lib/options.js';

const values = parseBenchArgs(import.meta.url);
if (!values.api) {
  process.stderr.write('usage: npx tsx bench/bench-api.ts --api http://127.0.0.1:8787 [options] (--help)\n');
  process.exit(2);
}
try {
  await (await import('./lib/api.js')).runApiBench(values);
} catch (e) {
  process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
}
