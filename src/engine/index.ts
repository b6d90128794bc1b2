/** Public API of the engine (plain TypeScript over onnxruntime-web; no Worker/Node/DOM APIs). */
export type * from './types.js';
export { Engine, type DrafterFactory, type EngineOptions } from './engine.js';
export {
  DecodingSession,
  EngineError,
  type FinishReason,
  type GenerateEvent,
  type GenerateRequest,
  type SessionSnapshot,
  type Usage,
} from './decoder.js';
export { TextTokenizer, StreamDecoder } from './tokenizer.js';
export { ShardError, loadArtifact, loadManifest, fetchShardSource, memoryShardSource, sha256Hex, type ShardErrorReason } from './model-store.js';
export { configureOrt, wasmHeapBytes, type OrtEnv } from './ort.js';
export { KVCache, type KVShape } from './kv-cache.js';
export { LanguageModel, type ForwardResult } from './language-model.js';
export { buildTree, childrenOf, pathTo, pathTokens, validateTree, treeMask, causalMask, treePositions, cutDepth, cutBudget, chainTree } from './tree.js';
export { Rng, argmax, targetDistribution, sampleFrom, sampleToken, isGreedy } from './sampling.js';
export { accept, acceptGreedy, acceptSampling, type Acceptance } from './acceptance.js';
export { PlainDrafter } from './drafters/plain.js';
