/** Prompt assembly (src/worker/prompt.ts) with the model's real tokenizer, in Node. */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TextTokenizer } from '../../../src/engine/tokenizer.js';
import { ApiError } from '../../../src/worker/openai/errors.js';
import { assemblePrompt, reuseTextPrefix, type PromptModel } from '../../../src/worker/prompt.js';
import { loadTestTokenizer } from '../../engine/helpers.js';

const BOS = 1;
const EOS = 2;
let tok: TextTokenizer;
let model: PromptModel;
beforeAll(async () => {
  ({ tok } = await loadTestTokenizer());
  model = { tokenizer: tok, stopTokens: new Set([BOS, EOS]), config: { bos_id: BOS } };
});

const enc = (t: string) => [BOS, ...tok.encode(t)];

describe('reuseTextPrefix', () => {
  it('a fresh session gets <s> + the encoding', () => {
    expect(reuseTextPrefix(model, [], 'def f(x):')).toEqual(enc('def f(x):'));
  });

  it('a text that extends what the session holds starts with exactly the held tokens', () => {
    // Held tokens that are NOT the encoding of their text (a generation may tokenise differently).
    const held = [BOS, ...tok.encode('def f'), ...tok.encode('(x'), ...tok.encode('):')];
    const text = tok.decode(held.slice(1)) + '\n    return x';
    const ids = reuseTextPrefix(model, held, text);
    expect(ids.slice(0, held.length)).toEqual(held);
    expect(tok.decode(ids.slice(1))).toBe(text);
  });

  it('a text that diverges keeps the longest held prefix it spells, then encodes the rest', () => {
    const held = [BOS, ...tok.encode('x = 1\ny = 2\n')];
    const text = 'x = 1\nz = 3\n';
    const ids = reuseTextPrefix(model, held, text);
    expect(tok.decode(ids.slice(1))).toBe(text);
    let common = 0;
    while (ids[common] === held[common]) common++;
    expect(common).toBeGreaterThan(1);
    expect(tok.decode(held.slice(1, common))).toBe(text.slice(0, tok.decode(held.slice(1, common)).length));
  });

  it('held tokens count only up to the first stop token, and a session not starting with <s> is not reused', () => {
    const held = [BOS, ...tok.encode('a = 1\n'), EOS, ...tok.encode('b = 2\n')];
    const ids = reuseTextPrefix(model, held, 'a = 1\nb = 2\n');
    expect(ids.slice(0, held.indexOf(EOS))).toEqual(held.slice(0, held.indexOf(EOS)));
    expect(ids).not.toContain(EOS);
    expect(reuseTextPrefix(model, tok.encode('a = 1\n'), 'a = 1\n')).toEqual(enc('a = 1\n'));
  });

  it('a text unrelated to the held tokens is encoded afresh', () => {
    expect(reuseTextPrefix(model, enc('import os\n'), 'class A:\n')).toEqual(enc('class A:\n'));
  });
});

describe('assemblePrompt', () => {
  it('continue: the held tokens; refused (400 empty_session, param continue) when the session holds none', () => {
    const held = enc('print(1)');
    expect(assemblePrompt(model, held, { text: 'ignored' }, true)).toEqual(held);
    try {
      assemblePrompt(model, [], { text: '' }, true);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).toJSON().error).toMatchObject({ param: 'continue', code: 'empty_session' });
      expect((e as ApiError).status).toBe(400);
    }
  });

  it('token ids are passed as given (the engine checks them); text goes through reuseTextPrefix', () => {
    expect(assemblePrompt(model, enc('x'), { tokens: [1, 999999] }, false)).toEqual([1, 999999]);
    expect(assemblePrompt(model, [], { text: 'y = 2' }, false)).toEqual(enc('y = 2'));
  });
});
