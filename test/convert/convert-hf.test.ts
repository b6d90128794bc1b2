/**
 * training/convert_hf.py on Llama checkpoints the test writes itself (training/random_llama.py: random
 * weights in the Hugging Face layout): one tied with plain attention (float32 safetensors), one untied
 * with grouped-query attention (bfloat16 safetensors). The converted ONNX, run by onnxruntime-web
 * through the engine, must give the logits of LlamaForCausalLM's forward in PyTorch over the same
 * checkpoint (test/convert/reference.py): to 1e-5 of their magnitude for the fp32 export, within the
 * int8 quantization's error for the shipped one; and the engine must decode the reference's greedy
 * tokens from the converted model folder. Needs Debian's python3 with torch, onnx, numpy and tqdm;
 * without them it says so in one line and skips.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, LanguageModel, loadArtifact, loadManifest, type GenerateEvent } from '../../src/engine/index.js';
import { registerDrafters } from '../../src/engine/drafters/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { PY, PY_MISSING, py, readF32, ROOT } from './python.js';

if (!PY) console.log(`convert-hf: skipped: ${PY_MISSING}`);

const VARIANTS = {
  tied: ['--seed', '1'],
  untied: ['--untied', '--kv-heads', '2', '--dtype', 'bf16', '--rope-theta', '500000', '--rms-eps', '1e-6', '--seed', '2'],
} as const;
type Variant = keyof typeof VARIANTS;
/** <s> then 79 ids: the prefill spans three cache panels of 32. */
const PROMPT = [1, ...Array.from({ length: 79 }, (_, i) => 3 + ((i * 2654435761) % 4093))];
const NEW = 24;

let dir: string;
const out: Record<Variant, { logits: Float32Array; greedy: number[]; margins: number[]; convertLog: string }> = {} as never;

const modelDir = (v: Variant, kind: 'int8' | 'fp32') => join(dir, `${v}-${kind}`);

beforeAll(() => {
  if (!PY) return;
  dir = mkdtempSync(join(tmpdir(), 'ctc-edge-convert-'));
  for (const [v, args] of Object.entries(VARIANTS) as [Variant, readonly string[]][]) {
    const hf = join(dir, `hf-${v}`);
    py(['-m', 'training.random_llama', hf, ...args]);
    let convertLog = '';
    for (const kind of ['int8', 'fp32'] as const) {
      convertLog += py(['-m', 'training.convert_hf', hf, '--name', v, '--out', modelDir(v, kind), '--checkpoint', join(dir, `ckpt-${v}-${kind}`, 'model.pt'),
        '--onnx', join(dir, `onnx-${v}-${kind}`), ...(kind === 'fp32' ? ['--fp32'] : [])]);
    }
    py(['test/convert/reference.py', hf, join(dir, `ref-${v}`), '--prompt', PROMPT.join(','), '--new', String(NEW)]);
    const ref = JSON.parse(readFileSync(join(dir, `ref-${v}`, 'reference.json'), 'utf8')) as { greedy: number[]; margins: number[] };
    out[v] = { logits: readF32(join(dir, `ref-${v}`, 'logits.f32')), ...ref, convertLog };
  }
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The converted base graph's logits for PROMPT, one prefill through the engine's LanguageModel. */
async function engineLogits(folder: string): Promise<{ logits: Float32Array; quantization: unknown }> {
  const src = fsShardSource(folder);
  const m = await loadManifest(src);
  const model = await LanguageModel.create(await loadArtifact(src, m, 'base'), m.config);
  const { logits } = await model.prefill(PROMPT, model.newCache());
  return { logits, quantization: m.files.base.config?.quantization };
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const x of a) m = Math.max(m, Math.abs(x));
  return m;
}
function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function greedy(engine: Engine, drafter: string): Promise<number[]> {
  const tokens: number[] = [];
  for await (const ev of engine.createSession().generate({ promptTokens: PROMPT, maxTokens: NEW, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 }, drafter }) as AsyncIterable<GenerateEvent>) {
    if (ev.type === 'tokens') tokens.push(...ev.tokens);
  }
  return tokens;
}

