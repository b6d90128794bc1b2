/**
 * Builds the demo page's assets into public/ (Workers static assets, wrangler.toml [assets]):
 *   public/build/engine-wasm.js, engine-webgpu.js   the engine for browsers (src/browser/index.ts), once with
 *                                                   onnxruntime-web's `/wasm` entry and once with `/jspi` (WebGPU)
 *   public/build/demo.js                            the page's script (src/browser/demo.ts)
 *   public/build/ort/                               onnxruntime-web's plain SIMD and JSPI wasm (14.2 / 16.8 MB,
 *                                                   each under the 25 MiB asset limit) and their loaders
 *   public/models/<name>/                           only with PUBLISH_MODELS=1: the model folders of model-shards/
 *                                                   (manifest + shards) as public static files
 * public/index.html, public/styles.css and public/_headers (the page's security headers) are sources.
 * Everything written here is ignored by git; files that are already there with the same size are not copied
 * again.
 *
 * What a deployment serves without a key is decided here, since static assets are served before the Worker
 * runs: no source maps (not written; stale ones deleted), and no model unless PUBLISH_MODELS=1 publishes
 * model-shards/ on purpose (otherwise public/models/ is deleted). The page gets a model through
 * GET /v1/models/{model}/files/{file}, with the tenant's key and only for the tenant's models.
 *
 *   npm run build:browser            (npm start and npm run test:browser run it first)
 *   PUBLISH_MODELS=1 npm run build:browser
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'public/build');
const ORT_DIST = join(ROOT, 'node_modules/onnxruntime-web/dist');
const ORT_FILES = ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.jspi.wasm', 'ort-wasm-simd-threaded.jspi.mjs'];
const MODELS = resolve(process.env.CTC_MODELS_DIR ?? join(ROOT, 'model-shards'));

function copyIfChanged(src: string, dst: string): boolean {
  if (existsSync(dst) && statSync(dst).size === statSync(src).size && statSync(dst).mtimeMs >= statSync(src).mtimeMs) return false;
  copyFileSync(src, dst);
  return true;
}

/** Mirrors a folder's files (flat) into dst, deleting files dst has and src has not. */
function mirror(src: string, dst: string): number {
  mkdirSync(dst, { recursive: true });
  const want = new Set(readdirSync(src).filter((f) => statSync(join(src, f)).isFile()));
  for (const f of readdirSync(dst)) if (!want.has(f)) rmSync(join(dst, f), { recursive: true, force: true });
  let n = 0;
  for (const f of want) if (copyIfChanged(join(src, f), join(dst, f))) n++;
  return n;
}

export async function buildBrowser(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<void> {
  const t0 = Date.now();
  mkdirSync(join(OUT, 'ort'), { recursive: true });
  const common = {
    bundle: true,
    format: 'esm' as const,
    platform: 'browser' as const,
    target: 'es2022',
    sourcemap: false, // public/ is served to anyone: no source maps
    minify: true,
    logLevel: 'warning' as const,
    // onnxruntime-web's bundles mention Node modules behind runtime checks; never taken in a browser
    external: ['node:*', 'fs', 'path', 'url', 'worker_threads', 'module'],
  };
  await Promise.all([
    build({ ...common, entryPoints: [join(ROOT, 'src/browser/index.ts')], outfile: join(OUT, 'engine-wasm.js'), define: { __ORT_BUILD__: '"wasm"' } }),
    build({
      ...common,
      entryPoints: [join(ROOT, 'src/browser/index.ts')],
      outfile: join(OUT, 'engine-webgpu.js'),
      define: { __ORT_BUILD__: '"webgpu"' },
      // the one difference: src/engine/ort.ts's import resolves to the JSPI (WebGPU) entry
      alias: { 'onnxruntime-web/wasm': 'onnxruntime-web/jspi' },
    }),
    build({ ...common, entryPoints: [join(ROOT, 'src/browser/demo.ts')], outfile: join(OUT, 'demo.js') }),
  ]);
  for (const f of readdirSync(OUT)) if (f.endsWith('.map')) rmSync(join(OUT, f)); // from builds that wrote them
  let copied = 0;
  for (const f of ORT_FILES) if (copyIfChanged(join(ORT_DIST, f), join(OUT, 'ort', f))) copied++;
  const publish = process.env.PUBLISH_MODELS === '1';
  const models = publish && existsSync(MODELS) ? readdirSync(MODELS).filter((d) => existsSync(join(MODELS, d, 'manifest.json'))) : [];
  if (!publish) rmSync(join(ROOT, 'public/models'), { recursive: true, force: true });
  for (const m of models) copied += mirror(join(MODELS, m), join(ROOT, 'public/models', m));
  const published = publish ? `, public/models/{${models.join(',')}} (PUBLISH_MODELS=1: public)` : '';
  log(`[build:browser] public/build (engine-wasm.js, engine-webgpu.js, demo.js, ort/)${published} in ${Date.now() - t0} ms (${copied} files copied)`);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('build-browser.ts')) {
  await buildBrowser();
}
