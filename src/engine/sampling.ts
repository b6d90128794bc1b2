/**
 * Target distribution and seeded randomness.
 *
 * Losslessness rests on one rule: plain decoding and every speculative acceptance step compute
 * the target distribution with the SAME function (`targetDistribution`), so the processing
 * (temperature -> top-k -> top-p) can never drift between the two paths.
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

/** True when the parameters mean greedy decoding (temperature 0). */
export function isGreedy(params: SamplingParams): boolean {
  return !(params.temperature > 0);
}

/**
 * Target distribution p [V] from one logits row [V]: temperature -> top-k -> top-p -> normalize.
 * Greedy (temperature 0) gives a one-hot at argmax. Returned in float64 and normalized to sum 1.
 *
 * top-k keeps every token whose scaled logit is >= the k-th largest (ties at the boundary kept).
 * top-p keeps the smallest prefix of tokens sorted by probability (desc, index asc on ties)
 * whose cumulative probability reaches topP; at least one token is always kept.
 */
export function targetDistribution(row: ArrayLike<number>, params: SamplingParams): Float64Array {
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
 * the same order as the index-tie-broken order, so the cut is identical.
 */
function applyTopP(p: Float64Array, topP: number): void {
  const sorted = p.slice().sort(); // ascending
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
export function sampleToken(row: ArrayLike<number>, params: SamplingParams, rng: Rng): number {
  if (isGreedy(params)) return argmax(row);
  return sampleFrom(targetDistribution(row, params), rng);
}
