/**
 * The engine in the browser: the same src/engine (tokenizer, model store, LanguageModel, drafters, tree
 * verification) over onnxruntime-web, loading the same manifest and shards over fetch() with every shard's
 * sha256 checked and verified shards kept in the Cache API (./shard-cache.ts).
 *
 * scripts/build-browser.ts bundles this file twice:
 *   build/engine-wasm.js    onnxruntime-web's `/wasm` entry (plain SIMD wasm, 14.2 MB): every browser
 *                           with WebAssembly SIMD; the base model is the row-wise int8 graph (`base`),
 *                           the same numbers as the Worker and Node.
 *   build/engine-webgpu.js  the `/jspi` entry (16.8 MB wasm, WebGPU EP; needs JSPI: Chromium 137+). With
 *                           provider webgpu the base model is its WebGPU variant (`base_webgpu`: fp32
 *                           graph, fp16 weights) on the GPU and the draft heads stay on wasm (they only
 *                           propose); with provider wasm it runs like the wasm bundle.
 * ./provider.ts tells which one to import without loading either.
 */
import { Engine, configureOrt, configureSessions, defaultDrafter, ort, sha256Hex, registerDrafters, type GenerateEvent, type Usage, type Manifest } from '../engine/index.js';
import { wasmHeapBytes, watchWasmHeap } from '../wasm-heap.js';
import { cachedFetchSource, withBaseFile, type ShardCacheStats } from './shard-cache.js';
import { resolveProvider, type Provider, type ProviderChoice, type ProviderInfo } from './provider.js';

export { clearShardCache, cachedFetchSource, withBaseFile, CACHE_NAME } from './shard-cache.js';
export { detectProvider, resolveProvider, hasJspi, type Provider, type ProviderChoice, type ProviderInfo } from './provider.js';
export { Engine };

/** Which onnxruntime-web entry this bundle carries (set by the build). */
declare const __ORT_BUILD__: 'webgpu' | 'wasm';
export const ORT_BUILD: 'webgpu' | 'wasm' = typeof __ORT_BUILD__ === 'string' ? __ORT_BUILD__ : 'wasm';

/** The manifest entry of the base model's WebGPU variant (training/export_webgpu.py, training/shard.py). */
export const WEBGPU_BASE_FILE = 'base_webgpu';

