/** Reference concat along the last dimension: out[r] = [a[r], b[r]] for every row r. */
export function concatLastReference(
  a: Float32Array,
  b: Float32Array,
  rows: number,
  A: number,
  B: number,
): Float32Array {
  const out = new Float32Array(rows * (A + B));
  for (let r = 0; r < rows; r++) {
    out.set(a.subarray(r * A, (r + 1) * A), r * (A + B));
    out.set(b.subarray(r * B, (r + 1) * B), r * (A + B) + A);
  }
  return out;
}
