import type { Conv1dDims } from './reference.js';

/**
 * Backward of the causal depthwise conv (zero initial state, the training form), optionally through
 * silu: with pre[b,t,c] = sum_j w[c,j] x[b,t-(W-1)+j,c] and dpre = dy * silu'(pre) (or dy),
 *   dx[b,s,c] = sum_j w[c,j] dpre[b, s+(W-1)-j, c]     (terms with s+(W-1)-j < T)
 *   dw[c,j]   = sum_{b,t} dpre[b,t,c] x[b, t-(W-1)+j, c] (terms with t-(W-1)+j >= 0)
 * silu'(z) = s (1 + z (1 - s)), s = sigmoid(z). Sums in f64.
 */
export function conv1dBackwardReference(
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
  d: Conv1dDims,
  silu: boolean,
): { dx: Float32Array; dw: Float32Array } {
  const { B, T, C, W } = d;
  const dpre = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        const i = (b * T + t) * C + c;
        if (!silu) {
          dpre[i] = dy[i];
          continue;
        }
        let z = 0;
        for (let j = 0; j < W; j++) {
          const tau = t - (W - 1) + j;
          if (tau >= 0) z += w[c * W + j] * x[(b * T + tau) * C + c];
        }
        const s = 1 / (1 + Math.exp(-z));
        dpre[i] = dy[i] * s * (1 + z * (1 - s));
      }
    }
  }
  const dx = new Float32Array(B * T * C);
  const dw = new Float64Array(C * W);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let j = 0; j < W; j++) {
          const u = t + (W - 1) - j;
          if (u < T) acc += w[c * W + j] * dpre[(b * T + u) * C + c];
          const tau = t - (W - 1) + j;
          if (tau >= 0) dw[c * W + j] += dpre[(b * T + t) * C + c] * x[(b * T + tau) * C + c];
        }
        dx[(b * T + t) * C + c] = acc;
      }
    }
  }
  return { dx, dw: Float32Array.from(dw) };
}
