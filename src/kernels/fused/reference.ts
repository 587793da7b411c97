/**
 * Plain-TS definitions of the decode-path fusions (f64 accumulation where the unfused ops have it):
 *  - addRmsnorm: the residual add and the next RMSNorm, y = x + (d0 + d1), n = rmsnorm(y, w);
 *  - convStep: one token of KDA's causal short convolution with its carried tail, the tail shifted in
 *    place, the output split into planes (q, k, v) so each is a dense tensor;
 *  - swigluRows: silu(gate) * up where gate and up are column ranges of one row-major matrix (the
 *    packed gate|up projection).
 */
import { silu } from '../elementwise/reference.js';

export function addRmsnormReference(
  x: Float32Array,
  deltas: readonly Float32Array[],
  w: Float32Array,
  rows: number,
  D: number,
  eps: number,
): { sum: Float32Array; normed: Float32Array } {
  const sum = new Float32Array(rows * D);
  const normed = new Float32Array(rows * D);
  for (let i = 0; i < rows * D; i++) {
    // (d0 + d1) first: the unfused MoE path adds the shared expert to the routed output, then the residual.
    const d = deltas.length === 2 ? Math.fround(deltas[0][i] + deltas[1][i]) : deltas[0][i];
    sum[i] = x[i] + d;
  }
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += sum[r * D + i] ** 2;
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) normed[r * D + i] = w[i] * sum[r * D + i] * inv;
  }
  return { sum, normed };
}

export interface ConvStepDims {
  B: number;
  /** Channels convolved: planes * Cp. */
  C: number;
  W: number;
  /** Row stride of x and the column where channel 0 sits. */
  ld: number;
  xOff: number;
  planes: number;
}

/**
 * y[p, b, c'] = silu(sum_{j<W-1} w[c, j] tail[b, j, c] + w[c, W-1] x[b, xOff + c]) for c = p * Cp + c';
 * then tail[b] drops its oldest row and appends x[b] (in place). Returns y [planes, B, Cp].
 */
export function convStepReference(
  x: Float32Array,
  w: Float32Array,
  tail: Float32Array,
  d: ConvStepDims,
  activation: 'silu' | 'none',
): Float32Array {
  const { B, C, W, ld, xOff, planes } = d;
  const Cp = C / planes;
  const y = new Float32Array(B * C);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const xv = x[b * ld + xOff + c];
      let acc = 0;
      for (let j = 0; j < W - 1; j++) acc += w[c * W + j] * tail[(b * (W - 1) + j) * C + c];
      acc += w[c * W + W - 1] * xv;
      const p = Math.floor(c / Cp);
      // silu as the unfused conv writes it (conv1d/reference.ts).
      y[(p * B + b) * Cp + (c % Cp)] = activation === 'silu' ? acc / (1 + Math.exp(-acc)) : acc;
      for (let j = 0; j < W - 2; j++) tail[(b * (W - 1) + j) * C + c] = tail[(b * (W - 1) + j + 1) * C + c];
      if (W > 1) tail[(b * (W - 1) + W - 2) * C + c] = xv;
    }
  }
  return y;
}

/** y[b, i] = silu(x[b, gate + i]) * x[b, up + i], i < I, for x with rows of length ld. */
export function swigluRowsReference(
  x: Float32Array,
  rows: number,
  ld: number,
  gate: number,
  up: number,
  I: number,
): Float32Array {
  const y = new Float32Array(rows * I);
  for (let b = 0; b < rows; b++) {
    for (let i = 0; i < I; i++) y[b * I + i] = silu(x[b * ld + gate + i]) * x[b * ld + up + i];
  }
  return y;
}

export interface HeadGemvDims {
  B: number;
  H: number;
  /** Outputs per head, reduction length, x's per-head row length and where the K inputs start. */
  N: number;
  K: number;
  xs: number;
  xOff: number;
  /** Pass-through columns appended per head (0: none), pt's per-head row length and start. */
  P: number;
  ps: number;
  ptOff: number;
}

/**
 * y[b, h, n] = sum_k w[h, n, k] x[b, h, xOff + k] (n < N); y[b, h, N + j] = pt[b, h, ptOff + j] (j < P).
 * x [B, H, xs], w [H, N, K], pt [B, H, ps]; y [B, H, N + P].
 */
export function headGemvReference(
  x: Float32Array,
  w: Float32Array,
  pt: Float32Array | undefined,
  d: HeadGemvDims,
): Float32Array {
  const { B, H, N, K, xs, xOff, P, ps, ptOff } = d;
  const ld = N + P;
  const y = new Float32Array(B * H * ld);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const xr = (b * H + h) * xs + xOff;
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += w[(h * N + n) * K + k] * x[xr + k];
        y[(b * H + h) * ld + n] = acc;
      }
      for (let j = 0; j < P; j++) y[(b * H + h) * ld + N + j] = pt![(b * H + h) * ps + ptOff + j];
    }
  }
  return y;
}

/**
 * gatedRmsnormLinear: y[r] = W (rmsnorm over each head's d values of o[r], times normWeight, times
 * sigmoid(gate[r])) for o, gate [rows, H*d], normWeight [d], W [N, H*d] -> [rows, N], in f64.
 */
export function gatedRmsnormLinearReference(
  o: Float32Array,
  gate: Float32Array,
  normWeight: Float32Array,
  W: Float32Array,
  s: { rows: number; H: number; d: number; N: number; eps: number },
): Float32Array {
  const K = s.H * s.d;
  const y = new Float32Array(s.rows * s.N);
  const x = new Float64Array(K);
  for (let r = 0; r < s.rows; r++) {
    for (let h = 0; h < s.H; h++) {
      let ss = 0;
      for (let j = 0; j < s.d; j++) ss += o[r * K + h * s.d + j] ** 2;
      const inv = 1 / Math.sqrt(ss / s.d + s.eps);
      for (let j = 0; j < s.d; j++) {
        const i = r * K + h * s.d + j;
        x[h * s.d + j] = normWeight[j] * o[i] * inv * (1 / (1 + Math.exp(-gate[i])));
      }
    }
    for (let n = 0; n < s.N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[k] * W[n * K + k];
      y[r * s.N + n] = acc;
    }
  }
  return y;
}

/** normConcat: out[b] = [rmsnorm(x[b, off:off+r]) * w, x[b, off+r : off+r+pass]] for x [B, ld] (f64 sums). */
export function normConcatReference(
  x: Float32Array,
  w: Float32Array,
  s: { B: number; ld: number; off: number; r: number; pass: number; eps: number },
): Float32Array {
  const out = new Float32Array(s.B * (s.r + s.pass));
  for (let b = 0; b < s.B; b++) {
    const src = b * s.ld + s.off;
    let ss = 0;
    for (let i = 0; i < s.r; i++) ss += x[src + i] ** 2;
    const inv = 1 / Math.sqrt(ss / s.r + s.eps);
    const dst = b * (s.r + s.pass);
    for (let i = 0; i < s.r; i++) out[dst + i] = w[i] * x[src + i] * inv;
    for (let i = 0; i < s.pass; i++) out[dst + s.r + i] = x[src + s.r + i];
  }
  return out;
}
