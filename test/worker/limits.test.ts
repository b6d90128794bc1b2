/**
 * What one tenant can cost a deployment, in real workerd: the per-request budget and round bound, clients
 * that leave (every shape of request), tokens per minute and the rate-limit headers, session expiry (Durable
 * Object alarms) and the cap on stored sessions, the model files behind the key, security headers, and the
 * small holes a hostile client looks for. The numbers they measure are printed ([limits] lines).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MODEL_DIR, ROOT, readManifest, sha256, startWorker, tenantTotals, type Worker } from './harness';

const key = (name: string) => ({ key_sha256: [sha256(`sk-${name}`)] });
const EXTRA_TENANTS = {
  // Every setting at its default (rpm 60, tpm 100,000, max_tokens 256, 2,048 tokens and 64 rounds per request).
  plain: key('plain'),
  wide: { ...key('wide'), max_tokens: 512, rpm: 0, tpm: 0 },
  // Meters without limiting: the tenant's object counts what every generation used.
  meter: { ...key('meter'), max_tokens: 512, max_rounds: 10_000, max_request_tokens: 100_000, rpm: 0, tpm: 1_000_000_000 },
  tokens: { ...key('tokens'), max_tokens: 100, rpm: 100, tpm: 300 },
  brief: { ...key('brief'), max_tokens: 16, rpm: 0, tpm: 0, session_ttl_s: 2, max_sessions: 2 },
  narrow: { ...key('narrow'), rpm: 0, tpm: 0, models: ['corrupt'] },
};

let w: Worker;
const log = (s: string) => process.stderr.write(`[limits] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = { 'content-type': 'application/json' };
/** The stop tokens (bos_id 1, eos_id 2), banned where a request must run to its max_tokens. */
const NO_STOP = { 1: -100, 2: -100 };
const P = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n';

beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'), { tenants: EXTRA_TENANTS, assets: true });
  // Load the model and warm the engine up, so that the timings below are a warm worker's.
  for (const drafter of ['plain', 'ngram']) await (await post('bob', { prompt: P, max_tokens: 64, drafter })).text();
});
afterAll(async () => {
  await w?.dispose();
});

async function post(k: string, body: Record<string, unknown>, path = '/v1/completions', headers: Record<string, string> = {}) {
  return w.fetch(path, { method: 'POST', key: `sk-${k}`, headers: { ...json, ...headers }, body: JSON.stringify({ model: 'default', ...body }) });
}

interface Completion {
  choices: { index: number; text: string; finish_reason: string; logprobs: { token_logprobs: number[]; top_logprobs: Record<string, number>[] } | null }[];
  usage: { prompt_tokens: number; completion_tokens: number };
  ctc_edge: { rounds: number; finish_detail: string };
}

