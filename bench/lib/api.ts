/**
 * The API bench: the drafters through the real HTTP API (the Worker in workerd, e.g. `npm start`), streamed
 * completions as a client sees them (the CLIs and their options: bench/bench-api.ts, bench/bench.ts --api).
 * Prompts are fitted to the context as in the engine bench (fitPrompt: <s> and the newest tokens), with the
 * tokenizer and context of --model (the model the server serves as --api-model), and sent as token ids.
 */
import { loadArtifact, loadManifest, TextTokenizer } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { parseDrafterSpec } from './spec.js';
import { DEFAULT_DRAFTERS, num, type BenchValues } from './options.js';
import { fitPrompt, readPrompts } from './prompts.js';
import { machineInfo, printTable, writeOutputs } from './report.js';
import { median, type DrafterSummary } from './stats.js';

interface ApiRun {
  text: string;
  ms: number;
  firstMs: number;
  completion: number;
  accepted: number;
  rejected: number;
  /** From the server's `ctc_edge` usage extension when present. */
  rounds: number | null;
  draftMs: number | null;
  verifyMs: number | null;
}

async function completion(url: string, key: string, body: Record<string, unknown>): Promise<ApiRun> {
  const t0 = performance.now();
  const res = await fetch(`${url.replace(/\/$/, '')}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let text = '';
  let firstMs = 0;
  let usage: Record<string, unknown> | null = null;
  let ext: Record<string, unknown> | null = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data) as { choices?: { text?: string }[]; usage?: Record<string, unknown>; error?: unknown };
      if (chunk.error) throw new Error(`stream error: ${JSON.stringify(chunk.error)}`);
      const piece = chunk.choices?.[0]?.text ?? '';
      if (piece && !firstMs) firstMs = performance.now() - t0;
      text += piece;
      if (chunk.usage) usage = chunk.usage;
      const e = (chunk as { ctc_edge?: Record<string, unknown> }).ctc_edge;
      if (e) ext = e;
    }
  }
  const ms = performance.now() - t0;
  if (!usage) throw new Error('no usage in the stream (stream_options.include_usage)');
  const details = (usage.completion_tokens_details ?? {}) as Record<string, number>;
  return {
    text,
    ms,
    firstMs,
    completion: Number(usage.completion_tokens),
    accepted: Number(details.accepted_prediction_tokens ?? 0),
    // Rejected draft tokens are not part of usage (nothing rejected is emitted): the extension has them.
    rejected: Number((ext?.draft as Record<string, number> | undefined)?.rejected_tokens ?? 0),
    rounds: typeof ext?.rounds === 'number' ? ext.rounds : null,
    draftMs: typeof ext?.draft_ms === 'number' ? ext.draft_ms : null,
    verifyMs: typeof ext?.verify_ms === 'number' ? ext.verify_ms : null,
  };
}

export async function runApiBench(values: BenchValues): Promise<void> {
  const url = String(values.api);
  const key = String(values['api-key'] ?? 'sk-local-dev');
  const model = String(values['api-model'] ?? 'default');
  const maxTokens = num(values['max-tokens'] as string, 'max-tokens');
  const budget = num(values.budget as string, 'budget');
  const texts = readPrompts(String(values.prompts), num(values.limit as string, 'limit'));
  // Fit each prompt to the context (prompt + max tokens <= max_seq_len) as the engine bench does.
  const source = fsShardSource(String(values.model));
  const manifest = await loadManifest(source);
  const tokenizer = new TextTokenizer(await loadArtifact(source, manifest, 'tokenizer'));
  const maxPromptArg = num(values['max-prompt-tokens'] as string, 'max-prompt-tokens');
  const room = Math.min(maxPromptArg > 0 ? maxPromptArg : Infinity, manifest.config.max_seq_len - maxTokens);
  const prompts = texts.map((t) => fitPrompt([manifest.config.bos_id, ...tokenizer.encode(t)], room));
  // The API bench compares plain and CTC by default (the oracle has no API).
  const requested = String(values.drafters ?? '');
  const specs = (requested && requested !== DEFAULT_DRAFTERS ? requested : 'plain,ctc')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'oracle');
  if (!specs.includes('plain')) specs.unshift('plain');

  const runs = new Map<string, ApiRun[]>(specs.map((s) => [s, []]));
  const request = (spec: string, prompt: string | number[]) => {
    const { base, params } = parseDrafterSpec(spec);
    return completion(url, key, {
      model,
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      drafter: base,
      tree_budget: params.budget ? Number(params.budget) : budget,
    });
  };
  process.stderr.write(`API ${url}: ${prompts.length} prompts x ${specs.join(', ')}, ${maxTokens} tokens\n`);
  for (const spec of specs) await request(spec, 'def main():'); // warm-up: model load, JIT
  for (let i = 0; i < prompts.length; i++) {
    const others = specs.filter((s) => s !== 'plain');
    const order = ['plain', ...others.map((_, j) => others[(i + j) % others.length])];
    const line: string[] = [];
    for (const spec of order) {
      const r = await request(spec, prompts[i]);
      runs.get(spec)!.push(r);
      line.push(`${spec} ${((r.completion * 1000) / r.ms).toFixed(0)}/s`);
    }
    if (!values.quiet) process.stderr.write(`[${i + 1}/${prompts.length}] ${line.join(' | ')}\n`);
  }
  const plain = runs.get('plain')!;
  const rows: [string, DrafterSummary][] = specs.map((spec) => {
    const rs = runs.get(spec)!;
    let tok = 0, ms = 0, rounds = 0, nodes = 0, identical = 0, draft = 0, verify = 0, timed = 0;
    const ratios: number[] = [];
    rs.forEach((r, i) => {
      tok += r.completion;
      ms += r.ms;
      const rd = r.rounds ?? Math.max(1, r.completion - r.accepted);
      rounds += rd;
      nodes += rd + r.accepted + r.rejected; // roots + draft tokens verified
      if (r.draftMs !== null && r.verifyMs !== null) {
        draft += r.draftMs;
        verify += r.verifyMs;
        timed += rd;
      }
      if (r.text === plain[i].text) identical++;
      ratios.push((r.completion / r.ms) / (plain[i].completion / plain[i].ms));
    });
    return [spec, {
      tokens_per_s: (tok * 1000) / ms,
      tau: tok / rounds,
      mean_tree_size: nodes / rounds,
      draft_ms: timed ? draft / timed : NaN,
      verify_ms: timed ? verify / timed : NaN,
      speedup: median(ratios),
      identical,
      prompts: rs.length,
      mean_request_ms: ms / rs.length,
      mean_first_token_ms: rs.reduce((a, r) => a + r.firstMs, 0) / rs.length,
    }];
  });
  process.stdout.write('\n' + printTable(rows, `(HTTP API ${url}; tok/s and speedup from wall time per request incl. HTTP and prefill; draft/verify ms per round as reported by the server)`));
  const json = String(values.json ?? 'bench/results/bench.json').replace(/\.json$/, '') + (String(values.json ?? '').includes('api') ? '.json' : '-api.json');
  writeOutputs(json, {
    drafters: Object.fromEntries(rows),
    machine: machineInfo(),
    options: { api: url, model, n_prompts: prompts.length, max_tokens: maxTokens, budget, greedy: true, prompts: values.prompts },
  }, rows, `ctc-edge via HTTP API (workerd): ${prompts.length} prompts, ${maxTokens} tokens`);
}
