/**
 * Target distribution and seeded randomness.
 *
 * Losslessness rests on one rule: plain decoding and every speculative acceptance step compute
 * the target distribution with the SAME function (`targetDistribution`), so the processing
 * (penalties -> logit bias -> temperature -> top-k -> top-p) can never drift between the two paths.
 * Penalties read the tokens before the position (TokenHistory): at a tree node, the committed tokens
 * plus the path to that node, exactly what plain decoding would have emitted by then.
 */
import type { SamplingParams } from './types.js';

/** xoshiro128**: small, fast, and its whole state is four uint32s (serializable as numbers). */
export class Rng {
  private s: Uint32Array;

  constructor(state: ArrayLike<number>) {
    if (state.length !== 4) throw new Error('Rng state must have 4 uint32 words');
    this.s = Uint32Array.from(state);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // all-zero is a fixed point
  }

  /** Seeds with splitmix32 so that nearby seeds give unrelated streams. Any finite number works. */
  static fromSeed(seed: number): Rng {
    // Fold a (possibly > 2^32 or negative) integer seed into 32 bits, keeping the high part.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
    const state: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      state.push((z ^ (z >>> 16)) >>> 0);
    }
    return new Rng(state);
  }

  /** Next uint32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextU32() >>> 5; // 27 bits
    const b = this.nextU32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** The state as four uint32 numbers (JSON-safe). */
  getState(): number[] {
    return Array.from(this.s);
  }

  clone(): Rng {
    return new Rng(this.s);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Index of the largest value; the FIRST one on ties (same as torch.argmax / numpy.argmax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bestV = row[0];
  for (let i = 1; i < row.length; i++) {
    const v = row[i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/**
 * The tokens before a position, as the penalties see them: how often each token occurs in the prompt
 * and the generated tokens (`seen`, repetition penalty) and in the generated tokens of this request alone
 * (`generated`, frequency and presence penalties).
 */
export class TokenHistory {
  private constructor(
    readonly seen: Map<number, number>,
    readonly generated: Map<number, number>,
  ) {}

  /** The history at the start of a request: its prompt, nothing generated yet. */
  static fromPrompt(prompt: readonly number[]): TokenHistory {
    const h = new TokenHistory(new Map(), new Map());
    for (const t of prompt) h.seen.set(t, (h.seen.get(t) ?? 0) + 1);
    return h;
  }

  /** A generated token. */
  push(t: number): void {
    this.seen.set(t, (this.seen.get(t) ?? 0) + 1);
    this.generated.set(t, (this.generated.get(t) ?? 0) + 1);
  }

  /** An independent copy (a tree walk extends it along one path). */
  fork(): TokenHistory {
    return new TokenHistory(new Map(this.seen), new Map(this.generated));
  }
}

/** True when the parameters change the logits before temperature (penalties or a logit bias). */
export function hasLogitProcessing(params: SamplingParams): boolean {
  return (
    (params.frequencyPenalty ?? 0) !== 0 ||
    (params.presencePenalty ?? 0) !== 0 ||
    (params.repetitionPenalty ?? 1) !== 1 ||
    (params.logitBias !== undefined && Object.keys(params.logitBias).length > 0)
  );
}

/**
 * The logits row after the penalties and the logit bias (a copy; the row itself when there are none):
 * repetition penalty over every seen token (x > 0: x / r, else x * r), then minus frequency * count +
 * presence for each generated token, then plus the bias.
 */
export function processLogits(row: ArrayLike<number>, params: SamplingParams, history?: TokenHistory): ArrayLike<number> {
  if (!hasLogitProcessing(params)) return row;
  const out = Float32Array.from(row);
  const r = params.repetitionPenalty ?? 1;
  if (history && r !== 1) for (const t of history.seen.keys()) out[t] = out[t] > 0 ? out[t] / r : out[t] * r;
  const f = params.frequencyPenalty ?? 0;
  const pr = params.presencePenalty ?? 0;
  if (history && (f !== 0 || pr !== 0)) for (const [t, c] of history.generated) out[t] -= c * f + pr;
  if (params.logitBias) for (const [t, b] of Object.entries(params.logitBias)) out[Number(t)] += b;
  return out;
}

/** True when the parameters mean greedy decoding (temperature 0). */
export function isGreedy(params: SamplingParams): boolean {
  return !(params.temperature > 0);
}

/**
 * Target distribution p [V] from one logits row [V]: penalties and logit bias (processLogits, with the
 * history before the position) -> temperature -> top-k -> top-p -> normalize.
 * Greedy (temperature 0) gives a one-hot at argmax. Returned in float64 and normalized to sum 1.
 *
 * top-k keeps every token whose scaled logit is >= the k-th largest (ties at the boundary kept).
 * top-p keeps the smallest prefix of tokens sorted by probability (desc, index asc on ties)
 * whose cumulative probability reaches topP; at least one token is always kept.
 */
export function targetDistribution(raw: ArrayLike<number>, params: SamplingParams, history?: TokenHistory): Float64Array {
  const row = processLogits(raw, params, history);
  const V = row.length;
  const p = new Float64Array(V);
  if (isGreedy(params)) {
    p[argmax(row)] = 1;
    return p;
  }
  const invT = 1 / params.temperature;
  let threshold = -Infinity;
  const k = params.topK | 0;
  if (k > 0 && k < V) threshold = kthLargest(row, k);
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (row[i] >= threshold && row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const v = row[i];
    if (v >= threshold && v > -Infinity) {
      // A temperature so small that 1/T is Infinity (5e-324) is the greedy limit: 0 * Infinity would be NaN.
      const e = v === max ? 1 : Math.exp((v - max) * invT);
      p[i] = e;
      sum += e;
    }
  }
  for (let i = 0; i < V; i++) p[i] /= sum;
  const topP = params.topP;
  if (topP > 0 && topP < 1) applyTopP(p, topP);
  return p;
}

/**
 * Nucleus cut in place: keeps the smallest prefix of tokens in (probability desc, index asc)
 * order whose cumulative probability reaches topP, then renormalizes. Uses a native numeric
 * sort of the values (no comparator callback): the cumulative sums run over the same values in
 * the same order as the index-tie-broken order, so the cut is identical. Only the values at or above
 * a floor whose mass already reaches topP are sorted (the nucleus lies among them): a verify walk
 * runs this at every node it visits, and a sort of all V values was most of its cost.
 */
function applyTopP(p: Float64Array, topP: number): void {
  const sorted = nucleusCandidates(p, topP).sort(); // ascending
  let cum = 0;
  let j = sorted.length - 1;
  for (; j > 0; j--) {
    cum += sorted[j];
    if (cum >= topP) break;
  }
  const pc = sorted[j]; // the smallest kept value
  let above = 0;
  for (let i = sorted.length - 1; i > j && sorted[i] > pc; i--) above++;
  let tiesLeft = sorted.length - j - above; // how many tokens with p == pc are kept (index asc)
  let kept = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] > pc) kept += p[i];
    else if (p[i] === pc && tiesLeft > 0) {
      tiesLeft--;
      kept += p[i];
    } else p[i] = 0;
  }
  for (let i = 0; i < p.length; i++) p[i] /= kept;
}

/**
 * The values of p at or above the largest floor in 1e-2, 1e-3, ... 1e-6 whose values sum to topP or
 * more (all of p when none does). Sorted descending, the prefix that reaches topP lies inside them.
 */
function nucleusCandidates(p: Float64Array, topP: number): Float64Array {
  for (const floor of [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]) {
    let mass = 0;
    let n = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] >= floor) {
        mass += p[i];
        n++;
      }
    }
    if (mass >= topP) {
      const out = new Float64Array(n);
      let j = 0;
      for (let i = 0; i < p.length; i++) if (p[i] >= floor) out[j++] = p[i];
      return out;
    }
  }
  return p.slice();
}