describe('the cost of one request', () => {
  const heavy = { prompt: '    a = 1\n'.repeat(12), n: 16, temperature: 0, drafter: 'ngram', tree_budget: 64 };

  it('n x prompts x max_tokens over the budget is a 400 naming the parameter', async () => {
    const r = await post('wide', { ...heavy, max_tokens: 439, logprobs: 20 });
    expect(r.status).toBe(400);
    const e = (await r.json()) as { error: { message: string; param: string; type: string } };
    expect(e.error).toMatchObject({ param: 'max_tokens', type: 'invalid_request_error', code: 'request_too_large' });
    expect(e.error.message).toMatch(/n \(16\) x prompts \(1\) x max_tokens \(439\) = 7024 tokens.*2048/);
    // prompts count too, and chat names max_completion_tokens when that is what it got
    const arr = await post('wide', { prompt: ['a', 'b', 'c', 'd', 'e'], max_tokens: 500 });
    expect(((await arr.json()) as { error: { message: string } }).error.message).toMatch(/prompts \(5\)/);
    const chat = await post('wide', { messages: [{ role: 'user', content: 'hi' }], n: 8, max_completion_tokens: 300 }, '/v1/chat/completions');
    expect(chat.status).toBe(400);
    expect(((await chat.json()) as { error: { param: string } }).error.param).toBe('max_completion_tokens');
    // within the budget: accepted
    expect((await post('wide', { prompt: 'x', n: 4, max_tokens: 500 })).status).toBe(200);
  });

  it('logprobs output is bounded: alternatives x tokens within 16,384 entries', async () => {
    const r = await post('wide', { prompt: 'x', n: 16, max_tokens: 100, logprobs: 20 });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: { param: 'logprobs', code: 'request_too_large' } });
    const c = await post('wide', { messages: [{ role: 'user', content: 'hi' }], n: 2, max_tokens: 450, logprobs: true, top_logprobs: 20 }, '/v1/chat/completions');
    expect(await c.json()).toMatchObject({ error: { param: 'top_logprobs' } });
    // Without max_tokens each choice gets its share: 16 x 48 tokens x 21 entries <= 16,384.
    const ok = await post('wide', { prompt: P, n: 16, logprobs: 20, temperature: 0, logit_bias: NO_STOP, drafter: 'plain' });
    const body = (await ok.json()) as Completion;
    const entries = body.choices.reduce((s, ch) => s + ch.logprobs!.token_logprobs.length * 21, 0);
    expect(entries).toBeLessThanOrEqual(16_384);
  });

  it("the most expensive request a default tenant can send stays within 2,048 generated tokens and 64 rounds in all", async () => {
    const t0 = performance.now();
    const r = await post('plain', { ...heavy, logit_bias: NO_STOP });
    const text = await r.text();
    expect(r.status).toBe(200);
    const body = JSON.parse(text) as Completion;
    const ms = performance.now() - t0;
    const ran = body.choices.filter((c) => c.text.length > 0).length;
    log(`most expensive default-tenant request: ${body.usage.completion_tokens} generated tokens, ${body.ctc_edge.rounds} rounds, ` +
      `${body.usage.prompt_tokens} prompt tokens (${ran} of 16 choices ran, each its own prefill), ${text.length} bytes, ${ms.toFixed(0)} ms`);
    expect(body.choices).toHaveLength(16);
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(2048);
    expect(body.ctc_edge.rounds).toBeLessThanOrEqual(64);
    // Every choice that ran prefilled the prompt in a session of its own: each prefill is counted. The
    // choices after the 64th round did not run (empty, "length").
    const one = (await (await post('plain', { prompt: heavy.prompt, max_tokens: 1 })).json()) as Completion;
    expect(ran).toBeGreaterThan(0);
    expect(body.usage.prompt_tokens).toBe(ran * one.usage.prompt_tokens);
    expect(body.choices.slice(ran).every((c) => c.text === '' && c.finish_reason === 'length')).toBe(true);
  });

  it('max_rounds counts the rounds of the whole request: choices past it end at once with "length"', async () => {
    // alice: 3 rounds per request; plain decoding makes one token a round.
    const r = (await (await post('alice', { prompt: P, n: 3, max_tokens: 2, drafter: 'plain', temperature: 0, logit_bias: NO_STOP })).json()) as Completion;
    expect(r.ctc_edge.rounds).toBe(3);
    expect(r.usage.completion_tokens).toBe(3);
    expect(r.choices.map((c) => c.finish_reason)).toEqual(['length', 'length', 'length']);
    expect(r.choices.map((c) => c.text.length > 0)).toEqual([true, true, false]);
    expect(r.ctc_edge.finish_detail).toBe('rounds');
    // streamed: the same choices, each with its finish chunk
    const s = await post('alice', { prompt: P, n: 3, max_tokens: 2, drafter: 'plain', temperature: 0, logit_bias: NO_STOP, stream: true, stream_options: { include_usage: true } });
    const events = (await s.text()).split('\n\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)));
    expect(events.filter((e) => e.choices[0]?.finish_reason).map((e) => e.choices[0].index)).toEqual([0, 1, 2]);
    expect(events.at(-1).usage.completion_tokens).toBe(3);
  });
});

