/**
 * Serving-layer measurements in real workerd (miniflare, the built bundle, the model seeded into R2):
 *
 *   npm run measure:worker [-- --model-dir model-shards/default --max-tokens 200 --reps 5 --drafters plain,ngram]
 *
 * 1. bundle size (raw and gzip, what `wrangler deploy` uploads);
 * 2. cold start to first token: a fresh workerd process, first streamed request (isolate start, ORT init,
 *    shard fetch + sha256, session creation, prefill, first round);
 * 3. warm time to first token (fresh ephemeral session each time: prefill + one round);
 * 4. tokens/s through the API (streamed, greedy) vs the engine in Node (this process, the definition of
 *    `npm run generate`: completion tokens over the time after prefill), alternating
 *    A/B and reporting medians (these VMs are noisy: hypervisor steal time);
 * 5. peak memory: the isolate's heap via V8's inspector (Runtime.getHeapUsage: JS heap + ArrayBuffer and
 *    wasm backing stores; locally the worker and its DOs share one isolate), ORT's wasm heap as reported by
 *    the session DO, and VmHWM of the whole workerd process against a workerd running a trivial worker;
 * 6. session restore after eviction: stored KV vs recompute (prefill), at several context lengths.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Miniflare } from 'miniflare';
import { Engine, registerDrafters, type GenerateEvent } from '../src/engine/index.js';
import { fsShardSource } from './node/fs-shard-source.js';
import { isolateInspector } from './node/isolate-inspector.js';
import { startBundle } from './node/local-worker.js';
import { seedModels } from './node/r2-seed.js';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    'model-dir': { type: 'string', default: join(ROOT, 'model-shards/default') },
    'max-tokens': { type: 'string', default: '200' },
    reps: { type: 'string', default: '5' },
    drafters: { type: 'string', default: 'plain,ngram' },
  },
});
const MODEL_DIR = resolve(values['model-dir']!);
/** The one tenant of these runs (`sk-measure`): limits that never cut a measured request short. */
const KEY = 'sk-measure';
const TENANTS = { measure: { key_sha256: [createHash('sha256').update(KEY).digest('hex')], max_tokens: 512, max_rounds: 1000, rpm: 0, tpm: 0, max_sessions: 100_000 } };
/** The bundle in workerd (the deployed configuration), the model seeded into its in-memory R2 as `default`. */
async function startWorker(bundleDir: string, opts: { persist?: string; vars?: Record<string, string>; inspectorPort?: number } = {}) {
  const { mf, url } = await startBundle(bundleDir, { tenants: TENANTS, ...opts, vars: { DIAGNOSTICS: 'on', ...opts.vars } }); // DIAGNOSTICS: the session info's wasm heap
  await seedModels(await mf.getR2Bucket('MODELS'), [{ name: 'default', dir: MODEL_DIR }]);
  return { url, dispose: () => mf.dispose() };
}
const MAX = Number(values['max-tokens']);
const REPS = Number(values.reps);
const PROMPT = 'import os\nimport sys\n\n\ndef main(argv):\n    """Parse the command line and run."""\n';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const log = (s: string) => process.stdout.write(s + '\n');

// 1. bundle ---------------------------------------------------------------------------------------------
const bundle = mkdtempSync(join(tmpdir(), 'ctc-edge-measure-'));
const b = spawnSync(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--env', '', '--outdir', bundle], {
  cwd: ROOT,
  encoding: 'utf8',
  env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
});
if (b.status !== 0) throw new Error(b.stderr);
let raw = 0;
let gz = 0;
for (const f of readdirSync(bundle).filter((f) => f.endsWith('.js') || f.endsWith('.wasm'))) {
  raw += statSync(join(bundle, f)).size;
  gz += gzipSync(readFileSync(join(bundle, f)), { level: 9 }).byteLength;
}
log(`bundle: ${(raw / 2 ** 20).toFixed(2)} MiB raw, ${(gz / 2 ** 20).toFixed(2)} MiB gzip (wrangler: ${/Total Upload: (.*)/.exec(b.stdout)?.[1] ?? '?'})`);