export interface BrowserEngineOptions {
  /** The model folder: manifest.json and its shards (the Worker serves them at /v1/models/<name>/files/). */
  modelUrl: string;
  /** Headers of the model's requests (`authorization: Bearer <key>` for the Worker's route). */
  headers?: Record<string, string>;
  /** Folder of onnxruntime-web's .wasm / .mjs files (default: ./ort/ next to this bundle). */
  ortUrl?: string;
  /** Execution provider: `auto` (default) is WebGPU where this bundle and the browser can, else wasm. */
  provider?: ProviderChoice;
  /** Cache API cache for verified shards (default ctc-edge-shards-v1); null: no cache. */
  cacheName?: string | null;
  /** onnxruntime's verbose log on the console (node placement per provider). */
  verbose?: boolean;
  onShard?: (path: string, from: 'cache' | 'network', bytes: number) => void;
  /** onnxruntime's graph optimisation level for the WebGPU base session (default: GPU_GRAPH_OPTIMIZATION). */
  gpuGraphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface BrowserEngine {
  engine: Engine;
  provider: Provider;
  /** The manifest entry the base model was loaded from (`base` or `base_webgpu`). */
  baseFile: string;
  providerInfo: ProviderInfo;
  shards: ShardCacheStats;
  loadMs: number;
}

export const GPU_GRAPH_OPTIMIZATION = 'all';

let loaded: { provider: Provider; verbose: boolean } | null = null;

/** Loads the engine (once per page: onnxruntime initialises once, with one provider setup). */
export async function loadBrowserEngine(opts: BrowserEngineOptions): Promise<BrowserEngine> {
  const t0 = performance.now();
  const choice = opts.provider ?? 'auto';
  const { provider: detected, info } = await resolveProvider(choice === 'auto' && ORT_BUILD !== 'webgpu' ? 'wasm' : choice);
  if (detected === 'webgpu' && ORT_BUILD !== 'webgpu') throw new Error('this bundle (engine-wasm.js) has no WebGPU: load engine-webgpu.js');
  const source = cachedFetchSource(opts.modelUrl, { cacheName: opts.cacheName, headers: opts.headers, onShard: opts.onShard });
  const manifestBytes = await source.get('manifest.json');
  if (!manifestBytes) throw new Error(`no manifest.json at ${source.baseUrl}`);
  const manifest = source.manifest() as Manifest;
  let provider = detected;
  if (provider === 'webgpu' && !manifest.files[WEBGPU_BASE_FILE]) {
    if (choice === 'webgpu') throw new Error(`the model at ${source.baseUrl} has no WebGPU base file (${WEBGPU_BASE_FILE})`);
    provider = 'wasm';
  }
  if (loaded && (loaded.provider !== provider || loaded.verbose !== !!opts.verbose)) {
    throw new Error(`onnxruntime is already set up for ${loaded.provider} in this page: reload to switch`);
  }
  if (!loaded) {
    const ortUrl = new URL(opts.ortUrl ?? './ort/', import.meta.url).href;
    configureOrt((env) => {
      env.wasm.wasmPaths = ortUrl;
      if (opts.verbose) env.logLevel = 'verbose';
      watchWasmHeap();
    });
    const gpuSha = manifest.files[WEBGPU_BASE_FILE]?.sha256;
    const verbose = opts.verbose ? { logSeverityLevel: 0 as const, logVerbosityLevel: 0 } : {};
    configureSessions(async (bytes) => {
      // Only the base model's WebGPU variant goes to the GPU: the int8 graphs (draft heads) have no
      // WebGPU kernels, and a head only proposes, so where it runs cannot change the output.
      const gpu = provider === 'webgpu' && gpuSha !== undefined && bytes.byteLength === manifest.files[WEBGPU_BASE_FILE].bytes && (await sha256Hex(bytes)) === gpuSha;
      return gpu
        ? { executionProviders: ['webgpu'], graphOptimizationLevel: opts.gpuGraphOptimization ?? GPU_GRAPH_OPTIMIZATION, ...verbose }
        : { executionProviders: ['wasm'], ...verbose };
    });
    loaded = { provider, verbose: !!opts.verbose };
  }
  const baseFile = provider === 'webgpu' ? WEBGPU_BASE_FILE : 'base';
  const engine = await Engine.load(withBaseFile(source, baseFile));
  registerDrafters(engine);
  return { engine, provider, baseFile, providerInfo: info, shards: source.stats, loadMs: performance.now() - t0 };
}

export interface CompletionOptions {
  prompt: string;
  maxTokens: number;
  /** Absent: what the API would pick for these sampling parameters (defaultDrafter). */
  drafter?: string;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  treeBudget?: number;
  stop?: string[];
  signal?: AbortSignal;
  /** Each chunk of text as it is accepted, with the figures so far. */
  onText?: (text: string, live: LiveFigures) => void;
}

export interface LiveFigures {
  tokens: number;
  rounds: number;
  /** Tokens per base-model call so far. */
  tau: number;
  tokensPerSecond: number;
  elapsedMs: number;
}

export interface CompletionResult {
  text: string;
  tokens: number[];
  finishReason: string;
  usage: Usage;
  /** Decoding time (prefill excluded) and tokens/s over it. */
  decodeMs: number;
  tokensPerSecond: number;
  tau: number;
  treeNodes: number;
  /** ORT's wasm heap (bytes) and the JS heap (Chromium only) after the completion. */
  wasmHeapBytes: number | null;
  jsHeapBytes: number | null;
}

/** One completion of a text prompt (`<s>` + its tokens) on a fresh session. */
export async function complete(engine: Engine, o: CompletionOptions): Promise<CompletionResult> {
  const session = engine.createSession();
  const tokens: number[] = [];
  let rounds = 0, treeNodes = 0, text = '';
  let done: Extract<GenerateEvent, { type: 'done' }> | undefined;
  const t0 = performance.now();
  const sampling = { temperature: o.temperature ?? 0, topP: o.topP ?? 1, topK: o.topK ?? 0, seed: o.seed ?? 0 };
  try {
    for await (const ev of session.generate({
      promptTokens: engine.encodePrompt(o.prompt),
      maxTokens: o.maxTokens,
      drafter: o.drafter ?? defaultDrafter(engine.drafterNames, sampling),
      treeBudget: o.treeBudget,
      stop: o.stop,
      signal: o.signal,
      sampling,
      onRound: (r) => {
        rounds++;
        treeNodes += r.treeSize;
      },
    })) {
      if (ev.type === 'tokens') {
        tokens.push(...ev.tokens);
        text += ev.text;
        const elapsed = performance.now() - t0;
        o.onText?.(ev.text, { tokens: tokens.length, rounds, tau: tokens.length / Math.max(rounds, 1), tokensPerSecond: (tokens.length * 1000) / Math.max(elapsed, 1e-9), elapsedMs: elapsed });
      } else done = ev;
    }
  } finally {
    session.release();
  }
  if (!done) throw new Error('generation ended without a done event');
  const decodeMs = performance.now() - t0 - done.usage.prefillMs;
  const mem = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
  return {
    text: done.text ?? text,
    tokens,
    finishReason: done.finishReason,
    usage: done.usage,
    decodeMs,
    tokensPerSecond: (tokens.length * 1000) / Math.max(decodeMs, 1e-9),
    tau: tokens.length / Math.max(done.usage.rounds, 1),
    treeNodes,
    wasmHeapBytes: wasmHeapBytes(),
    jsHeapBytes: mem ? mem.usedJSHeapSize : null,
  };
}

/** The onnxruntime-web module this bundle carries (tests: version, env). */
export { ort };

/**
 * How far a token's logits move between being verified inside one pass of `k` chain tokens and being
 * decoded alone, after `prompt` (the property lossless speculation rests on; 0 means bit-identical).
 * Runs on whatever provider the engine's base model runs on.
 */
export async function rowDrift(engine: Engine, prompt: string, k: number): Promise<{ maxAbsDiff: number; argmaxAgree: boolean; rows: number; kvDiff: number[] }> {
  const model = engine.model;
  const V = engine.config.vocab_size;
  const ids = engine.encodePrompt(prompt);
  const chain = ids.slice(-k);
  const ctx = ids.slice(0, -k);
  if (ctx.length < 1 || chain.length < k) throw new Error('rowDrift: the prompt needs more than k tokens');
  const a = model.newCache();
  await model.prefill(ctx, a);
  const together = await model.prefill(chain, a); // k rows in one pass, causal
  const b = model.newCache();
  await model.prefill(ctx, b);
  let maxAbsDiff = 0;
  let argmaxAgree = true;
  for (let i = 0; i < k; i++) {
    const alone = await model.decodeOne(chain[i], b);
    let am = 0, bm = 0;
    for (let v = 0; v < V; v++) {
      const x = together.logits[i * V + v], y = alone.logits[v];
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x - y));
      if (x > together.logits[i * V + am]) am = v;
      if (y > alone.logits[bm]) bm = v;
    }
    if (am !== bm) argmaxAgree = false;
  }
  // per layer: the largest difference of the chain's keys / values (where in the stack rows start to move)
  const kvDiff: number[] = [];
  for (let l = 0; l < engine.config.n_layers; l++) {
    const pa = a.past(l), pb = b.past(l);
    let m = 0;
    for (let j = 0; j < 2; j++) for (let i = 0; i < pa[j].length; i++) m = Math.max(m, Math.abs(pa[j][i] - pb[j][i]));
    kvDiff.push(m);
  }
  a.release();
  b.release();
  return { maxAbsDiff, argmaxAgree, rows: k, kvDiff };
}

