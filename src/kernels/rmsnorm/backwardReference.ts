import { sigmoid } from '../elementwise/reference.js';

/**
 * Backward of y = w * x * r, r = 1 / sqrt(mean(x^2) + eps) (per row of D), optionally gated:
 * out = y * s, s = sigmoid(gate). With dy = dout * s (dout without a gate) and xhat = x r:
 *   dgate = dout * y * s (1 - s)
 *   dw    = sum over rows of dy * xhat
 *   dx    = r * (w dy - xhat * mean(w dy xhat))
 * (the mean term is the gradient through r: dr/dx = -r^3 x / D). Sums in f64.
 */
export interface RmsnormGradsHost {
  dx: Float32Array;
  dw: Float32Array;
  dgate?: Float32Array;
}

export function rmsnormBackwardReference(
  x: Float32Array,
  w: Float32Array,
  dout: Float32Array,
  rows: number,
  D: number,
  eps: number,
  gate?: Float32Array,
): RmsnormGradsHost {
  const dx = new Float32Array(rows * D);
  const dw = new Float64Array(D);
  const dgate = gate ? new Float32Array(rows * D) : undefined;
  const dy = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[o + i] ** 2;
    const inv = 1 / Math.sqrt(ss / D + eps);
    let dot = 0;
    for (let i = 0; i < D; i++) {
      const xhat = x[o + i] * inv;
      if (gate) {
        const s = sigmoid(gate[o + i]);
        dgate![o + i] = dout[o + i] * w[i] * xhat * s * (1 - s);
        dy[i] = dout[o + i] * s;
      } else dy[i] = dout[o + i];
      dw[i] += dy[i] * xhat;
      dot += w[i] * dy[i] * xhat;
    }
    dot /= D;
    for (let i = 0; i < D; i++) dx[o + i] = inv * (w[i] * dy[i] - x[o + i] * inv * dot);
  }
  return { dx, dw: Float32Array.from(dw), dgate };
}
