/**
 * The engine on WebGPU (build/engine-webgpu.js: onnxruntime-web's JSPI entry, the base model's WebGPU variant
 * `base_webgpu` on the GPU, draft heads on wasm). Headless Chromium's --enable-unsafe-webgpu gives a software
 * adapter (SwiftShader) on a machine without a GPU; where Chromium has no adapter at all these tests say so in
 * one line and skip. Checked: every float op of the variant is placed on the WebGPU provider (ORT's verbose
 * log), a verified row equals the same token decoded alone bit for bit, and greedy output of the drafters
 * equals plain WebGPU decoding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch, pageUrl, runDemo, SHOTS, skipLine, type Browser } from './helpers.js';
import { watch } from '../../scripts/node/chromium.js';

const skip = skipLine();
const PROMPTS = ['def fib(n):\n', 'import os\nimport sys\n\n\ndef main():\n'];
const LONG = 'import os\nimport sys\n\n\ndef main(argv):\n    parser = argparse.ArgumentParser()\n    parser.add_argument("--verbose", action="store_true")\n    args = parser.parse_args(argv)\n    for name in os.listdir(args.path):\n        print(name)\n';
const TOKENS = 12;

describe.skipIf(skip !== null)('engine in the browser, provider webgpu', () => {
  let browser: Browser;
  let context: BrowserContext; // one context: the model is downloaded once, then read from the cache
  let adapter: { vendor: string; architecture: string } | null = null;
  beforeAll(async () => {
    browser = await launch();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(pageUrl());
    adapter = await page.evaluate(async () => {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: { vendor: string; architecture: string } } | null> } }).gpu;
      const a = gpu ? await gpu.requestAdapter() : null;
      return a ? { vendor: a.info?.vendor ?? '', architecture: a.info?.architecture ?? '' } : null;
    });
    await page.close();
    process.stderr.write(adapter ? `[browser] webgpu adapter: ${adapter.vendor} ${adapter.architecture}\n` : '[browser] webgpu tests skipped: Chromium gave no WebGPU adapter here\n');
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('places every float op of the WebGPU variant on the WebGPU provider (ORT verbose log)', async (ctx) => {
    if (!adapter) return ctx.skip();
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(new URL('/?ortVerbose=1', pageUrl()).href);
    await page.waitForSelector('body[data-ready="1"]');
    const run = await runDemo(page, { mode: 'browser', provider: 'webgpu', prompt: PROMPTS[0], maxTokens: 1, drafter: 'plain' });
    expect(run.provider).toBe('webgpu');
    // placement of the base session (the WebGPU one): "Node(s) placed on [X]. Number of nodes: N" + one line per node
    const lines = w.console;
    const gpuAt = lines.findIndex((l) => /Node\(s\) placed on \[WebGpuExecutionProvider\]/.test(l));
    expect(gpuAt, 'no WebGPU placement in the verbose log').toBeGreaterThanOrEqual(0);
    const gpuNodes = Number(/Number of nodes: (\d+)/.exec(lines[gpuAt])![1]);
    let cpuAt = -1;
    for (let i = 0; i < gpuAt; i++) if (/Node\(s\) placed on \[CPUExecutionProvider\]/.test(lines[i])) cpuAt = i;
    const cpuOps: string[] = [];
    if (cpuAt >= 0) {
      const n = Number(/Number of nodes: (\d+)/.exec(lines[cpuAt])![1]);
      for (let i = cpuAt + 1; i <= cpuAt + n; i++) cpuOps.push(/VerifyEachNodeIsAssignedToAnEp\]\s+(\w+)/.exec(lines[i])![1]);
    }
    process.stderr.write(`[browser] webgpu: ${gpuNodes} nodes on WebGPU, ${cpuOps.length} on CPU (${[...new Set(cpuOps)].join(', ')}: int64 shape arithmetic)\n`);
    expect(gpuNodes).toBeGreaterThan(500);
    // what stays on the CPU is the int64 arithmetic on tensor shapes (panel counts, reshape targets), which
    // ORT keeps there by design; no MatMul, norm, softmax or elementwise float op
    expect(cpuOps.length).toBeLessThanOrEqual(16);
    for (const op of cpuOps) expect(['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Add', 'Slice', 'Squeeze']).toContain(op);
    expect(lines.some((l) => /kernel not found.*(MatMul|Reduce|Exp|Div|Mul)\b/.test(l))).toBe(false);
    await page.close();
  });

  it('a 16-token pass gives every row the same bits as decoding it alone on WebGPU', async (ctx) => {
    if (!adapter) return ctx.skip();
    const page = await context.newPage();
    await page.goto(pageUrl());
    await page.waitForSelector('body[data-ready="1"]');
    await runDemo(page, { mode: 'browser', provider: 'webgpu', prompt: PROMPTS[0], maxTokens: 1, drafter: 'plain' });
    const drift = await page.evaluate(async (prompt) => {
      const demo = (window as unknown as { ctcDemo: { bundle: { rowDrift: (e: unknown, p: string, k: number) => Promise<unknown> }; engine: { engine: unknown } } }).ctcDemo;
      return demo.bundle.rowDrift(demo.engine.engine, prompt, 16);
    }, LONG);
    process.stderr.write(`[browser] webgpu: row drift ${JSON.stringify(drift)}\n`);
    expect(drift).toMatchObject({ maxAbsDiff: 0, argmaxAgree: true, kvDiff: [0, 0, 0, 0, 0, 0] });
    await page.close();
  });

  it('greedy output of ngram and ctc-ngram equals plain decoding on WebGPU', async (ctx) => {
    if (!adapter) return ctx.skip();
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(pageUrl());
    await page.waitForSelector('body[data-ready="1"]');
    for (const prompt of PROMPTS) {
      const plain = await runDemo(page, { mode: 'browser', provider: 'webgpu', prompt, maxTokens: TOKENS, drafter: 'plain' });
      expect(plain.provider).toBe('webgpu');
      expect(plain.tokens!.length).toBe(TOKENS);
      for (const drafter of ['ngram', 'ctc-ngram']) {
        const run = await runDemo(page, { mode: 'browser', provider: 'webgpu', prompt, maxTokens: TOKENS, drafter });
        process.stderr.write(`[browser] webgpu: ${drafter} ${run.tokensPerSecond.toFixed(2)} tok/s τ ${run.tau!.toFixed(2)} vs plain ${plain.tokensPerSecond.toFixed(2)} tok/s\n`);
        expect(run.tokens).toEqual(plain.tokens);
      }
    }
    expect(await page.textContent('#f-provider')).toBe('this browser (WebGPU)');
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, 'demo-webgpu.png'), fullPage: true });
    const heap = await page.evaluate(() => ({ js: (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? null }));
    process.stderr.write(`[browser] webgpu: JS heap ${heap.js ? (heap.js / 2 ** 20).toFixed(1) : '?'} MiB; ${await page.textContent('#detail')}\n`);
    expect(w.errors).toEqual([]);
    await page.close();
  });
});
