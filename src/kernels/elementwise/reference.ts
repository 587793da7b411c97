/**
 * Elementwise math, the definitions the kernels follow. Scalars are computed in f64 and rounded once
 * when stored into the Float32Array result.
 */

/** 1 / (1 + e^-x), written so no intermediate overflows: e = exp(-|x|) <= 1. */
export function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export function silu(x: number): number {
  return x * sigmoid(x);
}

/** log(1 + e^x); above 20 it equals x to f32 precision (e^-20 ~ 2e-9), and exp would overflow later. */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** A scalar function of up to four operands (a, b, c, d) and one uniform scalar s. */
export type ScalarFn = (a: number, b: number, c: number, d: number, s: number) => number;

/**
 * out[i] = f(a[i], b[i % |b|], ...): every operand after the first either matches the output's size
 * or is a trailing-dims operand (e.g. [D] against [N, D]) that repeats for each leading index.
 */
export function elementwiseReference(f: ScalarFn, inputs: readonly Float32Array[], s = 0): Float32Array {
  const n = inputs[0].length;
  const out = new Float32Array(n);
  const [a, b, c, d] = inputs;
  for (let i = 0; i < n; i++) {
    out[i] = f(a[i], b ? b[i % b.length] : 0, c ? c[i % c.length] : 0, d ? d[i % d.length] : 0, s);
  }
  return out;
}
