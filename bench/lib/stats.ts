/** What one drafter's runs over the prompts add up to (the rows of the tables and the JSON). */

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
  /** The accept step (target distributions along the walked path, rejection sampling); engine bench only. */
  acceptMs?: number;
  accepted: number;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Summaries from per-prompt runs; `plainRuns[i]` is the baseline of prompt i. */
export function summarize(runs: (PromptRun | null)[], plainRuns: (PromptRun | null)[]): DrafterSummary {
  let tokens = 0, ms = 0, rounds = 0, nodes = 0, draft = 0, verify = 0, acceptMs = 0, identical = 0, prompts = 0, accepted = 0;
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
    acceptMs += r.acceptMs ?? 0;
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
    accept_ms: acceptMs / Math.max(rounds, 1),
    speedup: median(ratios),
    identical,
    prompts,
    tokens,
    rounds,
    accepted_per_round: accepted / Math.max(rounds, 1),
  };
}
