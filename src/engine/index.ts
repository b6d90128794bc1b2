/**
 * Public API of the engine (plain TypeScript over onnxruntime-web; no Worker, Node or DOM APIs:
 * src/engine/tsconfig.json). Everything outside src/engine imports the engine from here, never
 * its inner files (test/engine/index.test.ts keeps it so).
 */
export type * from './types.js';

// Loading a model and generating
export { Engine, type DrafterFactory, type EngineOptions } from './engine.js';
export {
  DecodingSession,
  EngineError,
  type FinishReason,
  type GenerateEvent,
  type GenerateRequest,
  type SessionSnapshot,
  type Usage,
  newUsage,
} from './decoder.js';
export { DEFAULT_BUDGET, MAX_BUDGET, MAX_TOP_LOGPROBS } from './validate.js';
export { sameTokens } from './prefix-sync.js';
export type { EngineErrorCode, EngineErrorDetail } from './errors.js';
export { TextTokenizer, StreamDecoder } from './tokenizer.js';
export { ShardError, MANIFEST_PATH, loadArtifact, loadManifest, memoryShardSource, sha256Hex, type ShardErrorReason } from './model-store.js';

// onnxruntime-web as the engine sets it up (hosts configure it before the first Engine.load)
export { ort, configureOrt, configureSessions, createSession, type OrtEnv, type OrtSession, type SessionOptionsFor } from './ort.js';

// The pieces, for benchmarks and experiments
export { KVCache, STATE_CHUNK_BYTES, type KVShape } from './kv-cache.js';
export { LanguageModel, tailBlock, type ForwardResult } from './language-model.js';
export {
  buildTree,
  childrenOf,
  pathTo,
  pathTokens,
  validateTree,
  treeMask,
  causalMask,
  treePositions,
  cutDepth,
  cutBudget,
  chainTree,
  treeFromSequences,
  costCut,
  type WeightedSequence,
  type WeightedTree,
} from './tree.js';
export { Rng, argmax, targetDistribution, sampleFrom, sampleToken, isGreedy, type TokenLogprob } from './sampling.js';
export { accept, acceptGreedy, acceptSampling, type Acceptance } from './acceptance.js';
export { CTCPrefixBeamSearch, ctcCollapse, type CTCBeamOptions, type CTCCandidate } from './ctc-decode.js';

// Drafters: every one, their factories for an Engine, and the Medusa tree builder
export * from './drafters/index.js';
export { headTopM, medusaTree, type HeadTopM, type MedusaTreeOptions } from './drafters/medusa-tree.js';
