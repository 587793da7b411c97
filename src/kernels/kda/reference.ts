/**
 * Kimi Delta Attention, the definition (plain TS, f64 accumulation). The cpu backend runs these; the
 * WGSL kernels are tested against them.
 *
 * Layout: sequences packed along time. `cu` (N+1 offsets) splits T tokens into N sequences; a batch
 * [B, T, H, ...] is the packing with cu = [0, T, 2T, ...]. Per token t and head h:
 *   q, k  [T, H, K]   (q already l2-normalised; `scale` is applied here)
 *   v     [T, H, V]
 *   g     [T, H, GK]  log decay (<= 0), GK = K (KDA, per channel) or 1 (Gated DeltaNet, per head)
 *   beta  [T, H]
 *   state [N, H, K, V], one per sequence, reset to S0 (or zero) at each sequence start.
 *
 * The recurrence (per head; S [K, V]):
 *   S = Diag(exp g_t) S;   S = S + beta_t k_t (v_t - S^T k_t)^T;   o_t = S^T (scale q_t)
 */

export interface KdaDims {
  /** Heads, key size, value size. */
  H: number;
  K: number;
  V: number;
  /** Width of g per head: K (channel-wise gate, KDA) or 1 (scalar gate per head, Gated DeltaNet). */
  GK: number;
  /** Sequence offsets into the packed time axis (N+1 entries, cu[0] = 0, non-decreasing). */
  cu: ArrayLike<number>;
}

export interface KdaForwardResult {
  /** [T, H, V] */
  o: Float32Array;
  /** [N, H, K, V] final state of every sequence. */
  S: Float32Array;
}

export interface KdaGrads {
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  dg: Float32Array;
  dbeta: Float32Array;
  /** Gradient of the initial states [N, H, K, V]. */
  dS0: Float32Array;
}

export const KDA_CHUNK = 64;

function seqCount(d: KdaDims): number {
  return d.cu.length - 1;
}

function gAt(g: ArrayLike<number>, d: KdaDims, t: number, h: number, c: number): number {
  return g[(t * d.H + h) * d.GK + (d.GK === 1 ? 0 : c)];
}

/** Sequential recurrence, token by token: the definition. */
export function kdaRecurrentReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  g: ArrayLike<number>,
  beta: ArrayLike<number>,
  d: KdaDims,
  scale: number,
  S0?: ArrayLike<number>,
): KdaForwardResult {
  const { H, K, V, cu } = d;
  const T = cu[seqCount(d)];
  const o = new Float32Array(T * H * V);
  const Sout = new Float32Array(seqCount(d) * H * K * V);
  const S = new Float64Array(K * V);
  const u = new Float64Array(V);
  for (let n = 0; n < seqCount(d); n++) {
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * K * V;
      for (let i = 0; i < K * V; i++) S[i] = S0 ? S0[base + i] : 0;
      for (let t = cu[n]; t < cu[n + 1]; t++) {
        const qo = (t * H + h) * K;
        const vo = (t * H + h) * V;
        const b = beta[t * H + h];
        // Forget, then the delta rule's prediction error u = v - S^T k.
        for (let r = 0; r < K; r++) {
          const a = Math.exp(gAt(g, d, t, h, r));
          for (let c = 0; c < V; c++) S[r * V + c] *= a;
        }
        for (let c = 0; c < V; c++) {
          let s = 0;
          for (let r = 0; r < K; r++) s += k[qo + r] * S[r * V + c];
          u[c] = v[vo + c] - s;
        }
        for (let r = 0; r < K; r++) {
          const bk = b * k[qo + r];
          for (let c = 0; c < V; c++) S[r * V + c] += bk * u[c];
        }
        for (let c = 0; c < V; c++) {
          let s = 0;
          for (let r = 0; r < K; r++) s += q[qo + r] * S[r * V + c];
          o[vo + c] = s * scale;
        }
      }
      for (let i = 0; i < K * V; i++) Sout[base + i] = S[i];
    }
  }
  return { o, S: Sout };
}

/**
 * The chunkwise form (chunk C = 64), what the GPU's chunked kernels compute. Within a chunk, with
 * gc = cumsum(g) along time (inclusive) and the state S at the chunk start:
 *   A_kk[i,j] = beta_i sum_c k_i[c] k_j[c] exp(gc_i[c] - gc_j[c])     (j < i)
 *   (I + A_kk) X = Diag(beta) [V | exp(gc) K]   solved by forward substitution: X = [U | W]
 *   V' = U - W S                      (the chunk's delta-rule values given the incoming state)
 *   O  = scale ((q exp(gc)) S + A_qk V'),  A_qk[i,j] = sum_c q_i[c] k_j[c] exp(gc_i[c] - gc_j[c]), j <= i
 *   S  = exp(gc_last) S + (k exp(gc_last - gc))^T V'
 * Every exp() argument is a difference gc_i - gc_j with j <= i, so it is <= 0: no overflow, and no
 * division by a cumulative decay anywhere.
 */