describe('a client that leaves: the engine stops within a round, whatever the shape of the request', () => {
  // Long, unstoppable generations (end of text banned, plain decoding: one token a round).
  const long = { temperature: 0, drafter: 'plain', max_tokens: 400, logit_bias: NO_STOP };
  const shapes: [string, string, Record<string, unknown>][] = [
    ['one choice', '/v1/completions', { prompt: P }],
    ['one choice, streamed', '/v1/completions', { prompt: P, stream: true }],
    ['n = 4', '/v1/completions', { prompt: P, n: 4 }],
    ['n = 4, streamed', '/v1/completions', { prompt: P, n: 4, stream: true }],
    ['4 prompts', '/v1/completions', { prompt: [P, 'import os\n', 'class A:\n', 'x = 1\n'] }],
    ['4 prompts, streamed', '/v1/completions', { prompt: [P, 'import os\n', 'class A:\n', 'x = 1\n'], stream: true }],
    ['chat, n = 4', '/v1/chat/completions', { messages: [{ role: 'user', content: 'Write a long story.' }], n: 4 }],
    ['chat, n = 4, streamed', '/v1/chat/completions', { messages: [{ role: 'user', content: 'Write a long story.' }], n: 4, stream: true }],
  ];
  const stops: number[] = [];
  afterAll(() => log(`stop after disconnect (until the running choice was charged, 10 ms polling): max ${Math.max(...stops).toFixed(0)} ms, all ${stops.map((s) => s.toFixed(0)).join(' ')}`));

  it.each(shapes)('%s', async (_name, path, body) => {
    const before = await tenantTotals(w, 'meter');
    const ac = new AbortController();
    const res = await w.fetch(path, { method: 'POST', key: 'sk-meter', headers: json, body: JSON.stringify({ model: 'default', ...long, ...body }), signal: ac.signal });
    expect(res.status).toBe(200);
    await res.body!.getReader().read(); // the first bytes: the first choice is generating
    await sleep(300);
    const t0 = performance.now();
    ac.abort();
    let now = before;
    while (now.charges === before.charges && performance.now() - t0 < 10_000) {
      await sleep(10);
      now = await tenantTotals(w, 'meter');
    }
    const stopMs = performance.now() - t0;
    stops.push(stopMs);
    await sleep(1500); // long enough for a choice that should not run to show up
    const after = await tenantTotals(w, 'meter');
    // One charge (the choice that was running, stopped); no later choice started; far less than it asked for.
    expect(after.charges - before.charges).toBe(1);
    expect(after.tokens - before.tokens).toBeLessThan(200);
    expect(stopMs).toBeLessThan(1000);
  });
});

describe('tokens per minute and the rate-limit headers', () => {
  it("charges prompt + completion tokens; over the limit, 429 with Retry-After; responses carry OpenAI's headers", async () => {
    const statuses: number[] = [];
    let limited: Response | null = null;
    let remainingRequests: number[] = [];
    for (let i = 0; i < 6 && !limited; i++) {
      const r = await post('tokens', { prompt: P, max_tokens: 100, temperature: 0, logit_bias: NO_STOP });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
      else {
        await r.text();
        expect(r.headers.get('x-ratelimit-limit-requests')).toBe('100');
        expect(r.headers.get('x-ratelimit-limit-tokens')).toBe('300');
        expect(r.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+ms|\d+s|\d+m\d+s)$/);
        expect(r.headers.get('x-ratelimit-reset-tokens')).toMatch(/^(\d+ms|\d+s|\d+m\d+s)$/);
        expect(Number(r.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThanOrEqual(300);
        remainingRequests.push(Number(r.headers.get('x-ratelimit-remaining-requests')));
      }
    }
    log(`tokens per minute 300, 100-token requests: ${statuses.join(' ')}`);
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(limited).not.toBeNull();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited!.headers.get('x-ratelimit-remaining-tokens')).toBe('0');
    expect(await limited!.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'tokens_rate_limit_exceeded', param: null } });
    expect(remainingRequests).toEqual([...remainingRequests].sort((a, b) => b - a));
    // Streams carry them too.
    const s = await post('plain', { prompt: 'x', max_tokens: 1, stream: true });
    expect(s.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
    expect(s.headers.get('x-ratelimit-limit-requests')).toBe('60');
    await s.text();
  });
});

