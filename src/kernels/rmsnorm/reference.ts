import { sigmoid } from '../elementwise/reference.js';

/**
 * rmsnorm(x, w, eps) = w * x / sqrt(mean(x^2) + eps) over the last dimension (KIMI-LINEAR.md), with
 * the sum of squares accumulated in f64. With a gate (KDA's output gate) the result is further
 * multiplied by sigmoid(gate), elementwise.
 */
export function rmsnormReference(
  x: Float32Array,
  w: Float32Array,
  rows: number,
  D: number,
  eps: number,
  gate?: Float32Array,
): Float32Array {
  const out = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[r * D + i] ** 2;
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) {
      const y = w[i] * x[r * D + i] * inv;
      out[r * D + i] = gate ? y * sigmoid(gate[r * D + i]) : y;
    }
  }
  return out;
}