// helpers ------------------------------------------------------------------------------------------------
interface StreamResult {
  ttftMs: number;
  totalMs: number;
  completion: number;
  ext: Record<string, unknown>;
}
async function stream(url: string, body: Record<string, unknown>, session?: string): Promise<StreamResult> {
  // An idle keep-alive socket may have been closed by workerd while this process computed (engine runs
  // below block the event loop): retry once on a fresh connection.
  const post = () => fetch(`${url}v1/completions`, {
    signal: AbortSignal.timeout(120_000), // a stalled request fails loudly instead of hanging the run
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...(session ? { 'x-session-id': session } : {}) },
    body: JSON.stringify({ model: 'default', temperature: 0, stream: true, stream_options: { include_usage: true }, ...body }),
  });
  let t0 = performance.now();
  let res: Response;
  try {
    res = await post();
  } catch {
    t0 = performance.now();
    res = await post();
  }
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  process.stderr.write(`[measure] ${new Date().toISOString()} ${session ?? 'ephemeral'} ${JSON.stringify(body).slice(0, 80)}\n`);
  let ttft = 0;
  let buf = '';
  let usage: { completion_tokens: number } | null = null;
  let ext: Record<string, unknown> = {};
  const dec = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i).replace(/^data: /, '');
      buf = buf.slice(i + 2);
      if (line === '[DONE]') continue;
      const j = JSON.parse(line);
      if (j.choices?.[0]?.text && !ttft) ttft = performance.now() - t0;
      if (j.usage) {
        usage = j.usage;
        ext = j.ctc_edge;
      }
    }
  }
  return { ttftMs: ttft, totalMs: performance.now() - t0, completion: usage?.completion_tokens ?? 0, ext };
}

function workerdPids(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (cmd.includes('workerd') && ppid === process.pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}
function memKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Token ids of a code prompt, exactly n long. */
const FILLER = readFileSync(join(ROOT, 'src/engine/decoder.ts'), 'utf8');
function promptOf(n: number): number[] {
  const ids = engine.encodePrompt(FILLER);
  if (ids.length < n) throw new Error('filler too short');
  return ids.slice(0, n);
}

/** The engine in this Node process (same code as `npm run generate`, same tokens/s definition). */
const engine = await Engine.load(fsShardSource(MODEL_DIR));
registerDrafters(engine);
async function nodeTokensPerSecond(drafter: string): Promise<number> {
  const session = engine.createSession();
  const t0 = performance.now();
  let done: Extract<GenerateEvent, { type: 'done' }> | undefined;
  for await (const ev of session.generate({
    promptTokens: engine.encodePrompt(PROMPT),
    maxTokens: MAX,
    sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 },
    drafter,
  })) {
    if (ev.type === 'done') done = ev;
  }
  const total = performance.now() - t0;
  return (done!.usage.completionTokens * 1000) / (total - done!.usage.prefillMs);
}

// 5a. baseline memory: a trivial worker ------------------------------------------------------------------
{
  const mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response("ok") } }' });
  await mf.ready;
  await (await mf.dispatchFetch('http://x/')).text();
  const pid = workerdPids()[0];
  log(`memory baseline (workerd, trivial worker): VmHWM ${(memKb(pid, 'VmHWM') / 1024).toFixed(1)} MiB`);
  await mf.dispose();
}

const INSPECTOR = 9341;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

// 2. cold start ------------------------------------------------------------------------------------------
const tStart = performance.now();
const w = await startWorker(bundle, { inspectorPort: INSPECTOR });
const readyMs = performance.now() - tStart;
const pid = workerdPids()[0];
log(`bundle loaded (workerd ready + R2 seeded): ${readyMs.toFixed(0)} ms; VmHWM ${(memKb(pid, 'VmHWM') / 1024).toFixed(1)} MiB`);
const cold = await stream(w.url, { prompt: PROMPT, max_tokens: 16 });
log(`cold start to first token (first request after startup, model load included): ${cold.ttftMs.toFixed(0)} ms`);

// 3. warm TTFT -------------------------------------------------------------------------------------------
// A fresh isolate's first ~20 rounds include a one-time ~1 s stall (wasm tier-up): warm up past it first.
const warmup = await stream(w.url, { prompt: PROMPT, max_tokens: 100, drafter: 'plain' });
log(`first 100-token generation after the cold start (JIT warm-up): ${warmup.totalMs.toFixed(0)} ms`);
const warm: number[] = [];
for (let i = 0; i < REPS; i++) warm.push((await stream(w.url, { prompt: PROMPT, max_tokens: 16 })).ttftMs);
log(`warm time to first token (new ephemeral session, ${PROMPT.length} chars of prompt): median ${median(warm).toFixed(1)} ms [${warm.map((x) => x.toFixed(0)).join(', ')}]`);
const warmCached: number[] = [];
await stream(w.url, { prompt: PROMPT, max_tokens: 1 }, 'ttft-cached');
for (let i = 0; i < REPS; i++) warmCached.push((await stream(w.url, { prompt: PROMPT, max_tokens: 16 }, 'ttft-cached')).ttftMs);
log(`warm time to first token (session with the prompt cached): median ${median(warmCached).toFixed(1)} ms`);

// 4. tokens/s: API vs engine in Node ---------------------------------------------------------------------
for (const drafter of values.drafters!.split(',')) {
  const api: number[] = [];
  const node: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const r = await stream(w.url, { prompt: PROMPT, max_tokens: MAX, drafter });
    // Same definition as `npm run generate`: completion tokens over the time after prefill (here as the
    // client sees it: HTTP, SSE and the Durable Object hop included).
    const a = (r.completion * 1000) / (r.totalMs - Number(r.ext.prefill_ms));
    const n = await nodeTokensPerSecond(drafter);
    api.push(a);
    node.push(n);
    ratios.push(a / n);
  }
  log(
    `tokens/s [${drafter}, greedy, ${MAX} max tokens]: API ${median(api).toFixed(1)} (streamed, end to end minus prefill) vs engine in Node ${median(node).toFixed(1)}; ` +
      `median API/Node ratio ${median(ratios).toFixed(2)}`,
  );
}

