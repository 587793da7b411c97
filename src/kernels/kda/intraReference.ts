/**
 * The intra pass of the chunked forward (pass 1: intraVec.wgsl.ts, or intraGram.wgsl.ts + intraWU.wgsl.ts) for
 * one chunk of one head, in f64, written to be read: what those kernels store.
 *    A_qk[i, j] = scale sum_c q_ic k_jc exp(gc_ic - gc_jc)           (j <= i, else 0)
 *    A_kk[i, j] = sum_c k_ic k_jc exp(gc_ic - gc_jc)                  (j < i)
 *    T = (I + Diag(beta) A_kk)^-1                                      (unit lower triangular)
 *    W = T Diag(beta) (exp(gc) * K),  U = T Diag(beta) V
 * gc is the chunk's cumulative log decay (cumsum of g from the chunk's first row), per channel (GK = K) or per
 * head (GK = 1).
 */

export interface IntraChunk {
  /** Rows of the chunk (1 .. 64). */
  L: number;
  K: number;
  V: number;
  /** [L, K], [L, K], [L, V] row-major; gc [L, K] or [L] (GK = 1); beta [L]. */
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  gc: ArrayLike<number>;
  GK: number;
  beta: ArrayLike<number>;
  scale: number;
}

export interface IntraChunkResult {
  /** [64, 64], zero above the diagonal and past row L (the kernels' layout). */
  Aqk: Float64Array;
  /** [64, 64] strictly lower part of T (the unit diagonal implicit), zero past row L. */
  T: Float64Array;
  /** [L, K] and [L, V]. */
  W: Float64Array;
  U: Float64Array;
}

/**
 * The strictly lower part of (I + N)^-1 for N strictly lower ([64, 64] row-major, rows below L zero), by forward
 * substitution row by row: T[i, j] = -(N[i, j] + sum_{j < m < i} N[i, m] T[m, j]).
 */
export function unitLowerInverse(N: Float64Array, L: number): Float64Array {
  const T = new Float64Array(64 * 64);
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < i; j++) {
      let s = N[i * 64 + j];
      for (let m = j + 1; m < i; m++) s += N[i * 64 + m] * T[m * 64 + j];
      T[i * 64 + j] = -s;
    }
  }
  return T;
}

export function intraChunkReference(c: IntraChunk): IntraChunkResult {
  const { L, K, V } = c;
  const g = (i: number, ch: number) => (c.GK === 1 ? c.gc[i] : c.gc[i * K + ch]);
  const Aqk = new Float64Array(64 * 64);
  const N = new Float64Array(64 * 64); // Diag(beta) A_kk, strictly lower
  for (let i = 0; i < L; i++) {
    for (let j = 0; j <= i; j++) {
      let sq = 0;
      let sk = 0;
      for (let ch = 0; ch < K; ch++) {
        const kd = c.k[j * K + ch] * Math.exp(g(i, ch) - g(j, ch));
        sq += c.q[i * K + ch] * kd;
        sk += c.k[i * K + ch] * kd;
      }
      Aqk[i * 64 + j] = c.scale * sq;
      if (j < i) N[i * 64 + j] = c.beta[i] * sk;
    }
  }
  const T = unitLowerInverse(N, L);
  // B = Diag(beta) [exp(gc) K | V]; [W | U] = (I + strictly lower T) B.
  const W = new Float64Array(L * K);
  const U = new Float64Array(L * V);
  const bk = (j: number, ch: number) => c.beta[j] * c.k[j * K + ch] * Math.exp(g(j, ch));
  for (let i = 0; i < L; i++) {
    for (let ch = 0; ch < K; ch++) {
      let s = bk(i, ch);
      for (let j = 0; j < i; j++) s += T[i * 64 + j] * bk(j, ch);
      W[i * K + ch] = s;
    }
    for (let ch = 0; ch < V; ch++) {
      let s = c.beta[i] * c.v[i * V + ch];
      for (let j = 0; j < i; j++) s += T[i * 64 + j] * c.beta[j] * c.v[j * V + ch];
      U[i * V + ch] = s;
    }
  }
  return { Aqk, T, W, U };
}
