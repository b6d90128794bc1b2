/**
 * `npm start`: seed the local R2 bucket from model-shards/ and run `wrangler dev` on http://127.0.0.1:8787.
 *
 * Seeding writes straight into wrangler dev's local state (.wrangler/state/v3/r2) through miniflare, the
 * same simulator wrangler dev runs, and skips shards already there with the same sha256 (shards are
 * content-hashed, so a restart seeds nothing). Local only: the `dev` tenant's key is `sk-local-dev`.
 *
 *   npm start                      # default port 8787
 *   npm start -- --port 8788       # extra args go to wrangler dev
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Miniflare } from 'miniflare';

const ROOT = resolve(import.meta.dirname, '..');
const STATE = join(ROOT, '.wrangler/state/v3');
const BUCKET = 'ctc-edge-models'; // bucket_name of the MODELS binding in wrangler.toml (top level)

interface Manifest {
  files: Record<string, { shards: { path: string; bytes: number; sha256: string }[] }>;
}

export async function seedLocalR2(opts: { persist: string; bucketName: string; modelsDir: string; log?: (s: string) => void }): Promise<number> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const models = existsSync(opts.modelsDir)
    ? readdirSync(opts.modelsDir).filter((d) => existsSync(join(opts.modelsDir, d, 'manifest.json')))
    : [];
  if (models.length === 0) {
    log(`[dev] no model in ${opts.modelsDir}/<name>/manifest.json: requests will get 503 until one is exported`);
    return 0;
  }
  const mf = new Miniflare({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 404 }) } }',
    r2Buckets: { MODELS: opts.bucketName },
    r2Persist: join(opts.persist, 'r2'),
  });
  let written = 0;
  try {
    const bucket = await mf.getR2Bucket('MODELS');
    for (const model of models) {
      const dir = join(opts.modelsDir, model);
      const manifestBytes = new Uint8Array(readFileSync(join(dir, 'manifest.json')));
      const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as Manifest;
      const shards = Object.values(manifest.files).flatMap((f) => f.shards);
      for (const s of shards) {
        const key = `${model}/${s.path}`;
        const head = await bucket.head(key);
        if (head && head.size === s.bytes && head.customMetadata?.sha256 === s.sha256) continue;
        // A plain Uint8Array copy: miniflare's proxy rejects Node's pooled Buffers.
        await bucket.put(key, new Uint8Array(readFileSync(join(dir, s.path))), { customMetadata: { sha256: s.sha256 } });
        written++;
      }
      // The manifest last, so it never points at shards that are not there yet.
      await bucket.put(`${model}/manifest.json`, manifestBytes);
      log(`[dev] local R2 ${opts.bucketName}: ${model} (${shards.length} shards, ${written} written)`);
    }
  } finally {
    await mf.dispose();
  }
  return written;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('dev.ts')) {
  // CTC_MODELS_DIR: seed from another folder of <name>/manifest.json models (default model-shards/).
  await seedLocalR2({ persist: STATE, bucketName: BUCKET, modelsDir: resolve(process.env.CTC_MODELS_DIR ?? join(ROOT, 'model-shards')) });
  const args = ['dev', '--ip', '127.0.0.1', '--port', '8787', '--persist-to', join(ROOT, '.wrangler/state'), ...process.argv.slice(2)];
  process.stderr.write(`[dev] wrangler ${args.join(' ')}\n[dev] try: curl -s http://127.0.0.1:8787/v1/completions -H 'Authorization: Bearer sk-local-dev' -H 'Content-Type: application/json' -d '{"model":"default","prompt":"def fib(n):","max_tokens":48,"temperature":0}'\n`);
  // wrangler's own bin (not npx): one process to signal, which stops workerd on exit.
  const child = spawn(join(ROOT, 'node_modules/.bin/wrangler'), args, { cwd: ROOT, stdio: 'inherit', env: { WRANGLER_SEND_METRICS: 'false', ...process.env } });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code) => process.exit(code ?? 0));
}
