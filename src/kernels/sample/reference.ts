/**
 * Drawing a token from a row's top-k candidates: what generate's host Sampler does after its sort and
 * top-k cut (temperature, softmax, top-p, then the draw u in [0, 1) walked down the kept probabilities),
 * here over candidates already in the Sampler's order (value descending, index ascending: topk's order).
 * `u` is the Sampler's own draw (Sampler.draw), so the device sampler and the host one consume the same
 * stream. Plain f64 arithmetic in the Sampler's order of operations.
 */
export function sampleCandidatesReference(
  values: Float32Array,
  indices: Int32Array,
  u: ArrayLike<number>,
  rows: number,
  k: number,
  opts: { temperature: number; topP: number },
): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const v = values.subarray(r * k, (r + 1) * k);
    const max = v[0];
    const p = Array.from(v, (x) => Math.exp((x - max) / opts.temperature));
    const sum = p.reduce((a, b) => a + b, 0);
    for (let i = 0; i < k; i++) p[i] /= sum;
    let n = k;
    if (opts.topP < 1) {
      let cum = 0;
      for (let i = 0; i < k; i++) {
        cum += p[i];
        if (cum >= opts.topP) {
          n = i + 1;
          break;
        }
      }
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += p[i];
    let left = u[r] * total;
    out[r] = indices[r * k + n - 1];
    for (let i = 0; i < n; i++) {
      left -= p[i];
      if (left < 0) {
        out[r] = indices[r * k + i];
        break;
      }
    }
  }
  return out;
}
