/**
 * The OpenAI parameters clients send, through the official `openai` client against the Worker in workerd,
 * streamed and not: logprobs / top_logprobs (and the completions form), frequency / presence / repetition
 * penalties, n, echo, prompt arrays, logit_bias, user, max_completion_tokens; and what is still refused.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TextTokenizer } from '../../src/engine/index';
import { MODEL_DIR, readManifest, startWorker, type Worker } from './harness';

let w: Worker;
let client: OpenAI;
let tok: TextTokenizer;
beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'));
  client = w.client('sk-bob');
  const m = readManifest();
  tok = new TextTokenizer(Buffer.concat(m.files.tokenizer.shards.map((s) => readFileSync(join(MODEL_DIR, s.path)))).toString('utf8'));
});
/** The model's token ids of a text (for logit_bias and token-id prompts). */
const tokenIdsOf = (text: string) => tok.encode(text);
afterAll(async () => {
  await w?.dispose();
});

const P = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n';
type Ext = Record<string, unknown>;
type CompletionLogprobs = { tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[]; text_offset: number[] };

const complete = (body: Ext) =>
  client.completions.create({ model: 'default', temperature: 0, max_tokens: 12, ...body } as unknown as OpenAI.CompletionCreateParamsNonStreaming);

/** A streamed completion, put back together per choice index. */
async function completeStreamed(body: Ext) {
  const stream = await client.completions.create({ model: 'default', temperature: 0, max_tokens: 12, ...body, stream: true, stream_options: { include_usage: true } } as unknown as OpenAI.CompletionCreateParamsStreaming);
  const texts: string[] = [];
  const lps: CompletionLogprobs[] = [];
  const finish: (string | null)[] = [];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const ch of stream) {
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      texts[c.index] = (texts[c.index] ?? '') + c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
      const l = c.logprobs as CompletionLogprobs | null;
      if (l) {
        const acc = (lps[c.index] ??= { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] });
        acc.tokens.push(...l.tokens);
        acc.token_logprobs.push(...l.token_logprobs);
        acc.top_logprobs.push(...l.top_logprobs);
        acc.text_offset.push(...l.text_offset);
      }
    }
  }
  return { texts, lps, finish, usage: usage! };
}

const chat = (body: Ext) =>
  client.chat.completions.create({ model: 'default', temperature: 0, max_tokens: 12, messages: [{ role: 'user', content: 'Write a function that adds two numbers.' }], ...body } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);

async function chatStreamed(body: Ext) {
  const stream = await client.chat.completions.create({
    model: 'default', temperature: 0, max_tokens: 12, messages: [{ role: 'user', content: 'Write a function that adds two numbers.' }], ...body, stream: true, stream_options: { include_usage: true },
  } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
  const texts: string[] = [];
  const content: OpenAI.ChatCompletionTokenLogprob[][] = [];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const ch of stream) {
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      texts[c.index] = (texts[c.index] ?? '') + (c.delta.content ?? '');
      if (c.logprobs?.content) (content[c.index] ??= []).push(...c.logprobs.content);
    }
  }
  return { texts, content, usage: usage! };
}

