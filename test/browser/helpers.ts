/** Shared by the browser tests: the page's URL, a browser per file, the Node engine's reference output. */
import { join, resolve } from 'node:path';
import { inject } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Engine } from '../../src/engine/engine.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { launch, skipReason } from '../../scripts/node/chromium.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const MODEL_DIR = join(ROOT, 'model-shards/default');
/** Screenshots of the page (docs/demo.png is one of them). */
export const SHOTS = join(ROOT, 'bench/results/tmp/browser');

/** null, or the one line that says why these tests skip (printed once per file). */
export function skipLine(): string | null {
  const why = skipReason();
  if (why) process.stderr.write(`${why}\n`);
  return why;
}

export function pageUrl(): string {
  return inject('pageUrl');
}

export { launch };
export type { Browser, Page };

let node: Promise<Engine> | null = null;
/** Greedy tokens of the Node engine (plain decoding, the wasm int8 model): what every drafter must emit. */
export async function nodeGreedy(prompt: string, maxTokens: number): Promise<number[]> {
  node ??= Engine.load(fsShardSource(MODEL_DIR));
  const engine = await node;
  const s = engine.createSession();
  const tokens: number[] = [];
  for await (const ev of s.generate({ promptTokens: engine.encodePrompt(prompt), maxTokens, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } })) {
    if (ev.type === 'tokens') tokens.push(...ev.tokens);
  }
  s.release();
  return tokens;
}

/** Fills the demo form and runs it; resolves with window.ctcDemo.last. */
export async function runDemo(
  page: Page,
  o: { mode: 'api' | 'browser'; prompt: string; maxTokens: number; drafter: string; temperature?: number; provider?: 'auto' | 'wasm' | 'webgpu' },
): Promise<DemoRun> {
  await page.check(`input[name=mode][value=${o.mode}]`, { force: true });
  await page.fill('#prompt', o.prompt);
  await page.fill('#max-tokens', String(o.maxTokens));
  await page.selectOption('#drafter', o.drafter);
  await page.$eval('#temperature', (el, t) => {
    (el as HTMLInputElement).value = String(t);
    el.dispatchEvent(new Event('input'));
  }, o.temperature ?? 0);
  if (o.provider) await page.selectOption('#provider', o.provider);
  const runs = await page.evaluate(() => (window as unknown as { ctcDemo: { runs: number } }).ctcDemo.runs);
  await page.click('#run');
  await page.waitForFunction((n) => (window as unknown as { ctcDemo: { runs: number } }).ctcDemo.runs > n, runs, { timeout: 280_000 });
  const last = await page.evaluate(() => (window as unknown as { ctcDemo: { last: DemoRun } }).ctcDemo.last);
  if (last.error) throw new Error(`the page reported: ${last.error}`);
  return last;
}

export interface DemoRun {
  mode: 'api' | 'browser';
  provider: string;
  text: string;
  tokens?: number[];
  tokensPerSecond: number;
  tau: number | null;
  accepted: number;
  rejected: number;
  completionTokens: number;
  finishReason: string;
  drafter: string;
  error?: string;
}