describe('sessions expire and a tenant stores a bounded number', () => {
  const long = 'def f(x):\n    return x + 1\n\n'.repeat(30); // ~400 tokens

  it('at the cap a new session is a 403 naming the way out; deleting one frees its place', async () => {
    for (const id of ['cap-1', 'cap-2']) expect((await post('brief', { prompt: long, max_tokens: 4 }, '/v1/completions', { 'x-session-id': id })).status).toBe(200);
    await sleep(200); // the stored bytes are reported after the answer
    const full = await tenantTotals(w, 'brief');
    const tokens = ((await (await w.fetch('/v1/sessions/cap-1', { key: 'sk-brief' })).json()) as { tokens: number }).tokens;
    log(`2 stored sessions of ${tokens} tokens: ${full.storedBytes} bytes stored (cap: max_sessions 2)`);
    expect(full.sessions).toBe(2);
    expect(full.storedBytes).toBeGreaterThan(2 * 300 * 12_288);
    const refused = await post('brief', { prompt: 'x', max_tokens: 1 }, '/v1/completions', { 'x-session-id': 'cap-3' });
    expect(refused.status).toBe(403);
    const e = (await refused.json()) as { error: { message: string } };
    expect(e).toMatchObject({ error: { type: 'permission_error', code: 'session_limit_reached', param: 'session_id' } });
    expect(e.error.message).toMatch(/at most 2 stored sessions.*DELETE/);
    // sessions it has still work; ephemeral requests too
    expect((await post('brief', { prompt: long + 'x', max_tokens: 1 }, '/v1/completions', { 'x-session-id': 'cap-1' })).status).toBe(200);
    expect((await post('brief', { prompt: 'x', max_tokens: 1 })).status).toBe(200);
    expect((await w.fetch('/v1/sessions/cap-2', { method: 'DELETE', key: 'sk-brief' })).status).toBe(200);
    expect((await tenantTotals(w, 'brief')).sessions).toBe(1);
    expect((await post('brief', { prompt: 'x', max_tokens: 1 }, '/v1/completions', { 'x-session-id': 'cap-3' })).status).toBe(200);
  });

  it('an idle session is deleted by its alarm after the TTL (storage and the tenant count); a used one is not', async () => {
    await sleep(2500); // the sessions above expire (TTL 2 s)
    const sent = Date.now();
    for (const id of ['ttl-idle', 'ttl-used']) expect((await post('brief', { prompt: P, max_tokens: 2 }, '/v1/completions', { 'x-session-id': id })).status).toBe(200);
    const answered = Date.now();
    await sleep(1200);
    expect((await post('brief', { prompt: P, max_tokens: 2 }, '/v1/completions', { 'x-session-id': 'ttl-used' })).status).toBe(200);
    let idle = 200;
    let seen = 0;
    while (idle === 200 && Date.now() - sent < 10_000) {
      seen = Date.now();
      await sleep(50);
      idle = (await w.fetch('/v1/sessions/ttl-idle', { key: 'sk-brief' })).status;
    }
    log(`idle session (TTL 2000 ms) last seen ${seen - sent} ms after its request was sent (answered after ${answered - sent} ms), gone at ${Date.now() - sent} ms`);
    expect(idle).toBe(404);
    expect((await w.fetch('/v1/sessions/ttl-used', { key: 'sk-brief' })).status).toBe(200); // 1.2 s + its own 2 s
    await sleep(2500);
    expect((await w.fetch('/v1/sessions/ttl-used', { key: 'sk-brief' })).status).toBe(404);
    expect(await tenantTotals(w, 'brief')).toMatchObject({ sessions: 0, storedBytes: 0 });
    // `continue` on an expired session: nothing to continue (400), as for a session never used
    const c = await post('brief', { prompt: '', continue: true, max_tokens: 2 }, '/v1/completions', { 'x-session-id': 'ttl-used' });
    expect(c.status).toBe(400);
    expect(await c.json()).toMatchObject({ error: { code: 'empty_session', param: 'continue' } });
  });

  it('a session whose request failed before anything was stored still leaves the tenant table at its TTL', async () => {
    await sleep(2500); // the refused `continue` above registered ttl-used again: let it expire
    const before = (await tenantTotals(w, 'brief')).sessions;
    const r = await w.fetch('/v1/completions', { method: 'POST', key: 'sk-brief', headers: { ...json, 'x-session-id': 'ttl-broken' }, body: JSON.stringify({ model: 'corrupt', prompt: 'x', max_tokens: 1 }) });
    expect(r.status).toBe(503); // the model's shard is corrupt: nothing generated, nothing stored
    await r.text();
    expect((await tenantTotals(w, 'brief')).sessions).toBe(before + 1);
    await sleep(3000);
    expect((await tenantTotals(w, 'brief')).sessions).toBe(before);
  });
});

