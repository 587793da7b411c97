/**
 * Reference for absorbed MLA decode over a paged latent cache.
 *
 * With kv_b_proj folded into the query (q_lat[h] = W_uk[h]^T q_nope[h]) and the output
 * (o[h] = W_uv[h] o_lat[h]), every head attends over the same cached rows [c_t, k_r,t] of R = r + dr
 * values, the values being the first Rv = r of them:
 *   o_lat[b, h] = sum_t softmax_t(scale * qFull[b, h] . cache[b, t]) cache[b, t, :Rv]
 * The cache is a pool of pages [numPages, P, R]; sequence b's token t lives in page
 * pageTable[b, floor(t / P)] at row t mod P; lengths[b] tokens are valid.
 */
export interface MlaDecodeDims {
  B: number;
  H: number;
  R: number;
  Rv: number;
  pageSize: number;
  maxPages: number;
  scale: number;
}

export function mlaDecodeReference(
  qFull: Float32Array,
  pool: Float32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaDecodeDims,
): Float32Array {
  const { B, H, R, Rv, pageSize, maxPages, scale } = d;
  const out = new Float32Array(B * H * Rv);
  for (let b = 0; b < B; b++) {
    const T = lengths[b];
    const row = (t: number) => (pageTable[b * maxPages + Math.floor(t / pageSize)] * pageSize + (t % pageSize)) * R;
    for (let h = 0; h < H; h++) {
      const q = qFull.subarray((b * H + h) * R, (b * H + h + 1) * R);
      const s = new Float64Array(T);
      let max = Number.NEGATIVE_INFINITY;
      for (let t = 0; t < T; t++) {
        const o = row(t);
        let dot = 0;
        for (let c = 0; c < R; c++) dot += q[c] * pool[o + c];
        s[t] = dot * scale;
        max = Math.max(max, s[t]);
      }
      let sum = 0;
      for (let t = 0; t < T; t++) sum += s[t] = Math.exp(s[t] - max);
      for (let c = 0; c < Rv; c++) {
        let acc = 0;
        for (let t = 0; t < T; t++) acc += s[t] * pool[row(t) + c];
        out[(b * H + h) * Rv + c] = T ? acc / sum : 0;
      }
    }
  }
  return out;
}

/**
 * Reference cache append: row values [N, R] go to (seq[i], pos[i]) through the page table. Rows are
 * already in the pool's element type (f32 values, or bf16 bits for a bf16 pool).
 */
export function cacheWriteReference<A extends Float32Array | Uint16Array>(
  pool: A,
  values: A,
  seq: Int32Array,
  pos: Int32Array,
  pageTable: Int32Array,
  d: { R: number; pageSize: number; maxPages: number },
): void {
  for (let i = 0; i < seq.length; i++) {
    const page = pageTable[seq[i] * d.maxPages + Math.floor(pos[i] / d.pageSize)];
    const o = (page * d.pageSize + (pos[i] % d.pageSize)) * d.R;
    pool.set(values.subarray(i * d.R, (i + 1) * d.R), o);
  }
}
