/**
 * The demo page served by the Worker (static assets at /, the API beside them), in headless Chromium:
 * its controls, a streamed completion in API mode, its look on a laptop and on a phone (screenshots).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, pageUrl, runDemo, SHOTS, skipLine, type Browser } from './helpers.js';
import { watch } from '../../scripts/node/chromium.js';

const skip = skipLine();
const PROMPT = 'import os\nimport sys\n\n\ndef main():\n';

describe.skipIf(skip !== null)('demo page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launch();
    mkdirSync(SHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('is served at / with a prompt box, drafter, temperature, max tokens, the mode switch and the dev key on localhost', async () => {
    const page = await browser.newPage();
    const w = watch(page);
    const res = await page.goto(pageUrl());
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type']).toMatch(/text\/html/);
    await page.waitForSelector('body[data-ready="1"]');
    expect(await page.title()).toMatch(/ctc-edge/);
    for (const sel of ['#prompt', '#drafter', '#temperature', '#max-tokens', 'input[name=mode][value=api]', 'input[name=mode][value=browser]', '#run', '#out']) {
      expect(await page.$(sel), sel).not.toBeNull();
    }
    const drafters = await page.$$eval('#drafter option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(drafters).toEqual(expect.arrayContaining(['plain', 'ngram', 'ctc-ngram', 'medusa-ngram', 'ctc', 'medusa']));
    // the dev tenant's key is pre-filled because this is 127.0.0.1 (and refused on any other host)
    expect(await page.inputValue('#api-key')).toBe('sk-local-dev');
    // the API still answers beside the assets
    const models = (await page.evaluate(async () => (await fetch("/v1/models", { headers: { authorization: "Bearer sk-local-dev" } })).json())) as { data: { id: string }[] };
    expect(models.data.map((m: { id: string }) => m.id)).toContain('default');
    expect(w.errors).toEqual([]);
    await page.close();
  });

  it('streams a completion in API mode through /v1/completions, with the same text as a plain API call (provider: edge wasm)', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const w = watch(page);
    const streamed: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/v1/completions')) streamed.push(r.postData() ?? '');
    });
    await page.goto(pageUrl());
    await page.waitForSelector('body[data-ready="1"]');
    const run = await runDemo(page, { mode: 'api', prompt: PROMPT, maxTokens: 48, drafter: 'ngram' });
    process.stderr.write(`[browser] api mode (edge, wasm): ${run.completionTokens} tokens, τ ${run.tau}, accepted ${run.accepted}, rejected ${run.rejected}\n`);
    // the page asked for a stream, as any OpenAI client does
    const body = JSON.parse(streamed[0]);
    expect(body).toMatchObject({ model: 'default', prompt: PROMPT, max_tokens: 48, temperature: 0, stream: true, drafter: 'ngram' });
    // the same request without streaming gives the same greedy text
    const res = await fetch(new URL('/v1/completions', pageUrl()), {
      method: 'POST',
      headers: { authorization: 'Bearer sk-local-dev', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', prompt: PROMPT, max_tokens: 48, temperature: 0, drafter: 'ngram' }),
    });
    const j = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    expect(run.text).toBe(j.choices[0].text);
    expect(run.completionTokens).toBe(j.usage.completion_tokens);
    expect(run.text.length).toBeGreaterThan(20);
    // the live figures are filled in
    expect(await page.textContent('#f-provider')).toBe('edge (wasm)');
    expect(Number(await page.textContent('#f-tokens'))).toBe(j.usage.completion_tokens);
    expect(Number(await page.textContent('#f-tps'))).toBeGreaterThan(0);
    expect(Number(await page.textContent('#f-tau'))).toBeGreaterThanOrEqual(1);
    expect(await page.textContent('#out')).toContain(PROMPT.trim().split('\n')[0]);
    await page.screenshot({ path: join(SHOTS, 'demo-api.png'), fullPage: true });
    expect(w.errors).toEqual([]);
    await page.close();
  });

  it('fits a phone-sized viewport (no horizontal scrolling, every control reachable)', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await page.goto(pageUrl());
    await page.waitForSelector('body[data-ready="1"]');
    const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
    expect(scroll).toBeLessThanOrEqual(width);
    for (const sel of ['#prompt', '#drafter', '#temperature', '#max-tokens', '#run']) {
      const box = await page.locator(sel).boundingBox();
      expect(box, sel).not.toBeNull();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(width + 1);
    }
    const run = await runDemo(page, { mode: 'api', prompt: 'def fib(n):\n', maxTokens: 24, drafter: 'ngram' });
    expect(run.completionTokens).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'demo-phone.png'), fullPage: true });
    await page.close();
  });

  it('is served with its security headers, and its CSP lets the engine run in the page (wasm) with no violation', async () => {
    const page = await browser.newPage();
    const w = watch(page);
    // Every CSP violation of the page (blocked script, wasm compile, fetch, style) lands here.
    await page.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { cspViolations: string[] }).cspViolations = seen;
      document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const res = await page.goto(pageUrl());
    const h = res!.headers();
    expect(h['content-security-policy']).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(h['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(h['x-content-type-options']).toBe('nosniff');
    await page.waitForSelector('body[data-ready="1"]');
    const run = await runDemo(page, { mode: 'browser', provider: 'wasm', prompt: PROMPT, maxTokens: 8, drafter: 'plain' });
    expect(run.tokens!.length).toBeGreaterThan(0);
    // the model came through the API with the key, not from a public file
    expect(await page.evaluate(async () => (await fetch('/models/default/manifest.json')).status)).toBe(404);
    expect(await page.evaluate(async () => (await fetch('/v1/models/default/files/manifest.json')).status)).toBe(401);
    expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([]);
    expect(w.errors).toEqual([]);
    await page.close();
  });

  it('in this browser, a wrong key gets no model: the page shows the 401', async () => {
    const context = await browser.newContext(); // its own Cache API: nothing cached yet
    const page = await context.newPage();
    await page.goto(pageUrl());
    await page.waitForSelector('body[data-ready="1"]');
    await page.fill('#api-key', 'sk-wrong');
    await page.check('input[name=mode][value=browser]', { force: true });
    await page.selectOption('#provider', 'wasm');
    await page.click('#run');
    await page.waitForFunction(() => (window as unknown as { ctcDemo: { runs: number } }).ctcDemo.runs > 0);
    expect(await page.textContent('#status')).toMatch(/401/);
    await context.close();
  });

  it('says so in the page when the API refuses the key (401 in OpenAI error shape, shown as the status)', async () => {
    const page = await browser.newPage();
    await page.goto(pageUrl());
    await page.waitForSelector('body[data-ready="1"]');
    await page.fill('#api-key', 'sk-wrong');
    await page.click('#run');
    await page.waitForFunction(() => (window as unknown as { ctcDemo: { runs: number } }).ctcDemo.runs > 0);
    const status = await page.textContent('#status');
    expect(status).toMatch(/HTTP 401/);
    expect(await page.getAttribute('#status', 'class')).toMatch(/error/);
    await page.close();
  });
});
