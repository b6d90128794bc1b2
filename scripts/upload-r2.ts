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
 * A progress bar (bytes, objects, rate, ETA) runs on stderr, and one summary line ends the upload.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';

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

/** The wrangler command that uploads one object. */
const putArgs = (key: string, file: string, contentType: string) => {
  const args = ['wrangler', 'r2', 'object', 'put', `${values.bucket}/${key}`, '--file', file, '--content-type', contentType, '--remote'];
  if (values.env) args.push('--env', values.env);
  return args;
};

/** Runs it without blocking (the progress bar redraws meanwhile); wrangler's output is shown only if it fails. */
function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn('npx', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('close', (code) => done({ code, output }));
    child.on('error', (e) => done({ code: null, output: String(e) }));
  });
}

const uploads = [
  ...shards.map((s) => ({ key: `${values.model}/${s.path}`, file: join(dir, s.path), type: 'application/octet-stream', bytes: s.bytes })),
  // last: a deployment switches to the new model only once every shard is in place
  { key: `${values.model}/manifest.json`, file: manifestPath, type: 'application/json', bytes: readFileSync(manifestPath).byteLength },
];
const total = uploads.reduce((a, u) => a + u.bytes, 0);
const mib = (b: number) => (b / 2 ** 20).toFixed(2);

if (values['dry-run']) {
  for (const u of uploads) process.stderr.write(`npx ${putArgs(u.key, u.file, u.type).join(' ')}\n`);
  process.stderr.write(`dry run: ${uploads.length} objects, ${mib(total)} MiB for r2://${values.bucket}/${values.model}/\n`);
} else {
  const t0 = performance.now();
  // bytes as MiB with two decimals, objects as a count; on stderr (cli-progress's default), and when stderr is
  // not a terminal, one plain line every 5 s instead of redraws
  const bar = new cliProgress.SingleBar(
    {
      format: 'upload |{bar}| {percentage}% {done}/{size} MiB, {objects} objects, {rate} MiB/s, ETA {eta_formatted} {key}',
      noTTYOutput: true,
      notTTYSchedule: 5000,
      hideCursor: true,
      ...(process.stderr.isTTY ? {} : { barCompleteChar: '#', barIncompleteChar: '-' }),
    },
    cliProgress.Presets.shades_classic,
  );
  let sent = 0;
  const payload = (key: string, n: number) => ({
    done: mib(sent),
    size: mib(total),
    objects: `${n}/${uploads.length}`,
    rate: mib(sent / Math.max(1e-3, (performance.now() - t0) / 1000)),
    key,
  });
  bar.start(total, 0, payload('', 0));
  for (const [i, u] of uploads.entries()) {
    bar.update(sent, payload(u.key, i));
    const r = await run(putArgs(u.key, u.file, u.type));
    if (r.code !== 0) {
      bar.stop();
      process.stderr.write(`${r.output}\nupload of ${u.key} failed (exit ${r.code})\n`);
      process.exit(1);
    }
    sent += u.bytes;
    bar.update(sent, payload(u.key, i + 1));
  }
  bar.stop();
  const s = (performance.now() - t0) / 1000;
  process.stderr.write(
    `uploaded ${shards.length} shards + manifest of "${values.model}" (${mib(total)} MiB) to r2://${values.bucket}/${values.model}/ in ${s.toFixed(1)} s\n`,
  );
}
