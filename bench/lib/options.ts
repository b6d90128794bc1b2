/** The command line of the benchmark CLIs (bench/bench.ts, bench/bench-api.ts): one set of options and defaults. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** The engine bench's drafters when --drafters is not given (the API bench reads it as "plain,ctc"). */
export const DEFAULT_DRAFTERS = 'plain,ngram,ctc,medusa,ctc-ngram,medusa-ngram,oracle';

export const BENCH_OPTIONS = {
  prompts: { type: 'string', default: 'bench/prompts.jsonl' },
  limit: { type: 'string', default: '0' },
  'max-tokens': { type: 'string', default: '64' },
  'max-prompt-tokens': { type: 'string', default: '0' },
  drafters: { type: 'string', default: DEFAULT_DRAFTERS },
  budget: { type: 'string', default: '16' },
  beam: { type: 'string' },
  'top-m': { type: 'string' },
  'min-weight': { type: 'string' },
  json: { type: 'string', default: 'bench/results/bench.json' },
  model: { type: 'string', default: 'model-shards/default' },
  api: { type: 'string' },
  /** `transformers.js`: bench/lib/anchor.ts; `--anchor-runtime wasm|cpu` its ONNX runtime. */
  anchor: { type: 'string' },
  'anchor-runtime': { type: 'string', default: 'wasm' },
  'api-key': { type: 'string', default: 'sk-local-dev' },
  'api-model': { type: 'string', default: 'default' },
  /** Sampling parameters of every run (0: greedy, the default); prompt i samples with seed + i. */
  temperature: { type: 'string', default: '0' },
  'top-p': { type: 'string', default: '1' },
  'top-k': { type: 'string', default: '0' },
  seed: { type: 'string', default: '1' },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export type BenchValues = ReturnType<typeof parseBenchArgs>;

/** Parses process.argv; with --help prints the doc comment at the top of `cliUrl` (the CLI's import.meta.url) and exits. */
export function parseBenchArgs(cliUrl: string) {
  const { values } = parseArgs({ options: BENCH_OPTIONS });
  if (values.help) {
    process.stdout.write(readFileSync(new URL(cliUrl)).toString().split('*/')[0] + '*/\n');
    process.exit(0);
  }
  return values;
}

/** A numeric option, or exit 2 naming it. */
export function num(v: string | undefined, name: string): number {
  const x = Number(v);
  if (!Number.isFinite(x)) {
    process.stderr.write(`--${name}: not a number: ${v}\n`);
    process.exit(2);
  }
  return x;
}
