/**
 * Which execution provider this browser can run, without loading onnxruntime (the page picks the engine
 * bundle with it: build/engine-webgpu.js or build/engine-wasm.js).
 *
 * WebGPU needs three things: `navigator.gpu` that returns an adapter, WebAssembly JSPI
 * (`WebAssembly.Suspending`, which onnxruntime-web's JSPI build uses to wait for the GPU; Chromium 137+),
 * and a manifest with the WebGPU base file. Otherwise wasm, which runs in every browser with
 * WebAssembly SIMD.
 */
export type Provider = 'webgpu' | 'wasm';
export type ProviderChoice = Provider | 'auto';

export interface ProviderInfo {
  /** What `auto` picks here. */
  best: Provider;
  webgpu: boolean;
  /** Why WebGPU is not used, when it is not. */
  reason?: string;
  /** The adapter's vendor / architecture (e.g. google / swiftshader for Chromium's software adapter). */
  adapter?: { vendor: string; architecture: string; description?: string };
}

export function hasJspi(): boolean {
  return typeof WebAssembly === 'object' && 'Suspending' in WebAssembly;
}

export async function detectProvider(): Promise<ProviderInfo> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } })?.gpu;
  if (!gpu) return { best: 'wasm', webgpu: false, reason: 'navigator.gpu is not available' };
  if (!hasJspi()) return { best: 'wasm', webgpu: false, reason: 'WebAssembly JSPI is not available (needs Chromium 137+)' };
  type Adapter = { info?: { vendor?: string; architecture?: string; description?: string } };
  let adapter: Adapter | null;
  try {
    adapter = (await gpu.requestAdapter()) as Adapter | null;
  } catch (e) {
    return { best: 'wasm', webgpu: false, reason: `requestAdapter failed: ${(e as Error).message}` };
  }
  if (!adapter) return { best: 'wasm', webgpu: false, reason: 'navigator.gpu gave no adapter' };
  const info = adapter.info ?? {};
  return {
    best: 'webgpu',
    webgpu: true,
    adapter: { vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description },
  };
}

/** The provider for a choice: `auto` is the best available; an explicit `webgpu` that cannot run throws. */
export async function resolveProvider(choice: ProviderChoice): Promise<{ provider: Provider; info: ProviderInfo }> {
  const info = await detectProvider();
  if (choice === 'auto') return { provider: info.best, info };
  if (choice === 'webgpu' && !info.webgpu) throw new Error(`WebGPU is not usable here: ${info.reason}`);
  return { provider: choice, info };
}
