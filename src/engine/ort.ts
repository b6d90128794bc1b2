/**
 * The one place that imports onnxruntime-web. The `/wasm` entry ships the plain SIMD wasm build
 * (14 MB, no WebGPU/JSEP). workerd needs exactly this entry: the default entry resolves its wasm
 * through `import.meta.url`, which is undefined there, and Workers forbid compiling WebAssembly
 * from bytes at run time, so the host hands ORT a module precompiled at deploy time. The browser
 * build's WebGPU bundle (scripts/build-browser.ts) resolves this import to the `/jspi` entry
 * instead; the Worker bundle and Node keep `/wasm`.
 *
 * Defaults: one thread, no proxy worker (workerd has neither threads nor Web Workers, and one
 * thread keeps Node/browser numbers comparable). A host that must load the wasm differently
 * (the Worker: precompiled module) registers a hook with `configureOrt` BEFORE the first
 * session; the hook runs once, right before ORT initialises. Measuring ORT's wasm heap is the
 * host's business too (src/wasm-heap.ts): it patches a global, which the engine never does.
 */
import * as ort from 'onnxruntime-web/wasm';

export { ort };
export type OrtEnv = typeof ort.env;
export type OrtSession = ort.InferenceSession;

type Hook = (env: OrtEnv) => void | Promise<void>;
/** Session options for a model file, over the defaults (the browser build: WebGPU for the base model's
 *  WebGPU variant, wasm for everything else). */
export type SessionOptionsFor = (bytes: Uint8Array) => ort.InferenceSession.SessionOptions | Promise<ort.InferenceSession.SessionOptions>;

let hook: Hook | null = null;
let optionsFor: SessionOptionsFor | null = null;
let ready: Promise<void> | null = null;

ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;

/** Registers the host's ORT setup (e.g. precompiled wasm). Must be called before the first session. */
export function configureOrt(fn: Hook): void {
  if (ready) throw new Error('configureOrt: ORT is already initialised (call it before Engine.load)');
  hook = fn;
}

/** Chooses each new session's options (execution providers); call it before the first session. */
export function configureSessions(fn: SessionOptionsFor | null): void {
  optionsFor = fn;
}

/** Runs the host hook once, before ORT initialises. */
function ensureReady(): Promise<void> {
  ready ??= (async () => {
    if (hook) await hook(ort.env);
  })();
  return ready;
}

/** Creates an inference session from model bytes (wasm EP unless configureSessions says otherwise, all
 *  graph optimisations). */
export async function createSession(bytes: Uint8Array): Promise<OrtSession> {
  await ensureReady();
  return ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    ...(optionsFor ? await optionsFor(bytes) : {}),
  });
}
