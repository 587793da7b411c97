/**
 * Reference MoE routing and expert mixing, as KIMI-LINEAR.md states it:
 *   s = sigmoid(logits)            (softmax when the config says so)
 *   choice = s + e_score_correction_bias          (selection only; weights come from s)
 *   keep the topk_group groups with the largest sum of their top-2 `choice` values
 *   idx = top-k of `choice` within kept groups (ties to the lower expert index)
 *   w = s[idx]; if k > 1 and renormalize: w /= sum(w) + 1e-20; w *= routed_scaling_factor
 */
export interface RouterConfig {
  numExperts: number;
  topK: number;
  activation: 'sigmoid' | 'softmax';
  renormalize: boolean;
  scaling: number;
  numGroups: number;
  topkGroup: number;
}

export interface Routes {
  /** [N, topK] chosen experts, in selection order (best first). */
  idx: Int32Array;
  /** [N, topK] mixing weights. */
  weights: Float32Array;
}

/** s = sigmoid(row) or softmax(row) (max-subtracted), the router scores of one token, into `s` (length E). */
export function routerScores(row: Float32Array, activation: RouterConfig['activation'], s: Float64Array): void {
  const E = row.length;
  if (activation === 'sigmoid') {
    for (let e = 0; e < E; e++) s[e] = 1 / (1 + Math.exp(-row[e]));
  } else {
    let max = Number.NEGATIVE_INFINITY;
    for (let e = 0; e < E; e++) max = Math.max(max, row[e]);
    let sum = 0;
    for (let e = 0; e < E; e++) sum += s[e] = Math.exp(row[e] - max);
    for (let e = 0; e < E; e++) s[e] /= sum;
  }
}

export function routeReference(
  logits: Float32Array,
  bias: Float32Array | undefined,
  N: number,
  cfg: RouterConfig,
): Routes {
  const E = cfg.numExperts;
  const k = cfg.topK;
  const idx = new Int32Array(N * k);
  const weights = new Float32Array(N * k);
  const s = new Float64Array(E);
  const choice = new Float64Array(E);
  const perGroup = E / cfg.numGroups;
  for (let n = 0; n < N; n++) {
    routerScores(logits.subarray(n * E, (n + 1) * E), cfg.activation, s);
    for (let e = 0; e < E; e++) choice[e] = s[e] + (bias ? bias[e] : 0);
    // Group limit: a group's score is the sum of its two best choices.
    const allowed = new Uint8Array(E).fill(1);
    if (cfg.numGroups > 1 && cfg.topkGroup < cfg.numGroups) {
      const gScore: [number, number][] = [];
      for (let g = 0; g < cfg.numGroups; g++) {
        let b1 = Number.NEGATIVE_INFINITY;
        let b2 = Number.NEGATIVE_INFINITY;
        for (let e = g * perGroup; e < (g + 1) * perGroup; e++) {
          if (choice[e] > b1) {
            b2 = b1;
            b1 = choice[e];
          } else if (choice[e] > b2) b2 = choice[e];
        }
        gScore.push([perGroup > 1 ? b1 + b2 : b1, g]);
      }
      gScore.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      allowed.fill(0);
      for (let i = 0; i < cfg.topkGroup; i++) {
        const g = gScore[i][1];
        allowed.fill(1, g * perGroup, (g + 1) * perGroup);
      }
    }
    const taken = new Uint8Array(E);
    let total = 0;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) {
        if (!allowed[e] || taken[e]) continue;
        if (best < 0 || choice[e] > choice[best]) best = e;
      }
      taken[best] = 1;
      idx[n * k + j] = best;
      weights[n * k + j] = s[best];
      total += s[best];
    }
    for (let j = 0; j < k; j++) {
      let w = weights[n * k + j];
      if (k > 1 && cfg.renormalize) w /= total + 1e-20;
      weights[n * k + j] = w * cfg.scaling;
    }
  }
  return { idx, weights };
}

/**
 * One expert's hidden activation for token n: a = W1_e x_n, b = W3_e x_n, h = silu(a) * b (f64), into `h`;
 * `a` and `b` too when given (the backward needs them).
 */
export function expertHidden(
  x: Float32Array,
  n: number,
  e: number,
  w1: Float32Array,
  w3: Float32Array,
  D: number,
  I: number,
  h: Float64Array,
  a?: Float64Array,
  b?: Float64Array,
): void {
  for (let i = 0; i < I; i++) {
    let ai = 0;
    let bi = 0;
    const wo = (e * I + i) * D;
    for (let d = 0; d < D; d++) {
      ai += w1[wo + d] * x[n * D + d];
      bi += w3[wo + d] * x[n * D + d];
    }
    if (a) a[i] = ai;
    if (b) b[i] = bi;
    h[i] = (ai / (1 + Math.exp(-ai))) * bi;
  }
}

/**
 * Reference sparse expert mixing: y[n] = sum_j w[n,j] * W2_e (silu(W1_e x) * W3_e x), e = idx[n,j].
 * Expert weights stacked: w1, w3 [E, I, D]; w2 [E, D, I].
 */
export function expertsReference(
  x: Float32Array,
  routes: Routes,
  w1: Float32Array,
  w3: Float32Array,
  w2: Float32Array,
  dims: { N: number; D: number; I: number; topK: number },
): Float32Array {
  const { N, D, I, topK } = dims;
  const y = new Float32Array(N * D);
  const h = new Float64Array(I);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < topK; j++) {
      const e = routes.idx[n * topK + j];
      const w = routes.weights[n * topK + j];
      expertHidden(x, n, e, w1, w3, D, I, h);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        const wo = (e * D + d) * I;
        for (let i = 0; i < I; i++) acc += w2[wo + i] * h[i];
        y[n * D + d] += w * acc;
      }
    }
  }
  return y;
}
