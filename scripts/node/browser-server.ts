/**
 * The Worker with its static assets (the demo page and the engine for browsers, wrangler.toml [assets]) in
 * local workerd: the browser tests (test/browser/) and `npm run bench:browser` load the page from it.
 * It is what `npm start` serves (the built bundle, wrangler.toml's bindings and assets, the model of
 * model-shards/ seeded into R2), with every state in memory, on a free port of 127.0.0.1.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { buildBrowser } from '../build-browser.js';
import { ROOT, startBundle } from './local-worker.js';
import { modelsIn, seedModels } from './r2-seed.js';

export interface BrowserServer {
  mf: Miniflare;
  /** e.g. http://127.0.0.1:41234/ */
  url: string;
  close(): Promise<void>;
}

/** Builds the browser assets and the Worker bundle, starts both, seeds R2 from model-shards/. */
export async function startBrowserServer(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<BrowserServer> {
  await buildBrowser(log);
  const out = mkdtempSync(join(tmpdir(), 'ctc-edge-page-'));
  const t0 = Date.now();
  const r = spawnSync(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--env', '', '--outdir', out], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
  });
  if (r.status !== 0) throw new Error(`wrangler build failed:\n${r.stdout}\n${r.stderr}`);
  log(`[browser-server] worker bundle built in ${Date.now() - t0} ms`);
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml'));
  const { mf, url } = await startBundle(out, { wrapOptions: (o) => ({ ...o, assets: workerOptions.assets }) as typeof o });
  await seedModels(await mf.getR2Bucket('MODELS'), modelsIn(join(ROOT, 'model-shards')), () => undefined);
  return {
    mf,
    url,
    async close() {
      await mf.dispose();
      rmSync(out, { recursive: true, force: true });
    },
  };
}
