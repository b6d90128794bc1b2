/**
 * The engine in the browser on wasm (build/engine-wasm.js, onnxruntime-web's /wasm entry, the int8 model the
 * Worker runs): greedy output token-identical to the Node engine, through the page's "in this browser" mode;
 * shards checked and cached so that a reload downloads nothing; a corrupt cached shard replaced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { launch, MODEL_DIR, nodeGreedy, pageUrl, runDemo, SHOTS, skipLine, type Browser, type Page } from './helpers.js';
import { watch } from '../../scripts/node/chromium.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const skip = skipLine();
const PROMPTS = ['import os\nimport sys\n\n\ndef main():\n', '    def write(self, data):\n', 'class Stack:\n    """A LIFO stack."""\n\n    def __init__(self):\n'];
const manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8')) as { files: Record<string, { shards: { path: string }[] }> };
const loadShards = [...manifest.files.base.shards, ...manifest.files.tokenizer.shards].map((s) => s.path);

describe.skipIf(skip !== null)('engine in the browser, provider wasm', () => {
  let browser: Browser;
  let page: Page;
  const shardRequests: string[] = [];
  beforeAll(async () => {
    browser = await launch();
    mkdirSync(SHOTS, { recursive: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('request', (r) => {
      if (r.url().includes('/v1/models/default/files/') && r.url().endsWith('.bin')) shardRequests.push(r.url().split('/').pop()!);
    });
    await page.goto(pageUrl());
    await page.waitForSelector('body[data-ready="1"]');
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('greedy completion in the page on wasm is token-identical to the Node engine (plain and ngram drafters)', async () => {
    const w = watch(page);
    for (const [i, prompt] of PROMPTS.entries()) {
      const want = await nodeGreedy(prompt, 40);
      const drafter = i === 0 ? 'plain' : 'ngram';
      const run = await runDemo(page, { mode: 'browser', provider: 'wasm', prompt, maxTokens: 40, drafter });
      process.stderr.write(`[browser] wasm: prompt ${i}, ${drafter}: ${run.tokens!.length} tokens, ${run.tokensPerSecond.toFixed(0)} tok/s, τ ${run.tau!.toFixed(2)}\n`);
      expect(run.provider).toBe('wasm');
      expect(run.tokens).toEqual(want);
    }
    expect(await page.textContent('#f-provider')).toBe('this browser (wasm)');
    await page.screenshot({ path: join(SHOTS, 'demo-browser-wasm.png'), fullPage: true });
    // the first load fetched the base model and the tokenizer, each shard once
    expect([...shardRequests].sort()).toEqual([...loadShards].sort());
    expect(w.errors).toEqual([]);
  });

  it('a draft head (ctc-ngram, head on wasm too) gives the same tokens on wasm', async () => {
    const want = await nodeGreedy(PROMPTS[2], 40);
    const run = await runDemo(page, { mode: 'browser', provider: 'wasm', prompt: PROMPTS[2], maxTokens: 40, drafter: 'ctc-ngram' });
    expect(run.tokens).toEqual(want);
    expect(run.accepted).toBeGreaterThan(0);
  });

  it('a reload loads the model from the cache: no shard downloaded again', async () => {
    shardRequests.length = 0;
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    const run = await runDemo(page, { mode: 'browser', provider: 'wasm', prompt: PROMPTS[1], maxTokens: 16, drafter: 'ngram' });
    expect(run.tokens).toEqual(await nodeGreedy(PROMPTS[1], 16));
    expect(shardRequests).toEqual([]);
    const stats = await page.evaluate(() => (window as unknown as { ctcDemo: { engine: { shards: { cached: number; fetched: number } } } }).ctcDemo.engine.shards);
    expect(stats).toMatchObject({ cached: loadShards.length, fetched: 0 });
    expect(await page.textContent('#detail')).toMatch(new RegExp(`${loadShards.length} shards from the cache, 0 downloaded`));
  });

  it('a corrupt shard in the cache fails its sha256 check and is fetched again; the output is unchanged', async () => {
    const victim = manifest.files.base.shards[1].path;
    await page.evaluate(async (p) => {
      const c = await caches.open('ctc-edge-shards-v1');
      const url = new URL(`/v1/models/default/files/${p}`, location.href).href;
      const bytes = new Uint8Array(await (await c.match(url))!.arrayBuffer());
      bytes[1000] ^= 0xff;
      await c.put(url, new Response(bytes));
    }, victim);
    shardRequests.length = 0;
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    const run = await runDemo(page, { mode: 'browser', provider: 'wasm', prompt: PROMPTS[0], maxTokens: 24, drafter: 'ngram' });
    expect(run.tokens).toEqual(await nodeGreedy(PROMPTS[0], 24));
    expect(shardRequests).toEqual([victim]);
    const stats = await page.evaluate(() => (window as unknown as { ctcDemo: { engine: { shards: { repaired: number; fetched: number } } } }).ctcDemo.engine.shards);
    expect(stats).toMatchObject({ repaired: 1, fetched: 1 });
  });

  it('rows of a 16-token pass equal the same tokens decoded one by one on wasm (bit for bit)', async () => {
    const drift = await page.evaluate(async (prompt) => {
      const demo = (window as unknown as { ctcDemo: { bundle: { rowDrift: (e: unknown, p: string, k: number) => Promise<unknown> }; engine: { engine: unknown } } }).ctcDemo;
      return demo.bundle.rowDrift(demo.engine.engine, prompt, 16);
    }, PROMPTS.join('\n').repeat(3));
    expect(drift).toMatchObject({ maxAbsDiff: 0, argmaxAgree: true, kvDiff: [0, 0, 0, 0, 0, 0] });
  });
});
