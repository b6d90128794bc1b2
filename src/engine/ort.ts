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
 * session; the hook runs once, right before ORT initialises.
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
let wasmMemory: WebAssembly.Memory | null = null;

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

/** Runs the host hook once and installs the heap probe. */
function ensureReady(): Promise<void> {
  ready ??= (async () => {
    if (hook) await hook(ort.env);
    installMemoryProbe();
  })();
  return ready;
}

/**
 * Finds ORT's wasm memory without touching ORT internals: wrap WebAssembly.instantiate(+Streaming)
 * (on top of whatever the host hook installed) and remember any WebAssembly.Memory that passes
 * through the imports or exports. The threaded build imports its memory (created by the glue
 * code), the plain build exports it; both are covered. The wrappers only observe.
 */
function installMemoryProbe(): void {
  const W = WebAssembly as unknown as Record<string, unknown>;
  const scan = (obj: unknown) => {
    if (!obj || typeof obj !== 'object') return;
    for (const ns of Object.values(obj as Record<string, unknown>)) {
      if (ns instanceof WebAssembly.Memory) wasmMemory = ns;
      else if (ns && typeof ns === 'object') {
        for (const v of Object.values(ns as Record<string, unknown>)) if (v instanceof WebAssembly.Memory) wasmMemory = v;
      }
    }
  };
  const observe = (result: unknown) => {
    const r = result as { instance?: WebAssembly.Instance; exports?: unknown };
    const inst = r && (r.instance ?? (r as unknown as WebAssembly.Instance));
    if (inst && typeof inst === 'object' && 'exports' in inst) {
      for (const v of Object.values(inst.exports)) if (v instanceof WebAssembly.Memory) wasmMemory ??= v;
    }
    return result;
  };
  for (const name of ['instantiate', 'instantiateStreaming']) {
    const original = W[name] as ((...a: unknown[]) => Promise<unknown>) | undefined;
    if (typeof original !== 'function' || (original as { __ctcProbe?: boolean }).__ctcProbe) continue;
    const wrapped = function (this: unknown, ...args: unknown[]) {
      scan(args[1]);
      return original.apply(this ?? WebAssembly, args).then(observe);
    };
    (wrapped as { __ctcProbe?: boolean }).__ctcProbe = true;
    try {
      W[name] = wrapped;
    } catch {
      // A frozen WebAssembly namespace: no heap numbers, nothing else changes.
    }
  }
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

/**
 * Current size of ORT's wasm linear memory in bytes. The memory only grows (released sessions do
 * not give it back), so the
 * value read after a workload is its peak. null until a session exists or if the probe failed.
 */
export function wasmHeapBytes(): number | null {
  return wasmMemory ? wasmMemory.buffer.byteLength : null;
}
