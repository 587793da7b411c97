/** Reductions over the last dimension. Sums accumulate in f64; argmax takes the first (lowest) index of the max. */
export type ReduceOp = 'sum' | 'mean' | 'max';

export function reduceReference(x: Float32Array, rows: number, D: number, op: ReduceOp): Float32Array {
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * D, (r + 1) * D);
    if (op === 'max') {
      let m = Number.NEGATIVE_INFINITY;
      for (const v of row) m = Math.max(m, v);
      out[r] = m;
    } else {
      let s = 0;
      for (const v of row) s += v;
      out[r] = op === 'mean' ? s / D : s;
    }
  }
  return out;
}

export function argmaxReference(x: Float32Array, rows: number, D: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let i = 1; i < D; i++) if (x[r * D + i] > x[r * D + best]) best = i;
    out[r] = best;
  }
  return out;
}

/** out[c] = sum_r x[r, c] over a dense [rows, n] matrix, accumulated in f64. */
export function sumColumnsReference(x: Float32Array, rows: number, n: number): Float32Array {
  const acc = new Float64Array(n);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n; c++) acc[c] += x[r * n + c];
  return Float32Array.from(acc);
}
