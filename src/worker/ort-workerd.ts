/**
 * onnxruntime-web inside workerd.
 *
 * Why this dance: workerd forbids compiling WebAssembly from bytes at run time and `import.meta.url` is
 * undefined, so ORT can neither fetch nor compile its wasm. Instead the bundle imports
 * `ort-wasm-simd-threaded.wasm` as a `CompiledWasm` module (wrangler rule; workerd compiles it at load).
 * ORT has no public hook for a precompiled module, so we hand it a small placeholder `wasmBinary` (which
 * makes it skip URL resolution and "fetch") and wrap `WebAssembly.instantiate` so that the call carrying
 * the placeholder bytes instantiates the precompiled module instead. ORT copies the buffer, so we match on
 * content, not identity. The engine's `configureOrt` runs this hook once, before ORT initialises; it also
 * starts the heap probe (../wasm-heap.ts) on top, for the session info's wasm_heap_bytes.
 */
import { configureOrt, type OrtEnv } from '../engine/index';
import { watchWasmHeap } from '../wasm-heap';
import ortWasmModule from '../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm';

/** "\0asm" magic followed by a marker no real module has. */
const PLACEHOLDER = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x63, 0x74, 0x63, 0x2d, 0x65, 0x64, 0x67, 0x65]);

function isPlaceholder(src: unknown): boolean {
  let bytes: Uint8Array | null = null;
  if (src instanceof ArrayBuffer) bytes = new Uint8Array(src);
  else if (ArrayBuffer.isView(src)) bytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  if (!bytes || bytes.byteLength !== PLACEHOLDER.byteLength) return false;
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== PLACEHOLDER[i]) return false;
  return true;
}

function workerdHook(env: OrtEnv): void {
  const original = WebAssembly.instantiate.bind(WebAssembly) as (
    src: BufferSource | WebAssembly.Module,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>;
  const patched = async (src: BufferSource | WebAssembly.Module, imports?: WebAssembly.Imports) => {
    if (!isPlaceholder(src)) return original(src, imports);
    // Same result shape as instantiate(bytes): { instance, module }.
    const instance = (await original(ortWasmModule, imports)) as WebAssembly.Instance;
    return { instance, module: ortWasmModule };
  };
  (WebAssembly as unknown as { instantiate: unknown }).instantiate = patched;
  env.wasm.numThreads = 1; // no worker threads in workerd
  env.wasm.proxy = false; // no Web Worker proxy either
  env.wasm.wasmBinary = PLACEHOLDER; // skips URL resolution; the bytes are swapped in `patched`
  env.logLevel = 'error';
  watchWasmHeap();
}

let installed = false;

/** Register the workerd wasm loader with the engine (once per isolate, before the first Engine.load). */
export function installWorkerdOrt(): void {
  if (installed) return;
  installed = true;
  configureOrt(workerdHook);
}
