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
import { bf16ArrayToF32, f32ArrayToBf16 } from '../../tensor/dtype.js';

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

/** dst[i] = src[base + i] for one [K, V] state, or 0 when there is no src. */
function loadState(dst: Float64Array, src: ArrayLike<number> | undefined, base: number): void {
  for (let i = 0; i < dst.length; i++) dst[i] = src ? src[base + i] : 0;
}

function newForwardResult(d: KdaDims): KdaForwardResult {
  const { H, K, V } = d;
  const N = seqCount(d);
  return { o: new Float32Array(d.cu[N] * H * V), S: new Float32Array(N * H * K * V) };
}

function newGrads(d: KdaDims): KdaGrads {
  const { H, K, V, GK } = d;
  const N = seqCount(d);
  const T = d.cu[N];
  return {
    dq: new Float32Array(T * H * K),
    dk: new Float32Array(T * H * K),
    dv: new Float32Array(T * H * V),
    dg: new Float32Array(T * H * GK),
    dbeta: new Float32Array(T * H),
    dS0: new Float32Array(N * H * K * V),
  };
}

/** Token t's forget step: dst = Diag(exp g_t) src (dst may be src). */
function decayState(
  dst: Float64Array,
  src: Float64Array,
  g: ArrayLike<number>,
  d: KdaDims,
  t: number,
  h: number,
): void {
  const { K, V } = d;
  for (let r = 0; r < K; r++) {
    const a = Math.exp(gAt(g, d, t, h, r));
    for (let c = 0; c < V; c++) dst[r * V + c] = a * src[r * V + c];
  }
}

/** The delta rule's prediction error u = v_t - S^T k_t (qo, vo: token t's offsets into k and v). */
function deltaError(
  u: Float64Array,
  S: Float64Array,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  d: KdaDims,
  qo: number,
  vo: number,
): void {
  const { K, V } = d;
  for (let c = 0; c < V; c++) {
    let s = 0;
    for (let r = 0; r < K; r++) s += k[qo + r] * S[r * V + c];
    u[c] = v[vo + c] - s;
  }
}

/** S += beta_t k_t u^T. */
function addRankOne(S: Float64Array, b: number, k: ArrayLike<number>, u: Float64Array, d: KdaDims, qo: number): void {
  const { K, V } = d;
  for (let r = 0; r < K; r++) {
    const bk = b * k[qo + r];
    for (let c = 0; c < V; c++) S[r * V + c] += bk * u[c];
  }
}

/** One chunk of the chunkwise forward, kept for its backward; the states are [K, V], X rows are [U | W]. */
interface ChunkSaved {
  t0: number;
  L: number;
  /** gc = cumsum(g) within the chunk, [L, K]. */
  gc: Float64Array;
  /** [L, V + K] */
  X: Float64Array;
  /** V' = U - W S, [L, V]. */
  Vp: Float64Array;
  /** The chunk's incoming state. */
  S: Float64Array;
}

/** beta_i * sum_c k_i k_j exp(gc_i - gc_j), j < i ([L, L]). */
function akk(
  k: ArrayLike<number>,
  beta: ArrayLike<number>,
  d: KdaDims,
  t0: number,
  L: number,
  h: number,
  gc: Float64Array,
): Float64Array {
  const { H, K } = d;
  const A = new Float64Array(L * L);
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let c = 0; c < K; c++) {
        s += k[((t0 + i) * H + h) * K + c] * k[((t0 + j) * H + h) * K + c] * Math.exp(gc[i * K + c] - gc[j * K + c]);
      }
      A[i * L + j] = beta[(t0 + i) * H + h] * s;
    }
  }
  return A;
}

/**
 * The chunk [t0, t0 + L) of head h given its incoming state S: gc, the UT transform's X = [U | W], V', and
 * S carried to the chunk's end (in place).
 */
