/**
 * The steps of one draft-verify round (src/engine/round.ts) on small hand-made inputs; the
 * rounds over the real model are decoder.test.ts and the drafter parity tests.
 */
import { describe, expect, it } from 'vitest';
import { KVCache } from '../../src/engine/kv-cache.js';
import { acceptPath, commitPath, draftTree, emitTokens } from '../../src/engine/round.js';
import { Rng } from '../../src/engine/sampling.js';
import { SessionState } from '../../src/engine/session-state.js';
import { StopText, type TextStream } from '../../src/engine/stop-text.js';
import { buildTree, validateTree } from '../../src/engine/tree.js';
import type { DraftContext, Drafter, TokenTree } from '../../src/engine/types.js';

const GREEDY = { temperature: 0, topP: 1, topK: 0, seed: 0 };
/** Token t decodes to the letter 'a' + t. */
const letters: TextStream = { push: (ids) => ids.map((t) => String.fromCharCode(97 + t)).join(''), flush: () => '' };

/** A state of `tokens` whose cache holds tokens.length - 1 positions (1 layer, 1 head, width 2). */
function stateOf(tokens: number[], d = 3): SessionState {
  const kv = new KVCache({ layers: 1, heads: 1, headDim: 2, panel: 4 });
  const s = new SessionState(kv, d, 64);
  s.tokens = [...tokens];
  const P = tokens.length - 1;
  kv.reserve(P + 16);
  kv.append(Float32Array.from({ length: 2 * P * 2 }, (_, i) => i), P);
  return s;
}

describe('draftTree', () => {
  it('hands the drafter the pending token and the context, checks its tree and cuts it to budget and depth', async () => {
    let seen: DraftContext | undefined;
    const drafter: Drafter = {
      name: 'fixed',
      draft: async (ctx) => {
        seen = ctx;
        return buildTree(ctx.pending, [[1, 2, 3, 4], [5, 6]], 100);
      },
    };
    const s = stateOf([9, 8, 7]);
    const t = await draftTree(s, drafter, 5, 2);
    expect(seen!.pending).toBe(7);
    expect(seen!.tokens).toEqual([9, 8, 7]);
    expect(seen!.budget).toBe(5);
    expect(seen!.hidden).toEqual(new Float32Array(3)); // no hidden row known: zeros [d]
    validateTree(t, 7);
    expect(t.tokens).toEqual([7, 1, 2]); // first 5 nodes [7,1,2,3,4], then depth <= 2
    const bad: Drafter = { name: 'bad', draft: async () => ({ tokens: [1], parents: [-1], depths: [0] }) };
    await expect(draftTree(s, bad, 5, 2)).rejects.toThrow(/root/);
  });
});

describe('acceptPath', () => {
  it('greedy: the accepted path, root first, and its tokens after the root plus the bonus', () => {
    const V = 6;
    const tree: TokenTree = buildTree(0, [[1, 2], [3]], 16); // nodes: 0, 1(1), 2(2), 3(3)
    const logits = new Float32Array(tree.tokens.length * V);
    const peak = (row: number, tok: number) => (logits[row * V + tok] = 5);
    peak(0, 1); // root predicts 1: node 1 accepted
    peak(1, 4); // node 1 predicts 4: no child has it, bonus 4
    peak(2, 0);
    peak(3, 0);
    expect(acceptPath(tree, logits, V, GREEDY, Rng.fromSeed(1))).toEqual({ path: [0, 1], candidates: [1, 4] });
  });
});

describe('emitTokens', () => {
  const none = new Set<number>();

  it('emits every candidate when nothing stops it', () => {
    expect(emitTokens([0, 1, 2], none, new StopText(letters), 10)).toEqual({ tokens: [0, 1, 2], text: 'abc', stopped: false });
  });

  it('ends after a stop token: emitted, without text', () => {
    expect(emitTokens([0, 25, 2], new Set([25]), new StopText(letters), 10)).toEqual({ tokens: [0, 25], text: 'a', stopped: true });
  });

  it('ends at the token that completes a stop string', () => {
    expect(emitTokens([0, 1, 2, 3], none, new StopText(letters, ['bc']), 10)).toEqual({ tokens: [0, 1, 2], text: 'a', stopped: true });
  });

  it('ends at the token limit, holding a possible stop start', () => {
    const st = new StopText(letters, ['cd']);
    expect(emitTokens([0, 1, 2, 3], none, st, 3)).toEqual({ tokens: [0, 1, 2], text: 'ab', stopped: false });
    expect(st.heldText).toBe('c');
  });
});

describe('commitPath', () => {
  it('keeps the accepted path in the cache, takes its last hidden row and commits the emitted tokens', () => {
    const s = stateOf([9, 8, 7]); // P = 2
    const P = s.kv.length;
    const S = 4;
    s.kv.append(Float32Array.from({ length: 2 * S * 2 }, (_, i) => 100 + i), S); // the verify pass's rows
    const d = 3;
    const hidden = Float32Array.from({ length: S * d }, (_, i) => i); // row i = [3i, 3i+1, 3i+2]
    commitPath(s, P, hidden, [0, 2, 3], [5, 6]); // 2 emitted: nodes 0 and 2 kept
    expect(s.kv.length).toBe(P + 2);
    expect(s.tokens).toEqual([9, 8, 7, 5, 6]);
    expect(Array.from(s.hidden!)).toEqual([6, 7, 8]); // node 2's row
    expect(s.rows.from).toBe(P);
    expect(s.rows.end).toBe(P + 2);
    expect(Array.from(s.rows.window(P + 2))).toEqual([0, 1, 2, 6, 7, 8]);
    expect(s.kv.length).toBe(s.tokens.length - 1); // the invariant: all but the pending token
  });
});