export function kdaChunkReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  g: ArrayLike<number>,
  beta: ArrayLike<number>,
  d: KdaDims,
  scale: number,
  S0?: ArrayLike<number>,
  C = KDA_CHUNK,
): KdaForwardResult {
  const { H, K, V, cu } = d;
  const T = cu[seqCount(d)];
  const o = new Float32Array(T * H * V);
  const Sout = new Float32Array(seqCount(d) * H * K * V);
  const S = new Float64Array(K * V);
  const gc = new Float64Array(C * K);
  const A = new Float64Array(C * C);
  const X = new Float64Array(C * (V + K)); // rows [U | W]
  const Vp = new Float64Array(C * V);
  for (let n = 0; n < seqCount(d); n++) {
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * K * V;
      for (let i = 0; i < K * V; i++) S[i] = S0 ? S0[base + i] : 0;
      for (let t0 = cu[n]; t0 < cu[n + 1]; t0 += C) {
        const L = Math.min(C, cu[n + 1] - t0);
        const kk = (i: number, c: number) => k[((t0 + i) * H + h) * K + c];
        const qq = (i: number, c: number) => q[((t0 + i) * H + h) * K + c];
        for (let c = 0; c < K; c++) {
          let acc = 0;
          for (let i = 0; i < L; i++) {
            acc += gAt(g, d, t0 + i, h, c);
            gc[i * K + c] = acc;
          }
        }
        const bt = (i: number) => beta[(t0 + i) * H + h];
        // A_kk, strictly lower.
        for (let i = 0; i < L; i++) {
          for (let j = 0; j < i; j++) {
            let s = 0;
            for (let c = 0; c < K; c++) s += kk(i, c) * kk(j, c) * Math.exp(gc[i * K + c] - gc[j * K + c]);
            A[i * C + j] = bt(i) * s;
          }
        }
        // UT transform by forward substitution: X_i = b_i - sum_{j<i} A_ij X_j.
        const W0 = V;
        for (let i = 0; i < L; i++) {
          for (let c = 0; c < V; c++) X[i * (V + K) + c] = bt(i) * v[((t0 + i) * H + h) * V + c];
          for (let c = 0; c < K; c++) X[i * (V + K) + W0 + c] = bt(i) * Math.exp(gc[i * K + c]) * kk(i, c);
          for (let j = 0; j < i; j++) {
            const a = A[i * C + j];
            for (let c = 0; c < V + K; c++) X[i * (V + K) + c] -= a * X[j * (V + K) + c];
          }
        }
        // V' = U - W S.
        for (let i = 0; i < L; i++) {
          for (let c = 0; c < V; c++) {
            let s = X[i * (V + K) + c];
            for (let r = 0; r < K; r++) s -= X[i * (V + K) + W0 + r] * S[r * V + c];
            Vp[i * V + c] = s;
          }
        }
        // Outputs: the incoming state seen through the decay, plus the chunk's own causal part.
        for (let i = 0; i < L; i++) {
          for (let c = 0; c < V; c++) {
            let s = 0;
            for (let r = 0; r < K; r++) s += qq(i, r) * Math.exp(gc[i * K + r]) * S[r * V + c];
            for (let j = 0; j <= i; j++) {
              let a = 0;
              for (let r = 0; r < K; r++) a += qq(i, r) * kk(j, r) * Math.exp(gc[i * K + r] - gc[j * K + r]);
              s += a * Vp[j * V + c];
            }
            o[((t0 + i) * H + h) * V + c] = s * scale;
          }
        }
        // Carry the state to the chunk's end.
        const last = (L - 1) * K;
        for (let r = 0; r < K; r++) {
          const a = Math.exp(gc[last + r]);
          for (let c = 0; c < V; c++) {
            let s = a * S[r * V + c];
            for (let j = 0; j < L; j++) s += kk(j, r) * Math.exp(gc[last + r] - gc[j * K + r]) * Vp[j * V + c];
            S[r * V + c] = s;
          }
        }
      }
      for (let i = 0; i < K * V; i++) Sout[base + i] = S[i];
    }
  }
  return { o, S: Sout };
}

/**
 * Backward of the recurrence: gradients of sum(o * dO) + sum(S_final * dS) (dS may be omitted).
 * Runs the forward keeping every state, then walks time backwards:
 *   S'_t = Diag(a_t) S_{t-1} (a = exp g),  u_t = v_t - S'_t^T k_t,  S_t = S'_t + beta_t k_t u_t^T,  o_t = S_t^T q_t
 * with G the gradient flowing into S_t:
 *   G += q_t dO_t^T;  dq_t = S_t dO_t;  du = beta G^T k;  dbeta = u . (G^T k);  dv = du
 *   G' = G - k du^T;  dk = beta G u - S'_t du;  dg = rowsum(G' o S'_t);  G <- Diag(a_t) G'
 * (q carries the scale: dq is with respect to the unscaled q).
 */
