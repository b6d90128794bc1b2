/**
 * The base model over one ORT session. One `forward` = one `session.run()` (fixed cost ~1.2 ms,
 * DESIGN §5), so callers batch: the prompt in one prefill, a whole token tree in one verify.
 *
 * Graph (batch 1; S new tokens, P cached, V vocab, d width, L layers, H heads, D head dim):
 *   in:  input_ids int64 [1,S], position_ids int64 [1,S], attention_mask float32 [1,1,S,P+S]
 *        (additive), past_key_i / past_value_i float32 [1,H,P,D] (P may be 0)
 *   out: logits [1,S,V], hidden [1,S,d] (after the final norm), present_key_i / present_value_i
 *        [1,H,P+S,D] (past + new, in input order)
 */
import type { ModelConfig, TokenTree } from './types.js';
import { KVCache } from './kv-cache.js';
import { causalMask, treeMask, treePositions } from './tree.js';
import { createSession, ort, type OrtSession } from './ort.js';

export interface ForwardResult {
  /** [S * V], row i = next-token logits after new token i. */
  logits: Float32Array;
  /** [S * d], row i = last hidden state (after the final norm) at new token i. */
  hidden: Float32Array;
}

export class LanguageModel {
  readonly config: ModelConfig;
  private readonly session: OrtSession;
  /** session.run() calls so far (for benchmarks). */
  runs = 0;
  /** Serialises forward passes: sessions of one engine may interleave (several Durable Objects
   *  in one isolate), and a cache must not be read while another pass appends to it. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(session: OrtSession, config: ModelConfig) {
    this.session = session;
    this.config = config;
    const need = ['input_ids', 'position_ids', 'attention_mask', 'past_key_0', 'past_value_0'];
    for (const n of need) {
      if (!session.inputNames.includes(n)) throw new Error(`base model: missing input ${n} (has ${session.inputNames.join(', ')})`);
    }
    for (const n of ['logits', 'hidden', 'present_key_0', 'present_value_0']) {
      if (!session.outputNames.includes(n)) throw new Error(`base model: missing output ${n}`);
    }
  }

  static async create(bytes: Uint8Array, config: ModelConfig): Promise<LanguageModel> {
    return new LanguageModel(await createSession(bytes), config);
  }

  newCache(): KVCache {
    return new KVCache({ layers: this.config.n_layers, heads: this.config.n_heads, headDim: this.config.head_dim });
  }

  /**
   * Runs S new tokens against the cache and appends their K/V to it (all S of them; a tree
   * verify is compacted afterwards with cache.keep). mask: additive [S * (P + S)], row-major.
   */
  forward(
    tokenIds: readonly number[],
    positionIds: readonly number[],
    mask: Float32Array,
    cache: KVCache,
  ): Promise<ForwardResult> {
    const run = this.queue.then(() => this.forwardNow(tokenIds, positionIds, mask, cache));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async forwardNow(
    tokenIds: readonly number[],
    positionIds: readonly number[],
    mask: Float32Array,
    cache: KVCache,
  ): Promise<ForwardResult> {
    const S = tokenIds.length;
    const P = cache.length;
    const { n_layers: L, n_heads: H, head_dim: D, vocab_size: V, d_model: d } = this.config;
    if (S === 0) return { logits: new Float32Array(0), hidden: new Float32Array(0) };
    if (positionIds.length !== S || mask.length !== S * (P + S)) throw new Error('forward: shape mismatch');
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokenIds, BigInt), [1, S]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(positionIds, BigInt), [1, S]),
      attention_mask: new ort.Tensor('float32', mask, [1, 1, S, P + S]),
    };
    for (let l = 0; l < L; l++) {
      const [k, v] = cache.past(l);
      feeds[`past_key_${l}`] = new ort.Tensor('float32', k, [1, H, P, D]);
      feeds[`past_value_${l}`] = new ort.Tensor('float32', v, [1, H, P, D]);
    }
    this.runs++;
    const out = await this.session.run(feeds);
    const logits = out.logits.data as Float32Array;
    const hidden = out.hidden.data as Float32Array;
    if (logits.length !== S * V || hidden.length !== S * d) throw new Error('forward: unexpected output shape');
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let l = 0; l < L; l++) {
      keys.push(out[`present_key_${l}`].data as Float32Array);
      values.push(out[`present_value_${l}`].data as Float32Array);
    }
    cache.append(keys, values, P);
    // CPU outputs are already copied out of the wasm heap (ORT frees its side during run());
    // dispose anything else the graph returned so nothing lingers.
    for (const [name, t] of Object.entries(out)) {
      if (name !== 'logits' && name !== 'hidden' && !name.startsWith('present_')) t.dispose();
    }
    return { logits, hidden };
  }

  /** Tokens after the cache with a causal mask (positions P..P+S-1). */
  prefill(tokens: readonly number[], cache: KVCache): Promise<ForwardResult> {
    const P = cache.length;
    return this.forward(
      tokens,
      tokens.map((_, i) => P + i),
      causalMask(tokens.length, P),
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
  verifyTree(tree: TokenTree, cache: KVCache): Promise<ForwardResult> {
    const P = cache.length;
    return this.forward(tree.tokens, treePositions(tree, P), treeMask(tree, P), cache);
  }
}
