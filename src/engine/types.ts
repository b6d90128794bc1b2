/**
 * Contracts shared by the engine, the drafters, the serving layer and the benchmark.
 * The engine is plain TypeScript over onnxruntime-web: no Worker, Node or DOM APIs here.
 *
 * Shapes: V vocab, d model width, L layers, H heads, D head dim, P cached tokens, S new tokens.
 */
import type { ort, OrtSession } from './ort.js';
import type { Rng } from './sampling.js';

/** `model-shards/<name>/manifest.json` (format 1). */
export interface Manifest {
  format: 1;
  name: string;
  created: string;
  config: ModelConfig;
  /** Named artifacts: "base", "tokenizer", and optional draft heads ("ctc_head", "medusa_head"),
   *  their fused verify graphs ("ctc_fused", "medusa_fused") and the
   *  browser's WebGPU base ("base_webgpu"). */
  files: Record<string, ManifestFile>;
  /** Facts measured at export time (held-out loss etc.), informational. */
  metrics?: Record<string, number>;
}

export interface ManifestFile {
  /** Total bytes and sha256 (hex) of the reassembled file. */
  bytes: number;
  sha256: string;
  /** The file is the concatenation of these shards, in order. */
  shards: ShardInfo[];
  /** Artifact-specific settings (a draft head: k, slots, blank_id, which the engine reads, and use_token,
   *  a record of its training; a fused graph: the sha256 of the base and head files it was built from). */
  config?: Record<string, unknown>;
}

export interface ShardInfo {
  /** Path relative to the model folder, e.g. "base.onnx.000". */
  path: string;
  bytes: number;
  sha256: string;
}

export interface ModelConfig {
  vocab_size: number;
  d_model: number;
  n_layers: number;
  n_heads: number;
  head_dim: number;
  ffn_hidden: number;
  max_seq_len: number;
  /** Positions per KV-cache panel: the base graph sums attention panel by panel and takes the
   *  cache's full panels as one tensor (KV interface 2). */
  kv_panel: number;
  /** `<s>`: starts a prompt, and separates documents in the training corpus. */
  bos_id: number;
  /** The tokenizer's `</s>`. A completion ends on either. */
  eos_id: number;
}

/** Where shards come from: R2 in a Worker, the filesystem in Node, fetch() in a browser. */
export interface ShardSource {
  /** Bytes of `<model>/<path>`, or null when absent. */
  get(path: string): Promise<Uint8Array | null>;
}

/**
 * A candidate token tree to verify, in topological order (parents before children).
 * Node 0 is the root: the pending token (already chosen from the base model's last logits but
 * not yet in the KV cache). parent[0] = -1. depth[0] = 0. Siblings have distinct tokens.
 */
export interface TokenTree {
  tokens: number[];
  parents: number[];
  depths: number[];
  /**
   * Sampled drafts (T > 0): proposals[i] = the distribution q [V] (over token ids, sums to 1) node
   * i's token was drawn from, as it was before the drafter removed the tokens of every sibling before
   * node i (in array order) and renormalised the rest (sampling without replacement, sampleProposal). undefined (or no array): a deterministic node,
   * a point mass. The verifier (acceptance.ts) needs q to stay lossless; cuts keep a prefix of every
   * sibling list, so a kept node's earlier siblings are kept too.
   */
  proposals?: (Float64Array | undefined)[];
}

/** What a drafter sees at the start of a round. */
export interface DraftContext {
  /** All tokens so far, including the pending root token as the last element. */
  tokens: readonly number[];
  /** Base model's last hidden state [d] at the position before the pending token. */
  hidden: Float32Array;
  /** Base hidden rows [n, d] of positions hiddenRowsFrom .. hiddenRowsFrom + n - 1 (up to
   *  tokens.length - 2; a session restored from a snapshot starts its window at the restore point);
   *  prefix-attending heads read these. Optional for callers. */
  hiddenRows?: Float32Array;
  hiddenRowsFrom?: number;
  /** The pending root token (= tokens[tokens.length - 1]). */
  pending: number;
  /** Max nodes in the tree, root included. */
  budget: number;
  /** The request's target parameters: at temperature > 0 a drafter with a distribution may sample its
   *  drafts (TokenTree.proposals) with `rng`, the round's generator. Absent: draft deterministically. */
  sampling?: SamplingParams;
  rng?: Rng;
}

/** Proposes a candidate tree for one round. All drafters share this interface. */
export interface Drafter {
  readonly name: string;
  /** Returns a tree rooted at ctx.pending with at most ctx.budget nodes. */
  draft(ctx: DraftContext): Promise<TokenTree>;
  /**
   * Optional: a draft head fused into the verify pass (greedy rounds only). Given the committed
   * tokens (the pending one last) and this round's tree, the graph and feeds to verify it with, or
   * undefined to verify on the base graph; after acceptance the round hands the outputs back.
   */
  fusedPass?(tokens: readonly number[], tree: TokenTree): FusedPass | undefined;
}

/**
 * A pass on another graph that contains the base graph unchanged (same nodes and weights, so the
 * same logits, hidden rows and K/V bit for bit) plus more: a draft head fused into the verify pass
 * (training/fuse_head.py). The base feeds are built as usual; `feeds` adds the graph's own inputs,
 * and the named `outputs` come back in ForwardResult.extra (language-model.ts).
 */
export interface ExtraPass {
  session: OrtSession;
  feeds: Record<string, ort.Tensor>;
  outputs: readonly string[];
}

/** A verify pass on a graph with a draft head fused in, and what to do with the head's outputs. */
export interface FusedPass extends ExtraPass {
  /**
   * After acceptance: `extra` = the graph's extra outputs, `path` = accepted node ids (root first),
   * `emitted` = the tokens the round emitted (path tokens after the root, then the bonus; possibly
   * cut short by a stop). The head keeps what agrees with them.
   */
  absorb(extra: Record<string, ort.Tensor>, path: readonly number[], emitted: readonly number[]): void;
}

/** Parameters of the target distribution (identical for plain and speculative decoding). */
export interface SamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  topP: number;
  /** 0 disables top-k. */
  topK: number;
  seed: number;
  /** Subtracted from a token's logit once per time it was generated in this request (OpenAI's
   *  frequency_penalty, [-2, 2]; default 0). */
  frequencyPenalty?: number;
  /** Subtracted from a token's logit if it was generated in this request (presence_penalty, [-2, 2]). */
  presencePenalty?: number;
  /** CTRL / Hugging Face repetition penalty over the prompt and the generated tokens: a seen token's
   *  positive logit is divided by it, a negative one multiplied (> 0; default 1 = off). */
  repetitionPenalty?: number;
  /** Added to the logits of these token ids (OpenAI's logit_bias, [-100, 100]). */
  logitBias?: Record<number, number>;
}

/** Per-round statistics surfaced to usage and the benchmark. */
export interface RoundStats {
  treeSize: number;
  /** Draft tokens accepted this round (excludes root/bonus). */
  accepted: number;
  /** Draft tokens proposed on the accepted-or-rejected frontier (treeSize - 1). */
  proposed: number;
  /** The round's steps (round.ts): draft; verify = the base model's pass only; accept; commit =
   *  emit (detokenizing, stop strings) + commit (KV keep, hidden rows, tokens). */
  draftMs: number;
  verifyMs: number;
  acceptMs: number;
  commitMs: number;
}