/** One benchmark run of a prompt (the fields bench/lib/stats.ts summarizes). */
export interface BenchRun {
  tokens: number[];
  decodeMs: number;
  rounds: number;
  treeNodes: number;
  draftMs: number;
  verifyMs: number;
  accepted: number;
}

/** Greedy runs of one prompt with each drafter, in the order given (callers rotate it per prompt). */
export async function benchPrompt(engine: Engine, prompt: string, drafters: string[], maxTokens: number, treeBudget = 16): Promise<Record<string, BenchRun>> {
  const out: Record<string, BenchRun> = {};
  for (const d of drafters) {
    const r = await complete(engine, { prompt, maxTokens, drafter: d, treeBudget });
    out[d] = { tokens: r.tokens, decodeMs: r.decodeMs, rounds: r.usage.rounds, treeNodes: r.treeNodes, draftMs: r.usage.draftMs, verifyMs: r.usage.verifyMs, accepted: r.usage.acceptedPredictionTokens };
  }
  return out;
}

/** ORT's wasm heap and (Chromium only) the JS heap, in bytes. The wasm heap only grows: read after a workload, it is its peak. */
export function heapBytes(): { wasm: number | null; js: number | null } {
  const mem = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory;
  return { wasm: wasmHeapBytes(), js: mem ? mem.usedJSHeapSize : null };
}