describe('logprobs', () => {
  it('completions (logprobs: N): per token, from the target model, the same streamed and whichever drafter', async () => {
    const r = await complete({ prompt: P, logprobs: 3 });
    const l = r.choices[0].logprobs as unknown as CompletionLogprobs;
    expect(l.tokens.length).toBe(r.usage!.completion_tokens);
    expect(l.tokens.join('')).toBe(r.choices[0].text);
    let offset = 0;
    l.tokens.forEach((t, i) => {
      expect(l.text_offset[i]).toBe(offset);
      offset += t.length;
      expect(l.token_logprobs[i]).toBeLessThanOrEqual(0);
      const top = Object.entries(l.top_logprobs[i]);
      expect(top.length).toBeGreaterThan(0);
      expect(top.length).toBeLessThanOrEqual(3);
      // Greedy: the chosen token is the most likely one.
      expect(Math.max(...top.map(([, v]) => v))).toBeCloseTo(l.token_logprobs[i], 6);
      expect(l.top_logprobs[i][t]).toBeCloseTo(l.token_logprobs[i], 6);
    });
    const s = await completeStreamed({ prompt: P, logprobs: 3 });
    expect(s.texts[0]).toBe(r.choices[0].text);
    expect(s.lps[0].tokens).toEqual(l.tokens);
    expect(s.lps[0].text_offset).toEqual(l.text_offset);
    s.lps[0].token_logprobs.forEach((x, i) => expect(x).toBeCloseTo(l.token_logprobs[i], 6));
    // Plain decoding (no drafter) gives the same tokens and log-probabilities as the default drafter.
    const plain = await complete({ prompt: P, logprobs: 3, drafter: 'plain' });
    const pl = plain.choices[0].logprobs as unknown as CompletionLogprobs;
    expect(pl.tokens).toEqual(l.tokens);
    pl.token_logprobs.forEach((x, i) => expect(x).toBeCloseTo(l.token_logprobs[i], 4));
    // Sampled tokens have log-probabilities too, and none are reported unless asked.
    const hot = await complete({ prompt: P, logprobs: 0, temperature: 0.9, seed: 3 });
    expect((hot.choices[0].logprobs as unknown as CompletionLogprobs).tokens.join('')).toBe(hot.choices[0].text);
    expect((await complete({ prompt: P })).choices[0].logprobs).toBeNull();
  });

  it('chat (logprobs: true, top_logprobs): content per token with bytes and alternatives, the same streamed', async () => {
    const r = await chat({ logprobs: true, top_logprobs: 2 });
    const content = r.choices[0].logprobs!.content!;
    expect(content.length).toBe(r.usage!.completion_tokens);
    for (const t of content) {
      expect(t.top_logprobs.length).toBe(2);
      expect(t.top_logprobs[0].token).toBe(t.token);
      expect(t.top_logprobs[0].logprob).toBeCloseTo(t.logprob, 6);
      expect(t.bytes).toEqual(Array.from(Buffer.from(t.token, 'utf8')));
    }
    // The reply's text is the tokens' text (less the one space after "Assistant:").
    expect(content.map((t) => t.token).join('').replace(/^ /, '')).toBe(r.choices[0].message.content);
    const s = await chatStreamed({ logprobs: true, top_logprobs: 2 });
    expect(s.texts[0]).toBe(r.choices[0].message.content);
    expect(s.content[0].map((t) => t.token)).toEqual(content.map((t) => t.token));
    const none = await chat({ logprobs: true });
    expect(none.choices[0].logprobs!.content!.every((t) => t.top_logprobs.length === 0)).toBe(true);
    expect((await chat({})).choices[0].logprobs).toBeNull();
  });
});

describe('penalties', () => {
  for (const [name, extra] of [
    ['frequency_penalty', { frequency_penalty: 1.5 }],
    ['presence_penalty', { presence_penalty: 2 }],
    ['repetition_penalty (extension)', { repetition_penalty: 1.8 }],
  ] as const) {
    it(`${name}: changes the greedy text; plain and speculative decoding give the same text, streamed too`, async () => {
      const body = { prompt: P, max_tokens: 24 };
      const base = await complete(body);
      const pen = await complete({ ...body, ...extra });
      expect(pen.choices[0].text).not.toBe(base.choices[0].text);
      const plain = await complete({ ...body, ...extra, drafter: 'plain' });
      expect(plain.choices[0].text).toBe(pen.choices[0].text);
      const s = await completeStreamed({ ...body, ...extra });
      expect(s.texts[0]).toBe(pen.choices[0].text);
    });
  }

  it('chat with penalties, streamed and not', async () => {
    const r = await chat({ frequency_penalty: 1, presence_penalty: 1, max_tokens: 16 });
    const s = await chatStreamed({ frequency_penalty: 1, presence_penalty: 1, max_tokens: 16 });
    expect(s.texts[0]).toBe(r.choices[0].message.content);
    expect((await chat({ frequency_penalty: 1, presence_penalty: 1, max_tokens: 16, drafter: 'plain' })).choices[0].message.content).toBe(r.choices[0].message.content);
  });
});

describe('logit_bias', () => {
  it('-100 bans a token, +100 forces one; streamed the same', async () => {
    const base = await complete({ prompt: P, max_tokens: 6, logprobs: 0 });
    const firstToken = (base.choices[0].logprobs as unknown as CompletionLogprobs).tokens[0];
    const tokenIds = tokenIdsOf(firstToken);
    const banned = await complete({ prompt: P, max_tokens: 6, logit_bias: { [tokenIds[0]]: -100 } });
    expect(banned.choices[0].text.startsWith(firstToken)).toBe(false);
    const forcedId = (tokenIdsOf(' z'))[0];
    const forced = await complete({ prompt: P, max_tokens: 5, temperature: 1, seed: 1, logit_bias: { [forcedId]: 100 } });
    expect(forced.choices[0].text).toBe(' z'.repeat(5));
    const s = await completeStreamed({ prompt: P, max_tokens: 5, temperature: 1, seed: 1, logit_bias: { [forcedId]: 100 } });
    expect(s.texts[0]).toBe(' z'.repeat(5));
  });
});