describe.skipIf(!PY)('convert_hf: a Hugging Face Llama checkpoint -> this project\'s model folder', () => {
  it('reads safetensors (dtypes, offsets, sharded index) and refuses malformed files', () => {
    expect(py(['test/convert/safetensors_check.py']).trim()).toBe('ok');
  });

  it('checks the converted weights against Llama\'s forward before writing, and says what it did', () => {
    expect(out.tied.convertLog).toMatch(/max \|logit diff\| \d/);
    expect(out.untied.convertLog).toMatch(/grouped-query attention: 2 K\/V heads repeated to 4/);
    expect(out.untied.convertLog).toMatch(/untied, int8-rowwise/);
    expect(out.tied.convertLog).toMatch(/tied, fp32/);
  });

  for (const v of Object.keys(VARIANTS) as Variant[]) {
    it(`${v}: the fp32 export gives PyTorch's logits (to 1e-5 of their magnitude)`, async () => {
      const { logits, quantization } = await engineLogits(modelDir(v, 'fp32'));
      expect(quantization).toBe('fp32');
      const scale = maxAbs(out[v].logits);
      const diff = maxDiff(logits, out[v].logits);
      console.log(`${v} fp32: max |logit diff| ${diff.toExponential(2)} (logits up to ${scale.toFixed(1)})`);
      expect(diff).toBeLessThanOrEqual(1e-5 * scale);
    });

    it(`${v}: the int8 export stays within the quantization's error and keeps the argmax where it is clear`, async () => {
      const { logits, quantization } = await engineLogits(modelDir(v, 'int8'));
      expect(quantization).toBe('int8-rowwise');
      const ref = out[v].logits;
      const V = ref.length / PROMPT.length;
      const scale = maxAbs(ref);
      const diff = maxDiff(logits, ref);
      let agree = 0;
      let clear = 0;
      for (let r = 0; r < PROMPT.length; r++) {
        const row = (a: Float32Array) => a.subarray(r * V, (r + 1) * V);
        const sorted = [...row(ref)].sort((a, b) => b - a);
        if (sorted[0] - sorted[1] <= 2 * diff) continue;
        clear++;
        if (argmax(row(logits)) === argmax(row(ref))) agree++;
      }
      let sum = 0;
      for (let i = 0; i < ref.length; i++) sum += Math.abs(logits[i] - ref[i]);
      console.log(`${v} int8: max |logit diff| ${diff.toFixed(3)}, mean ${(sum / ref.length).toFixed(4)} (logits up to ${scale.toFixed(1)}); ` +
        `argmax kept on ${agree} of ${clear} rows whose top-2 gap exceeds twice the max diff`);
      expect(diff).toBeLessThanOrEqual(0.03 * scale);
      expect(clear).toBeGreaterThanOrEqual(PROMPT.length / 4); // not vacuous
      expect(agree).toBe(clear);
    });

    it(`${v}: the engine decodes the reference's greedy tokens from the converted folder (plain and ngram)`, async () => {
      const fp32 = await Engine.load(fsShardSource(modelDir(v, 'fp32')));
      registerDrafters(fp32);
      const want = out[v].greedy;
      const plain = await greedy(fp32, 'plain');
      expect(plain).toEqual(want);
      expect(await greedy(fp32, 'ngram')).toEqual(plain);
      // int8 rounds the logits, so near ties may go the other way: each token the engine picks must be
      // within the int8 error of the best logit of the PyTorch reference at that point of its own sequence
      const int8 = await Engine.load(fsShardSource(modelDir(v, 'int8')));
      const got = await greedy(int8, 'plain');
      expect(got.length).toBeGreaterThan(0);
      const seq = [...PROMPT, ...got.slice(0, -1)];
      py(['test/convert/reference.py', join(dir, `hf-${v}`), join(dir, `forced-${v}`), '--prompt', seq.join(','), '--new', '0']);
      const ref = readF32(join(dir, `forced-${v}`, 'logits.f32'));
      const V = ref.length / seq.length;
      const tol = 0.03 * maxAbs(out[v].logits);
      let same = 0;
      let worst = 0;
      got.forEach((t, i) => {
        const row = ref.subarray((PROMPT.length - 1 + i) * V, (PROMPT.length + i) * V);
        const best = argmax(row);
        if (best === t) same++;
        worst = Math.max(worst, row[best] - row[t]);
      });
      console.log(`${v} int8 greedy: ${same} of ${got.length} tokens are the reference's argmax; the others trail it by at most ${worst.toFixed(3)}`);
      expect(worst).toBeLessThanOrEqual(tol);
      expect(same).toBeGreaterThan(got.length / 2);
    });
  }

  it('refuses what the graph cannot run, in one clear message', () => {
    const hf = join(dir, 'hf-tied');
    const cfg = JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')) as Record<string, unknown>;
    const bad = join(dir, 'hf-bad');
    py(['-c', `import shutil; shutil.copytree(${JSON.stringify(hf)}, ${JSON.stringify(bad)})`]);
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...cfg, rope_scaling: { rope_type: 'llama3', factor: 8 } }));
    const r = spawnSync(PY!, ['-m', 'training.convert_hf', bad, '--out', join(dir, 'bad-out'), '--checkpoint', join(dir, 'bad.pt'), '--onnx', join(dir, 'bad-onnx')], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^rope_scaling .*llama3.*: only plain rotary positions \(rope_theta\) convert$/);
  });
});

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
