/**
 * Int8 matrix product, the plain-TS reference: C[M, N] (i32) = A[M, K] . B[N, K]^T with A and B signed
 * 8-bit. B is stored like a weight matrix ([out, in]), the layout an int8 linear layer or a quantised
 * attention cache would use. Exact in i32 for K up to 2^17 (|a b| <= 2^14 per term).
 */
export function int8MatmulReference(a: Int8Array, b: Int8Array, M: number, N: number, K: number): Int32Array {
  if (a.length !== M * K) throw new Error(`int8 matmul reference: A has ${a.length} values, expected M*K = ${M * K}`);
  if (b.length !== N * K) throw new Error(`int8 matmul reference: B has ${b.length} values, expected N*K = ${N * K}`);
  const c = new Int32Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[j * K + k];
      c[i * N + j] = s;
    }
  return c;
}

/** Four signed bytes per u32, little end first: how the kernels read packed int8 (WGSL dot4I8Packed). */
export function packInt8(x: Int8Array): Int32Array {
  if (x.length % 4 !== 0) throw new Error(`packInt8: ${x.length} values, expected a multiple of 4`);
  return new Int32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
}