export function kdaBackwardReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  g: ArrayLike<number>,
  beta: ArrayLike<number>,
  dO: ArrayLike<number>,
  d: KdaDims,
  scale: number,
  S0?: ArrayLike<number>,
  dS?: ArrayLike<number>,
): KdaGrads {
  const { H, K, V, GK, cu } = d;
  const N = seqCount(d);
  const T = cu[N];
  const out: KdaGrads = {
    dq: new Float32Array(T * H * K),
    dk: new Float32Array(T * H * K),
    dv: new Float32Array(T * H * V),
    dg: new Float32Array(T * H * GK),
    dbeta: new Float32Array(T * H),
    dS0: new Float32Array(N * H * K * V),
  };
  const KV = K * V;
  const G = new Float64Array(KV);
  const Sp = new Float64Array(KV);
  const du = new Float64Array(V);
  const u = new Float64Array(V);
  for (let n = 0; n < N; n++) {
    const L = cu[n + 1] - cu[n];
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * KV;
      // states[i] = S after token i-1 of the sequence (states[0] = S0).
      const states = new Float64Array((L + 1) * KV);
      for (let i = 0; i < KV; i++) states[i] = S0 ? S0[base + i] : 0;
      for (let i = 0; i < L; i++) {
        const t = cu[n] + i;
        const prev = states.subarray(i * KV, (i + 1) * KV);
        const cur = states.subarray((i + 1) * KV, (i + 2) * KV);
        step(t, h, prev, cur);
      }
      for (let i = 0; i < KV; i++) G[i] = dS ? dS[base + i] : 0;
      for (let i = L - 1; i >= 0; i--) {
        const t = cu[n] + i;
        const qo = (t * H + h) * K;
        const vo = (t * H + h) * V;
        const b = beta[t * H + h];
        const prev = states.subarray(i * KV, (i + 1) * KV);
        const cur = states.subarray((i + 1) * KV, (i + 2) * KV);
        for (let r = 0; r < K; r++) {
          const a = Math.exp(gAt(g, d, t, h, r));
          for (let c = 0; c < V; c++) Sp[r * V + c] = a * prev[r * V + c];
        }
        for (let c = 0; c < V; c++) {
          let s = 0;
          for (let r = 0; r < K; r++) s += k[qo + r] * Sp[r * V + c];
          u[c] = v[vo + c] - s;
        }
        for (let r = 0; r < K; r++) {
          const qs = q[qo + r] * scale;
          for (let c = 0; c < V; c++) G[r * V + c] += qs * dO[vo + c];
        }
        for (let r = 0; r < K; r++) {
          let s = 0;
          for (let c = 0; c < V; c++) s += cur[r * V + c] * dO[vo + c];
          out.dq[qo + r] = s * scale;
        }
        let db = 0;
        for (let c = 0; c < V; c++) {
          let s = 0;
          for (let r = 0; r < K; r++) s += k[qo + r] * G[r * V + c];
          db += u[c] * s;
          du[c] = b * s;
          out.dv[vo + c] = du[c];
        }
        out.dbeta[t * H + h] = db;
        let dgScalar = 0;
        for (let r = 0; r < K; r++) {
          let gu = 0;
          let sdu = 0;
          let dgr = 0;
          for (let c = 0; c < V; c++) {
            gu += G[r * V + c] * u[c];
            sdu += Sp[r * V + c] * du[c];
            const gp = G[r * V + c] - k[qo + r] * du[c];
            G[r * V + c] = gp;
            dgr += gp * Sp[r * V + c];
          }
          out.dk[qo + r] = b * gu - sdu;
          if (GK === 1) dgScalar += dgr;
          else out.dg[(t * H + h) * K + r] = dgr;
          const a = Math.exp(gAt(g, d, t, h, r));
          for (let c = 0; c < V; c++) G[r * V + c] *= a;
        }
        if (GK === 1) out.dg[t * H + h] = dgScalar;
      }
      for (let i = 0; i < KV; i++) out.dS0[base + i] = G[i];
    }
  }
  return out;

  function step(t: number, h: number, prev: Float64Array, cur: Float64Array): void {
    const qo = (t * H + h) * K;
    const vo = (t * H + h) * V;
    const b = beta[t * H + h];
    for (let r = 0; r < K; r++) {
      const a = Math.exp(gAt(g, d, t, h, r));
      for (let c = 0; c < V; c++) cur[r * V + c] = a * prev[r * V + c];
    }
    for (let c = 0; c < V; c++) {
      let s = 0;
      for (let r = 0; r < K; r++) s += k[qo + r] * cur[r * V + c];
      u[c] = v[vo + c] - s;
    }
    for (let r = 0; r < K; r++) {
      const bk = b * k[qo + r];
      for (let c = 0; c < V; c++) cur[r * V + c] += bk * u[c];
    }
  }
}
