/** The JSON writer's serializer (src/worker/json-writer.ts): the bytes JSON.stringify gives for the finished object. */
import { describe, expect, it } from 'vitest';
import { jsonPieces, TextStream } from '../../../src/worker/json-writer.js';

async function* pieces(...texts: string[]): AsyncGenerator<string> {
  for (const t of texts) yield t;
}

async function written(value: unknown): Promise<{ text: string; flushes: number }> {
  let text = '';
  let flushes = 0;
  for await (const p of jsonPieces(value)) {
    if (typeof p === 'string') text += p;
    else flushes++;
  }
  return { text, flushes };
}

describe('jsonPieces', () => {
  it('writes a response with streamed text and later fields as JSON.stringify writes the finished one', async () => {
    const texts = ['def f(x):\n', '    return "x" \\ 2', '', ' \u00e9\u4e2d\ud83d\ude00 \u0001\t'];
    const done = Promise.resolve({ finish: 'stop', n: 1.5 });
    const response = (text: unknown, end: unknown, later: unknown) => ({
      id: 'cmpl-1',
      choices: [{ index: 0, text, logprobs: null, finish_reason: later }],
      skipped: undefined,
      list: [1, undefined, 'a'],
      usage: end,
    });
    const streamed = await written(response(new TextStream(pieces(...texts)), done, done.then((d) => d.finish)));
    expect(streamed.text).toBe(JSON.stringify(response(texts.join(''), await done, 'stop')));
    expect(streamed.flushes).toBe(3); // one per non-empty piece of text
  });

  it('a Promise of undefined leaves its key out, as JSON.stringify does', async () => {
    expect((await written({ a: Promise.resolve(undefined), b: 2 })).text).toBe('{"b":2}');
  });
});
