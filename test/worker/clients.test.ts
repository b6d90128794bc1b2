/**
 * The web clients people reach an OpenAI-compatible API with, against the Worker in real workerd with
 * the real default model: the Vercel AI SDK through its OpenAI-compatible provider (`ai` +
 * `@ai-sdk/openai-compatible`: generateText and streamText, chat and completion models) and LangChain.js
 * `ChatOpenAI` (`@langchain/openai`: invoke and stream). Greedy, so each must give exactly the text the
 * official `openai` client gets for the same request, and report the same usage.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText } from 'ai';
import { ChatOpenAI } from '@langchain/openai';
import { startWorker, type Worker } from './harness';

let w: Worker;
const KEY = 'sk-bob';
const MAX = 32;
const USER = 'Write a Python function that reverses a list.';
const SYSTEM = 'You write short Python code.';
const PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n';

interface Reference {
  text: string;
  prompt_tokens: number;
  completion_tokens: number;
  finish_reason: string;
  accepted_prediction_tokens: number;
}
let chatRef: Reference;

beforeAll(async () => {
  w = await startWorker(inject('workerBundleDir'));
  const client = w.client(KEY);
  const chat = await client.chat.completions.create({
    model: 'default', temperature: 0, max_tokens: MAX,
    messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: USER }],
  });
  chatRef = {
    text: chat.choices[0].message.content ?? '',
    prompt_tokens: chat.usage!.prompt_tokens,
    completion_tokens: chat.usage!.completion_tokens,
    finish_reason: chat.choices[0].finish_reason,
    accepted_prediction_tokens: chat.usage!.completion_tokens_details!.accepted_prediction_tokens!,
  };
  // the reference is a real completion
  expect(chatRef.text.length).toBeGreaterThan(0);
  expect(chatRef.prompt_tokens).toBeGreaterThan(1);
  expect(chatRef.completion_tokens).toBeGreaterThan(0);
  expect(chatRef.completion_tokens).toBeLessThanOrEqual(MAX);
});
afterAll(async () => {
  await w?.dispose();
});

/** AI SDK finish reasons from OpenAI's ("length" -> "length", "stop" -> "stop"). */
const sdkFinish = (openai: string) => (openai === 'length' ? 'length' : 'stop');

