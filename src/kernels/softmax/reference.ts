/** softmax over the last dimension, stable: exp(x - max(x)) / sum(exp(x - max(x))), f64 sums. */
export function softmaxReference(x: Float32Array, rows: number, D: number): Float32Array {
  const out = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * D, (r + 1) * D);
    let m = Number.NEGATIVE_INFINITY;
    for (const v of row) m = Math.max(m, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    for (let i = 0; i < D; i++) out[r * D + i] = Math.exp(row[i] - m) / s;
  }
  return out;
}
