/**
 * Reference causal softmax attention, per batch entry and head:
 *   o[t] = sum_{j <= t} softmax_j(scale * q[t] . k[j]) v[j]
 * Layout [B, T, H, D] (time before heads, as the model keeps activations). f64 accumulation, with the
 * usual max subtraction so large logits do not overflow. The same pass also yields each row's softmax
 * statistics ([B, H, T]), which the backward reference needs:
 *   rowMax_t = max_j s_tj,  lse_t = log sum_j exp(s_tj),  s_tj = scale * q_t . k_j
 */
export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  Dk: number;
  Dv: number;
  scale: number;
  causal: boolean;
}

export function attentionReference(q: Float32Array, k: Float32Array, v: Float32Array, d: AttentionDims): Float32Array {
  return attentionWithStatsReference(q, k, v, d).o;
}

export interface AttentionStats {
  o: Float32Array;
  lse: Float32Array;
  rowMax: Float32Array;
}

/** Attention output and the softmax statistics of every row, from one pass. */
export function attentionWithStatsReference(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  d: AttentionDims,
): AttentionStats {
  const { B, T, H, Dk, Dv, scale, causal } = d;
  const o = new Float32Array(B * T * H * Dv);
  const lse = new Float32Array(B * H * T);
  const rowMax = new Float32Array(B * H * T);
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * Dk;
        const last = causal ? t : T - 1;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j <= last; j++) {
          const ko = ((b * T + j) * H + h) * Dk;
          let dot = 0;
          for (let c = 0; c < Dk; c++) dot += q[qo + c] * k[ko + c];
          s[j] = dot * scale;
          if (s[j] > max) max = s[j];
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) {
          s[j] = Math.exp(s[j] - max);
          sum += s[j];
        }
        const oo = ((b * T + t) * H + h) * Dv;
        for (let c = 0; c < Dv; c++) {
          let acc = 0;
          for (let j = 0; j <= last; j++) acc += s[j] * v[((b * T + j) * H + h) * Dv + c];
          o[oo + c] = acc / sum;
        }
        lse[(b * H + h) * T + t] = max + Math.log(sum);
        rowMax[(b * H + h) * T + t] = max;
      }
    }
  }
  return { o, lse, rowMax };
}
