/**
 * Drafters side by side, in Node (onnxruntime-web wasm, one thread), greedy decoding.
 *
 *   npm run bench -- [--prompts bench/prompts.jsonl] [--limit N] [--max-tokens 64] [--max-prompt-tokens N]
 *                    [--drafters plain,ngram,medusa,ctc,ctc-ngram,oracle] [--budget 16] [--beam 8] [--top-m 4]
 *                    [--min-weight 0] [--json bench-results/bench.json] [--model model-shards/default]
 *   npm run bench -- --api http://127.0.0.1:8787 [--api-key sk-local-dev] ...   (through the HTTP API)
 *
 * Prompts longer than --max-prompt-tokens keep <s> and their last tokens; the default (0) keeps as
 * much as the context allows: prompt + max tokens <= the model's context (512). Prompt files:
 * bench/prompts.jsonl (held-out corpus files, short), bench/prompts-thirdparty.jsonl (third-party
 * Python, short), bench/prompts-long.jsonl (third-party Python, 300-450 tokens).
 *
 * A drafter may carry its own settings: `ctc:budget=12:beam=4:minw=0.02`, `medusa:topm=3`,
 * `ngram:minw=0.2`, so variants run interleaved in one pass (keys: budget, beam, topm, minw,
 * maxlen, tree=prefix|weighted|rank, cost (cost-aware size, R = fixed/per-node cost), minprob (medusa),
 * maxn (ngram); for the head + lookup drafters (ctc-ngram, ctc2-ngram, medusa2-ngram): mode=merge|switch,
 * skip (merge: skip the head when the lookup expects this many tokens), hcost (merge: R of the merged
 * tree's cut), minmatch (switch: shortest repeat that replaces the head)).
 *
 * Interleaving: for each prompt every drafter runs once (plain first: its output is the oracle's
 * reference; the others in an order rotated per prompt), so machine noise (this VM has heavy steal
 * time) hits all drafters alike. Speedup = median over prompts of (drafter tok/s / plain tok/s).
 * tokens/s counts completion tokens over decoding time (prefill excluded; every drafter runs on a
 * fresh session, so prefill is the same work for all). τ = tokens emitted per base-model call.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    prompts: { type: 'string', default: 'bench/prompts.jsonl' },
    limit: { type: 'string', default: '0' },
    'max-tokens': { type: 'string', default: '64' },
    'max-prompt-tokens': { type: 'string', default: '0' },
    drafters: { type: 'string', default: 'plain,ngram,medusa,ctc,ctc-ngram,oracle' },
    budget: { type: 'string', default: '16' },
    beam: { type: 'string' },
    'top-m': { type: 'string' },
    'min-weight': { type: 'string' },
    json: { type: 'string', default: 'bench-results/bench.json' },
    model: { type: 'string', default: 'model-shards/default' },
    api: { type: 'string' },
    'api-key': { type: 'string', default: 'sk-local-dev' },
    'api-model': { type: 'string', default: 'default' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url)).toString().split('*/')[0] + '*/\n');
  process.exit(0);
}

export interface DrafterSummary {
  tokens_per_s: number;
  tau: number;
  mean_tree_size: number;
  draft_ms: number;
  verify_ms: number;
  speedup: number;
  identical: number;
  prompts: number;
  [k: string]: unknown;
}

export interface PromptRun {
  tokens: number[];
  decodeMs: number;
  rounds: number;
  treeNodes: number;
  draftMs: number;
  verifyMs: number;
  accepted: number;
}

export function num(v: string | undefined, name: string): number {
  const x = Number(v);
  if (!Number.isFinite(x)) {
    process.stderr.write(`--${name}: not a number: ${v}\n`);
    process.exit(2);
  }
  return x;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function readPrompts(path: string, limit: number): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    process.stderr.write(`cannot read prompts file ${path} (JSONL, one {"prompt": ...} per line)\n`);
    process.exit(2);
  }
  const prompts = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
  return limit > 0 ? prompts.slice(0, limit) : prompts;
}

/** Summaries from per-prompt runs; `plainRuns[i]` is the baseline of prompt i. */
export function summarize(runs: (PromptRun | null)[], plainRuns: (PromptRun | null)[]): DrafterSummary {
  let tokens = 0, ms = 0, rounds = 0, nodes = 0, draft = 0, verify = 0, identical = 0, prompts = 0, accepted = 0;
  const ratios: number[] = [];
  runs.forEach((r, i) => {
    const p = plainRuns[i];
    if (!r) return;
    prompts++;
    tokens += r.tokens.length;
    ms += r.decodeMs;
    rounds += r.rounds;
    nodes += r.treeNodes;
    draft += r.draftMs;
    verify += r.verifyMs;
    accepted += r.accepted;
    if (p) {
      if (p.tokens.length === r.tokens.length && p.tokens.every((t, j) => t === r.tokens[j])) identical++;
      if (r.decodeMs > 0 && p.decodeMs > 0) ratios.push((r.tokens.length / r.decodeMs) / (p.tokens.length / p.decodeMs));
    }
  });
  return {
    tokens_per_s: (tokens * 1000) / Math.max(ms, 1e-9),
    tau: tokens / Math.max(rounds, 1),
    mean_tree_size: nodes / Math.max(rounds, 1),
    draft_ms: draft / Math.max(rounds, 1),
    verify_ms: verify / Math.max(rounds, 1),
    speedup: median(ratios),
    identical,
    prompts,
    tokens,
    rounds,
    accepted_per_round: accepted / Math.max(rounds, 1),
  };
}

