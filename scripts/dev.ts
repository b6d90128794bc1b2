/**
 * `npm start`: seed the local R2 bucket from model-shards/ and run `wrangler dev` on http://127.0.0.1:8787.
 *
 * Seeding writes straight into wrangler dev's local state (.wrangler/state/v3/r2) through miniflare, the
 * same simulator wrangler dev runs, with the function the worker tests seed with (scripts/node/r2-seed.ts), and
 * skips shards already there with the same sha256 (shards are content-hashed, so a restart seeds nothing).
 * Local only: the `dev` tenant's key is `sk-local-dev`.
 *
 *   npm start                      # default port 8787
 *   npm start -- --port 8788       # extra args go to wrangler dev
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Miniflare } from 'miniflare';
import { modelsIn, seedModels } from './node/r2-seed.js';
import { workerdV8FlagsEnv } from './node/workerd-v8-flags.js';

const ROOT = resolve(import.meta.dirname, '..');
const STATE = join(ROOT, '.wrangler/state/v3');
const BUCKET = 'ctc-edge-models'; // bucket_name of the MODELS binding in wrangler.toml (top level)

// CTC_MODELS_DIR: seed from another folder of <name>/manifest.json models (default model-shards/).
const modelsDir = resolve(process.env.CTC_MODELS_DIR ?? join(ROOT, 'model-shards'));
const log = (s: string) => process.stderr.write(s + '\n');
const models = modelsIn(modelsDir);
if (models.length === 0) {
  log(`[dev] no model in ${modelsDir}/<name>/manifest.json: requests will get 503 until one is exported`);
} else {
  const mf = new Miniflare({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 404 }) } }',
    r2Buckets: { MODELS: BUCKET },
    r2Persist: join(STATE, 'r2'),
  });
  try {
    await seedModels(await mf.getR2Bucket('MODELS'), models, (name, shards, written) =>
      log(`[dev] local R2 ${BUCKET}: ${name} (${shards} shards, ${written} written)`));
  } finally {
    await mf.dispose();
  }
}

// Defaults for --ip and --port unless given (wrangler refuses an option given twice).
const extra = process.argv.slice(2);
const { values: given } = parseArgs({ args: extra, strict: false, allowPositionals: true, options: { ip: { type: 'string' }, port: { type: 'string' } } });
const ip = typeof given.ip === 'string' ? given.ip : '127.0.0.1';
const port = typeof given.port === 'string' ? given.port : '8787';
// The dev key (local_only) is honoured only while wrangler dev listens on loopback alone (tenants.ts).
const loopback = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/i.test(ip);
const args = ['dev', ...(given.ip === undefined ? ['--ip', ip] : []), ...(given.port === undefined ? ['--port', port] : []),
  '--persist-to', join(ROOT, '.wrangler/state'), ...(loopback ? ['--var', 'LOCAL_KEYS:loopback'] : []), ...extra];
if (!loopback) log(`[dev] listening on ${ip}, not loopback: the local-only key sk-local-dev is refused`);
process.stderr.write(`[dev] wrangler ${args.join(' ')}\n[dev] try: curl -s http://${ip}:${port}/v1/completions -H 'Authorization: Bearer sk-local-dev' -H 'Content-Type: application/json' -d '{"model":"default","prompt":"def fib(n):","max_tokens":48,"temperature":0}'\n`);
// wrangler's own bin (not npx): one process to signal, which stops workerd on exit.
const child = spawn(join(ROOT, 'node_modules/.bin/wrangler'), args, { cwd: ROOT, stdio: 'inherit', env: { WRANGLER_SEND_METRICS: 'false', ...workerdV8FlagsEnv(), ...process.env } });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
