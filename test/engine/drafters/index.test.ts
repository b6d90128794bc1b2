/**
 * drafterFactories: the drafters a manifest's heads give (ctc, ctc-ngram, medusa, medusa-ngram, each
 * hybrid named after its head); the choice of the fused verify graph: a head runs inside the verify pass
 * only when the manifest's `<kind>_fused` was built from the manifest's own base and head files (its
 * logits are the base graph's only then: a re-exported base, or the browser's WebGPU base variant, must
 * not use it). And a Medusa head takes its calibration from its manifest entry.
 */
import { describe, expect, it } from 'vitest';
import { drafterFactories } from '../../../src/engine/drafters/index.js';
import type { Engine } from '../../../src/engine/engine.js';
import type { Manifest, ManifestFile } from '../../../src/engine/types.js';
import { CTCDrafter } from '../../../src/engine/drafters/ctc.js';
import { HybridDrafter } from '../../../src/engine/drafters/hybrid.js';
import { MedusaDrafter } from '../../../src/engine/drafters/medusa.js';
import type { PrefixHead } from '../../../src/engine/drafters/prefix-head.js';

const file = (sha256: string, config?: Record<string, unknown>): ManifestFile => ({ bytes: 1, sha256, shards: [], config });

function manifest(fusedConfig: Record<string, unknown>): Manifest {
  return {
    format: 1,
    name: 't',
    created: '',
    config: { vocab_size: 8, d_model: 4, n_layers: 1, n_heads: 1, head_dim: 4, ffn_hidden: 8, max_seq_len: 16, kv_panel: 4, bos_id: 1, eos_id: 2 },
    files: {
      base: file('b'.repeat(64)),
      ctc_head: file('h'.repeat(64), { k: 2, slots: 4, vocab_size: 3, blank_id: 3, n_heads: 1, shortlist: [3, 4, 5] }),
      ctc_fused: file('f'.repeat(64), fusedConfig),
    },
  };
}

/** An engine that hands out sessions with the inputs and outputs the drafters check, and records what was asked for. */
function fakeEngine(m: Manifest): { engine: Engine; asked: string[] } {
  const asked: string[] = [];
  const io: Record<string, [string[], string[]]> = {
    ctc_head: [['hidden', 'next_ids', 'position_ids', 'attention_mask', 'past_key', 'past_value'], ['log_probs', 'new_key', 'new_value']],
    ctc_fused: [['head_past_key', 'head_past_value', 'tree_parents', 'tree_ancestors'], ['greedy_ids', 'head_path', 'head_new_key', 'head_new_value', 'head_log_probs']],
    medusa_head: [['hidden', 'next_ids', 'position_ids', 'attention_mask', 'past_key', 'past_value'], ['logits', 'new_key', 'new_value']],
  };
  const engine = {
    manifest: m,
    artifactSession: async (name: string) => {
      asked.push(name);
      const [inputNames, outputNames] = io[name];
      return { inputNames, outputNames };
    },
  } as unknown as Engine;
  return { engine, asked };
}

async function ctcHead(m: Manifest, opts = {}): Promise<{ head: PrefixHead; asked: string[] }> {
  const { engine, asked } = fakeEngine(m);
  const drafter = (await drafterFactories(m, opts).ctc(engine)) as CTCDrafter;
  return { head: drafter.head as PrefixHead, asked };
}

const tree = { tokens: [5, 6], parents: [-1, 0], depths: [0, 1] };

describe('drafterFactories: the drafters of the heads', () => {
  it('ctc and ctc-ngram, medusa and medusa-ngram from ctc_head and medusa_head; a hybrid is named after its head', async () => {
    const m = manifest({});
    m.files = { base: m.files.base, ctc_head: m.files.ctc_head, medusa_head: file('m'.repeat(64), { k: 2, n_heads: 1, vocab_size: 3, shortlist: [3, 4, 5] }) };
    const factories = drafterFactories(m);
    expect(Object.keys(factories).sort()).toEqual(['ctc', 'ctc-ngram', 'medusa', 'medusa-ngram', 'ngram']);
    const { engine, asked } = fakeEngine(m);
    expect(await factories.ctc(engine)).toBeInstanceOf(CTCDrafter);
    expect(await factories.medusa(engine)).toBeInstanceOf(MedusaDrafter);
    for (const [name, head] of [['ctc-ngram', CTCDrafter], ['medusa-ngram', MedusaDrafter]] as const) {
      const h = (await factories[name](engine)) as HybridDrafter;
      expect(h).toBeInstanceOf(HybridDrafter);
      expect(h.name).toBe(name);
      expect(h.head).toBeInstanceOf(head);
      expect([h.lookupRounds, h.headRounds]).toEqual([0, 0]);
    }
    expect([...new Set(asked)].sort()).toEqual(['ctc_head', 'medusa_head']);
    m.files = { base: m.files.base };
    expect(Object.keys(drafterFactories(m))).toEqual(['ngram']);
  });
});

describe('drafterFactories: the fused verify graph', () => {
  const matching = { head: 'ctc_head', base_sha256: 'b'.repeat(64), head_sha256: 'h'.repeat(64) };

  it('is used with fused: true when it records the manifest base and head', async () => {
    const { asked } = await ctcHead(manifest(matching), { fused: true });
    expect(asked.sort()).toEqual(['ctc_fused', 'ctc_head']);
  });

  it('is not used for another base file (a re-export, the WebGPU variant) or another head', async () => {
    for (const cfg of [{ ...matching, base_sha256: 'c'.repeat(64) }, { ...matching, head_sha256: 'c'.repeat(64) }, {}]) {
      const { head, asked } = await ctcHead(manifest(cfg), { fused: true });
      expect(asked, JSON.stringify(cfg)).toEqual(['ctc_head']);
      expect(head.fusedPass([5, 6], tree)).toBeUndefined();
    }
  });

  it('is not used by default, nor with fused: false', async () => {
    for (const opts of [{}, { fused: false }]) {
      const { head, asked } = await ctcHead(manifest(matching), opts);
      expect(asked, JSON.stringify(opts)).toEqual(['ctc_head']);
      expect(head.fusedPass([5, 6], tree)).toBeUndefined();
    }
  });
});

describe('drafterFactories: a Medusa head calibration', () => {
  const medusaManifest = (config: Record<string, unknown>): Manifest => {
    const m = manifest({});
    m.files = { base: m.files.base, medusa_head: file('m'.repeat(64), { k: 2, n_heads: 1, vocab_size: 3, shortlist: [3, 4, 5], ...config }) };
    return m;
  };
  const io = { inputNames: ['hidden', 'next_ids', 'position_ids', 'attention_mask', 'past_key', 'past_value'], outputNames: ['logits', 'new_key', 'new_value'] };
  const engine = { artifactSession: async () => io } as unknown as Engine;
  const exponent = async (m: Manifest, opts = {}) =>
    ((await drafterFactories(m, opts).medusa(engine)) as MedusaDrafter).opts.weightExponent;

  it("comes from the head's manifest entry (1 without one) and the options override it", async () => {
    expect(await exponent(medusaManifest({ weight_exponent: 1.5 }))).toBe(1.5);
    expect(await exponent(medusaManifest({}))).toBe(1);
    expect(await exponent(medusaManifest({ weight_exponent: 1.5 }), { medusa: { weightExponent: 2 } })).toBe(2);
  });
});
