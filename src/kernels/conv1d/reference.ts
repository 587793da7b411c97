/**
 * Causal depthwise conv1d (KDA's short convolution), per batch b, time t, channel c:
 *   y[b,t,c] = sum_j w[c,0,j] * src(b, t-(W-1)+j, c)
 * where src(b, tau, c) = x[b,tau,c] for tau >= 0, and before the sequence start either the carried
 * state (the previous W-1 inputs, state[b, W-1+tau, c]) or zero. The new tail is the last W-1 rows of
 * src: tail[b,i,c] = src(b, T-(W-1)+i, c).
 */
export interface Conv1dDims {
  B: number;
  T: number;
  C: number;
  W: number;
}

function source(x: Float32Array, state: Float32Array | undefined, d: Conv1dDims, b: number, tau: number, c: number) {
  const { T, C, W } = d;
  if (tau >= 0) return x[(b * T + tau) * C + c];
  return state ? state[(b * (W - 1) + (W - 1 + tau)) * C + c] : 0;
}

export function conv1dReference(
  x: Float32Array,
  w: Float32Array,
  state: Float32Array | undefined,
  d: Conv1dDims,
  silu = false,
): Float32Array {
  const { B, T, C, W } = d;
  const y = new Float32Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let j = 0; j < W; j++) acc += w[c * W + j] * source(x, state, d, b, t - (W - 1) + j, c);
        y[(b * T + t) * C + c] = silu ? acc / (1 + Math.exp(-acc)) : acc;
      }
    }
  }
  return y;
}

export function conv1dTailReference(x: Float32Array, state: Float32Array | undefined, d: Conv1dDims): Float32Array {
  const { B, T, C, W } = d;
  const tail = new Float32Array(B * (W - 1) * C);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < W - 1; i++) {
      for (let c = 0; c < C; c++) tail[(b * (W - 1) + i) * C + c] = source(x, state, d, b, T - (W - 1) + i, c);
    }
  }
  return tail;
}