// 5b. peak memory after a long context -------------------------------------------------------------------
let peak = { usedSize: 0, totalSize: 0, backingStorageSize: 0, sum: 0 };
const insp = await isolateInspector(INSPECTOR);
const sample = async () => {
  const h = await insp.heap();
  const sum = h.usedSize + h.backingStorageSize;
  if (sum > peak.sum) peak = { ...h, sum };
};
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    await sample().catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
  }
})();
// One session of 500 tokens, then four at once (each holds ~6 MB of KV), then one more sample.
await stream(w.url, { prompt: promptOf(350), max_tokens: 150 }, 'mem-single');
await sample();
log(`isolate heap after one 500-token session: JS heap used ${mib(peak.usedSize)} MiB + ArrayBuffer backing stores ${mib(peak.backingStorageSize)} MiB (+ ORT wasm heap below)`);
await Promise.all([0, 1, 2, 3].map((i) => stream(w.url, { prompt: promptOf(350), max_tokens: 150 }, i ? `mem-${i}` : 'mem')));
sampling = false;
await sampler;
await sample();
await insp.gc(w.url);
const retained = await insp.heap();
insp.close();
log(
  `  after a full GC (what the model + 5 idle sessions retain): JS heap ${mib(retained.usedSize)} MiB + backing stores ${mib(retained.backingStorageSize)} MiB (+ ORT wasm heap)`,
);
log(
  `isolate heap (V8 inspector, Runtime.getHeapUsage, peak of samples while 4 sessions of 500 tokens ran): ` +
    `JS heap used ${mib(peak.usedSize)} MiB (total ${mib(peak.totalSize)}) + ArrayBuffer backing stores ${mib(peak.backingStorageSize)} MiB = ${mib(peak.sum)} MiB`,
);
const info = (await (await fetch(`${w.url}v1/sessions/mem`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as {
  tokens: number;
  isolate: { wasm_heap_bytes: number | null };
};
const wasm = info.isolate.wasm_heap_bytes ?? NaN;
log(
  `ORT wasm heap (shared memory, not in the V8 numbers above): ${mib(wasm)} MiB → isolate peak ≈ ${mib(peak.sum + wasm)} MiB ` +
    `(4 sessions of ${info.tokens} tokens, 6 MiB of KV each); whole workerd process VmHWM ${(memKb(pid, 'VmHWM') / 1024).toFixed(1)} MiB`,
);
await w.dispose();

// 6. restore after eviction: KV vs recompute -------------------------------------------------------------
for (const ctx of [64, 192, 448]) {
  const rows: string[] = [];
  for (const mode of ['always', 'never'] as const) {
    const kv: number[] = [];
    const pre: number[] = [];
    const persistMs: number[] = [];
    const ttft: number[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'ctc-edge-evict-'));
      let mw = await startWorker(bundle, { persist: dir, vars: { KV_PERSIST: mode } });
      // A session of ctx tokens: a prompt of ctx - 8 token ids, 8 generated.
      const prompt = promptOf(ctx - 8);
      const first = await stream(mw.url, { prompt, max_tokens: 8 }, 'ev');
      persistMs.push(Number(first.ext.persist_ms));
      await mw.dispose();
      mw = await startWorker(bundle, { persist: dir, vars: { KV_PERSIST: mode } });
      // Load the model and warm the isolate's JIT first (a fresh isolate's first rounds include a one-time
      // ~1 s wasm tier-up stall), so only the restore itself is timed.
      await stream(mw.url, { prompt: promptOf(200), max_tokens: 64, drafter: 'plain' });
      const r = await stream(mw.url, { prompt: '', continue: true, max_tokens: 4 }, 'ev');
      const restore = r.ext.restore as { ms: number; tokens: number };
      kv.push(restore.ms);
      pre.push(Number(r.ext.prefill_ms));
      ttft.push(r.ttftMs);
      await mw.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
    rows.push(
      `${mode === 'always' ? 'KV restore' : 'recompute '}: restore ${median(kv).toFixed(1)} ms + prefill ${median(pre).toFixed(1)} ms = ${(median(kv) + median(pre)).toFixed(1)} ms` +
        ` (TTFT ${median(ttft).toFixed(0)} ms; persist after request 1: ${median(persistMs).toFixed(1)} ms)`,
    );
  }
  log(`session of ~${ctx} tokens after eviction:\n  ${rows.join('\n  ')}`);
}
rmSync(bundle, { recursive: true, force: true });
