/**
 * `npm run deploy:acme` (and `tsx scripts/deploy.ts --env <name>` for other tenants' environments): checks the
 * environment's TENANTS before `wrangler deploy --env <name>`, and refuses to deploy a tenant table that
 * would accept a key printed in this repository (the example's placeholder, the local dev key) or a
 * local_only tenant. The Worker refuses those keys at run time too (src/worker/tenants.ts); this says so
 * before anything is uploaded. A TENANTS set as a secret is not in wrangler.toml and is not checked here.
 *
 *   npm run deploy:acme
 *   tsx scripts/deploy.ts --env acme [more wrangler deploy args, e.g. --dry-run --outdir /tmp/x]
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { deployRefusal } from '../src/worker/tenants.js';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { env: { type: 'string' } }, allowPositionals: true, strict: false });
const env = typeof values.env === 'string' ? values.env : undefined;
// Everything else goes to wrangler as given (e.g. --dry-run --outdir /tmp/x).
const argv = process.argv.slice(2);
const rest = argv.filter((a, i) => !(a === '--env' || a.startsWith('--env=') || argv[i - 1] === '--env'));
if (!env) {
  process.stderr.write('usage: tsx scripts/deploy.ts --env <environment> (the top-level environment is local only)\n');
  process.exit(2);
}
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml'), env);
const tenants = (workerOptions.bindings as Record<string, unknown> | undefined)?.TENANTS;
if (typeof tenants === 'string') {
  const why = deployRefusal(tenants);
  if (why) {
    process.stderr.write(`[deploy] refused: [env.${env}] ${why}\n`);
    process.exit(1);
  }
} else {
  process.stderr.write(`[deploy] [env.${env}] has no TENANTS var: it must be a secret (npx wrangler secret put TENANTS --env ${env})\n`);
}
const r = spawnSync(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--env', env, ...rest], { cwd: ROOT, stdio: 'inherit' });
process.exit(r.status ?? 1);
