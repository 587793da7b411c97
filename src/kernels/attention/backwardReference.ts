/**
 * Reference attention backward, per batch entry and head ([B, T, H, D] layout, statistics [B, H, T]),
 * f64 accumulation. The forward with statistics (o, lse, rowMax) is attentionWithStatsReference in
 * reference.ts:
 *   s_tj = scale * q_t . k_j            (j <= t when causal)
 *   lse_t = log sum_j exp(s_tj),  rowMax_t = max_j s_tj,  P_tj = exp(s_tj - lse_t),  o_t = sum_j P_tj v_j
 * Backward (FlashAttention-2, P recomputed from q, k and lse):
 *   D_t = dO_t . o_t,  dv_j = sum_t P_tj dO_t,  dP_tj = dO_t . v_j,  dS_tj = P_tj (dP_tj - D_t)
 *   dq_t = scale * sum_j dS_tj k_j,  dk_j = scale * sum_t dS_tj q_t
 * D_t = sum_j P_tj dP_tj because o_t = sum_j P_tj v_j, which is why the softmax Jacobian needs only o.
 */
import type { AttentionDims } from './reference.js';

export interface AttentionGrads {
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
}

export function attentionBackwardReference(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  o: Float32Array,
  lse: Float32Array,
  dO: Float32Array,
  d: AttentionDims,
): AttentionGrads {
  const { B, T, H, Dk, Dv, scale, causal } = d;
  const dq = new Float64Array(B * T * H * Dk);
  const dk = new Float64Array(B * T * H * Dk);
  const dv = new Float64Array(B * T * H * Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * Dk;
        const oo = ((b * T + t) * H + h) * Dv;
        const L = lse[(b * H + h) * T + t];
        let Dt = 0;
        for (let c = 0; c < Dv; c++) Dt += dO[oo + c] * o[oo + c];
        const last = causal ? t : T - 1;
        for (let j = 0; j <= last; j++) {
          const ko = ((b * T + j) * H + h) * Dk;
          const vo = ((b * T + j) * H + h) * Dv;
          let dot = 0;
          for (let c = 0; c < Dk; c++) dot += q[qo + c] * k[ko + c];
          const P = Math.exp(dot * scale - L);
          let dP = 0;
          for (let c = 0; c < Dv; c++) {
            dv[vo + c] += P * dO[oo + c];
            dP += dO[oo + c] * v[vo + c];
          }
          const dS = P * (dP - Dt) * scale;
          for (let c = 0; c < Dk; c++) {
            dq[qo + c] += dS * k[ko + c];
            dk[ko + c] += dS * q[qo + c];
          }
        }
      }
    }
  }
  return { dq: Float32Array.from(dq), dk: Float32Array.from(dk), dv: Float32Array.from(dv) };
}
