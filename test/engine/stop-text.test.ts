/**
 * Stop-text matching (src/engine/stop-text.ts): stop strings across token boundaries, the held-back
 * suffix, several stops, flush at the end, the continuation carry, and unicode through the real
 * detokenizer (a character split over byte-fallback pieces).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { StopText, firstStop, heldSuffix, type TextStream } from '../../src/engine/stop-text.js';
import type { TextTokenizer } from '../../src/engine/tokenizer.js';
import { loadTestTokenizer } from './helpers.js';

/** A detokenizer over a table of pieces: token i decodes to pieces[i]. */
function pieces(table: string[]): TextStream {
  return { push: (ids) => ids.map((i) => table[i]).join(''), flush: () => '' };
}

/** Pushes every token; returns the released pieces, the index of the token that hit a stop (-1), and the flush. */
function run(st: StopText, tokens: number[]): { released: string[]; stopAt: number; flushed: string } {
  const released: string[] = [];
  let stopAt = -1;
  for (const [i, t] of tokens.entries()) {
    released.push(st.push(t));
    if (st.stopHit) {
      stopAt = i;
      break;
    }
  }
  return { released, stopAt, flushed: st.flush() };
}

describe('StopText', () => {
  const table = ['Hello', ' wor', 'ld', '\n', '\n\n', 'END', 'E', 'ND', 'x'];

  it('without stop strings releases every piece as it comes', () => {
    const r = run(new StopText(pieces(table)), [0, 1, 2, 3]);
    expect(r.released).toEqual(['Hello', ' wor', 'ld', '\n']);
    expect(r.stopAt).toBe(-1);
    expect(r.flushed).toBe('');
  });

  it('a stop string split across tokens: text ends before it, the token that completes it is the last', () => {
    const st = new StopText(pieces(table), ['world']);
    const r = run(st, [0, 1, 2, 3]);
    expect(r.released).toEqual(['Hello', ' ', '']); // " wor": "wor" could begin "world", so only " " is released
    expect(r.stopAt).toBe(2);
    expect(r.flushed).toBe(''); // nothing after a stop string, not even what was held
    expect(st.push(3)).toBe('');
  });

  it('a partial match is held back, then released when it cannot complete', () => {
    const st = new StopText(pieces(table), ['\n\n\n']);
    expect(st.push(3)).toBe(''); // "\n"
    expect(st.heldText).toBe('\n');
    expect(st.push(8)).toBe('\nx'); // "\nx" cannot begin "\n\n\n"
    expect(st.heldText).toBe('');
    expect(st.push(4)).toBe(''); // "\n\n" held
    expect(st.push(4)).toBe(''); // "\n\n\n\n": the stop at 0
    expect(st.stopHit).toBe(true);
  });

  it('holds only the longest suffix that begins a stop string', () => {
    const st = new StopText(pieces(['abcab']), ['abd', 'bcx']);
    expect(st.push(0)).toBe('abc'); // "ab" begins "abd"
    expect(st.heldText).toBe('ab');
  });

  it('several stops: the earliest occurrence wins, whatever their order', () => {
    const r = run(new StopText(pieces(['one two three'])), [0]);
    expect(r.released).toEqual(['one two three']);
    const a = run(new StopText(pieces(['one two three']), ['three', 'two']), [0]);
    expect(a.released).toEqual(['one ']);
    const b = run(new StopText(pieces(['one two three']), ['two', 'three', 'zzz']), [0]);
    expect(b.released).toEqual(['one ']);
  });

  it('a stop inside one piece, and a stop completed by a later one-character piece', () => {
    expect(run(new StopText(pieces(table), ['END']), [0, 5]).released).toEqual(['Hello', '']);
    const r = run(new StopText(pieces(table), ['END']), [0, 6, 7, 8]);
    expect(r.released).toEqual(['Hello', '', '']);
    expect(r.stopAt).toBe(2);
  });

  it('flush at the end releases the held text', () => {
    const r = run(new StopText(pieces(table), ['ENDX']), [0, 5]);
    expect(r.released).toEqual(['Hello', '']);
    expect(r.flushed).toBe('END');
    const st = new StopText(pieces(table), ['ENDX']);
    st.push(5);
    expect(st.heldText).toBe('END');
    expect(st.flush()).toBe('END');
    expect(st.heldText).toBe('');
  });

  it('ignores empty stop strings', () => {
    const r = run(new StopText(pieces(table), ['', 'zzz']), [0, 1]);
    expect(r.released).toEqual(['Hello', ' wor']);
    expect(r.stopAt).toBe(-1);
  });

  it('continueWith carries the held text into the next request, with its own stop strings', () => {
    const st = new StopText(pieces(table), ['\n\n\n']);
    st.push(0);
    expect(st.push(4)).toBe(''); // "\n\n" held
    const next = st.continueWith(['\n\n\n']);
    expect(next.heldText).toBe('\n\n');
    expect(next.push(3)).toBe(''); // the stop spans the two requests
    expect(next.stopHit).toBe(true);
    const other = st.continueWith([]);
    expect(other.push(8)).toBe('\n\nx'); // no stop strings any more: everything is released
  });
});

describe('firstStop / heldSuffix', () => {
  it('find the earliest stop and the longest proper prefix at the end', () => {
    expect(firstStop('abcabc', ['ca', 'bc'])).toBe(1);
    expect(firstStop('abc', ['x'])).toBe(-1);
    expect(heldSuffix('xxab', ['abc'])).toBe(2);
    expect(heldSuffix('xxabc', ['abc'])).toBe(0); // a whole stop is not a proper prefix
    expect(heldSuffix('aaa', ['aaab', 'ab'])).toBe(3);
    expect(heldSuffix('', ['ab'])).toBe(0);
  });
});

describe('StopText over the real detokenizer (unicode)', () => {
  let tok: TextTokenizer;
  beforeAll(async () => {
    ({ tok } = await loadTestTokenizer());
  });

  /** All text released for `text` encoded, and the flush. */
  function released(text: string, stops: string[]): { out: string; stopped: boolean } {
    const st = new StopText(tok.streamDecoder(), stops);
    let out = '';
    for (const id of tok.encode(text)) {
      out += st.push(id);
      if (st.stopHit) return { out, stopped: true };
    }
    return { out: out + st.flush(), stopped: false };
  }

  it('a stop string made of a character split over byte pieces', () => {
    expect(tok.encode('😀').length).toBeGreaterThan(1);
    expect(released('ok 😀 done', ['😀'])).toEqual({ out: 'ok ', stopped: true });
    expect(released('日本語の文', ['語の'])).toEqual({ out: '日本', stopped: true });
  });

  it('text with multi-byte characters before a stop, and none released half', () => {
    expect(released('héllo wörld 😀x = 1', ['x ='])).toEqual({ out: 'héllo wörld 😀', stopped: true });
    const st = new StopText(tok.streamDecoder(), ['zzz']);
    const parts = tok.encode('a 😀 b').map((id) => st.push(id));
    parts.push(st.flush());
    for (const p of parts) expect(p).not.toContain('\uFFFD');
    expect(parts.join('')).toBe('a 😀 b');
  });

  it('no stop: the released text is the full decode, whatever the stop candidates held', () => {
    const s = "def f(x):\n    return x  # ünïcödé ✓\n\n";
    expect(released(s, ['\n\n\n', 'return y'])).toEqual({ out: s, stopped: false });
  });
});
