/** l2norm(x) = x / sqrt(sum(x^2) + eps) over the last dimension (KDA's q and k), f64 accumulation. */
export function l2normReference(x: Float32Array, rows: number, D: number, eps: number): Float32Array {
  const out = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[r * D + i] ** 2;
    const inv = 1 / Math.sqrt(ss + eps);
    for (let i = 0; i < D; i++) out[r * D + i] = x[r * D + i] * inv;
  }
  return out;
}