/** k-th largest value of row (1-based k): quickselect on a copy, O(V) on average. */
function kthLargest(row: ArrayLike<number>, k: number): number {
  const a = Float64Array.from(row as ArrayLike<number>);
  const target = a.length - k; // index in ascending order
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = median3(a[lo], a[(lo + hi) >> 1], a[hi]);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target];
  }
  return a[target];
}

function median3(x: number, y: number, z: number): number {
  return x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
}

/**
 * Draw an index from probabilities p (need not sum to 1: the sum of p is the total mass).
 * Consumes exactly one rng.next(). Throws if p has no mass.
 */
export function sampleFrom(p: ArrayLike<number>, rng: Rng): number {
  let mass = 0;
  for (let i = 0; i < p.length; i++) mass += p[i];
  if (!(mass > 0)) throw new Error('sampleFrom: distribution has no mass');
  const u = rng.next() * mass;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] > 0) {
      cum += p[i];
      last = i;
      if (u < cum) return i;
    }
  }
  return last; // rounding: u landed at the very top of the mass
}

/** Plain sampling of one token from a logits row (what plain decoding does). */
export function sampleToken(row: ArrayLike<number>, params: SamplingParams, rng: Rng, history?: TokenHistory): number {
  if (isGreedy(params)) return argmax(processLogits(row, params, history));
  return sampleFrom(targetDistribution(row, params, history), rng);
}

/** A token's log-probability and the most likely alternatives at one position. */
export interface TokenLogprob {
  token: number;
  logprob: number;
  /** The `top` most likely tokens, most likely first (ties: lower id first). */
  top: { token: number; logprob: number }[];
}

/**
 * Log-probabilities at one position: log-softmax of the logits after the penalties and the logit bias
 * (processLogits), at temperature 1 and before top-k / top-p, so they are defined for greedy decoding
 * too and do not depend on which drafter proposed the token.
 */
export function tokenLogprobs(row: ArrayLike<number>, params: SamplingParams, history: TokenHistory | undefined, token: number, top: number): TokenLogprob {
  const x = processLogits(row, params, history);
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i] - max);
  const lse = max + Math.log(sum);
  const best: number[] = [];
  if (top > 0) {
    // Partial selection of the `top` largest (top <= 20, V ~ 10^4).
    for (let i = 0; i < x.length; i++) {
      if (best.length === top && x[i] <= x[best[best.length - 1]]) continue;
      let j = best.length < top ? best.length : best.length - 1;
      if (best.length < top) best.push(i);
      while (j > 0 && x[best[j - 1]] < x[i]) {
        best[j] = best[j - 1];
        j--;
      }
      best[j] = i;
    }
  }
  return { token, logprob: x[token] - lse, top: best.map((t) => ({ token: t, logprob: x[t] - lse })) };
}
