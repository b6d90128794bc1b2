/**
 * Statistics for the sampling tests: a chi-square goodness-of-fit test against an exact
 * distribution, with its p-value from the regularized upper incomplete gamma function.
 */

/** Chi-square goodness of fit (bins with expected count < 5 pooled), and total variation.
 *  observed[i]: count of outcome i in n samples; exact[i]: its exact probability. */
export function goodnessOfFit(observed: ArrayLike<number>, exact: ArrayLike<number>, n: number) {
  let chi2 = 0, bins = 0, poolO = 0, poolE = 0, tv = 0;
  for (let i = 0; i < exact.length; i++) {
    tv += Math.abs(observed[i] / n - exact[i]) / 2;
    const e = exact[i] * n;
    if (e < 5) { poolO += observed[i]; poolE += e; continue; }
    chi2 += (observed[i] - e) ** 2 / e;
    bins++;
  }
  if (poolE > 0) { chi2 += (poolO - poolE) ** 2 / Math.max(poolE, 1e-9); bins++; }
  const df = bins - 1;
  return { chi2, df, pValue: gammaQ(df / 2, chi2 / 2), tv };
}

/** Regularized upper incomplete gamma Q(a, x) (Numerical Recipes: series / continued fraction). */
export function gammaQ(a: number, x: number): number {
  const gln = lgamma(a);
  if (x < a + 1) {
    let sum = 1 / a, del = sum, ap = a;
    for (let n = 0; n < 1000; n++) { ap += 1; del *= x / ap; sum += del; if (Math.abs(del) < Math.abs(sum) * 1e-15) break; }
    return 1 - sum * Math.exp(-x + a * Math.log(x) - gln);
  }
  let b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b; if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c; if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const del = d * c; h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.exp(-x + a * Math.log(x) - gln) * h;
}
export function lgamma(z: number): number {
  const g = 7, c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61596188607966, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lgamma(1 - z);
  z -= 1;
  let x = c[0];
  for (let i = 1; i < g + 2; i++) x += c[i] / (z + i);
  const t = z + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}
