import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TextTokenizer } from '../../src/engine/tokenizer.js';
import { FIXTURES, loadTestTokenizer, requireFile } from './helpers.js';

let tok: TextTokenizer;
beforeAll(async () => {
  ({ tok } = await loadTestTokenizer());
});

const SAMPLES = [
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "x = ['a', 'b']  # héllo wörld 😀 日本語\n\ttabs\r\n and  double  spaces ",
  'const f = (a, b) => `${a}${b}`; // ünïcödé ✓',
  '   leading spaces and trailing\n\n\n',
];

describe('TextTokenizer', () => {
  it('round-trips text exactly (no clean-up of spaces)', () => {
    for (const s of SAMPLES) expect(tok.decode(tok.encode(s))).toBe(s);
    expect(tok.decode(tok.encode("'a', 'b'"))).toBe("'a', 'b'");
  });

  it('skips special tokens when decoding and never adds them when encoding', () => {
    const ids = tok.encode('print(1)');
    expect(ids).not.toContain(1);
    expect(tok.decode([1, ...ids, 2])).toBe('print(1)');
  });
});

describe('StreamDecoder', () => {
  it('emits complete characters only and concatenates to the full decode', () => {
    for (const s of SAMPLES) {
      const ids = tok.encode(s);
      const dec = tok.streamDecoder();
      const parts: string[] = [];
      for (const id of ids) parts.push(dec.push([id]));
      parts.push(dec.flush());
      for (const p of parts) expect(p).not.toContain('\uFFFD');
      expect(parts.join('')).toBe(s);
      expect(dec.text).toBe(s);
    }
  });

  it('holds back a character split across byte-fallback pieces', () => {
    const ids = tok.encode('😀');
    expect(ids.length).toBeGreaterThan(1); // 4 byte pieces
    const dec = tok.streamDecoder();
    for (const id of ids.slice(0, -1)) expect(dec.push([id])).toBe('');
    expect(dec.push(ids.slice(-1))).toBe('😀');
  });

  it('works with several ids per push', () => {
    const s = SAMPLES[1];
    const ids = tok.encode(s);
    const dec = tok.streamDecoder();
    let out = '';
    for (let i = 0; i < ids.length; i += 3) out += dec.push(ids.slice(i, i + 3));
    expect(out + dec.flush()).toBe(s);
  });
});

describe('parity with the Python SentencePiece encoder', () => {
  it('encodes the fixture text to exactly the fixture ids and decodes it back', () => {
    const fx = JSON.parse(
      requireFile(join(FIXTURES, 'tokenizer.json'), 'training/make_fixtures.py (Python SentencePiece on held-out text)'),
    ) as { text: string; ids: number[] };
    const ids = tok.encode(fx.text);
    expect(ids.length).toBe(fx.ids.length);
    const firstDiff = ids.findIndex((v, i) => v !== fx.ids[i]);
    expect(firstDiff, `first mismatch at token ${firstDiff}`).toBe(-1);
    expect(tok.decode(fx.ids)).toBe(fx.text);
  });
});
