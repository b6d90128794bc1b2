/**
 * transformers.js vs this engine on the same weights: the default model's Hugging Face export
 * (model-hf/default, `python3 -m training.export_hf`) through `@huggingface/transformers`
 * (AutoTokenizer + AutoModelForCausalLM from the local folder, no network, greedy generate()) and the
 * shipped model (model-shards/default) through the engine's plain decoding, prompt by prompt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/engine/index.js';
import { fsShardSource } from '../../scripts/node/fs-shard-source.js';
import { HF_MODEL_ROOT, loadTransformersJs, type TransformersJsModel, type TransformersJsRuntime } from '../../bench/lib/transformers-js.js';
import { MODEL_DIR, ROOT, requireModel } from '../engine/helpers.js';

export const MAX_NEW_TOKENS = 48;

/**
 * Short prompts, and held-out long ones (300-450 tokens: the attention then spans many panels; the
 * model ends its completion of long prompt 50 with <s> after 4 tokens, so stopping is compared too).
 */
export function equivalencePrompts(): string[] {
  const longAll = readFileSync(join(ROOT, 'bench/prompts-long.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
  const long = [longAll[0], longAll[1], longAll[50]];
  const heldout = readFileSync(join(ROOT, 'bench/prompts.jsonl'), 'utf8').split('\n').filter(Boolean)
    .slice(0, 2).map((l) => (JSON.parse(l) as { prompt: string }).prompt);
  return ['def fib(n):\n', 'import os\nimport sys\n\n\ndef main():\n', '    def write(self, data):\n', ...heldout, ...long];
}

export interface Setup {
  engine: Engine;
  tjs: TransformersJsModel;
}

export async function setup(runtime: TransformersJsRuntime): Promise<Setup> {
  requireModel();
  const onnx = join(HF_MODEL_ROOT, 'default/onnx/model_quantized.onnx');
  if (!existsSync(onnx)) throw new Error(`missing ${onnx}: it is written by /usr/bin/python3 -m training.export_hf`);
  const engine = await Engine.load(fsShardSource(MODEL_DIR));
  const tjs = await loadTransformersJs(runtime);
  return { engine, tjs };
}

/** The engine's prompt ids (<s> + text, what every API request decodes from), maxContext-safe. */
export function promptIds(engine: Engine, text: string): number[] {
  const ids = engine.encodePrompt(text);
  const room = engine.maxContext - MAX_NEW_TOKENS;
  return ids.length > room ? [ids[0], ...ids.slice(ids.length - room + 1)] : ids;
}

export async function enginePlain(engine: Engine, ids: number[], maxTokens = MAX_NEW_TOKENS): Promise<{ tokens: number[]; text: string }> {
  const tokens: number[] = [];
  let text = '';
  for await (const ev of engine.createSession().generate({
    promptTokens: ids, maxTokens, drafter: 'plain', sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 },
  })) {
    if (ev.type === 'tokens') tokens.push(...ev.tokens);
    else text = ev.text;
  }
  return { tokens, text };
}

/** Index of the first differing token, -1 when identical. */
export function firstDifference(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}