describe('Vercel AI SDK (ai + @ai-sdk/openai-compatible)', () => {
  const provider = () => createOpenAICompatible({ name: 'ctc-edge', baseURL: `${w.url}v1`, apiKey: KEY, includeUsage: true });

  it('generateText, chat model: the same text and usage as the openai client', async () => {
    const r = await generateText({ model: provider().chatModel('default'), system: SYSTEM, prompt: USER, temperature: 0, maxOutputTokens: MAX, maxRetries: 0 });
    expect(r.text).toBe(chatRef.text);
    expect(r.usage.inputTokens).toBe(chatRef.prompt_tokens);
    expect(r.usage.outputTokens).toBe(chatRef.completion_tokens);
    expect(r.usage.totalTokens).toBe(chatRef.prompt_tokens + chatRef.completion_tokens);
    expect(r.finishReason).toBe(sdkFinish(chatRef.finish_reason));
  });

  it('our parameters through providerOptions, the drafter\'s count in providerMetadata', async () => {
    // the default drafter drafts (accepted tokens, as the openai client saw them); plain drafts nothing; same text
    const byDefault = await generateText({ model: provider().chatModel('default'), system: SYSTEM, prompt: USER, temperature: 0, maxOutputTokens: MAX, maxRetries: 0 });
    expect(byDefault.providerMetadata?.['ctc-edge']?.acceptedPredictionTokens).toBe(chatRef.accepted_prediction_tokens);
    expect(chatRef.accepted_prediction_tokens).toBeGreaterThan(0);
    const plain = await generateText({
      model: provider().chatModel('default'), system: SYSTEM, prompt: USER, temperature: 0, maxOutputTokens: MAX, maxRetries: 0,
      providerOptions: { 'ctc-edge': { drafter: 'plain' } },
    });
    expect(plain.text).toBe(chatRef.text);
    expect(plain.providerMetadata?.['ctc-edge']?.acceptedPredictionTokens).toBe(0);
  });

  it('streamText, chat model: the chunks add up to the same text, usage at the end', async () => {
    const r = streamText({ model: provider().chatModel('default'), system: SYSTEM, prompt: USER, temperature: 0, maxOutputTokens: MAX, maxRetries: 0 });
    const parts: string[] = [];
    for await (const delta of r.textStream) parts.push(delta);
    expect(parts.length).toBeGreaterThan(1); // streamed, not one block
    expect(parts.join('')).toBe(chatRef.text);
    const usage = await r.usage;
    expect(usage.inputTokens).toBe(chatRef.prompt_tokens);
    expect(usage.outputTokens).toBe(chatRef.completion_tokens);
    expect(await r.finishReason).toBe(sdkFinish(chatRef.finish_reason));
  });

  it('generateText and streamText, completion model (/v1/completions): what the openai client gets for the same body', async () => {
    // The SDK's completion model renders its prompt as a chat transcript ("user:\n...\n\nassistant:\n",
    // stop "\nuser:"), so the reference is the openai client sent that very body.
    const sent: Record<string, unknown>[] = [];
    const recording = createOpenAICompatible({
      name: 'ctc-edge', baseURL: `${w.url}v1`, apiKey: KEY, includeUsage: true,
      fetch: async (url, init) => {
        if (typeof init?.body === 'string') sent.push(JSON.parse(init.body) as Record<string, unknown>);
        return fetch(url, init);
      },
    });
    const g = await generateText({ model: recording.completionModel('default'), prompt: PROMPT, temperature: 0, maxOutputTokens: MAX, maxRetries: 0 });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ model: 'default', prompt: `user:\n${PROMPT}\n\nassistant:\n`, stop: ['\nuser:'], max_tokens: MAX, temperature: 0 });
    const ref = await w.client(KEY).completions.create({ ...(sent[0] as { model: string; prompt: string }), stream: false });
    expect(ref.choices[0].text.length).toBeGreaterThan(0);
    expect(g.text).toBe(ref.choices[0].text);
    expect(g.usage.inputTokens).toBe(ref.usage!.prompt_tokens);
    expect(g.usage.outputTokens).toBe(ref.usage!.completion_tokens);
    expect(g.finishReason).toBe(sdkFinish(ref.choices[0].finish_reason));

    const st = streamText({ model: recording.completionModel('default'), prompt: PROMPT, temperature: 0, maxOutputTokens: MAX, maxRetries: 0 });
    const parts: string[] = [];
    for await (const delta of st.textStream) parts.push(delta);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ prompt: sent[0].prompt, stream: true, stream_options: { include_usage: true } });
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.join('')).toBe(ref.choices[0].text);
    expect((await st.usage).inputTokens).toBe(ref.usage!.prompt_tokens);
    expect((await st.usage).outputTokens).toBe(ref.usage!.completion_tokens);
  });

  it('an error reaches the caller as the SDK\'s APICallError with the status and OpenAI\'s message', async () => {
    const r = generateText({ model: provider().chatModel('no-such-model'), prompt: USER, maxOutputTokens: MAX, maxRetries: 0 });
    const err = (await r.then(() => null, (e: unknown) => e)) as { statusCode?: number; message?: string; isRetryable?: boolean } | null;
    expect(err).not.toBeNull();
    expect(err!.statusCode).toBe(404);
    expect(err!.message).toMatch(/no-such-model/);
    expect(err!.isRetryable).toBe(false);
  });
});

describe('LangChain.js ChatOpenAI (@langchain/openai)', () => {
  const llm = (opts: { streaming?: boolean } = {}) => new ChatOpenAI({
    model: 'default', apiKey: KEY, configuration: { baseURL: `${w.url}v1` }, temperature: 0, maxTokens: MAX, maxRetries: 0,
    streamUsage: true, ...opts,
  });
  const messages = (): [string, string][] => [['system', SYSTEM], ['human', USER]];

  it('stream(): the chunks add up to the same text, usage_metadata as the openai client reports', async () => {
    const parts: string[] = [];
    let usage: { input_tokens: number; output_tokens: number; total_tokens: number } | undefined;
    for await (const chunk of await llm({ streaming: true }).stream(messages())) {
      if (typeof chunk.content === 'string' && chunk.content) parts.push(chunk.content);
      if (chunk.usage_metadata) usage = chunk.usage_metadata;
    }
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.join('')).toBe(chatRef.text);
    expect(usage).toBeDefined();
    expect(usage!.input_tokens).toBe(chatRef.prompt_tokens);
    expect(usage!.output_tokens).toBe(chatRef.completion_tokens);
    expect(usage!.total_tokens).toBe(chatRef.prompt_tokens + chatRef.completion_tokens);
  });

  it('invoke(): the same text and usage', async () => {
    const r = await llm().invoke(messages());
    expect(r.content).toBe(chatRef.text);
    expect(r.usage_metadata?.input_tokens).toBe(chatRef.prompt_tokens);
    expect(r.usage_metadata?.output_tokens).toBe(chatRef.completion_tokens);
    expect(r.response_metadata?.finish_reason).toBe(chatRef.finish_reason);
  });
});