export function machineInfo(): Record<string, unknown> {
  const c = cpus();
  let steal: number | null = null;
  try {
    const stat = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = stat.reduce((a, b) => a + b, 0);
    steal = total > 0 ? stat[7] / total : null; // since boot
  } catch {
    /* not Linux */
  }
  return {
    cpu: c[0]?.model,
    cores: c.length,
    platform: `${platform()} ${release()}`,
    node: process.version,
    loadavg: loadavg(),
    steal_fraction_since_boot: steal,
    date: new Date().toISOString(),
  };
}

export function printTable(rows: [string, DrafterSummary][], extraNote = ''): string {
  const head = ['drafter', 'tok/s', 'tau', 'tree', 'draft ms', 'verify ms', 'speedup', 'identical'];
  const body = rows.map(([name, s]) => [
    name,
    s.tokens_per_s.toFixed(1),
    s.tau.toFixed(2),
    s.mean_tree_size.toFixed(1),
    s.draft_ms.toFixed(2),
    s.verify_ms.toFixed(2),
    Number.isFinite(s.speedup) ? `${s.speedup.toFixed(2)}x` : '-',
    `${s.identical}/${s.prompts}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
  return out + (extraNote ? `\n${extraNote}` : '') + '\n';
}

/** Hand-written SVG: two panels (speedup over plain, τ) with one bar per drafter, each panel on its own scale. */
export function renderSvg(rows: [string, DrafterSummary][], title: string): string {
  const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const barW = 34, gap = 14, left = 50, top = 48, plotH = 220;
  const panelW = left + rows.length * (barW + gap) + 20;
  const W = panelW * 2 + 20, H = top + plotH + 110;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  const panel = (x0: number, label: string, color: string, value: (s: DrafterSummary) => number, fmt: (v: number) => string, ref: number) => {
    const vals = rows.map(([, s]) => (Number.isFinite(value(s)) ? value(s) : 0));
    const maxV = Math.max(ref * 1.2, ...vals) * 1.08;
    const step = maxV > 20 ? 5 : maxV > 8 ? 2 : maxV > 3 ? 1 : 0.5;
    const y = (v: number) => top + plotH - (plotH * v) / maxV;
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 14}" text-anchor="middle" font-size="12">${esc(label)}</text>`);
    for (let v = 0; v <= maxV; v += step) {
      out.push(`<line x1="${x0 + left - 4}" x2="${x0 + panelW - 10}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`);
      out.push(`<text x="${x0 + left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v}</text>`);
    }
    out.push(`<line x1="${x0 + left - 4}" x2="${x0 + panelW - 10}" y1="${y(ref).toFixed(1)}" y2="${y(ref).toFixed(1)}" stroke="#888" stroke-dasharray="4 3"/>`);
    rows.forEach(([name], i) => {
      const v = vals[i];
      const x = x0 + left + i * (barW + gap);
      out.push(`<rect x="${x}" y="${y(v).toFixed(1)}" width="${barW}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${color}"/>`);
      out.push(`<text x="${x + barW / 2}" y="${(y(v) - 4).toFixed(1)}" text-anchor="middle">${esc(fmt(v))}</text>`);
      const lx = x + barW / 2, ly = top + plotH + 10;
      out.push(`<text x="${lx}" y="${ly}" text-anchor="end" transform="rotate(-40 ${lx} ${ly})">${esc(name.length > 22 ? name.slice(0, 21) + '…' : name)}</text>`);
    });
  };
  panel(0, 'speedup over plain (median of per-prompt tok/s ratios)', '#3b7dd8', (s) => s.speedup, (v) => `${v.toFixed(2)}x`, 1);
  panel(panelW + 20, 'τ: tokens per base-model call', '#e8a33d', (s) => s.tau, (v) => v.toFixed(2), 1);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export function writeOutputs(jsonPath: string, result: Record<string, unknown>, rows: [string, DrafterSummary][], title: string): void {
  const abs = resolve(jsonPath);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, JSON.stringify(result, null, 2) + '\n');
  const svgPath = abs.replace(/\.json$/, '') + '.svg';
  writeFileSync(svgPath, renderSvg(rows, title));
  process.stderr.write(`wrote ${abs} and ${svgPath}\n`);
}

