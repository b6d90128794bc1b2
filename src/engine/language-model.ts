/**
 * The base model over one ORT session. One `forward` = one `session.run()` (a fixed cost of about
 * a millisecond in onnxruntime-web), so callers batch: the prompt in one prefill, a whole token
 * tree in one verify.
 *
 * Graph, KV interface 2 (batch 1; S new tokens, P cached, V vocab, d width, L layers, H heads,
 * D head dim):
 *   in:  input_ids int64 [1,S], position_ids int64 [1,S], and the cache in panels of B positions
 *        (P = F*B + Pt): past_key_i / past_value_i float32 [F,H,B,D] (the full panels of layer
 *        i), past_tail [2L,H,Pt,D] (every layer's K and V rows of the partial last panel, in
 *        new_kv's order); over the "tail block" (those Pt positions, then the S new rows):
 *        attention_mask float32 [1,1,S,Pt+S] (additive) and tail_groups float32 [G,1,Pt+S]
 *        (1 where a column's position lies in panel F+g: the graph sums attention per position
 *        panel, and a tree node's row is not its position)
 *   out: logits [1,S,V], hidden [1,S,d] (after the final norm), new_kv [2L,H,S,D] (the new
 *        tokens' K and V only; the cache appends them)
 * The graph computes every row exactly as it would alone: a token verified inside a tree or a
 * prefill chunk gets the same bits as the same token decoded by itself (see export_onnx.py).
 */
import type { ExtraPass, ModelConfig, TokenTree } from './types.js';
import { KVBufferPool, KVCache } from './kv-cache.js';
import { causalMask, treeMask, treePositions } from './tree.js';
import { createSession, ort, type OrtSession } from './ort.js';

/** Columns of the tail block at most (export_onnx.py MAX_TAIL_ROWS). */
const MAX_TAIL_ROWS = 256;
/** Longest prefill run: with up to panel - 1 tail positions it stays inside the tail block. */
const PREFILL_PIECE = 128;

/**
 * The graph's inputs over the tail block (the Pt = P mod B cached positions of the partial last
 * panel, then the S new rows): the additive mask [S, Pt+S] (cached columns visible, the new ones as
 * `mask` [S, S] says) and tail_groups [G, Pt+S], 1 where a column's position lies in panel F + g.
 * positionIds must all be >= P (checked by the caller).
 */
export function tailBlock(positionIds: readonly number[], mask: Float32Array, P: number, B: number): { mask: Float32Array; groups: Float32Array; G: number } {
  const S = positionIds.length;
  const F = Math.floor(P / B);
  const Pt = P - F * B;
  const R = Pt + S;
  const tailMask = new Float32Array(S * R);
  for (let i = 0; i < S; i++) tailMask.set(mask.subarray(i * S, (i + 1) * S), i * R + Pt);
  const G = Math.floor(Math.max(...positionIds) / B) - F + 1;
  const groups = new Float32Array(G * R);
  for (let c = 0; c < R; c++) groups[(c < Pt ? 0 : Math.floor(positionIds[c - Pt] / B) - F) * R + c] = 1;
  return { mask: tailMask, groups, G };
}

export interface ForwardResult {
  /** [S * V], row i = next-token logits after new token i. */
  logits: Float32Array;
  /** [S * d], row i = last hidden state (after the final norm) at new token i. */
  hidden: Float32Array;
  /** The `via` graph's extra outputs (ExtraPass.outputs), when the pass ran on one. */
  extra?: Record<string, ort.Tensor>;
}

export class LanguageModel {
  readonly config: ModelConfig;
  private readonly session: OrtSession;
  /** Serialises forward passes: sessions of one engine may interleave (several Durable Objects
   *  in one isolate), and a cache must not be read while another pass appends to it. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Staging for the packed cache tails (see KVCache.feed); reused across runs. */
  private stage = new Float32Array(0);

  constructor(session: OrtSession, config: ModelConfig) {
    this.session = session;
    this.config = config;
    this.kvPool = new KVBufferPool(2 * config.max_seq_len * config.n_layers * 2 * config.n_heads * config.head_dim * 4);
    if (!Number.isInteger(config.kv_panel)) throw new Error('base model: the manifest config has no kv_panel (re-export with training/export_onnx.py and training/shard.py)');
    const need = ['input_ids', 'position_ids', 'attention_mask', 'past_key_0', 'past_value_0', 'past_tail', 'tail_groups'];
    for (const n of need) {
      if (!session.inputNames.includes(n)) throw new Error(`base model: missing input ${n} (has ${session.inputNames.join(', ')})`);
    }
    if (session.outputNames.includes('present_key_0')) {
      throw new Error('base model: this graph returns the whole cache (present_*, KV interface 1); re-export it with training/export_onnx.py');
    }
    for (const n of ['logits', 'hidden', 'new_kv']) {
      if (!session.outputNames.includes(n)) throw new Error(`base model: missing output ${n}`);
    }
  }

  static async create(bytes: Uint8Array, config: ModelConfig): Promise<LanguageModel> {
    return new LanguageModel(await createSession(bytes), config);
  }

  /** Buffers of released caches, for the next ones (room for two full-context caches). */
  readonly kvPool: KVBufferPool;

  newCache(): KVCache {
    return new KVCache({ layers: this.config.n_layers, heads: this.config.n_heads, headDim: this.config.head_dim, panel: this.config.kv_panel }, this.kvPool);
  }

