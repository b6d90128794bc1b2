/**
 * The demo page (public/index.html): a prompt, a drafter, temperature and max tokens, and a mode switch.
 *   Edge API         POST /v1/completions with "stream": true (the OpenAI-compatible endpoint any client
 *                    uses); the dev key is pre-filled on localhost only.
 *   In this browser  the engine bundle (build/engine-webgpu.js where WebGPU can run, else engine-wasm.js)
 *                    loads the model from /v1/models/default/files/ with the same key (shards checked, then
 *                    cached) and decodes here.
 * Live figures: tokens/s, τ, draft tokens accepted / rejected, tokens, and what ran it.
 * `window.ctcDemo` exposes the last run (the browser tests read it).
 */
import { detectProvider, type ProviderChoice } from './provider.js';

type EngineBundle = typeof import('./index.js');

interface RunRecord {
  mode: 'api' | 'browser';
  provider: string;
  text: string;
  tokens?: number[];
  tokensPerSecond: number;
  tau: number | null;
  accepted: number;
  rejected: number;
  completionTokens: number;
  finishReason: string;
  drafter: string;
  error?: string;
}

const $ = <T = HTMLElement>(id: string) => document.getElementById(id) as unknown as T;
const state: { last: RunRecord | null; runs: number; bundle: EngineBundle | null; engine: Awaited<ReturnType<EngineBundle['loadBrowserEngine']>> | null; loading: Promise<unknown> | null } = {
  last: null,
  runs: 0,
  bundle: null,
  engine: null,
  loading: null,
};
(window as unknown as { ctcDemo: typeof state }).ctcDemo = state;

const LOCAL = ['localhost', '127.0.0.1', '[::1]'].includes(location.hostname);
const MODEL = 'default';
let controller: AbortController | null = null;
let loadLine = '';

function mode(): 'api' | 'browser' {
  return ((document.querySelector('input[name=mode]:checked') as HTMLInputElement)?.value as 'api' | 'browser') ?? 'api';
}

function setStatus(text: string, error = false) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

function figures(f: { tps?: number | null; tau?: number | null; acc?: number | null; rej?: number | null; tokens?: number | null; provider?: string }) {
  const fmt = (v: number | null | undefined, d = 0) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
  if ('tps' in f) $('f-tps').textContent = fmt(f.tps, 0);
  if ('tau' in f) $('f-tau').textContent = fmt(f.tau, 2);
  if ('acc' in f) $('f-acc').textContent = fmt(f.acc);
  if ('rej' in f) $('f-rej').textContent = fmt(f.rej);
  if ('tokens' in f) $('f-tokens').textContent = fmt(f.tokens);
  if (f.provider !== undefined) $('f-provider').textContent = f.provider;
}

function output(prompt: string) {
  const out = $('out');
  out.textContent = '';
  const p = document.createElement('span');
  p.className = 'p';
  p.textContent = prompt;
  out.appendChild(p);
  const t = document.createElement('span');
  t.className = 'c';
  out.appendChild(t);
  out.dataset.state = 'running';
  return (s: string) => void t.appendChild(document.createTextNode(s));
}

function params() {
  return {
    prompt: $<HTMLTextAreaElement>('prompt').value,
    drafter: $<HTMLSelectElement>('drafter').value,
    temperature: Number($<HTMLInputElement>('temperature').value),
    maxTokens: Math.max(1, Math.min(400, Math.floor(Number($<HTMLInputElement>('max-tokens').value) || 1))),
  };
}

