/**
 * Reference matmul: C[b] = op(A[b]) @ op(B[b]), op = identity or transpose, f64 accumulation.
 * A is [batch, M, K] (or [batch, K, M] when transA), B is [batchB, K, N] (or [batchB, N, K] when
 * transB) with batchB either batch or 1 (shared weights). Values are already f32 (bf16 widened).
 */
export interface MatmulDims {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** 0 when B is shared by every batch entry. */
  batchStrideB: number;
}

export function matmulReference(a: Float32Array, b: Float32Array, d: MatmulDims): Float32Array {
  const { batch, M, N, K, transA, transB } = d;
  const c = new Float32Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = z * M * K;
    const bo = z * d.batchStrideB;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? a[ao + k * M + m] : a[ao + m * K + k];
          const bv = transB ? b[bo + n * K + k] : b[bo + k * N + n];
          s += av * bv;
        }
        c[z * M * N + m * N + n] = s;
      }
    }
  }
  return c;
}
