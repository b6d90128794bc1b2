/**
 * The OpenAI-compatible API in real workerd with the real default model, driven by the official client.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { MODEL_DIR, ROOT, readManifest, startWorker, type Worker } from './harness';
import { TextTokenizer } from '../../src/engine/index';

let w: Worker;
const P = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n';

beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'));
});
afterAll(async () => {
  await w?.dispose();
});

// The client's types do not know our extensions (top_k, drafter, session_id, continue, ctc_edge).
type Ext = Record<string, unknown>;
const ext = (r: unknown) => (r as { ctc_edge: { finish_detail: string; rounds: number; restore: unknown; session_tokens: number } }).ctc_edge;

async function complete(client: OpenAI, body: Ext, session?: string) {
  return client.completions.create({ model: 'default', temperature: 0, ...body } as unknown as OpenAI.CompletionCreateParamsNonStreaming, {
    headers: session ? { 'X-Session-Id': session } : undefined,
  });
}

describe('basics', () => {
  it('GET /health needs no key', async () => {
    const res = await w.fetch('/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
  });

  it('GET /v1/models lists the model', async () => {
    const models = await w.client('sk-bob').models.list();
    expect(models.data.map((m) => m.id)).toContain('default');
    expect((await w.client('sk-bob').models.retrieve('default')).id).toBe('default');
  });

  it('the dev key works on localhost only', async () => {
    expect((await w.fetch('/v1/models', { key: 'sk-local-dev' })).status).toBe(200);
    // Same key, a non-local Host (what a deployed worker would see): refused.
    const res = await w.mf.dispatchFetch('https://ctc-edge.example.workers.dev/v1/models', { headers: { authorization: 'Bearer sk-local-dev' } });
    expect(res.status).toBe(401);
  });
});

describe('completions', () => {
  it('non-streaming, greedy, with usage details', async () => {
    const r = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 24 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0].text.length).toBeGreaterThan(0);
    expect(r.choices[0].finish_reason).toMatch(/^(stop|length)$/);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(24);
    expect(r.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    const d = r.usage!.completion_tokens_details!;
    // Usage counts what was emitted: accepted draft tokens are a part of it, rejected ones are never in it
    // (their count is a draft statistic in the extension, where it cannot be added to completion_tokens).
    expect(d.accepted_prediction_tokens).toBeLessThanOrEqual(r.usage!.completion_tokens);
    expect(d.rejected_prediction_tokens).toBe(0);
    const draft = (r as unknown as { ctc_edge: { draft: { proposed_tokens: number; accepted_tokens: number; rejected_tokens: number; rounds: number } } }).ctc_edge.draft;
    expect(draft.accepted_tokens + draft.rejected_tokens).toBe(draft.proposed_tokens);
    expect(draft.accepted_tokens).toBe(d.accepted_prediction_tokens);
    expect(draft.rounds + draft.accepted_tokens).toBeGreaterThanOrEqual(r.usage!.completion_tokens); // a round emits its accepted drafts + at most one
    // Greedy is deterministic.
    const again = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 24 });
    expect(again.choices[0].text).toBe(r.choices[0].text);
  });

  it('streaming follows OpenAI conventions (same id/created, usage chunk, [DONE])', async () => {
    const stream = await w.client('sk-bob').completions.create({
      model: 'default',
      prompt: P,
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Completion[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(2);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish).toHaveLength(1);
    const text = chunks.map((c) => c.choices[0]?.text ?? '').join('');
    const plain = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 24 });
    expect(text).toBe(plain.choices[0].text);

    // Raw SSE: data lines and the final [DONE].
    const raw = await w.fetch('/v1/completions', {
      method: 'POST',
      key: 'sk-bob',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', prompt: P, max_tokens: 8, temperature: 0, stream: true }),
    });
    expect(raw.headers.get('content-type')).toContain('text/event-stream');
    const body = await raw.text();
    expect(body.trim().endsWith('data: [DONE]')).toBe(true);
    expect(body).not.toContain('"usage"'); // only with stream_options.include_usage
  });

  it('sampling with a seed is reproducible; stop strings cut the text', async () => {
    const a = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 16, temperature: 0.8, top_p: 0.95, top_k: 50, seed: 7 });
    const b = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 16, temperature: 0.8, top_p: 0.95, top_k: 50, seed: 7 });
    expect(a.choices[0].text).toBe(b.choices[0].text);
    const full = (await complete(w.client('sk-bob'), { prompt: P, max_tokens: 24 })).choices[0].text;
    const cut = full.slice(3, 6);
    const s = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 24, stop: [cut] });
    expect(s.choices[0].finish_reason).toBe('stop');
    expect(s.choices[0].text).toBe(full.slice(0, full.indexOf(cut)));
  });

  it('every drafter the engine has gives the same greedy text (lossless)', async () => {
    const res = await w.fetch('/v1/completions', {
      method: 'POST',
      key: 'sk-bob',
      headers: { 'content-type': 'application/json', 'x-session-id': 'drafters' },
      body: JSON.stringify({ model: 'default', prompt: P, max_tokens: 24, temperature: 0, drafter: 'plain' }),
    });
    const plain = ((await res.json()) as OpenAI.Completion).choices[0].text;
    const info = (await (await w.fetch('/v1/sessions/drafters', { key: 'sk-bob' })).json()) as { drafters: string[]; default_drafter: string };
    expect(info.drafters).toContain('plain');
    expect(info.drafters).toContain('ngram');
    expect(info.drafters).toContain(info.default_drafter);
    for (const drafter of info.drafters.filter((d) => d !== 'plain')) {
      const r = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 24, drafter });
      expect(r.choices[0].text, drafter).toBe(plain);
    }
  });
});

describe('the shortest context', () => {
  it('an empty prompt (only <s>) works with every drafter and gives plain decoding\'s text', async () => {
    const names = ((await (await w.fetch('/v1/sessions/drafters', { key: 'sk-bob' })).json()) as { drafters: string[] }).drafters;
    expect(names.length).toBeGreaterThan(3);
    const plain = (await complete(w.client('sk-bob'), { prompt: '', max_tokens: 12, drafter: 'plain' })).choices[0].text;
    for (const drafter of names) {
      const r = await complete(w.client('sk-bob'), { prompt: '', max_tokens: 12, drafter });
      expect(r.choices[0].text, drafter).toBe(plain);
    }
  });
});

describe('exact output', () => {
  it('greedy text through the HTTP API equals the PyTorch reference of the quantized model, for every drafter', async () => {
    // test/fixtures/greedy.json: prompt ids (<s> first) and 40 greedy tokens from the PyTorch reference.
    const fx = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/greedy.json'), 'utf8')) as { prompts: { ids: number[]; greedy: number[] }[] };
    const m = readManifest();
    const tok = new TextTokenizer(Buffer.concat(m.files.tokenizer.shards.map((s) => readFileSync(join(MODEL_DIR, s.path)))));
    const stops = new Set([1, 2]); // <s> ends a document in the training corpus, </s> is the tokenizer's EOS
    for (const [i, p] of fx.prompts.slice(0, 3).entries()) {
      const cut = p.greedy.findIndex((t) => stops.has(t));
      const ref = cut >= 0 ? p.greedy.slice(0, cut) : p.greedy;
      const dec = tok.streamDecoder();
      const expected = dec.push(ref) + dec.flush();
      expect(expected.length).toBeGreaterThan(20);
      for (const drafter of ['plain', 'ngram', 'ctc-ngram']) {
        const r = await complete(w.client('sk-bob'), { prompt: p.ids, max_tokens: p.greedy.length, drafter });
        expect(r.choices[0].text, `prompt ${i}, ${drafter}`).toBe(expected);
      }
    }
  });
});

describe('long prompts (most of the context)', () => {
  it('plain and the default drafter give the same greedy text, streamed, on 300-450-token prompts', async () => {
    const prompts = readFileSync(join(ROOT, 'bench/prompts-long.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .slice(0, 3)
      .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
    const stream = async (prompt: string, drafter?: string) => {
      const s = await w.client('sk-bob').completions.create({
        model: 'default', prompt, max_tokens: 64, temperature: 0, stream: true, stream_options: { include_usage: true },
        ...(drafter ? { drafter } : {}),
      } as unknown as OpenAI.CompletionCreateParamsStreaming);
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const c of s) {
        text += c.choices[0]?.text ?? '';
        usage = c.usage ?? usage;
      }
      return { text, usage: usage! };
    };
    for (const prompt of prompts) {
      const plain = await stream(prompt, 'plain');
      const spec = await stream(prompt); // the tenant's / model's default drafter
      expect(plain.usage.prompt_tokens).toBeGreaterThanOrEqual(300);
      expect(plain.usage.completion_tokens).toBeGreaterThan(0);
      expect(spec.usage.completion_tokens_details!.accepted_prediction_tokens).toBeGreaterThan(0);
      expect(spec.text).toBe(plain.text);
    }
  });
});

describe('drafter selection', () => {
  it('the request picks the drafter, else the tenant, else the model default', async () => {
    const drafts = (r: OpenAI.Completion) => (r as unknown as { ctc_edge: { draft: { proposed_tokens: number } } }).ctc_edge.draft.proposed_tokens;
    // carol's tenant config says drafter "plain": no draft tokens are proposed
    const carol = await complete(w.client('sk-carol'), { prompt: P, max_tokens: 24 });
    expect(drafts(carol)).toBe(0);
    // bob has no tenant drafter: the model's default (a speculative drafter) proposes tokens
    const bob = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 24 });
    expect(drafts(bob)).toBeGreaterThan(0);
    expect(bob.choices[0].text).toBe(carol.choices[0].text);
    // a request-level drafter overrides the tenant's
    const carolNgram = await complete(w.client('sk-carol'), { prompt: P, max_tokens: 24, drafter: 'ngram' });
    expect(drafts(carolNgram)).toBeGreaterThan(0);
    expect(carolNgram.choices[0].text).toBe(carol.choices[0].text);
  });
});

describe('chat completions', () => {
  it('non-streaming and streaming agree; a new turn reuses the cache', async () => {
    const client = w.client('sk-bob');
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You write Python.' },
      { role: 'user', content: 'Write a function that reverses a string.' },
    ];
    const opts = { headers: { 'X-Session-Id': 'chat-1' } };
    const r = await client.chat.completions.create({ model: 'default', messages, max_tokens: 24, temperature: 0 }, opts);
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message.role).toBe('assistant');
    const reply = r.choices[0].message.content!;
    expect(reply.length).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({ model: 'default', messages, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let role = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      role ||= c.choices[0]?.delta.role ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(reply);
    expect(usage!.completion_tokens).toBe(r.usage!.completion_tokens);

    const turn2 = await client.chat.completions.create(
      { model: 'default', messages: [...messages, { role: 'assistant', content: reply }, { role: 'user', content: 'Now in one line.' }], max_tokens: 8, temperature: 0 },
      opts,
    );
    expect(turn2.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(r.usage!.prompt_tokens / 2);
  });
});

describe('sessions', () => {
  it('a continuation reuses the cache and yields the same tokens as one long request (greedy)', async () => {
    const N = 40;
    const alice = w.client('sk-alice'); // max_rounds 3: every request ends early with "length"
    let text = '';
    let tokens = 0;
    let requests = 0;
    for (let i = 0; i < 30 && tokens < N; i++) {
      const r = await complete(alice, { prompt: P + text, max_tokens: N - tokens }, 'cont-1');
      requests++;
      if (i > 0) {
        expect(r.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(0);
        expect(r.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(r.usage!.prompt_tokens - 1);
      }
      text += r.choices[0].text;
      tokens += r.usage!.completion_tokens;
      if (r.choices[0].finish_reason === 'stop') break;
      expect(r.choices[0].finish_reason).toBe('length');
      if (tokens < N) expect(ext(r).finish_detail).toBe('rounds');
    }
    expect(requests).toBeGreaterThan(1);
    const once = await complete(w.client('sk-bob'), { prompt: P, max_tokens: tokens });
    expect(text).toBe(once.choices[0].text);
    expect(once.usage!.completion_tokens).toBe(tokens);
  });

  it('`continue: true` continues from the held tokens', async () => {
    const alice = w.client('sk-alice');
    const first = await complete(alice, { prompt: P, max_tokens: 30 }, 'cont-2');
    const second = await complete(alice, { prompt: '', continue: true, max_tokens: 30 - first.usage!.completion_tokens }, 'cont-2');
    expect(second.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(0);
    const once = await complete(w.client('sk-bob'), { prompt: P, max_tokens: first.usage!.completion_tokens + second.usage!.completion_tokens });
    expect(first.choices[0].text + second.choices[0].text).toBe(once.choices[0].text);
  });

  it('a tenant never reads or continues another tenant’s session', async () => {
    const secret = 'SECRET-ALICE-TOKEN-42\n';
    await complete(w.client('sk-alice'), { prompt: secret + P, max_tokens: 4 }, 'shared-name');
    // Bob uses the same session id: he has no such session (the DO name includes the tenant).
    const info = await w.fetch('/v1/sessions/shared-name', { key: 'sk-bob' });
    expect(info.status).toBe(404);
    expect(await info.json()).toMatchObject({ error: { code: 'session_not_found' } });
    const cont = await w.fetch('/v1/completions', {
      method: 'POST',
      key: 'sk-bob',
      headers: { 'content-type': 'application/json', 'x-session-id': 'shared-name' },
      body: JSON.stringify({ model: 'default', prompt: '', continue: true, max_tokens: 4 }),
    });
    expect(cont.status).toBe(400);
    expect(((await cont.json()) as { error: { code: string } }).error.code).toBe('empty_session');
    const same = await complete(w.client('sk-bob'), { prompt: secret + P, max_tokens: 4 }, 'shared-name');
    expect(same.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    // Alice still sees her own.
    const mine = (await (await w.fetch('/v1/sessions/shared-name', { key: 'sk-alice' })).json()) as { tokens: number; text: string };
    expect(mine.text).toContain('SECRET-ALICE');
  });

  it('GET and DELETE /v1/sessions/{id}', async () => {
    await complete(w.client('sk-bob'), { prompt: P, max_tokens: 4 }, 'to-delete');
    const before = (await (await w.fetch('/v1/sessions/to-delete', { key: 'sk-bob' })).json()) as { tokens: number; kv_tokens_stored: number; text: string };
    expect(before.tokens).toBeGreaterThan(4);
    expect(before.kv_tokens_stored).toBe(before.tokens - 1); // the last token is pending (not in the KV yet)
    expect(before.text.startsWith(P)).toBe(true);
    expect((await w.fetch('/v1/sessions/to-delete', { key: 'sk-bob', method: 'DELETE' })).status).toBe(200);
    // Gone, and a session that never existed is not an empty one: both are 404, for GET and DELETE.
    for (const id of ['to-delete', 'never-used']) {
      for (const method of ['GET', 'DELETE']) {
        const res = await w.fetch(`/v1/sessions/${id}`, { key: 'sk-bob', method });
        expect(res.status, `${method} ${id}`).toBe(404);
        expect(await res.json()).toMatchObject({ error: { type: 'not_found_error', code: 'session_not_found', param: 'session_id' } });
      }
    }
  });

  it('concurrent requests to one session: one runs, the other gets 409', async () => {
    const body = JSON.stringify({ model: 'default', prompt: P, max_tokens: 200, temperature: 0 });
    const send = () =>
      w.fetch('/v1/completions', { method: 'POST', key: 'sk-bob', headers: { 'content-type': 'application/json', 'x-session-id': 'busy-1' }, body });
    const [a, b] = await Promise.all([send(), send()]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 409]);
    const loser = a.status === 409 ? a : b;
    expect(((await loser.json()) as { error: { code: string } }).error.code).toBe('session_busy');
    await (a.status === 200 ? a : b).text();
  });

  it('concurrent requests to different sessions share the model and do not disturb each other', async () => {
    const prompts = [P, 'class Stack:\n    def push(self, item):\n', 'import json\n\n\ndef load(path):\n'];
    const alone = [];
    for (const prompt of prompts) alone.push((await complete(w.client('sk-bob'), { prompt, max_tokens: 32 })).choices[0].text);
    const together = await Promise.all(prompts.map((prompt, i) => complete(w.client('sk-bob'), { prompt, max_tokens: 32 }, `par-${i}`)));
    expect(together.map((r) => r.choices[0].text)).toEqual(alone);
  });

  it('a client that disconnects stops generation; the session keeps nothing of that request', async () => {
    // The session holds one complete request first.
    const first = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 8 }, 'abort-1');
    const held = ext(first).session_tokens;
    for (const stream of [true, false]) {
      const ac = new AbortController();
      const res = await w.fetch('/v1/completions', {
        method: 'POST',
        key: 'sk-bob',
        headers: { 'content-type': 'application/json', 'x-session-id': 'abort-1' },
        body: JSON.stringify({ model: 'default', prompt: P + first.choices[0].text, max_tokens: 400, temperature: 0, stream }),
        signal: ac.signal,
      });
      await res.body!.getReader().read(); // the first bytes arrived: generation is running
      ac.abort();
      // The session unlocks within a round or so, and holds exactly what it held before the request.
      let info: { busy: boolean; tokens: number } = { busy: true, tokens: 0 };
      for (let i = 0; i < 50 && info.busy; i++) {
        await new Promise((r) => setTimeout(r, 100));
        info = (await (await w.fetch('/v1/sessions/abort-1', { key: 'sk-bob' })).json()) as typeof info;
      }
      expect(info, `stream: ${stream}`).toMatchObject({ busy: false, tokens: held });
    }
    // `continue` goes on from the last complete request, as if the interrupted ones never happened.
    const next = await complete(w.client('sk-bob'), { prompt: '', continue: true, max_tokens: 8 }, 'abort-1');
    const once = await complete(w.client('sk-bob'), { prompt: P, max_tokens: 16 });
    expect(first.choices[0].text + next.choices[0].text).toBe(once.choices[0].text);
  });
});

describe('limits and validation', () => {
  it('requests per minute: 429 in OpenAI shape with Retry-After', async () => {
    const body = JSON.stringify({ model: 'default', prompt: 'x = 1', max_tokens: 1, temperature: 0 });
    const statuses: number[] = [];
    let limited: Response | null = null;
    for (let i = 0; i < 4; i++) {
      const r = await w.fetch('/v1/completions', { method: 'POST', key: 'sk-limited', headers: { 'content-type': 'application/json' }, body });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
      else await r.text();
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await limited!.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' } });
  });

  const long = 'x = 1\n'.repeat(400); // ~800+ tokens, over the 512 context
  const cases: [string, { path?: string; method?: string; body?: unknown; raw?: string; key?: string | null; headers?: Record<string, string> }, number, string | null][] = [
    ['no key', { body: { model: 'default', prompt: 'a' }, key: null }, 401, null],
    ['wrong key', { body: { model: 'default', prompt: 'a' }, key: 'sk-nope' }, 401, null],
    ['bad JSON', { raw: '{"model": "default", "prompt": ' }, 400, null],
    ['not JSON content type', { raw: 'model=default&prompt=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, null],
    ['body not an object', { raw: '[1,2]' }, 400, null],
    ['missing model', { body: { prompt: 'a' } }, 400, 'model'],
    ['missing prompt', { body: { model: 'default' } }, 400, 'prompt'],
    ['unknown model', { body: { model: 'gpt-9', prompt: 'a' } }, 404, 'model'],
    ['prompt wrong type', { body: { model: 'default', prompt: 42 } }, 400, 'prompt'],
    ['temperature < 0', { body: { model: 'default', prompt: 'a', temperature: -0.1 } }, 400, 'temperature'],
    ['temperature > 2', { body: { model: 'default', prompt: 'a', temperature: 2.5 } }, 400, 'temperature'],
    ['temperature as string', { body: { model: 'default', prompt: 'a', temperature: 'hot' } }, 400, 'temperature'],
    ['top_p = 0', { body: { model: 'default', prompt: 'a', top_p: 0 } }, 400, 'top_p'],
    ['top_p > 1', { body: { model: 'default', prompt: 'a', top_p: 1.5 } }, 400, 'top_p'],
    ['top_k < 0', { body: { model: 'default', prompt: 'a', top_k: -1 } }, 400, 'top_k'],
    ['max_tokens = 0', { body: { model: 'default', prompt: 'a', max_tokens: 0 } }, 400, 'max_tokens'],
    ['max_tokens fractional', { body: { model: 'default', prompt: 'a', max_tokens: 1.5 } }, 400, 'max_tokens'],
    ['max_tokens over the tenant limit', { body: { model: 'default', prompt: 'a', max_tokens: 300 }, key: 'sk-alice' }, 400, 'max_tokens'],
    ['seed fractional', { body: { model: 'default', prompt: 'a', seed: 0.5 } }, 400, 'seed'],
    ['too many stop strings', { body: { model: 'default', prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] } }, 400, 'stop'],
    ['stop wrong type', { body: { model: 'default', prompt: 'a', stop: 5 } }, 400, 'stop'],
    ['n = 17', { body: { model: 'default', prompt: 'a', n: 17 } }, 400, 'n'],
    ['n = 2 with a session', { body: { model: 'default', prompt: 'a', n: 2, session_id: 'two' } }, 400, 'n'],
    ['frequency_penalty out of range', { body: { model: 'default', prompt: 'a', frequency_penalty: 2.5 } }, 400, 'frequency_penalty'],
    ['logit_bias of a token outside the vocabulary', { body: { model: 'default', prompt: 'a', logit_bias: { '9999999': 5 } } }, 400, 'logit_bias'],
    ['logit_bias over 100', { body: { model: 'default', prompt: 'a', logit_bias: { '5': 101 } } }, 400, 'logit_bias.5'],
    ['logprobs over 20', { body: { model: 'default', prompt: 'a', logprobs: 21 } }, 400, 'logprobs'],
    ['echo with logprobs', { body: { model: 'default', prompt: 'a', echo: true, logprobs: 1 } }, 400, 'echo'],
    ['chat: top_logprobs without logprobs', { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 } }, 400, 'top_logprobs'],
    ['stream not boolean', { body: { model: 'default', prompt: 'a', stream: 'yes' } }, 400, 'stream'],
    ['prompt over the context', { body: { model: 'default', prompt: long, max_tokens: 8 } }, 400, 'prompt'],
    ['prompt + max_tokens over the context', { body: { model: 'default', prompt: 'x = 1\n'.repeat(60), max_tokens: 500 } }, 400, 'max_tokens'],
    ['token id outside the vocabulary', { body: { model: 'default', prompt: [1, 999999] } }, 400, 'prompt'],
    ['unknown drafter', { body: { model: 'default', prompt: 'a', drafter: 'psychic' } }, 400, 'drafter'],
    ['bad session id', { body: { model: 'default', prompt: 'a' }, headers: { 'x-session-id': 'no spaces allowed' } }, 400, 'session_id'],
    ['continue without a session', { body: { model: 'default', prompt: '', continue: true } }, 400, 'continue'],
    ['chat: empty messages', { path: '/v1/chat/completions', body: { model: 'default', messages: [] } }, 400, 'messages'],
    ['chat: unknown role', { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'wizard', content: 'hi' }] } }, 400, 'messages.0.role'],
    ['chat: content wrong type', { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'user', content: 7 }] } }, 400, 'messages.0.content'],
    ['chat: tools unsupported', { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function' }] } }, 400, 'tools'],
    // Parameters a route cannot honour are refused by name, never silently ignored.
    ...(['best_of', 'echo', 'suffix', 'functions', 'prompt'] as const).map((k) => [
      `chat: ${k} is refused`,
      { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'user', content: 'hi' }], [k]: k === 'functions' ? [{ name: 'f' }] : k === 'best_of' ? 2 : k === 'echo' ? true : 'x' } },
      400,
      k,
    ] as (typeof cases)[number]),
    ...(['tools', 'tool_choice', 'response_format', 'top_logprobs', 'messages'] as const).map((k) => [
      `completions: ${k} is refused`,
      { body: { model: 'default', prompt: 'a', [k]: k === 'tools' ? [{ type: 'function' }] : k === 'response_format' ? { type: 'json_object' } : k === 'top_logprobs' ? 2 : k === 'messages' ? [] : 'auto' } },
      400,
      k,
    ] as (typeof cases)[number]),
    ['chat: response_format json_object', { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_object' } } }, 400, 'response_format'],
    ['unknown stream_options key', { body: { model: 'default', prompt: 'a', stream: true, stream_options: { include_usage: true, colour: 'red' } } }, 400, 'stream_options.colour'],
    ['an unknown parameter', { body: { model: 'default', prompt: 'a', temprature: 0 } }, 400, 'temprature'],
    ['chat: a tool call in a message', { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'x' }] }] } }, 400, 'messages.0.tool_calls'],
    // Every over-long prompt gets the same error, whatever its form.
    ['512 token ids', { body: { model: 'default', prompt: Array(512).fill(5) } }, 400, 'prompt'],
    ['513 token ids', { body: { model: 'default', prompt: Array(513).fill(5) } }, 400, 'prompt'],
    ['2000 token ids in a nested array', { body: { model: 'default', prompt: [Array(2000).fill(5)] } }, 400, 'prompt'],
    ['a 100,000-character prompt', { body: { model: 'default', prompt: 'x'.repeat(100_000) } }, 400, 'prompt'],
    ['chat: 300 messages', { path: '/v1/chat/completions', body: { model: 'default', messages: Array(300).fill({ role: 'user', content: 'hi' }) } }, 400, 'messages'],
    ['17 prompts', { body: { model: 'default', prompt: Array(17).fill('a') } }, 400, 'prompt'],
    ['two prompts with a session', { body: { model: 'default', prompt: ['a', 'b'] }, headers: { 'x-session-id': 'two-prompts' } }, 400, 'prompt'],
    ['unknown route', { path: '/v1/nope', method: 'GET' }, 404, null],
    ['wrong method', { path: '/v1/completions', method: 'GET' }, 405, null],
    ['wrong method on chat', { path: '/v1/chat/completions', method: 'PUT', body: {} }, 405, null],
  ];

  it.each(cases.map(([n, c, s, p]) => [`${n} → ${s}`, c, s, p] as const))('%s', async (_name, c, status, param) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...c.headers };
    const key = c.key === undefined ? 'sk-bob' : c.key;
    if (key) headers.authorization = `Bearer ${key}`;
    const method = c.method ?? 'POST';
    const res = await w.fetch(c.path ?? '/v1/completions', {
      method,
      headers,
      body: method === 'GET' ? undefined : (c.raw ?? JSON.stringify(c.body ?? {})),
    });
    const json = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
    expect(res.status, JSON.stringify(json)).toBe(status);
    expect(Object.keys(json)).toEqual(['error']);
    expect(json.error.message.length).toBeGreaterThan(20); // a sentence, not a bare code
    // OpenAI answers every refused request with this type, 401 and 404 included
    expect(json.error.type).toBe('invalid_request_error');
    expect(json.error.code, 'a machine-readable code').toMatch(/^[a-z_]+$/);
    expect('param' in json.error).toBe(true);
    if (param) expect(json.error.param).toBe(param);
    if (/^(prompt over the context|512 token ids|513 token ids|2000 token ids|a 100,000-character prompt|chat: 300 messages)/.test(_name)) {
      expect(json.error.code, json.error.message).toBe('context_length_exceeded');
    }
  });

  it('what clients send back is accepted: an assistant message with refusal and annotations, store: false, metadata, user', async () => {
    const r = await w.client('sk-bob').chat.completions.create({
      model: 'default',
      temperature: 0,
      max_tokens: 4,
      store: false,
      metadata: { run: 'test' },
      user: 'u-1',
      messages: [
        { role: 'user', content: 'Write a function.' },
        { role: 'assistant', content: 'def f():', refusal: null, annotations: [] } as OpenAI.ChatCompletionAssistantMessageParam,
        { role: 'user', content: 'Another one.' },
      ],
    });
    // The ignored parameters change nothing: the same text as without them.
    const plain = await w.client('sk-bob').chat.completions.create({
      model: 'default',
      temperature: 0,
      max_tokens: 4,
      messages: [
        { role: 'user', content: 'Write a function.' },
        { role: 'assistant', content: 'def f():' },
        { role: 'user', content: 'Another one.' },
      ],
    });
    expect(r.choices[0].message.content).toBe(plain.choices[0].message.content);
  });

  it('Authorization follows one rule on every route: a key followed by a non-breaking space is a wrong key', async () => {
    const { port, hostname } = new URL(w.url);
    // Raw bytes, so the 0xA0 byte goes out as it is (fetch would refuse or re-encode it).
    const raw = (head: string, body = '') =>
      new Promise<number>((resolve, reject) => {
        const sock = connect(Number(port), hostname, () => {
          sock.write(Buffer.from(head + body, 'latin1')); // latin1: U+00A0 is the single byte 0xA0
        });
        let got = '';
        sock.on('data', (d) => {
          got += d.toString('latin1');
          const m = /^HTTP\/1\.1 (\d+)/.exec(got);
          if (m) {
            resolve(Number(m[1]));
            sock.destroy();
          }
        });
        sock.on('error', reject);
      });
    const json = JSON.stringify({ model: 'default', prompt: 'a', max_tokens: 1 });
    const host = `Host: ${hostname}:${port}\r\nAuthorization: Bearer sk-bob\u00a0\r\n`;
    const statuses = {
      contentLength: await raw(`POST /v1/completions HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${json.length}\r\nConnection: close\r\n\r\n`, json),
      chunked: await raw(`POST /v1/completions HTTP/1.1\r\n${host}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`),
      models: await raw(`GET /v1/models HTTP/1.1\r\n${host}Connection: close\r\n\r\n`),
      session: await raw(`GET /v1/sessions/x HTTP/1.1\r\n${host}Connection: close\r\n\r\n`),
    };
    expect(statuses).toEqual({ contentLength: 401, chunked: 401, models: 401, session: 401 });
    // The same requests without the stray byte are let in.
    const ok = await w.fetch('/v1/models', { headers: { authorization: 'Bearer sk-bob \t' } });
    expect(ok.status).toBe(200);
  });

  it('the official client surfaces errors as APIError', async () => {
    await expect(w.client('sk-bob').completions.create({ model: 'default', prompt: 'a', temperature: 9 })).rejects.toMatchObject({ status: 400 });
  });
});
