/**
 * transformers.js (`@huggingface/transformers`) over the default model's Hugging Face export
 * (model-hf/default, written by `python3 -m training.export_hf`), loaded from that local folder with no
 * network (env.allowRemoteModels = false, localModelPath): AutoTokenizer + AutoModelForCausalLM, greedy
 * `generate()`. Used by the anchor bench (`npm run bench -- --anchor transformers.js`) and test/hf/.
 *
 * Two runtimes, chosen once per process (transformers.js picks its ONNX runtime when it is first imported):
 *  - `cpu`: what transformers.js uses in Node out of the box, onnxruntime-node (native), here on one thread;
 *  - `wasm`: what it uses in a browser, onnxruntime-web's wasm backend, here the very onnxruntime-web
 *    module and settings this package's engine runs on (src/engine/ort.ts: 1.30, one thread, SIMD), handed
 *    to transformers.js through the hook it reads for a host-provided runtime, globalThis[Symbol.for(
 *    'onnxruntime')]. In Node transformers.js passes the model as a file path, which onnxruntime-web would
 *    fetch as a URL, so the hook's InferenceSession.create reads the file first. With a host runtime
 *    transformers.js 4.3 lists no devices, so the model is loaded with `device: { model: '' }`: no device
 *    named, hence no execution providers named, and onnxruntime-web uses its wasm backend.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ort } from '../../src/engine/index.js';

export type TransformersJsRuntime = 'wasm' | 'cpu';

export const HF_MODEL_ROOT = resolve(import.meta.dirname, '../../model-hf');

export interface TransformersJsModel {
  runtime: TransformersJsRuntime;
  /** The ONNX runtime it runs on, e.g. "onnxruntime-web 1.30.0 wasm, 1 thread". */
  runtimeName: string;
  /** transformers.js's own version. */
  version: string;
  /** AutoTokenizer's ids of a text (with <s> first, as the tokenizer's post-processor adds it). */
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** The tokenizer's chat template applied to messages, tokenized. */
  chatIds(messages: { role: string; content: string }[]): number[];
  /**
   * Greedy generate() from these prompt ids: the new tokens (with the <s>/eos that ends a completion
   * early, as the engine's token events have it too), and when the first new token came (the end of prefill).
   */
  generate(promptIds: number[], maxNewTokens: number): Promise<{ tokens: number[]; totalMs: number; prefillMs: number }>;
  /** The model's next-token logits [V] after these ids (one forward pass over all of them). */
  logits(ids: number[]): Promise<Float32Array>;
}

let loaded: { runtime: TransformersJsRuntime; model: Promise<TransformersJsModel> } | null = null;

/** Loads transformers.js on `runtime` and the model `name` from model-hf/ (once per process). */
export function loadTransformersJs(runtime: TransformersJsRuntime, name = 'default'): Promise<TransformersJsModel> {
  if (loaded) {
    if (loaded.runtime !== runtime) throw new Error(`transformers.js already runs on ${loaded.runtime} in this process`);
    return loaded.model;
  }
  loaded = { runtime, model: load(runtime, name) };
  return loaded.model;
}

const ORT_SYMBOL = Symbol.for('onnxruntime');

async function load(runtime: TransformersJsRuntime, name: string): Promise<TransformersJsModel> {
  const g = globalThis as Record<symbol, unknown>;
  if (runtime === 'wasm') {
    ort.env.wasm.numThreads = 1;
    // Local wasm files: transformers.js would otherwise point onnxruntime-web at a CDN.
    ort.env.wasm.wasmPaths ??= resolve(import.meta.dirname, '../../node_modules/onnxruntime-web/dist') + '/';
    g[ORT_SYMBOL] = {
      ...ort,
      InferenceSession: {
        create: (model: string | Uint8Array, opts?: ort.InferenceSession.SessionOptions) =>
          ort.InferenceSession.create(typeof model === 'string' ? new Uint8Array(readFileSync(model)) : model, opts),
      },
    };
  } else {
    delete g[ORT_SYMBOL];
  }
  const tf = await import('@huggingface/transformers');
  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = HF_MODEL_ROOT + '/';
  tf.env.useFSCache = false;
  tf.env.useBrowserCache = false;
  const versions = (tf.env.backends.onnx as { versions?: Record<string, string> }).versions ?? {};
  const tokenizer = await tf.AutoTokenizer.from_pretrained(name);
  const model = await tf.AutoModelForCausalLM.from_pretrained(name, {
    dtype: 'q8',
    ...(runtime === 'cpu'
      ? { device: 'cpu' as const, session_options: { intraOpNumThreads: 1, interOpNumThreads: 1 } }
      : { device: { model: '' } as unknown as 'wasm' }),
  });
  return {
    runtime,
    runtimeName: runtime === 'wasm' ? `onnxruntime-web ${versions.web ?? '?'} wasm, 1 thread` : `onnxruntime-node ${versions.node ?? '?'} cpu, 1 thread`,
    version: tf.env.version,
    encode: (text) => (tokenizer(text).input_ids.tolist() as bigint[][])[0].map(Number),
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }),
    chatIds: (messages) => {
      const ids = tokenizer.apply_chat_template(messages, { tokenize: true, return_tensor: false, return_dict: false }) as unknown as number[];
      return ids.map(Number);
    },
    async generate(promptIds, maxNewTokens) {
      const ids = new tf.Tensor('int64', BigInt64Array.from(promptIds.map(BigInt)), [1, promptIds.length]);
      const mask = new tf.Tensor('int64', new BigInt64Array(promptIds.length).fill(1n), [1, promptIds.length]);
      let firstAt = 0;
      let puts = 0;
      const streamer = { put: () => { if (++puts === 2) firstAt = performance.now(); }, end: () => {} };
      const t0 = performance.now();
      const out = (await model.generate({
        input_ids: ids,
        attention_mask: mask,
        max_new_tokens: maxNewTokens,
        do_sample: false,
        streamer: streamer as never,
      })) as { tolist(): bigint[][] };
      const t1 = performance.now();
      const tokens = out.tolist()[0].slice(promptIds.length).map(Number);
      return { tokens, totalMs: t1 - t0, prefillMs: (firstAt || t1) - t0 };
    },
    async logits(promptIds) {
      const ids = new tf.Tensor('int64', BigInt64Array.from(promptIds.map(BigInt)), [1, promptIds.length]);
      const mask = new tf.Tensor('int64', new BigInt64Array(promptIds.length).fill(1n), [1, promptIds.length]);
      const out = (await model({ input_ids: ids, attention_mask: mask })) as { logits: { data: Float32Array; dims: number[] } };
      const V = out.logits.dims[2];
      return Float32Array.from(out.logits.data.subarray(out.logits.data.length - V));
    },
  };
}
