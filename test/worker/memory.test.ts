/**
 * Memory soak: more long sessions in one isolate than its session-memory budget holds. Locally the worker
 * and every session object share one isolate, as they may in production, where an isolate has 128 MB.
 * Measured inside the isolate, not the process: V8's inspector (`Runtime.getHeapUsage`: JS heap + ArrayBuffer
 * backing stores, where the sessions' KV lives) plus ORT's wasm heap (reported by the session object).
 * Checked: the isolate stays under 128 MB; least recently used idle sessions drop their KV from memory and
 * are rebuilt from storage when used again; no stored session loses a token (each continues exactly as an
 * uninterrupted run does).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type OpenAI from 'openai';
import { ROOT, startWorker, type Worker } from './harness';
import { isolateInspector } from '../../scripts/node/isolate-inspector';

const ISOLATE_LIMIT = 128 * 2 ** 20;
const SESSIONS = 12; // ~6.5 MiB of KV each at 500 tokens: 78 MiB, well over the default 32 MiB budget
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

let w: Worker;
let dir: string;
const port = 9400 + Math.floor(Math.random() * 500);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctc-edge-memory-'));
  w = await startWorker(inject('workerBundleDir'), { persist: dir, inspectorPort: port });
});
afterAll(async () => {
  await w?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Info {
  tokens: number;
  kv_tokens_in_memory: number;
  kv_tokens_stored: number;
  in_memory: boolean;
  isolate: { wasm_heap_bytes: number | null };
}
const info = async (id: string) => (await (await w.fetch(`/v1/sessions/${id}`, { key: 'sk-bob' })).json()) as Info;
const ext = (r: unknown) => (r as { ctc_edge: { session_tokens: number; restore: { mode: string } | null } }).ctc_edge;
const complete = (body: Record<string, unknown>, session?: string) =>
  w.client('sk-bob').completions.create({ model: 'default', temperature: 0, ...body } as unknown as OpenAI.CompletionCreateParamsNonStreaming, {
    headers: session ? { 'X-Session-Id': session } : undefined,
  });

describe('memory soak', () => {
  it(`${SESSIONS} sessions of ~500 tokens in one isolate: under 128 MB, LRU to storage, no token lost`, async () => {
    const prompts = readFileSync(join(ROOT, 'bench/prompts-long.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => (JSON.parse(l) as { prompt: string }).prompt)
      .slice(0, SESSIONS);
    const insp = await isolateInspector(port);
    let peak = { js: 0, buffers: 0, wasm: 0, total: 0 };
    let wasm = 0;
    const sample = async () => {
      const h = await insp.heap();
      const total = h.usedSize + h.backingStorageSize + wasm;
      if (total > peak.total) peak = { js: h.usedSize, buffers: h.backingStorageSize, wasm, total };
    };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sample().catch(() => {});
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    // 1. Fill: each session's prompt plus completion comes to ~500 tokens (the prompt is cut to fit).
    const first: { text: string; tokens: number; prompt: string; completion: number; stopped: boolean }[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const probe = await complete({ prompt: prompts[i], max_tokens: 1 });
      const fit = probe.usage!.prompt_tokens > 470 ? prompts[i].slice(0, Math.floor((prompts[i].length * 440) / probe.usage!.prompt_tokens)) : prompts[i];
      const r = await complete({ prompt: fit, max_tokens: 500 - Math.min(470, probe.usage!.prompt_tokens) }, `soak-${i}`);
      first.push({ text: r.choices[0].text, tokens: ext(r).session_tokens, prompt: fit, completion: r.usage!.completion_tokens, stopped: r.choices[0].finish_reason === 'stop' });
      wasm = (await info(`soak-${i}`)).isolate.wasm_heap_bytes ?? 0;
      { const h = await insp.heap(); console.log('DBG fill', i, mib(h.usedSize), mib(h.backingStorageSize), 'peak', mib(peak.buffers)); }
    }
    const infos = await Promise.all(first.map((_, i) => info(`soak-${i}`)));
    const resident = infos.filter((s) => s.in_memory).length;
    // Every session is stored in full; only some stay in memory.
    infos.forEach((s, i) => expect(s.tokens, `soak-${i}`).toBe(first[i].tokens));
    infos.forEach((s, i) => expect(s.kv_tokens_stored, `soak-${i}`).toBe(first[i].tokens - 1));
    expect(resident).toBeGreaterThan(0);
    expect(resident).toBeLessThan(SESSIONS);

    // 2. Use them all again, oldest first: the dropped ones come back from storage and continue exactly.
    const modes: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const r = await complete({ prompt: '', continue: true, max_tokens: 8 }, `soak-${i}`);
      modes.push(ext(r).restore?.mode ?? 'memory');
      { const h = await insp.heap(); console.log('DBG cont', i, mib(h.usedSize), mib(h.backingStorageSize), 'peak', mib(peak.buffers)); }
      expect(ext(r).session_tokens, `soak-${i}`).toBe(first[i].tokens + r.usage!.completion_tokens);
      if (first[i].stopped) continue; // after an end-of-text token a single request would have stopped
      const once = await complete({ prompt: first[i].prompt, max_tokens: first[i].completion + 8 });
      expect(first[i].text + r.choices[0].text, `soak-${i}`).toBe(once.choices[0].text);
    }
    sampling = false;
    await sampler;
    await sample();
    insp.close();
    expect(modes.filter((m) => m === 'kv').length).toBeGreaterThanOrEqual(SESSIONS - resident);

    const line =
      `[memory] ${SESSIONS} sessions of ~500 tokens: ${resident} held in memory at once (the rest in storage); ` +
      `isolate peak ${mib(peak.total)} MiB of 128 (JS heap ${mib(peak.js)} + ArrayBuffers ${mib(peak.buffers)} + ORT wasm ${mib(peak.wasm)}); ` +
      `continuations: ${modes.filter((m) => m === 'kv').length} restored from storage, ${modes.filter((m) => m === 'memory').length} from memory`;
    console.log(line);
    expect(peak.total, line).toBeLessThan(ISOLATE_LIMIT);
  }, 600_000);
});