describe('n, echo, prompt arrays', () => {
  it('n = 3 sampled with a seed: three choices with their index, reproducible, streamed the same; usage adds up', async () => {
    const body = { prompt: P, n: 3, temperature: 1, seed: 42, max_tokens: 10 };
    const r = await complete(body);
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(r.choices.map((c) => c.text)).size).toBeGreaterThan(1);
    expect((await complete(body)).choices.map((c) => c.text)).toEqual(r.choices.map((c) => c.text));
    const s = await completeStreamed(body);
    expect(s.texts).toEqual(r.choices.map((c) => c.text));
    expect(s.usage.completion_tokens).toBe(r.usage!.completion_tokens);
    // Each choice prefills the prompt in a session of its own: each prefill is counted.
    const one = await complete({ ...body, n: 1 });
    expect(r.usage!.prompt_tokens).toBe(3 * one.usage!.prompt_tokens);
    expect(s.usage.prompt_tokens).toBe(r.usage!.prompt_tokens);
    expect(r.choices[0].text).toBe(one.choices[0].text); // choice 0 uses the seed itself
    const c = await chat({ n: 2, temperature: 1, seed: 7 });
    expect(c.choices.map((x) => x.index)).toEqual([0, 1]);
    const cs = await chatStreamed({ n: 2, temperature: 1, seed: 7 });
    expect(cs.texts).toEqual(c.choices.map((x) => x.message.content));
  });

  it('echo: the completion text starts with the prompt (text or token ids), streamed too', async () => {
    const plainRun = await complete({ prompt: P });
    const r = await complete({ prompt: P, echo: true });
    expect(r.choices[0].text).toBe(P + plainRun.choices[0].text);
    const s = await completeStreamed({ prompt: P, echo: true });
    expect(s.texts[0]).toBe(r.choices[0].text);
    const ids = [1, ...(tokenIdsOf('def add(a, b):'))];
    const t = await complete({ prompt: ids, echo: true, max_tokens: 4 });
    expect(t.choices[0].text.startsWith('def add(a, b):')).toBe(true);
  });

  it('prompt arrays: one choice per prompt (x n), each the same as the prompt alone, streamed too', async () => {
    const prompts = [P, 'import os\n', 'class Stack:\n'];
    const alone = await Promise.all(prompts.map((p) => complete({ prompt: p })));
    const r = await complete({ prompt: prompts });
    expect(r.choices.map((c) => c.text)).toEqual(alone.map((a) => a.choices[0].text));
    expect(r.usage!.prompt_tokens).toBe(alone.reduce((s, a) => s + a.usage!.prompt_tokens, 0));
    const s = await completeStreamed({ prompt: prompts });
    expect(s.texts).toEqual(r.choices.map((c) => c.text));
    const twice = await complete({ prompt: prompts.slice(0, 2), n: 2 });
    expect(twice.choices.map((c) => c.text)).toEqual([alone[0], alone[0], alone[1], alone[1]].map((a) => a.choices[0].text));
    const ids = await complete({ prompt: [[1, ...(tokenIdsOf('import os\n'))], [1, ...(tokenIdsOf('class Stack:\n'))]] });
    expect(ids.choices.map((c) => c.text)).toEqual([alone[1].choices[0].text, alone[2].choices[0].text]);
  });
});

describe('user, max_completion_tokens, unsupported parameters', () => {
  it('user is accepted and recorded with the session', async () => {
    const r = await client.completions.create({ model: 'default', prompt: P, max_tokens: 2, temperature: 0, user: 'user-42' }, { headers: { 'X-Session-Id': 'params-user' } });
    expect(r.choices[0].text.length).toBeGreaterThan(0);
    const info = await (await w.fetch('/v1/sessions/params-user', { key: 'sk-bob' })).json();
    expect(info).toMatchObject({ user: 'user-42' });
  });

  it('max_completion_tokens bounds the completion, streamed and not', async () => {
    const r = await chat({ max_tokens: undefined, max_completion_tokens: 5 });
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(5);
    const s = await chatStreamed({ max_tokens: undefined, max_completion_tokens: 5 });
    expect(s.texts[0]).toBe(r.choices[0].message.content);
    expect(s.usage.completion_tokens).toBe(r.usage!.completion_tokens);
  });

  it('what is still unsupported is a 400 naming the parameter', async () => {
    for (const [body, param] of [
      [{ prompt: 'a', best_of: 2 }, 'best_of'],
      [{ prompt: 'a', suffix: 'x' }, 'suffix'],
      [{ prompt: 'a', echo: true, logprobs: 2 }, 'echo'],
    ] as const) {
      await expect(complete(body)).rejects.toMatchObject({ status: 400, param });
    }
    await expect(chat({ tools: [{ type: 'function', function: { name: 'f' } }] })).rejects.toMatchObject({ status: 400, param: 'tools' });
  });
});
