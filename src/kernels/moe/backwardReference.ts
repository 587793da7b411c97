/**
 * Reference gradients of the MoE layer (forward in reference.ts), f64 accumulation.
 *
 * Experts, per (token n, slot j) pair with e = idx[n, j], w = weights[n, j]:
 *   a = W1_e x,  b = W3_e x,  h = silu(a) * b,  p = W2_e h,  y_n += w * p
 * so with g = dy_n:
 *   dWeights[n, j] = g . p = (W2_e^T g) . h            dh = w * W2_e^T g
 *   dW2_e += (w g) h^T                                  da = dh * b * silu'(a),  db = dh * silu(a)
 *   dW1_e += da x^T,  dW3_e += db x^T,                  dx_n += W1_e^T da + W3_e^T db
 * with silu'(a) = sigmoid(a) (1 + a (1 - sigmoid(a))).
 *
 * Router: weights w_j = c * u_j / Z (Z = sum_m u_m + 1e-20, only when k > 1 and renormalising, else Z = 1),
 * u_j = s[idx_j], c = routed_scaling_factor, applied after the renormalisation as the forward does.
 *   du_m = c (g_m / Z - sum_j g_j u_j / Z^2)       (c g_m without renormalisation)
 * and ds_e = du_m for e = idx_m, 0 for experts not chosen. The selection (top-k on s + bias, group
 * limit) is piecewise constant, so neither it nor the bias gets a gradient. Through the activation:
 *   sigmoid: dlogit_e = ds_e s_e (1 - s_e);   softmax: dlogit_e = s_e (ds_e - sum_f ds_f s_f).
 */
import { expertHidden, type RouterConfig, type Routes, routerScores } from './reference.js';

export interface ExpertsGrads {
  dx: Float32Array;
  dWeights: Float32Array;
  dw1: Float32Array;
  dw3: Float32Array;
  dw2: Float32Array;
}

export function expertsBackwardReference(
  x: Float32Array,
  routes: Routes,
  w1: Float32Array,
  w3: Float32Array,
  w2: Float32Array,
  dy: Float32Array,
  dims: { N: number; D: number; I: number; E: number; topK: number },
): ExpertsGrads {
  const { N, D, I, E, topK } = dims;
  const dx = new Float64Array(N * D);
  const dWeights = new Float32Array(N * topK);
  const dw1 = new Float64Array(E * I * D);
  const dw3 = new Float64Array(E * I * D);
  const dw2 = new Float64Array(E * D * I);
  const a = new Float64Array(I);
  const b = new Float64Array(I);
  const h = new Float64Array(I);
  const gW2 = new Float64Array(I);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < topK; j++) {
      const e = routes.idx[n * topK + j];
      const w = routes.weights[n * topK + j];
      expertHidden(x, n, e, w1, w3, D, I, h, a, b);
      gW2.fill(0);
      for (let d = 0; d < D; d++) {
        const g = dy[n * D + d];
        const wo = (e * D + d) * I;
        for (let i = 0; i < I; i++) {
          gW2[i] += w2[wo + i] * g;
          dw2[wo + i] += w * g * h[i];
        }
      }
      let dWj = 0;
      for (let i = 0; i < I; i++) dWj += gW2[i] * h[i];
      dWeights[n * topK + j] = dWj;
      for (let i = 0; i < I; i++) {
        const sg = 1 / (1 + Math.exp(-a[i]));
        const dh = w * gW2[i];
        const da = dh * b[i] * sg * (1 + a[i] * (1 - sg));
        const db = dh * a[i] * sg;
        const wo = (e * I + i) * D;
        for (let d = 0; d < D; d++) {
          dw1[wo + d] += da * x[n * D + d];
          dw3[wo + d] += db * x[n * D + d];
          dx[n * D + d] += da * w1[wo + d] + db * w3[wo + d];
        }
      }
    }
  }
  return {
    dx: Float32Array.from(dx),
    dWeights,
    dw1: Float32Array.from(dw1),
    dw3: Float32Array.from(dw3),
    dw2: Float32Array.from(dw2),
  };
}

export function routeBackwardReference(
  logits: Float32Array,
  idx: Int32Array,
  dWeights: Float32Array,
  N: number,
  cfg: RouterConfig,
): Float32Array {
  const E = cfg.numExperts;
  const k = cfg.topK;
  const dLogits = new Float32Array(N * E);
  const s = new Float64Array(E);
  const ds = new Float64Array(E);
  for (let n = 0; n < N; n++) {
    routerScores(logits.subarray(n * E, (n + 1) * E), cfg.activation, s);
    ds.fill(0);
    const renorm = k > 1 && cfg.renormalize;
    let Z = 1;
    let gu = 0;
    if (renorm) {
      Z = 1e-20;
      for (let j = 0; j < k; j++) {
        const u = s[idx[n * k + j]];
        Z += u;
        gu += dWeights[n * k + j] * u;
      }
    }
    for (let j = 0; j < k; j++) {
      const g = dWeights[n * k + j];
      ds[idx[n * k + j]] += cfg.scaling * (renorm ? g / Z - gu / (Z * Z) : g);
    }
    if (cfg.activation === 'sigmoid') {
      for (let e = 0; e < E; e++) dLogits[n * E + e] = ds[e] * s[e] * (1 - s[e]);
    } else {
      let dot = 0;
      for (let e = 0; e < E; e++) dot += ds[e] * s[e];
      for (let e = 0; e < E; e++) dLogits[n * E + e] = s[e] * (ds[e] - dot);
    }
  }
  return dLogits;
}