function apiKeyHeader(): Record<string, string> {
  const key = $<HTMLInputElement>('api-key').value.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function runApi(p: ReturnType<typeof params>, append: (s: string) => void, signal: AbortSignal): Promise<RunRecord> {
  const t0 = performance.now();
  const res = await fetch('/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...apiKeyHeader() },
    body: JSON.stringify({ model: MODEL, prompt: p.prompt, max_tokens: p.maxTokens, temperature: p.temperature, drafter: p.drafter || undefined, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok || !res.body) {
    let msg = `HTTP ${res.status}`;
    try {
      msg += `: ${((await res.json()) as { error?: { message?: string } }).error?.message ?? ''}`;
    } catch {
      /* not JSON */
    }
    throw new Error(msg);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', text = '', chunks = 0, finish = '';
  let usage: { completion_tokens: number } | null = null;
  let ext: { draft?: { accepted_tokens: number; rejected_tokens: number; tokens_per_round: number | null }; prefill_ms?: number } | null = null;
  let tFirst = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        const c = j.choices?.[0];
        if (c?.text) {
          if (!tFirst) tFirst = performance.now();
          text += c.text;
          append(c.text);
          chunks++;
          figures({ tokens: null });
          setStatus(`streaming… ${chunks} chunks, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        }
        if (c?.finish_reason) finish = c.finish_reason;
        if (j.usage) usage = j.usage;
        if (j.ctc_edge) ext = j.ctc_edge;
      }
    }
  }
  const ms = performance.now() - (tFirst || t0);
  const n = usage?.completion_tokens ?? 0;
  return {
    mode: 'api',
    provider: 'edge (wasm)',
    text,
    tokensPerSecond: (n * 1000) / Math.max(ms, 1e-9),
    tau: ext?.draft?.tokens_per_round ?? null,
    accepted: ext?.draft?.accepted_tokens ?? 0,
    rejected: ext?.draft?.rejected_tokens ?? 0,
    completionTokens: n,
    finishReason: finish,
    drafter: p.drafter,
  };
}

async function ensureEngine() {
  const choice = $<HTMLSelectElement>('provider').value as ProviderChoice;
  if (state.engine) {
    if (choice !== 'auto' && choice !== state.engine.provider) throw new Error(`this page already runs the model on ${state.engine.provider}: reload the page to switch to ${choice}`);
    return state.engine;
  }
  const info = await detectProvider();
  const want = choice === 'auto' ? info.best : choice;
  if (want === 'webgpu' && !info.webgpu) throw new Error(`WebGPU is not usable here (${info.reason}); choose WebAssembly`);
  setStatus(`loading the engine (${want})…`);
  // a URL, not a specifier: the bundles sit next to this script (build/) and are not bundled into it
  const bundleUrl = new URL(want === 'webgpu' ? './engine-webgpu.js' : './engine-wasm.js', import.meta.url).href;
  state.bundle = (await import(bundleUrl)) as EngineBundle;
  let shards = 0, fromCache = 0;
  state.engine = await state.bundle.loadBrowserEngine({
    // The model's files come from the API, with the key: only a tenant allowed this model can download it.
    modelUrl: `/v1/models/${MODEL}/files/`,
    headers: apiKeyHeader(),
    provider: want,
    verbose: new URLSearchParams(location.search).has('ortVerbose'),
    onShard: (_path, from) => {
      shards++;
      if (from === 'cache') fromCache++;
      setStatus(`loading the model: ${shards} shards (${fromCache} from the cache)…`);
    },
  });
  const s = state.engine.shards;
  loadLine = `Model loaded in ${(state.engine.loadMs / 1000).toFixed(1)} s: ${s.cached} shards from the cache, ${s.fetched} downloaded (${(s.fetchedBytes / 1e6).toFixed(1)} MB); base file ${state.engine.baseFile}${state.engine.providerInfo.adapter ? `, adapter ${state.engine.providerInfo.adapter.vendor} ${state.engine.providerInfo.adapter.architecture}` : ''}.`;
  $('detail').textContent = loadLine;
  return state.engine;
}

async function runBrowser(p: ReturnType<typeof params>, append: (s: string) => void, signal: AbortSignal): Promise<RunRecord> {
  const be = await ensureEngine();
  const bundle = state.bundle!;
  if (p.drafter && !be.engine.drafterNames.includes(p.drafter)) throw new Error(`drafter ${p.drafter} is not available (have: ${be.engine.drafterNames.join(', ')})`);
  const label = be.provider === 'webgpu' ? 'this browser (WebGPU)' : 'this browser (wasm)';
  figures({ provider: label });
  setStatus('generating…');
  const r = await bundle.complete(be.engine, {
    ...p,
    drafter: p.drafter || undefined, // '': the default for the temperature (defaultDrafter)
    signal,
    onText: (t, live) => {
      append(t);
      figures({ tps: live.tokensPerSecond, tau: live.tau, tokens: live.tokens });
    },
  });
  const heap = r.wasmHeapBytes ? `, ORT heap ${(r.wasmHeapBytes / 2 ** 20).toFixed(1)} MiB` : '';
  const js = r.jsHeapBytes ? `, JS heap ${(r.jsHeapBytes / 2 ** 20).toFixed(1)} MiB` : '';
  $('detail').textContent = `${loadLine} ${r.usage.promptTokens} prompt tokens prefilled in ${r.usage.prefillMs.toFixed(0)} ms; ${r.usage.rounds} rounds, mean tree ${(r.treeNodes / Math.max(r.usage.rounds, 1)).toFixed(1)} nodes${heap}${js}.`;
  return {
    mode: 'browser',
    provider: be.provider,
    text: r.text,
    tokens: r.tokens,
    tokensPerSecond: r.tokensPerSecond,
    tau: r.tau,
    accepted: r.usage.acceptedPredictionTokens,
    rejected: r.usage.rejectedPredictionTokens,
    completionTokens: r.usage.completionTokens,
    finishReason: r.finishReason,
    drafter: p.drafter,
  };
}

async function run(ev: Event) {
  ev.preventDefault();
  if (controller) return;
  const p = params();
  const m = mode();
  controller = new AbortController();
  $<HTMLButtonElement>('run').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  figures({ tps: null, tau: null, acc: null, rej: null, tokens: null, provider: m === 'api' ? 'edge (wasm)' : '…' });
  const append = output(p.prompt);
  const out = $('out');
  try {
    const r = m === 'api' ? await runApi(p, append, controller.signal) : await runBrowser(p, append, controller.signal);
    figures({ tps: r.tokensPerSecond, tau: r.tau, acc: r.accepted, rej: r.rejected, tokens: r.completionTokens, provider: r.mode === 'api' ? 'edge (wasm)' : r.provider === 'webgpu' ? 'this browser (WebGPU)' : 'this browser (wasm)' });
    setStatus(`done: ${r.completionTokens} tokens, finish ${r.finishReason}`);
    state.last = r;
  } catch (e) {
    const msg = (e as Error).name === 'AbortError' ? 'stopped' : (e as Error).message;
    setStatus(msg, msg !== 'stopped');
    state.last = { mode: m, provider: '', text: '', tokensPerSecond: 0, tau: null, accepted: 0, rejected: 0, completionTokens: 0, finishReason: 'error', drafter: p.drafter, error: msg };
  } finally {
    state.runs++;
    out.dataset.state = 'done';
    controller = null;
    $<HTMLButtonElement>('run').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

function syncMode() {
  document.body.dataset.mode = mode();
}

function init() {
  if (LOCAL) $<HTMLInputElement>('api-key').value = 'sk-local-dev';
  for (const r of document.querySelectorAll('input[name=mode]')) r.addEventListener('change', syncMode);
  syncMode();
  const temp = $('temperature') as HTMLInputElement;
  temp.addEventListener('input', () => ($('temp-out').textContent = temp.value));
  $('temp-out').textContent = temp.value;
  $('form').addEventListener('submit', run);
  $('stop').addEventListener('click', () => controller?.abort());
  detectProvider().then((i) => {
    const opt = document.querySelector('#provider option[value=webgpu]') as HTMLOptionElement;
    if (!i.webgpu) {
      opt.disabled = true;
      opt.textContent = 'WebGPU (not available here)';
    }
    ($('provider').querySelector('option[value=auto]') as HTMLOptionElement).textContent = `auto (${i.best === 'webgpu' ? 'WebGPU' : 'WebAssembly'})`;
  });
  document.body.dataset.ready = '1';
}

init();
