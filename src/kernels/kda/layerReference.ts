/**
 * The layer-level wrapping of the KDA core (reference, f64): what the layer applies to its projections
 * before the recurrence, and the chain rule back through it.
 *   q, k  = l2norm(q_raw), l2norm(k_raw)      l2norm(x) = x / sqrt(sum(x^2) + 1e-6)
 *   g     = -exp(A_log[h]) * softplus(g_raw + dt_bias[h, c])     (log decay, <= 0)
 *   beta  = sigmoid(beta_raw)
 * GK is the gate width per head: K (KDA) or 1 (Gated DeltaNet; dt_bias then has one entry per head).
 */

export const L2NORM_EPS = 1e-6;

export interface PrepDims {
  T: number;
  H: number;
  K: number;
  GK: number;
}

export function softplus(x: number): number {
  // log(1 + e^x) without overflow for large x and without losing small values for very negative x.
  return x > 20 ? x : x < -20 ? Math.exp(x) : Math.log1p(Math.exp(x));
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** r = (sum x_i^2 + eps)^-1/2 of row i. */
function inverseNorm(x: ArrayLike<number>, i: number, K: number): number {
  let s = 0;
  for (let c = 0; c < K; c++) s += x[i * K + c] ** 2;
  return 1 / Math.sqrt(s + L2NORM_EPS);
}

function l2normRows(x: ArrayLike<number>, rows: number, K: number): Float32Array {
  const out = new Float32Array(rows * K);
  for (let i = 0; i < rows; i++) {
    const r = inverseNorm(x, i, K);
    for (let c = 0; c < K; c++) out[i * K + c] = x[i * K + c] * r;
  }
  return out;
}

export function kdaPrepReference(
  qRaw: ArrayLike<number>,
  kRaw: ArrayLike<number>,
  gRaw: ArrayLike<number>,
  betaRaw: ArrayLike<number>,
  A_log: ArrayLike<number>,
  dt_bias: ArrayLike<number>,
  d: PrepDims,
): { q: Float32Array; k: Float32Array; g: Float32Array; beta: Float32Array } {
  const { T, H, K, GK } = d;
  const g = new Float32Array(T * H * GK);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const a = -Math.exp(A_log[h]);
      for (let c = 0; c < GK; c++) {
        const i = (t * H + h) * GK + c;
        g[i] = a * softplus(gRaw[i] + dt_bias[h * GK + c]);
      }
    }
  }
  const beta = new Float32Array(T * H);
  for (let i = 0; i < T * H; i++) beta[i] = sigmoid(betaRaw[i]);
  return { q: l2normRows(qRaw, T * H, K), k: l2normRows(kRaw, T * H, K), g, beta };
}

/** dx of l2norm: r (dy - y (y . dy)) with y = x r, r = (sum x^2 + eps)^-1/2. */
function l2normBackwardRows(x: ArrayLike<number>, dy: ArrayLike<number>, rows: number, K: number): Float32Array {
  const out = new Float32Array(rows * K);
  for (let i = 0; i < rows; i++) {
    const r = inverseNorm(x, i, K);
    let ydy = 0;
    for (let c = 0; c < K; c++) ydy += x[i * K + c] * r * dy[i * K + c];
    for (let c = 0; c < K; c++) out[i * K + c] = r * (dy[i * K + c] - x[i * K + c] * r * ydy);
  }
  return out;
}

export function kdaPrepBackwardReference(
  qRaw: ArrayLike<number>,
  kRaw: ArrayLike<number>,
  gRaw: ArrayLike<number>,
  betaRaw: ArrayLike<number>,
  A_log: ArrayLike<number>,
  dt_bias: ArrayLike<number>,
  grads: { dq: ArrayLike<number>; dk: ArrayLike<number>; dg: ArrayLike<number>; dbeta: ArrayLike<number> },
  d: PrepDims,
): {
  dq: Float32Array;
  dk: Float32Array;
  dg_raw: Float32Array;
  dbeta_raw: Float32Array;
  dA_log: Float32Array;
  ddt_bias: Float32Array;
} {
  const { T, H, K, GK } = d;
  const dg_raw = new Float32Array(T * H * GK);
  const dA = new Float64Array(H);
  const ddt = new Float64Array(H * GK);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const a = Math.exp(A_log[h]);
      for (let c = 0; c < GK; c++) {
        const i = (t * H + h) * GK + c;
        const z = gRaw[i] + dt_bias[h * GK + c];
        // g = -a softplus(z): dg/dz = -a sigmoid(z), dg/dA_log = g.
        const dz = grads.dg[i] * -a * sigmoid(z);
        dg_raw[i] = dz;
        ddt[h * GK + c] += dz;
        dA[h] += grads.dg[i] * -a * softplus(z);
      }
    }
  }
  const dbeta_raw = new Float32Array(T * H);
  for (let i = 0; i < T * H; i++) {
    const s = sigmoid(betaRaw[i]);
    dbeta_raw[i] = grads.dbeta[i] * s * (1 - s);
  }
  return {
    dq: l2normBackwardRows(qRaw, grads.dq, T * H, K),
    dk: l2normBackwardRows(kRaw, grads.dk, T * H, K),
    dg_raw,
    dbeta_raw,
    dA_log: Float32Array.from(dA),
    ddt_bias: Float32Array.from(ddt),
  };
}