describe('model files: only through the API, with a key that may use the model', () => {
  const manifest = readManifest();
  const shards = Object.values(manifest.files).flatMap((f) => f.shards.map((s) => s.path));

  it('GET /v1/models/{model}/files/{file}: the bytes with the key, 401 without, 404 for a model the tenant may not use', async () => {
    const m = await w.fetch('/v1/models/default/files/manifest.json', { key: 'sk-bob' });
    expect(m.status).toBe(200);
    expect(await m.text()).toBe(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8'));
    const s = await w.fetch(`/v1/models/default/files/${shards[0]}`, { key: 'sk-bob' });
    expect(Buffer.from(await s.arrayBuffer()).equals(readFileSync(join(MODEL_DIR, shards[0])))).toBe(true);
    expect(s.headers.get('cache-control')).toMatch(/private/);
    expect((await w.fetch('/v1/models/default/files/manifest.json')).status).toBe(401);
    expect((await w.fetch(`/v1/models/default/files/${shards[0]}`, { key: 'sk-wrong' })).status).toBe(401);
    const denied = await w.fetch('/v1/models/default/files/manifest.json', { key: 'sk-narrow' });
    expect(denied.status).toBe(404);
    expect(await denied.json()).toMatchObject({ error: { code: 'model_not_found' } });
    for (const f of ['nope.bin', '.hidden', '..', '%2e%2e', 'manifest.json%00', '__r2-faults']) {
      const r = await w.fetch(`/v1/models/default/files/${f}`, { key: 'sk-bob' });
      expect([400, 404], f).toContain(r.status);
      expect(await r.json()).toHaveProperty('error');
    }
  });

  it('no model, manifest or source map is a static file of the build', async () => {
    expect(existsSync(join(ROOT, 'public/models'))).toBe(false);
    const maps = readdirSync(join(ROOT, 'public/build'), { recursive: true }).filter((f) => String(f).endsWith('.map'));
    expect(maps).toEqual([]);
    for (const path of ['/models/default/manifest.json', ...shards.map((s) => `/models/default/${s}`), '/build/engine-wasm.js.map', '/build/demo.js.map', '/build/engine-webgpu.js.map']) {
      const r = await w.fetch(path);
      expect(r.status, path).toBe(404);
      await r.text();
    }
    expect((await w.fetch('/build/demo.js')).status).toBe(200); // the assets are served
  });
});

describe('security headers', () => {
  it('the page: a CSP that lets onnxruntime-web compile its wasm from this origin, nosniff, no framing', async () => {
    for (const path of ['/', '/build/demo.js', '/styles.css']) {
      const r = await w.fetch(path);
      await r.text();
      expect(r.status, path).toBe(200);
      const csp = r.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("script-src 'self' 'wasm-unsafe-eval'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toContain('unsafe-inline');
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });

  it('the API: nosniff and a CSP that allows nothing, on answers, errors and streams', async () => {
    const rs = [
      await w.fetch('/v1/models', { key: 'sk-bob' }),
      await w.fetch('/v1/models'),
      await w.fetch('/v1/nope', { key: 'sk-bob' }),
      await w.fetch('/health'),
      await post('bob', { prompt: 'x', max_tokens: 1, stream: true }),
      await post('bob', { prompt: 'x', max_tokens: 1, n: 2 }),
    ];
    for (const r of rs) {
      await r.text();
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
    }
  });
});

describe('smaller holes', () => {
  it('repetition_penalty is bounded so logits stay finite', async () => {
    const r = await post('bob', { prompt: P, max_tokens: 4, repetition_penalty: 1e-300 });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: { param: 'repetition_penalty' } });
    const ok = (await (await post('bob', { prompt: P, max_tokens: 8, repetition_penalty: 0.01, logprobs: 2, temperature: 0 })).json()) as Completion;
    expect(ok.choices[0].logprobs!.token_logprobs.every((x) => Number.isFinite(x))).toBe(true);
  });

  it('a stop string never splits a character: lone surrogates are refused', async () => {
    for (const stop of ['\ude00', ['x', '\ud83d'], 'a\udc00b']) {
      const r = await post('bob', { prompt: '😀😀😀', max_tokens: 8, stop });
      expect(r.status, JSON.stringify(stop)).toBe(400);
      expect(((await r.json()) as { error: { param: string } }).error.param).toMatch(/^stop/);
    }
    expect((await post('bob', { prompt: 'x', max_tokens: 2, stop: ['😀', 'é'] })).status).toBe(200);
  });

  it('session ids that no URL can address (. and ..) are refused', async () => {
    for (const id of ['.', '..', '...']) {
      const h = await post('bob', { prompt: 'x', max_tokens: 1 }, '/v1/completions', { 'x-session-id': id });
      expect(h.status, id).toBe(400);
      expect(((await h.json()) as { error: { param: string } }).error.param).toBe('session_id');
      expect((await post('bob', { prompt: 'x', max_tokens: 1, session_id: id })).status).toBe(400);
    }
    expect((await post('bob', { prompt: 'x', max_tokens: 1 }, '/v1/completions', { 'x-session-id': 'a.b' })).status).toBe(200);
  });

  it('a prompt longer than the context could ever hold is refused before it is tokenised', async () => {
    const t0 = performance.now();
    const r = await post('bob', { prompt: 'é'.repeat(255_000 / 2) });
    const ms = performance.now() - t0;
    expect(r.status).toBe(400);
    const e = (await r.json()) as { error: { code: string; message: string } };
    expect(e.error.code).toBe('context_length_exceeded');
    expect(e.error.message).toMatch(/characters/);
    log(`127,500-character prompt refused in ${ms.toFixed(0)} ms`);
  });

  it('as deployed (no loopback launcher, no diagnostics): the dev key is refused on every Host, sessions show no isolate', async () => {
    const d = await startWorker(inject('workerBundleDir'), { vars: { LOCAL_KEYS: '', DIAGNOSTICS: '' } });
    try {
      for (const host of ['localhost', '127.0.0.1', 'LOCALHOST', '127.1', 'localhost:1']) {
        const r = await d.mf.dispatchFetch(`http://${host}/v1/models`, { headers: { authorization: 'Bearer sk-local-dev' } });
        expect(r.status, host).toBe(401);
        await r.text();
      }
      expect((await d.fetch('/v1/models', { key: 'sk-local-dev' })).status).toBe(401);
      expect((await d.fetch('/v1/completions', { method: 'POST', key: 'sk-bob', headers: { ...json, 'x-session-id': 'shown' }, body: JSON.stringify({ model: 'default', prompt: 'x', max_tokens: 1 }) })).status).toBe(200);
      const info = (await (await d.fetch('/v1/sessions/shown', { key: 'sk-bob' })).json()) as Record<string, unknown>;
      expect(info).toMatchObject({ id: 'shown', object: 'session', tokens: expect.any(Number) });
      expect(info).not.toHaveProperty('isolate');
    } finally {
      await d.dispose();
    }
    // the local test server (loopback launcher) still takes it on localhost
    expect((await w.fetch('/v1/models', { key: 'sk-local-dev' })).status).toBe(200);
  });
});