  /**
   * Runs S new tokens against the cache and appends their K/V to it (all S of them; a tree
   * verify is compacted afterwards with cache.keep). mask: additive [S * S], row-major, among the
   * new tokens (the P cached positions are always visible).
   */
  forward(
    tokenIds: readonly number[],
    positionIds: readonly number[],
    mask: Float32Array,
    cache: KVCache,
    via?: ExtraPass,
  ): Promise<ForwardResult> {
    const run = this.queue.then(() => this.forwardNow(tokenIds, positionIds, mask, cache, via));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async forwardNow(
    tokenIds: readonly number[],
    positionIds: readonly number[],
    mask: Float32Array,
    cache: KVCache,
    via?: ExtraPass,
  ): Promise<ForwardResult> {
    const S = tokenIds.length;
    const P = cache.length;
    const { n_layers: L, n_heads: H, head_dim: D, vocab_size: V, d_model: d } = this.config;
    if (S === 0) return { logits: new Float32Array(0), hidden: new Float32Array(0) };
    if (positionIds.length !== S || mask.length !== S * S) throw new Error('forward: shape mismatch');
    const B = this.config.kv_panel;
    const F = Math.floor(P / B);
    const Pt = P - F * B;
    const R = Pt + S;
    let maxPos = -1;
    for (const p of positionIds) {
      if (!(Number.isInteger(p) && p >= P)) throw new Error(`forward: position ${p} precedes the ${P} cached positions`);
      maxPos = Math.max(maxPos, p);
    }
    if (maxPos >= this.config.max_seq_len) throw new Error(`forward: position ${maxPos} is outside the model's ${this.config.max_seq_len}`);
    if (R > MAX_TAIL_ROWS) throw new Error(`forward: ${S} new tokens after ${Pt} tail positions exceed the graph's ${MAX_TAIL_ROWS}-column tail block`);
    const tb = tailBlock(positionIds, mask, P, B);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokenIds, BigInt), [1, S]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(positionIds, BigInt), [1, S]),
      attention_mask: new ort.Tensor('float32', tb.mask, [1, 1, S, R]),
      tail_groups: new ort.Tensor('float32', tb.groups, [tb.G, 1, R]),
    };
    if (this.stage.length < 2 * L * H * B * D) this.stage = new Float32Array(2 * L * H * B * D);
    const past = cache.feed(this.stage);
    feeds.past_tail = new ort.Tensor('float32', past.tails, [2 * L, H, past.tail, D]);
    for (let l = 0; l < L; l++) {
      feeds[`past_key_${l}`] = new ort.Tensor('float32', past.full[2 * l], [past.panels, H, B, D]);
      feeds[`past_value_${l}`] = new ort.Tensor('float32', past.full[2 * l + 1], [past.panels, H, B, D]);
    }
    const out = await (via ? via.session.run({ ...feeds, ...via.feeds }) : this.session.run(feeds));
    const logits = out.logits.data as Float32Array;
    const hidden = out.hidden.data as Float32Array;
    if (logits.length !== S * V || hidden.length !== S * d) throw new Error('forward: unexpected output shape');
    cache.append(out.new_kv.data as Float32Array, S);
    // CPU outputs are already copied out of the wasm heap (ORT frees its side during run());
    // dispose anything else the graph returned so nothing lingers.
    const extra: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(out)) {
      if (via?.outputs.includes(name)) extra[name] = t;
      else if (name !== 'logits' && name !== 'hidden') t.dispose();
    }
    return via ? { logits, hidden, extra } : { logits, hidden };
  }

  /**
   * Tokens after the cache with a causal mask (positions P..P+S-1). Long inputs run in pieces of
   * at most PREFILL_PIECE tokens (the graph's tail block is bounded); the rows concatenate.
   */
  async prefill(tokens: readonly number[], cache: KVCache): Promise<ForwardResult> {
    const { vocab_size: V, d_model: d } = this.config;
    if (tokens.length <= PREFILL_PIECE) return this.prefillPiece(tokens, cache);
    const logits = new Float32Array(tokens.length * V);
    const hidden = new Float32Array(tokens.length * d);
    for (let i = 0; i < tokens.length; i += PREFILL_PIECE) {
      const out = await this.prefillPiece(tokens.slice(i, i + PREFILL_PIECE), cache);
      logits.set(out.logits, i * V);
      hidden.set(out.hidden, i * d);
    }
    return { logits, hidden };
  }

  private prefillPiece(tokens: readonly number[], cache: KVCache): Promise<ForwardResult> {
    const P = cache.length;
    return this.forward(
      tokens,
      tokens.map((_, i) => P + i),
      causalMask(tokens.length),
      cache,
    );
  }

  decodeOne(token: number, cache: KVCache): Promise<ForwardResult> {
    return this.prefill([token], cache);
  }

  /**
   * One pass over a token tree: node i at position P + depth_i, attending to the P cached
   * positions plus its ancestors and itself. Appends all S nodes' K/V (compact with keep()).
   */
  verifyTree(tree: TokenTree, cache: KVCache, via?: ExtraPass): Promise<ForwardResult> {
    return this.forward(tree.tokens, treePositions(tree, cache.length), treeMask(tree), cache, via);
  }
}
