/**
 * `npm run bench:browser`: the drafter comparison inside headless Chromium, on wasm and (where Chromium has a
 * WebGPU adapter) on WebGPU: the page's engine bundles (build/engine-wasm.js, build/engine-webgpu.js) loaded
 * from the Worker's static assets in local workerd (scripts/node/browser-server.ts), greedy decoding, drafters
 * interleaved per prompt (the order rotates), speedup = median over prompts of the tokens/s ratio to plain,
 * "identical" = greedy tokens equal to plain decoding on the same provider. Without a GPU, Chromium's WebGPU
 * is SwiftShader (software): its numbers say nothing about a real GPU, so it runs fewer prompts by default.
 *
 *   npm run bench:browser -- [--prompts bench/prompts-long.jsonl] [--limit 12] [--max-tokens 64]
 *     [--drafters plain,ngram,ctc-ngram,medusa-ngram,ctc,medusa] [--providers wasm,webgpu]
 *     [--webgpu-limit 2] [--webgpu-max-tokens 16] [--json bench/results/bench-browser.json]
 */
import { parseArgs } from 'node:util';
import { launch, chromiumPath } from '../scripts/node/chromium.js';
import { startBrowserServer } from '../scripts/node/browser-server.js';
import { readPrompts } from './lib/prompts.js';
import { printTable, machineInfo, writeOutputs } from './lib/report.js';
import { summarize, type DrafterSummary, type PromptRun } from './lib/stats.js';

const { values: a } = parseArgs({
  options: {
    prompts: { type: 'string', default: 'bench/prompts-long.jsonl' },
    limit: { type: 'string', default: '12' },
    'max-tokens': { type: 'string', default: '64' },
    drafters: { type: 'string', default: 'plain,ngram,ctc-ngram,medusa-ngram,ctc,medusa' },
    providers: { type: 'string', default: 'wasm,webgpu' },
    'webgpu-limit': { type: 'string', default: '2' },
    'webgpu-max-tokens': { type: 'string', default: '16' },
    'tree-budget': { type: 'string', default: '16' },
    json: { type: 'string', default: 'bench/results/bench-browser.json' },
  },
});
if (!chromiumPath()) {
  process.stderr.write('bench:browser needs Chromium: apt-get install -y chromium (or set CHROMIUM_PATH)\n');
  process.exit(2);
}
const drafters = a.drafters!.split(',').filter(Boolean);
if (!drafters.includes('plain')) drafters.unshift('plain');
const log = (s: string) => process.stderr.write(s + '\n');
const server = await startBrowserServer(log);
const browser = await launch();
const result: Record<string, unknown> = { machine: machineInfo(), browser: browser.version(), args: a, providers: {} };
try {
  for (const provider of a.providers!.split(',') as ('wasm' | 'webgpu')[]) {
    const gpu = provider === 'webgpu';
    const prompts = readPrompts(a.prompts!, Number(gpu ? a['webgpu-limit'] : a.limit));
    const maxTokens = Number(gpu ? a['webgpu-max-tokens'] : a['max-tokens']);
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => log(`[page] ${e.message}`));
    await page.goto(server.url);
    await page.addScriptTag({ type: 'module', content: `import * as m from '/build/engine-${gpu ? 'webgpu' : 'wasm'}.js'; window.__engine = m;` });
    await page.waitForFunction(() => (window as unknown as { __engine?: unknown }).__engine);
    const info = await page.evaluate(async (p) => {
      const m = (window as unknown as { __engine: typeof import('../src/browser/index.js') }).__engine;
      const det = await m.detectProvider();
      if (p === 'webgpu' && !det.webgpu) return { skip: det.reason };
      const be = await m.loadBrowserEngine({ modelUrl: '/v1/models/default/files/', headers: { authorization: 'Bearer sk-local-dev' }, provider: p });
      (window as unknown as { __be: unknown }).__be = be;
      // warm-up (not timed): Chromium compiles wasm with its baseline tier first and optimizes hot
      // functions later, WebGPU compiles its shaders on first use, heads load on first use
      await m.complete(be.engine, { prompt: 'import os\nimport sys\n', maxTokens: p === 'webgpu' ? 8 : 96, drafter: 'plain' });
      for (const d of ['ngram', 'ctc-ngram', 'medusa-ngram', 'ctc', 'medusa']) {
        if (be.engine.drafterNames.includes(d)) await m.complete(be.engine, { prompt: 'def f(x):\n    return x\n\n\ndef g(x):\n', maxTokens: p === 'webgpu' ? 4 : 24, drafter: d });
      }
      return { provider: be.provider, baseFile: be.baseFile, adapter: det.adapter ?? null, loadMs: be.loadMs };
    }, provider);
    if ('skip' in info) {
      log(`[bench:browser] ${provider}: skipped (${info.skip})`);
      (result.providers as Record<string, unknown>)[provider] = { skipped: info.skip };
      continue;
    }
    log(`[bench:browser] ${provider}: ${JSON.stringify(info)}; ${prompts.length} prompts x ${drafters.length} drafters, ${maxTokens} tokens`);
    const runs: Record<string, (PromptRun | null)[]> = Object.fromEntries(drafters.map((d) => [d, []]));
    for (const [i, prompt] of prompts.entries()) {
      const order = drafters.map((_, j) => drafters[(i + j) % drafters.length]);
      const r = await page.evaluate(
        ([prompt, order, maxTokens, budget]) => {
          const w = window as unknown as { __engine: typeof import('../src/browser/index.js'); __be: { engine: import('../src/engine/index.js').Engine } };
          return w.__engine.benchPrompt(w.__be.engine, prompt, order, maxTokens, budget);
        },
        [prompt, order, maxTokens, Number(a['tree-budget'])] as [string, string[], number, number],
      );
      for (const d of drafters) runs[d][i] = r[d];
      process.stderr.write(`\r[bench:browser] ${provider}: prompt ${i + 1}/${prompts.length}`);
    }
    process.stderr.write('\n');
    const heap = await page.evaluate(() => (window as unknown as { __engine: typeof import('../src/browser/index.js') }).__engine.heapBytes());
    const mib = (b: number | null) => (b === null ? '?' : (b / 2 ** 20).toFixed(1));
    const rows: [string, DrafterSummary][] = drafters.map((d) => [d, summarize(runs[d], runs.plain)]);
    const title = `${provider}${gpu && info.adapter ? ` (${info.adapter.vendor} ${info.adapter.architecture})` : ''}, Chromium ${browser.version()}, ${prompts.length} prompts, ${maxTokens} tokens`;
    const table = printTable(rows, `heap after the run: ORT wasm ${mib(heap.wasm)} MiB, JS ${mib(heap.js)} MiB`);
    process.stdout.write(`\n${title}\n${table}`);
    (result.providers as Record<string, unknown>)[provider] = { ...info, prompts: prompts.length, max_tokens: maxTokens, wasm_heap_bytes: heap.wasm, js_heap_bytes: heap.js, summaries: Object.fromEntries(rows) };
    await page.context().close();
  }
} finally {
  await browser.close();
  await server.close();
}
const rows = Object.entries((result.providers as Record<string, { summaries?: Record<string, DrafterSummary> }>)).flatMap(([p, v]) => Object.entries(v.summaries ?? {}).map(([d, s]) => [`${p}:${d}`, s] as [string, DrafterSummary]));
writeOutputs(a.json!, result, rows, 'Drafters in Chromium (bench:browser)');
