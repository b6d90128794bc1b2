/**
 * All drafters behind the shared `Drafter` interface, and their factories for `Engine`.
 * Names: plain (no draft; registered by the engine itself), ngram (prompt lookup), ctc and medusa
 * (ONNX draft heads attending over the prefix, prefix-head.ts, when the manifest lists `ctc_head` /
 * `medusa_head`; with `fused: true` and `ctc_fused` / `medusa_fused` the head also runs inside greedy
 * verify passes), and ctc-ngram / medusa-ngram (prompt lookup and the head's candidates merged into
 * one tree). The oracle needs a reference continuation and is benchmark-only (not registered here).
 *
 * A factory runs once per session and drafter name; the head's ORT session is shared through
 * engine.artifactSession() (created once per engine), drafter objects are cheap.
 */
import type { Manifest } from '../types.js';
import type { DrafterFactory, Engine } from '../engine.js';
import { NgramDrafter, type NgramOptions } from './ngram.js';
import { MedusaDrafter, type MedusaOptions } from './medusa.js';
import { CTCDrafter, ctcHeadConfig, type CTCOptions } from './ctc.js';
import { HybridDrafter, type HybridOptions } from './hybrid.js';
import { PrefixHead } from './prefix-head.js';

export { PlainDrafter } from './plain.js';
export { NgramDrafter, NGRAM_DEFAULTS, findNgramMatches, type NgramOptions } from './ngram.js';
export { OracleDrafter } from './oracle.js';
export { MedusaDrafter, MEDUSA_DEFAULTS, type MedusaOptions } from './medusa.js';
export { CTCDrafter, CTC_DEFAULTS, ctcHeadConfig, type CTCOptions } from './ctc.js';
export type { DraftHead } from './draft-head.js';
export { HybridDrafter, HYBRID_DEFAULTS, type HybridOptions } from './hybrid.js';
export { PrefixHead, type PrefixHeadShape } from './prefix-head.js';
export { appendCTCSamples, appendMedusaSamples, sampledContext, type SampledTreeOptions, type SampleTarget } from './sampled.js';
export { defaultDrafter, DRAFTER_PREFERENCE } from './choice.js';

export interface DrafterOptions {
  ngram?: Partial<NgramOptions>;
  medusa?: Partial<MedusaOptions>;
  ctc?: Partial<CTCOptions>;
  hybrid?: Partial<HybridOptions>;
  /**
   * The head inside the verify pass where the manifest has its fused graph (default false). Measured
   * with the head's window on 40 long tuning prompts: ctc 1.31x plain either way, medusa 1.34x fused
   * vs 1.41x on its own, their lookup hybrids 2.07x / 2.06x and 2.00x / 2.09x: the graph's greedy
   * acceptance costs what the saved `session.run()` did, and each fused graph holds a second copy of
   * the base weights (about 12 MiB of wasm heap).
   */
  fused?: boolean;
  /** How far back a head reads, W to 2W positions (PrefixHead.window; 0 = all; default HEAD_WINDOW). */
  headWindow?: number;
}

/**
 * A head reads the last 64 to 128 positions. On 40 long tuning prompts (bench/prompts-tune.jsonl, 64
 * new tokens) against reading every position: ctc 1.38x vs 1.29x plain, medusa 1.48x vs 1.41x, τ
 * 2.47 vs 2.42 and 2.57 vs 2.49 (the head's pass over a 400-token prompt costs ~4 ms instead of ~13,
 * and its attention every round reads at most 128 positions); window 32 cost τ (2.45 vs 2.52 on 12).
 */
export const HEAD_WINDOW = 64;

/** Factories for ngram always; ctc and ctc-ngram, medusa and medusa-ngram when the manifest has their head. */
export function drafterFactories(manifest: Manifest, opts: DrafterOptions = {}): Record<string, DrafterFactory> {
  const out: Record<string, DrafterFactory> = {};
  const d = manifest.config.d_model;
  const V = manifest.config.vocab_size;
  out.ngram = () => new NgramDrafter(opts.ngram);
  const prefixShape = (c: Record<string, unknown>) => {
    const heads = typeof c.n_heads === 'number' ? c.n_heads : 4;
    return { d, heads, headDim: d / heads, maxSeqLen: manifest.config.max_seq_len };
  };
  // A head with its fused verify graph when the manifest has one built from this manifest's base
  // and head files (its logits are the base graph's only then), and only when asked (opts.fused).
  const fusable = (kind: string) => {
    const c = manifest.files[`${kind}_fused`]?.config;
    return opts.fused === true && c?.base_sha256 === manifest.files.base.sha256 && c?.head_sha256 === manifest.files[`${kind}_head`]?.sha256;
  };
  const prefixHead = async (engine: Engine, kind: string, c: Record<string, unknown>, output: string) => {
    const fused = fusable(kind) ? await engine.artifactSession(`${kind}_fused`) : undefined;
    return new PrefixHead(await engine.artifactSession(`${kind}_head`), prefixShape(c), output, fused, opts.headWindow ?? HEAD_WINDOW);
  };
  if (manifest.files.ctc_head) {
    const c = manifest.files.ctc_head.config ?? {};
    const cfg = ctcHeadConfig(c, V);
    const ctc = async (engine: Engine) => new CTCDrafter(await prefixHead(engine, 'ctc', c, 'log_probs'), cfg, opts.ctc);
    out.ctc = ctc;
    out['ctc-ngram'] = async (engine: Engine) => new HybridDrafter(await ctc(engine), new NgramDrafter(opts.ngram), opts.hybrid);
  }
  if (manifest.files.medusa_head) {
    const c = manifest.files.medusa_head.config ?? {};
    const shortlist = Array.isArray(c.shortlist) ? (c.shortlist as number[]) : undefined;
    const cfg = { k: typeof c.k === 'number' ? c.k : 6, vocab_size: typeof c.vocab_size === 'number' ? c.vocab_size : shortlist?.length ?? V, shortlist, model_vocab: V };
    // the head's calibration, measured when it was shipped (MedusaOptions.weightExponent)
    const calibration = typeof c.weight_exponent === 'number' ? { weightExponent: c.weight_exponent } : {};
    const medusa = async (engine: Engine) =>
      new MedusaDrafter(await prefixHead(engine, 'medusa', c, 'logits'), cfg, { ...calibration, ...opts.medusa });
    out.medusa = medusa;
    out['medusa-ngram'] = async (engine: Engine) => new HybridDrafter(await medusa(engine), new NgramDrafter(opts.ngram), opts.hybrid);
  }
  return out;
}

/** Registers the drafters the manifest provides on an engine (drafterFactories). */
export function registerDrafters(engine: Engine, opts: DrafterOptions = {}): void {
  for (const [name, f] of Object.entries(drafterFactories(engine.manifest, opts))) engine.registerDrafter(name, f);
}
