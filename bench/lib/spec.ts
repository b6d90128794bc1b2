/**
 * A drafter spec of the bench CLIs: a drafter name with its own settings, so variants run interleaved in one
 * pass (the keys: bench/bench.ts). No engine import here: the API bench sends only the name and budget.
 */

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
