/**
 * V8 inspector of the local workerd (miniflare's `inspectorPort`): Runtime.getHeapUsage of the worker's
 * isolate (JS heap + ArrayBuffer backing stores, where sessions' KV lives; ORT's wasm heap is not in it).
 * One connection for all samples: workerd's inspector hangs when a second session attaches.
 */
export async function isolateInspector(port: number) {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { id: string; webSocketDebuggerUrl: string }[];
  const target = list.find((t) => t.id === 'core:user:') ?? list[0];
  // Node 20 has no global WebSocket; undici (miniflare's HTTP client) has one.
  const WS = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket ?? ((await import('undici')).WebSocket as unknown as typeof WebSocket);
  const ws = new WS(target.webSocketDebuggerUrl);
  await new Promise((r) => ws.addEventListener('open', r));
  let id = 0;
  const waiting = new Map<number, (r: unknown) => void>();
  const listeners = new Map<string, ((params: unknown) => void)[]>();
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown; method?: string; params?: unknown };
    if (m.id === undefined) {
      for (const f of listeners.get(m.method ?? '') ?? []) f(m.params);
      return;
    }
    waiting.get(m.id)?.(m.result);
    waiting.delete(m.id);
  });
  const call = <T,>(method: string, params: object = {}) =>
    new Promise<T>((res) => {
      const my = ++id;
      waiting.set(my, res as (r: unknown) => void);
      ws.send(JSON.stringify({ id: my, method, params }));
    });
  await call('HeapProfiler.enable');
  return {
    heap: () => call<{ usedSize: number; totalSize: number; backingStorageSize: number }>('Runtime.getHeapUsage'),
    /** workerd answers collectGarbage only once the isolate next runs: poke it with a request. */
    gc: async (url: string) => {
      const done = call<unknown>('HeapProfiler.collectGarbage');
      await (await fetch(`${url}health`)).text();
      await done;
    },
    /** Any DevTools protocol method (Debugger.enable, Debugger.pause, ...). */
    call,
    /** DevTools protocol events (Debugger.paused, ...). */
    on: (event: string, f: (params: unknown) => void) => listeners.set(event, [...(listeners.get(event) ?? []), f]),
    close: () => ws.close(),
  };
}
