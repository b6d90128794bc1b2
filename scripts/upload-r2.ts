/**
 * Upload `model-shards/<model>` to a real R2 bucket for deployment, with `wrangler r2 object put --remote`.
 *
 *   npx wrangler login                                   # or CLOUDFLARE_API_TOKEN + CLOUDFLARE_ACCOUNT_ID
 *   npx wrangler r2 bucket create ctc-edge-acme-models   # once
 *   npm run upload-r2 -- --bucket ctc-edge-acme-models [--model default] [--env acme] [--dry-run]
 *
 * Keys are `<model>/<shard path>`, the layout the worker reads. Shards are content-hashed, so uploading a
 * new version never overwrites shards an older manifest still uses; manifest.json goes last, so a running
 * deployment switches to the new model only once every shard is in place (each isolate loads it on its
 * next cold start). Every local shard is checked against the manifest's sha256 before anything is sent.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    bucket: { type: 'string' },
    model: { type: 'string', default: 'default' },
    env: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help || !values.bucket) {
  process.stderr.write('usage: npm run upload-r2 -- --bucket <bucket-name> [--model default] [--env <wrangler env>] [--dry-run]\n');
  process.exit(values.help ? 0 : 2);
}

const dir = join(ROOT, 'model-shards', values.model!);
const manifestPath = join(dir, 'manifest.json');
if (!existsSync(manifestPath)) {
  process.stderr.write(`no manifest at ${manifestPath}\n`);
  process.exit(1);
}
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
  files: Record<string, { shards: { path: string; bytes: number; sha256: string }[] }>;
};
const shards = Object.values(manifest.files).flatMap((f) => f.shards);
for (const s of shards) {
  const bytes = readFileSync(join(dir, s.path));
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (bytes.byteLength !== s.bytes || sha !== s.sha256) {
    process.stderr.write(`local shard ${s.path} does not match the manifest (size or sha256): not uploading\n`);
    process.exit(1);
  }
}

const put = (key: string, file: string, contentType: string) => {
  const args = ['wrangler', 'r2', 'object', 'put', `${values.bucket}/${key}`, '--file', file, '--content-type', contentType, '--remote'];
  if (values.env) args.push('--env', values.env);
  process.stderr.write(`npx ${args.join(' ')}\n`);
  if (values['dry-run']) return;
  const r = spawnSync('npx', args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`upload of ${key} failed (exit ${r.status})\n`);
    process.exit(1);
  }
};

for (const s of shards) put(`${values.model}/${s.path}`, join(dir, s.path), 'application/octet-stream');
put(`${values.model}/manifest.json`, manifestPath, 'application/json');
process.stderr.write(`uploaded ${shards.length} shards + manifest of "${values.model}" to r2://${values.bucket}/${values.model}/\n`);
