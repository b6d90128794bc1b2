/**
 * The size of onnxruntime-web's wasm heap, for the hosts that report it: the Worker (session info,
 * through src/worker/ort-workerd.ts), the browser build and Node measurement tools. It lives outside
 * src/engine because it patches a global: a host opts in with `watchWasmHeap()` before ORT
 * initialises (before the first Engine.load, or inside its configureOrt hook).
 */
let wasmMemory: WebAssembly.Memory | null = null;

/**
 * Finds ORT's wasm memory without touching ORT internals: wrap WebAssembly.instantiate(+Streaming)
 * (on top of whatever a host hook installed) and remember any WebAssembly.Memory that passes
 * through the imports or exports. The threaded build imports its memory (created by the glue
 * code), the plain build exports it; both are covered. The wrappers only observe. Idempotent.
 */
export function watchWasmHeap(): void {
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

/**
 * Current size of ORT's wasm linear memory in bytes. The memory only grows (released sessions do
 * not give it back), so the value read after a workload is its peak. null until a session exists,
 * without `watchWasmHeap()`, or if the probe failed.
 */
export function wasmHeapBytes(): number | null {
  return wasmMemory ? wasmMemory.buffer.byteLength : null;
}
