/**
 * The engine bench's drafters from their specs (`ctc:budget=12:beam=4:minw=0.02`, ./spec.ts). Every drafter
 * is built by the engine's drafterFactories (src/engine/drafters/index.ts) from the spec's settings; only the
 * oracle, which needs the plain run's output as its reference, is the bench's own.
 */
import { CTC_DEFAULTS, drafterFactories, MEDUSA_DEFAULTS, OracleDrafter, type DrafterOptions, type Engine } from '../../src/engine/index.js';
import { num } from './options.js';
import { parseDrafterSpec } from './spec.js';

/** The CLI's defaults for every spec (--budget, --beam, --top-m, --min-weight). */
export interface SpecDefaults {
  budget: number;
  beam?: number;
  topM?: number;
  minWeight?: number;
}

const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/**
 * The factory options of one spec's settings: ngram reads minw, maxn and cost; ctc, medusa and their lookup
 * hybrids (ctc-ngram, medusa-ngram) read beam, topm, minw, maxlen and tree (ctc), minprob and gamma (medusa:
 * its weight exponent), cost, maxn, the hybrid keys, fused (1: the head runs inside greedy verify passes where
 * the model has its fused verify graph; 0, the default: in a run of its own) and win (the head's window: it
 * reads the last win to 2 win positions).
 */
export function specOptions(base: string, params: Record<string, string>, spec: string, defaults: SpecDefaults): DrafterOptions {
  const p = (k: string) => (params[k] !== undefined ? num(params[k], `${spec} ${k}`) : undefined);
  const beamWidth = p('beam') ?? defaults.beam;
  const topM = p('topm') ?? defaults.topM;
  const minWeight = p('minw') ?? defaults.minWeight;
  const hybrid = defined({ mode: params.mode as 'merge' | 'switch' | undefined, minMatch: p('minmatch'), skipHead: p('skip'), costRatio: p('hcost') });
  if (base === 'ngram') return { ngram: defined({ minWeight, sampledMinWeight: p('sminw'), maxN: p('maxn'), costRatio: p('cost') }) };
  const tree = params.tree as 'prefix' | 'weighted' | 'rank' | undefined;
  // sampled trees (T > 0): sw = siblings per depth, dot-separated (2.1.1.1), mincont = the CTC chain's stop
  const widths = params.sw !== undefined ? params.sw.split('.').map((w) => num(w, `${spec} sw`)) : undefined;
  const sampleOf = (d: { widths: readonly number[]; minContinue: number; qTemperature?: number }) =>
    widths || params.mincont !== undefined || params.qtemp !== undefined
      ? { sample: { widths: widths ?? d.widths, minContinue: p('mincont') ?? d.minContinue, qTemperature: p('qtemp') ?? d.qTemperature } }
      : {};
  return {
    ...(params.fused !== undefined ? { fused: params.fused !== '0' } : {}),
    ...(params.win !== undefined ? { headWindow: num(params.win, `${spec} win`) } : {}),
    ctc: { ...defined({ beamWidth, topM, minWeight, maxLen: p('maxlen'), tree, costRatio: p('cost') }), ...sampleOf(CTC_DEFAULTS.sample) },
    medusa: { ...defined({ topM, minProb: p('minprob'), costRatio: p('cost'), weightExponent: p('gamma') }), ...sampleOf(MEDUSA_DEFAULTS.sample) },
    ngram: defined({ maxN: p('maxn'), sampledMinWeight: p('sminw') }),
    hybrid,
  };
}

/**
 * Registers every spec on the engine under its full spec string ("plain" is the engine's own) and returns
 * each spec's tree budget and the oracle (give it the plain run's tokens with setReference before its run).
 */
export function registerSpecs(engine: Engine, specs: string[], defaults: SpecDefaults): { budgets: Map<string, number>; oracle: OracleDrafter } {
  const oracle = new OracleDrafter([]);
  const budgets = new Map<string, number>();
  const files = engine.manifest.files;
  for (const spec of specs) {
    const { base, params } = parseDrafterSpec(spec);
    budgets.set(spec, params.budget !== undefined ? num(params.budget, `${spec} budget`) : defaults.budget);
    const options = specOptions(base, params, spec, defaults);
    if (base === 'plain') continue; // registered by the engine
    if (base === 'oracle') {
      engine.registerDrafter(spec, () => oracle);
      continue;
    }
    const head = base.replace(/-ngram$/, '');
    if ((head === 'ctc' || head === 'medusa') && !files[`${head}_head`]) throw new Error(`the model has no ${head}_head`);
    const factory = drafterFactories(engine.manifest, options)[base];
    if (!factory) throw new Error(`unknown drafter ${base}`);
    engine.registerDrafter(spec, factory);
  }
  return { budgets, oracle };
}
