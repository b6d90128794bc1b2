/**
 * Eviction: the session's Durable Object loses its memory mid-session and must continue with output
 * identical to an uninterrupted run. Mechanism: the whole workerd process is disposed and a new miniflare
 * starts on the same `durableObjectsPersist` directory — the DO comes back with nothing but its SQLite
 * storage (exactly what an evicted/redeployed object has in production).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type OpenAI from 'openai';
import { reexportDefaultModel, startWorker, type Worker } from './harness';

const P = 'import os\n\n\ndef walk_tree(root):\n    """Yield every file below root."""\n';
const dirs: string[] = [];
let current: Worker | null = null;

afterAll(async () => {
  await current?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Ext {
  finish_detail: string;
  restore: { mode: 'kv' | 'recompute'; tokens: number; ms: number } | null;
  prefill_ms: number;
  session_tokens: number;
}
const ext = (r: unknown) => (r as { ctc_edge: Ext }).ctc_edge;

async function complete(w: Worker, key: string, body: Record<string, unknown>, session?: string) {
  return w.client(key).completions.create({ model: 'default', temperature: 0, ...body } as unknown as OpenAI.CompletionCreateParamsNonStreaming, {
    headers: session ? { 'X-Session-Id': session } : undefined,
  });
}

async function restartedRun(kvPersist: 'always' | 'never', N: number) {
  const persist = mkdtempSync(join(tmpdir(), 'ctc-edge-do-'));
  dirs.push(persist);
  const bundle = inject('workerBundleDir');
  const vars = { KV_PERSIST: kvPersist };
  current = await startWorker(bundle, { persist, vars });
  let text = '';
  let tokens = 0;
  const first = await complete(current, 'sk-alice', { prompt: P, max_tokens: N }, 'evict-1');
  text += first.choices[0].text;
  tokens += first.usage!.completion_tokens;
  expect(ext(first).finish_detail).toBe('rounds');

  // "Evict": kill workerd; a new process has only the DO's SQLite files.
  await current.dispose();
  current = await startWorker(bundle, { persist, vars });

  const restores: Ext['restore'][] = [];
  const cached: number[] = [];
  for (let i = 0; i < 30 && tokens < N; i++) {
    const r = await complete(current, 'sk-alice', { prompt: P + text, max_tokens: N - tokens }, 'evict-1');
    restores.push(ext(r).restore);
    cached.push(r.usage!.prompt_tokens_details!.cached_tokens ?? -1);
    text += r.choices[0].text;
    tokens += r.usage!.completion_tokens;
    if (r.choices[0].finish_reason === 'stop') break;
  }
  const once = await complete(current, 'sk-bob', { prompt: P, max_tokens: tokens });
  return { text, once: once.choices[0].text, restores, cached, tokens };
}

describe('eviction', () => {
  it('restoring the stored KV cache continues with identical output', async () => {
    const r = await restartedRun('always', 40);
    expect(r.restores[0]?.mode).toBe('kv');
    expect(r.restores.slice(1).every((x) => x === null)).toBe(true); // later requests: in memory
    expect(r.cached[0]).toBeGreaterThan(0); // the restored KV served the prompt
    expect(r.text).toBe(r.once);
  });

  it('over the isolate memory budget, idle sessions fall back to SQLite and continue identically', async () => {
    await current?.dispose();
    const persist = mkdtempSync(join(tmpdir(), 'ctc-edge-do-'));
    dirs.push(persist);
    current = await startWorker(inject('workerBundleDir'), { persist, vars: { SESSION_MEMORY_MB: '0.01' } });
    const w = current;
    // Two sessions take turns; each request pushes the other one out of memory.
    const texts = ['', ''];
    const counts = [0, 0];
    const modes: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) {
      const s = i % 2;
      const r = await complete(w, 'sk-alice', { prompt: P + texts[s], max_tokens: 12 }, `budget-${s}`);
      if (i >= 2) modes.push(ext(r).restore?.mode);
      texts[s] += r.choices[0].text;
      counts[s] += r.usage!.completion_tokens;
    }
    expect(modes).toEqual(['kv', 'kv', 'kv', 'kv']);
    expect(texts[1]).toBe(texts[0]);
    const once = await complete(w, 'sk-bob', { prompt: P, max_tokens: counts[0] });
    expect(texts[0]).toBe(once.choices[0].text);
  });

  it('with KV persistence off, the tokens are recomputed and the output still matches (greedy)', async () => {
    await current?.dispose();
    current = null;
    const r = await restartedRun('never', 40);
    expect(r.restores[0]?.mode).toBe('recompute');
    expect(r.cached[0]).toBe(0);
    expect(r.text).toBe(r.once);
  });

  it('after the model is re-exported, a stored session keeps its tokens (its old KV is not read) and continues identically', async () => {
    await current?.dispose();
    const persist = mkdtempSync(join(tmpdir(), 'ctc-edge-do-'));
    dirs.push(persist);
    const bundle = inject('workerBundleDir');
    current = await startWorker(bundle, { persist });
    const first = await complete(current, 'sk-alice', { prompt: P, max_tokens: 40 }, 'upgrade-1');
    expect(ext(first).finish_detail).toBe('rounds');
    const text1 = first.choices[0].text;
    const held = ext(first).session_tokens;
    await current.dispose();
    current = await startWorker(bundle, { persist });
    await reexportDefaultModel(current);
    const r = await complete(current, 'sk-alice', { prompt: P + text1, max_tokens: 8 }, 'upgrade-1');
    expect(ext(r).restore).toMatchObject({ mode: 'recompute', tokens: held });
    expect(r.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    const once = await complete(current, 'sk-bob', { prompt: P, max_tokens: first.usage!.completion_tokens + r.usage!.completion_tokens });
    expect(text1 + r.choices[0].text).toBe(once.choices[0].text);
  });
});