function chunkForward(
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  g: ArrayLike<number>,
  beta: ArrayLike<number>,
  d: KdaDims,
  t0: number,
  L: number,
  h: number,
  S: Float64Array,
): ChunkSaved {
  const { H, K, V } = d;
  const row = (t: number) => t * H + h;
  const gc = new Float64Array(L * K);
  for (let c = 0; c < K; c++) {
    let acc = 0;
    for (let i = 0; i < L; i++) {
      acc += gAt(g, d, t0 + i, h, c);
      gc[i * K + c] = acc;
    }
  }
  const A = akk(k, beta, d, t0, L, h, gc);
  // UT transform by forward substitution: X_i = b_i - sum_{j<i} A_ij X_j.
  const X = new Float64Array(L * (V + K));
  for (let i = 0; i < L; i++) {
    const b = beta[row(t0 + i)];
    for (let c = 0; c < V; c++) X[i * (V + K) + c] = b * v[row(t0 + i) * V + c];
    for (let c = 0; c < K; c++) X[i * (V + K) + V + c] = b * Math.exp(gc[i * K + c]) * k[row(t0 + i) * K + c];
    for (let j = 0; j < i; j++) for (let c = 0; c < V + K; c++) X[i * (V + K) + c] -= A[i * L + j] * X[j * (V + K) + c];
  }
  // V' = U - W S.
  const Vp = new Float64Array(L * V);
  for (let i = 0; i < L; i++) {
    for (let c = 0; c < V; c++) {
      let s = X[i * (V + K) + c];
      for (let r = 0; r < K; r++) s -= X[i * (V + K) + V + r] * S[r * V + c];
      Vp[i * V + c] = s;
    }
  }
  // Carry the state to the chunk's end.
  const Sin = Float64Array.from(S);
  const last = (L - 1) * K;
  for (let r = 0; r < K; r++) {
    for (let c = 0; c < V; c++) {
      let s = Math.exp(gc[last + r]) * Sin[r * V + c];
      for (let j = 0; j < L; j++) {
        s += k[row(t0 + j) * K + r] * Math.exp(gc[last + r] - gc[j * K + r]) * Vp[j * V + c];
      }
      S[r * V + c] = s;
    }
  }
  return { t0, L, gc, X, Vp, S: Sin };
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
  const { o, S: Sout } = newForwardResult(d);
  const S = new Float64Array(K * V);
  const u = new Float64Array(V);
  for (let n = 0; n < seqCount(d); n++) {
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * K * V;
      loadState(S, S0, base);
      for (let t = cu[n]; t < cu[n + 1]; t++) {
        const qo = (t * H + h) * K;
        const vo = (t * H + h) * V;
        // Forget, then the delta rule's prediction error u = v - S^T k.
        decayState(S, S, g, d, t, h);
        deltaError(u, S, k, v, d, qo, vo);
        addRankOne(S, beta[t * H + h], k, u, d, qo);
        for (let c = 0; c < V; c++) {
          let s = 0;
          for (let r = 0; r < K; r++) s += q[qo + r] * S[r * V + c];
          o[vo + c] = s * scale;
        }
      }
      Sout.set(S, base);
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
  /**
   * hbBf16: the outputs read the state entering each chunk rounded to bf16 (round to nearest even), as the GPU's
   * output pass does where the state pass stores hB as bf16 (kdaForwardTuning.hbBf16); the carried state is not.
   */
  opts: { hbBf16?: boolean } = {},
): KdaForwardResult {
  const { H, K, V, cu } = d;
  const { o, S: Sout } = newForwardResult(d);
  const S = new Float64Array(K * V);
  for (let n = 0; n < seqCount(d); n++) {
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * K * V;
      loadState(S, S0, base);
      for (let t0 = cu[n]; t0 < cu[n + 1]; t0 += C) {
        const L = Math.min(C, cu[n + 1] - t0);
        // gc, V' and the carried state; Sin is the state the chunk started from.
        const { gc, Vp, S: S_in } = chunkForward(k, v, g, beta, d, t0, L, h, S);
        const Sin = opts.hbBf16 ? bf16ArrayToF32(f32ArrayToBf16(S_in)) : S_in;
        const kk = (i: number, c: number) => k[((t0 + i) * H + h) * K + c];
        const qq = (i: number, c: number) => q[((t0 + i) * H + h) * K + c];
        // Outputs: the incoming state seen through the decay, plus the chunk's own causal part.
        for (let i = 0; i < L; i++) {
          for (let c = 0; c < V; c++) {
            let s = 0;
            for (let r = 0; r < K; r++) s += qq(i, r) * Math.exp(gc[i * K + r]) * Sin[r * V + c];
            for (let j = 0; j <= i; j++) {
              let a = 0;
              for (let r = 0; r < K; r++) a += qq(i, r) * kk(j, r) * Math.exp(gc[i * K + r] - gc[j * K + r]);
              s += a * Vp[j * V + c];
            }
            o[((t0 + i) * H + h) * V + c] = s * scale;
          }
        }
      }
      Sout.set(S, base);
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
  const out = newGrads(d);
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
      loadState(states.subarray(0, KV), S0, base);
      for (let i = 0; i < L; i++) {
        const t = cu[n] + i;
        const prev = states.subarray(i * KV, (i + 1) * KV);
        const cur = states.subarray((i + 1) * KV, (i + 2) * KV);
        step(t, h, prev, cur);
      }
      loadState(G, dS, base);
      for (let i = L - 1; i >= 0; i--) {
        const t = cu[n] + i;
        const qo = (t * H + h) * K;
        const vo = (t * H + h) * V;
        const b = beta[t * H + h];
        const prev = states.subarray(i * KV, (i + 1) * KV);
        const cur = states.subarray((i + 1) * KV, (i + 2) * KV);
        decayState(Sp, prev, g, d, t, h);
        deltaError(u, Sp, k, v, d, qo, vo);
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
      out.dS0.set(G, base);
    }
  }
  return out;

  function step(t: number, h: number, prev: Float64Array, cur: Float64Array): void {
    const qo = (t * H + h) * K;
    decayState(cur, prev, g, d, t, h);
    deltaError(u, cur, k, v, d, qo, (t * H + h) * V);
    addRankOne(cur, beta[t * H + h], k, u, d, qo);
  }
}

/**
 * Backward of the chunkwise form, structured as the GPU computes it (per chunk, given the incoming
 * state S and the gradient G of the outgoing one; Qg = scale q exp(gc), Kd = k exp(gc_last - gc),
 * X = [U | W] = T B with B = Diag(beta) [V | exp(gc) K] and T = (I + Diag(beta) A_kk)^-1):
 *   1. reverse over chunks:  dV' = A_qk^T dO + Kd G;   G_in = exp(gc_last) G + Qg^T dO - W^T dV'
 *   2. per chunk:  dQg = dO S^T,  dW = -dV' S^T,  dKd = V' G^T,  dA_qk = dO V'^T (j <= i),
 *                  dgc_last += exp(gc_last) rowsum(G o S),  dU = dV'
 *   3. UT transform:  dB = T^T [dU | dW],  dA = -(dB X^T) strictly lower (gradient of Diag(beta) A_kk)
 *   4. exponent pairs: every term sum_c x_i[c] y_j[c] exp(gc_i[c] - gc_j[c]) sends x_i dx_i - y_j dy_j to gc
 *   5. dg = reverse cumsum of dgc within the chunk (gc = cumsum g).
 */
export function kdaChunkBackwardReference(
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
  C = KDA_CHUNK,
): KdaGrads {
  const { H, K, V, GK, cu } = d;
  const N = seqCount(d);
  const out = newGrads(d);
  const KV = K * V;
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      // Forward, keeping per chunk: gc, T (as the solved X = [U | W]), V', incoming state.
      const chunks: ChunkSaved[] = [];
      const S = new Float64Array(KV);
      const base = (n * H + h) * KV;
      loadState(S, S0, base);
      for (let t0 = cu[n]; t0 < cu[n + 1]; t0 += C) {
        const L = Math.min(C, cu[n + 1] - t0);
        chunks.push(chunkForward(k, v, g, beta, d, t0, L, h, S));
      }
      const G = new Float64Array(KV);
      loadState(G, dS, base);
      for (let ci = chunks.length - 1; ci >= 0; ci--) chunkBackward(chunks[ci], h, G);
      out.dS0.set(G, base);
    }
  }
  return out;

  function row(t: number, h: number): number {
    return t * H + h;
  }

  function chunkBackward(ch: ChunkSaved, h: number, G: Float64Array): void {
    const { t0, L, gc, X, Vp, S } = ch;
    const kk = (i: number, c: number) => k[row(t0 + i, h) * K + c];
    const qq = (i: number, c: number) => q[row(t0 + i, h) * K + c];
    const dOo = (i: number, c: number) => dO[row(t0 + i, h) * V + c];
    const e = (i: number, j: number, c: number) => Math.exp(gc[i * K + c] - gc[j * K + c]);
    const last = L - 1;
    // 1. dV' and the incoming-state gradient.
    const dVp = new Float64Array(L * V);
    for (let i = 0; i < L; i++) {
      for (let c = 0; c < V; c++) {
        let s = 0;
        for (let i2 = i; i2 < L; i2++) {
          let a = 0;
          for (let r = 0; r < K; r++) a += qq(i2, r) * kk(i, r) * e(i2, i, r);
          s += scale * a * dOo(i2, c);
        }
        for (let r = 0; r < K; r++) s += kk(i, r) * e(last, i, r) * G[r * V + c];
        dVp[i * V + c] = s;
      }
    }
    // 2. Products with the states.
    const dgc = new Float64Array(L * K);
    const dq = new Float64Array(L * K);
    const dk = new Float64Array(L * K);
    const dWm = new Float64Array(L * K);
    for (let i = 0; i < L; i++) {
      for (let r = 0; r < K; r++) {
        let dQg = 0;
        let dW = 0;
        let dKd = 0;
        for (let c = 0; c < V; c++) {
          dQg += dOo(i, c) * S[r * V + c];
          dW -= dVp[i * V + c] * S[r * V + c];
          dKd += Vp[i * V + c] * G[r * V + c];
        }
        const qg = scale * qq(i, r) * Math.exp(gc[i * K + r]);
        dq[i * K + r] += scale * Math.exp(gc[i * K + r]) * dQg;
        dgc[i * K + r] += dQg * qg;
        const kd = kk(i, r) * e(last, i, r);
        dk[i * K + r] += dKd * e(last, i, r);
        dgc[i * K + r] -= dKd * kd;
        dgc[last * K + r] += dKd * kd;
        dWm[i * K + r] = dW;
      }
    }
    for (let r = 0; r < K; r++) {
      let s = 0;
      for (let c = 0; c < V; c++) s += G[r * V + c] * S[r * V + c];
      dgc[last * K + r] += Math.exp(gc[last * K + r]) * s;
    }
    // 3. UT transform backward: recompute T = (I + A)^-1 by forward substitution.
    const A = akk(k, beta, d, t0, L, h, gc);
    const Tm = new Float64Array(L * L);
    for (let i = 0; i < L; i++) {
      Tm[i * L + i] = 1;
      for (let c = 0; c < i; c++) {
        let s = 0;
        for (let j = c; j < i; j++) s += A[i * L + j] * Tm[j * L + c];
        Tm[i * L + c] = -s;
      }
    }
    const dB = new Float64Array(L * (V + K));
    for (let j = 0; j < L; j++) {
      for (let c = 0; c < V + K; c++) {
        let s = 0;
        for (let i = j; i < L; i++) s += Tm[i * L + j] * (c < V ? dVp[i * V + c] : dWm[i * K + c - V]);
        dB[j * (V + K) + c] = s;
      }
    }
    const dA = new Float64Array(L * L);
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < i; j++) {
        let s = 0;
        for (let c = 0; c < V + K; c++) s += dB[i * (V + K) + c] * X[j * (V + K) + c];
        dA[i * L + j] = -s;
      }
    }
    for (let i = 0; i < L; i++) {
      const b = beta[row(t0 + i, h)];
      let db = 0;
      for (let c = 0; c < V; c++) {
        out.dv[row(t0 + i, h) * V + c] = b * dB[i * (V + K) + c];
        db += dB[i * (V + K) + c] * v[row(t0 + i, h) * V + c];
      }
      for (let r = 0; r < K; r++) {
        const ek = Math.exp(gc[i * K + r]) * kk(i, r);
        const dKb = dB[i * (V + K) + V + r];
        db += dKb * ek;
        dk[i * K + r] += b * Math.exp(gc[i * K + r]) * dKb;
        dgc[i * K + r] += dKb * b * ek;
      }
      out.dbeta[row(t0 + i, h)] = db;
    }
    // 4. Exponent pairs of A_kk (with beta_i) and A_qk (with scale): dA_qk = dO V'^T.
    for (let i = 0; i < L; i++) {
      const b = beta[row(t0 + i, h)];
      let dbA = 0;
      for (let j = 0; j <= i; j++) {
        let dAqk = 0;
        for (let c = 0; c < V; c++) dAqk += dOo(i, c) * Vp[j * V + c];
        dAqk *= scale;
        const dAk = j < i ? dA[i * L + j] : 0;
        for (let r = 0; r < K; r++) {
          const ee = e(i, j, r);
          const pq = dAqk * qq(i, r) * kk(j, r) * ee;
          const pk = dAk * kk(i, r) * kk(j, r) * ee;
          dq[i * K + r] += dAqk * kk(j, r) * ee;
          dk[j * K + r] += dAqk * qq(i, r) * ee + dAk * b * kk(i, r) * ee;
          dk[i * K + r] += dAk * b * kk(j, r) * ee;
          dgc[i * K + r] += pq + b * pk;
          dgc[j * K + r] -= pq + b * pk;
          dbA += pk;
        }
      }
      // A_kk = Diag(beta) A_raw: dbeta_i += sum_j dA[i,j] A_raw[i,j] (no division by beta).
      out.dbeta[row(t0 + i, h)] += dbA;
    }
    // 5. Reverse cumsum into dg; write dq, dk.
    for (let i = 0; i < L; i++) {
      for (let r = 0; r < K; r++) {
        out.dq[row(t0 + i, h) * K + r] = dq[i * K + r];
        out.dk[row(t0 + i, h) * K + r] = dk[i * K + r];
      }
    }
    for (let r = 0; r < K; r++) {
      let acc = 0;
      for (let i = L - 1; i >= 0; i--) {
        acc += dgc[i * K + r];
        if (GK === 1) out.dg[row(t0 + i, h)] += acc;
        else out.dg[row(t0 + i, h) * K + r] = acc;
      }
    }
    // Incoming-state gradient: G_in = exp(gc_last) G + Qg^T dO - W^T dV'.
    for (let r = 0; r < K; r++) {
      const a = Math.exp(gc[last * K + r]);
      for (let c = 0; c < V; c++) {
        let s = a * G[r * V + c];
        for (let i = 0; i < L; i++) {
          s += scale * qq(i, r) * Math.exp(gc[i * K + r]) * dOo(i, c);
          s -= X[i * (V + K) + V + r] * dVp[i * V + c];
        }
        G[r * V + c] = s;
      }
    }
  }
}
