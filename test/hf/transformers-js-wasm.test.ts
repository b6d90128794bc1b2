/**
 * transformers.js on onnxruntime-web wasm (what it runs in a browser; the same onnxruntime-web 1.30,
 * one thread, as this engine) over model-hf/default greedily generates exactly the tokens of the
 * engine's plain decoding of model-shards/default. The export sums attention in the shipped graph's
 * fixed panels, so its one-pass prefill and the engine's prefill in pieces give the same bits.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { renderChat } from '../../src/worker/openai/chat-template.js';
import { MAX_NEW_TOKENS, enginePlain, equivalencePrompts, firstDifference, promptIds, setup, type Setup } from './equivalence.js';

let s: Setup;
beforeAll(async () => {
  s = await setup('wasm');
});

describe('transformers.js (onnxruntime-web wasm) vs the engine, greedy', () => {
  it('runs on this package\'s onnxruntime-web, one thread', () => {
    expect(s.tjs.runtimeName).toBe('onnxruntime-web 1.30.0 wasm, 1 thread');
  });

  it('AutoTokenizer encodes and decodes as the engine does (<s> first)', () => {
    for (const p of equivalencePrompts()) {
      const ids = s.engine.encodePrompt(p);
      expect(s.tjs.encode(p)).toEqual(ids);
      expect(s.tjs.decode(ids)).toBe(p);
    }
  });

  it('the chat template renders conversations as /v1/chat/completions does', () => {
    const conversations = [
      [{ role: 'user', content: 'Write a function that reverses a list.' }],
      [{ role: 'system', content: 'You write Python.' }, { role: 'user', content: 'Sort a dict by value.' },
        { role: 'assistant', content: 'sorted(d.items(), key=lambda kv: kv[1])' }, { role: 'user', content: 'And reversed?' }],
      [{ role: 'user', content: 'Continue:' }, { role: 'assistant', content: 'def f(x):' }],
    ] as const;
    for (const c of conversations) {
      const messages = c.map((m) => ({ ...m }));
      expect(s.tjs.chatIds(messages)).toEqual(s.engine.encodePrompt(renderChat(messages)));
    }
  });

  it.each(equivalencePrompts().map((p, i) => [i, p] as const))('prompt %i: same tokens and text as plain decoding', async (_i, p) => {
    const ids = promptIds(s.engine, p);
    const ours = await enginePlain(s.engine, ids);
    const theirs = await s.tjs.generate(ids, MAX_NEW_TOKENS);
    expect(ours.tokens.length).toBeGreaterThan(0);
    expect(firstDifference(theirs.tokens, ours.tokens)).toBe(-1);
    expect(s.tjs.decode(theirs.tokens)).toBe(ours.text);
  });
});