/** "ctc:budget=12:beam=4" -> { base: 'ctc', params: {budget: '12', beam: '4'} } */
export function parseDrafterSpec(spec: string): { base: string; params: Record<string, string> } {
  const [base, ...rest] = spec.split(':');
  const params: Record<string, string> = {};
  for (const kv of rest) {
    const [k, v] = kv.split('=');
    if (!k || v === undefined) throw new Error(`bad drafter spec "${spec}" (use name:key=value:...)`);
    params[k] = v;
  }
  return { base, params };
}

async function main(): Promise<void> {
  if (values.api) {
    const { runApiBench } = await import('./bench-api.js');
    await runApiBench(values as Record<string, string | boolean | undefined>);
    return;
  }
  const { Engine, wasmHeapBytes } = await import('../src/engine/index.js');
  const { fsShardSource } = await import('../src/node/fs-shard-source.js');
  const { NgramDrafter, OracleDrafter, MedusaDrafter, CTCDrafter, HybridDrafter, DraftHeadSession, ctcHeadConfig, drafterFactories } = await import('../src/engine/drafters/index.js');
  type Drafter = import('../src/engine/types.js').Drafter;

  const maxTokens = num(values['max-tokens'], 'max-tokens');
  const globalBudget = num(values.budget, 'budget');
  const maxPromptArg = num(values['max-prompt-tokens'], 'max-prompt-tokens');
  const prompts = readPrompts(values.prompts!, num(values.limit, 'limit'));
  const specs = values.drafters!.split(',').map((s) => s.trim()).filter(Boolean);
  if (!specs.includes('plain')) specs.unshift('plain');

  const t0 = performance.now();
  const engine = await Engine.load(fsShardSource(values.model!));
  const loadMs = performance.now() - t0;
  const m = engine.manifest;
  const maxPromptTokens = Math.min(maxPromptArg > 0 ? maxPromptArg : Infinity, engine.maxContext - maxTokens);
  const d = engine.config.d_model;
  const V = engine.config.vocab_size;
  const oracle = new OracleDrafter([]);
  const budgets = new Map<string, number>();

  for (const spec of specs) {
    const { base, params } = parseDrafterSpec(spec);
    const p = (k: string) => (params[k] !== undefined ? num(params[k], `${spec} ${k}`) : undefined);
    budgets.set(spec, p('budget') ?? globalBudget);
    const beam = p('beam') ?? (values.beam !== undefined ? num(values.beam, 'beam') : undefined);
    const topM = p('topm') ?? (values['top-m'] !== undefined ? num(values['top-m'], 'top-m') : undefined);
    const minW = p('minw') ?? (values['min-weight'] !== undefined ? num(values['min-weight'], 'min-weight') : undefined);
    const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
    const hybrid = defined({ mode: params.mode as 'merge' | 'switch' | undefined, minMatch: p('minmatch'), skipHead: p('skip'), costRatio: p('hcost') });
    let factory: (() => Promise<Drafter> | Drafter) | null = null;
    switch (base) {
      case 'plain':
        factory = null; // registered by the engine
        break;
      case 'ngram':
        factory = () => new NgramDrafter(defined({ minWeight: minW, maxN: p('maxn'), costRatio: p('cost') }));
        break;
      case 'oracle':
        factory = () => oracle;
        break;
      case 'medusa': {
        if (!m.files.medusa_head) throw new Error('the model has no medusa_head');
        const c = m.files.medusa_head.config ?? {};
        factory = async () =>
          new MedusaDrafter(new DraftHeadSession(await engine.artifactSession('medusa_head'), d, 'logits'),
            { k: typeof c.k === 'number' ? c.k : 8, vocab_size: V }, defined({ topM, minProb: p('minprob') ?? minW, costRatio: p('cost') }));
        break;
      }
      case 'ctc':
      case 'ctc-ngram': {
        if (!m.files.ctc_head) throw new Error('the model has no ctc_head');
        const cfg = ctcHeadConfig(m.files.ctc_head.config, V);
        const tree = params.tree as 'prefix' | 'weighted' | 'rank' | undefined;
        const makeCtc = async () =>
          new CTCDrafter(new DraftHeadSession(await engine.artifactSession('ctc_head'), d, 'log_probs'), cfg,
            defined({ beamWidth: beam, topM, minWeight: minW, maxLen: p('maxlen'), tree, costRatio: p('cost') }));
        factory = base === 'ctc' ? makeCtc
          : async () => new HybridDrafter(await makeCtc(), new NgramDrafter(defined({ maxN: p('maxn') })), hybrid);
        break;
      }
      default: {
        // any other drafter the engine registers for this manifest (ctc2, ctc2-ngram, medusa2, ...)
        const f = drafterFactories(m, {
          ctc: defined({ beamWidth: beam, topM, minWeight: minW, costRatio: p('cost') }),
          medusa: defined({ topM, minProb: p('minprob'), costRatio: p('cost') }),
          ngram: defined({ maxN: p('maxn') }),
          hybrid,
        })[base];
        if (!f) throw new Error(`unknown drafter ${base}`);
        factory = () => f(engine);
      }
    }
    if (factory) engine.registerDrafter(spec, factory);
  }

  process.stderr.write(`model ${values.model} loaded in ${loadMs.toFixed(0)} ms; ${prompts.length} prompts x ${specs.length} drafters, ${maxTokens} new tokens each\n`);

  const runs = new Map<string, (PromptRun | null)[]>(specs.map((s) => [s, []]));
  const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };
  // warm-up (first runs pay JIT and allocation)
  for (const spec of specs) {
    const s = engine.createSession();
    for await (const _ of s.generate({ promptTokens: engine.encodePrompt('def main():'), maxTokens: 8, sampling: greedy, drafter: spec, treeBudget: budgets.get(spec) })) void _;
  }

  for (let i = 0; i < prompts.length; i++) {
    let promptTokens = engine.encodePrompt(prompts[i]);
    if (promptTokens.length > maxPromptTokens) promptTokens = [promptTokens[0], ...promptTokens.slice(promptTokens.length - maxPromptTokens + 1)];
    const others = specs.filter((s) => s !== 'plain');
    const order = ['plain', ...others.map((_, j) => others[(i + j) % others.length])];
    for (const spec of order) {
      const session = engine.createSession();
      let treeNodes = 0, rounds = 0, draftMs = 0, verifyMs = 0, accepted = 0;
      const tokens: number[] = [];
      let prefillMs = 0;
      const tStart = performance.now();
      for await (const ev of session.generate({
        promptTokens,
        maxTokens,
        sampling: greedy,
        drafter: spec,
        treeBudget: budgets.get(spec),
        onRound: (st) => {
          rounds++;
          treeNodes += st.treeSize;
          draftMs += st.draftMs;
          verifyMs += st.verifyMs;
          accepted += st.accepted;
        },
      })) {
        if (ev.type === 'tokens') tokens.push(...ev.tokens);
        else prefillMs = ev.usage.prefillMs;
      }
      const decodeMs = performance.now() - tStart - prefillMs;
      if (spec === 'plain') oracle.setReference([...promptTokens, ...tokens]);
      runs.get(spec)!.push({ tokens, decodeMs, rounds, treeNodes, draftMs, verifyMs, accepted });
    }
    if (!values.quiet) {
      const pr = runs.get('plain')![i]!;
      const line = specs
        .map((s) => {
          const r = runs.get(s)![i]!;
          return `${s} ${((r.tokens.length * 1000) / r.decodeMs).toFixed(0)}/s τ${(r.tokens.length / Math.max(1, r.rounds)).toFixed(1)}${s !== 'plain' && r.tokens.join() !== pr.tokens.join() ? ' DIFF' : ''}`;
        })
        .join(' | ');
      process.stderr.write(`[${i + 1}/${prompts.length}] ${line}\n`);
    }
  }

  const plainRuns = runs.get('plain')!;
  const rows: [string, DrafterSummary][] = specs.map((s) => [s, summarize(runs.get(s)!, plainRuns)]);
  const options = {
    prompts: values.prompts,
    n_prompts: prompts.length,
    max_tokens: maxTokens,
    max_prompt_tokens: maxPromptTokens,
    budget: globalBudget,
    beam: values.beam ?? null,
    top_m: values['top-m'] ?? null,
    min_weight: values['min-weight'] ?? null,
    model: values.model,
    runtime: 'onnxruntime-web wasm, 1 thread, Node',
    greedy: true,
  };
  const heap = wasmHeapBytes();
  const result = {
    drafters: Object.fromEntries(rows),
    machine: machineInfo(),
    options,
    model: { name: m.name, created: m.created, files: Object.keys(m.files), metrics: m.metrics ?? null },
    wasm_heap_mib: heap === null ? null : heap / 2 ** 20,
  };
  process.stdout.write('\n' + printTable(rows, `(${prompts.length} prompts, ${maxTokens} new tokens, budget ${globalBudget}; speedup = median per-prompt tok/s ratio vs plain)`));
  writeOutputs(values.json!, result, rows, `ctc-edge drafters: ${prompts.length} prompts, ${maxTokens} tokens, 1 wasm thread`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(join(dirname(new URL(import.meta.url).pathname), 'bench.ts'))) {
  main().catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
