/**
 * The chunked forward in the Kt form, in f64, written to be read: the same algebra as kdaChunkReference
 * (reference.ts) with the UT transform's T moved off W and U, so that the pre-pass between intraGram and the
 * state pass computes less. Per chunk, with gc the cumulative log decay from the chunk's first row, T =
 * (I + Diag(beta) A_kk)^-1 (unit lower triangular, intraReference.ts), Kb = exp(gc) * K, Kd = exp(gc_last - gc) * K:
 *    W = T Diag(beta) Kb,  U = T Diag(beta) V,  hence
 *    V' = U - W S = T Y,                  Y  = Diag(beta) (V - Kb S)                     [L, V]
 *    S_next = exp(gc_last) S + Kd^T V' = exp(gc_last) S + Kt^T Y,    Kt = T^T Kd          [L, K]
 *    o = scale (q exp(gc)) S + A_qk V' = scale (q exp(gc)) S + M Y,  M = A_qk T           [64, 64], lower
 * The pre-pass then forms Kt (a 64x64 by 64xK product) and M (64x64x64) instead of W and U (two 64x64 by 64xK|V
 * products): fewer multiply-adds and no U; the state pass reads Kb (formed from k and gc, as it forms Kd), Kt,
 * beta and v in place of W, Kd and U, and stores Y in V''s place; the output pass reads M and Y in place of A_qk
 * and V' (the same products).
 * Exact algebra, different rounding (the sums run in another order). Numerics: every exp argument is a difference
 * of cumulative log decays inside a chunk, so <= 0 (Kb's exp(gc) is exp(gc - 0), Kd's gc_last - gc), and nothing
 * is divided by a decay.
 */
import { type IntraChunk, intraChunkReference } from './intraReference.js';
import { bf16State, outputChunkReference } from './outputReference.js';
import type { KdaDims, KdaForwardResult } from './reference.js';

export interface KtChunkResult {
  /** [64, 64] scale * A_qk (zero above the diagonal and past row L), as intraChunkReference. */
  Aqk: Float64Array;
  /** [64, 64] strictly lower part of T (the unit diagonal implicit), zero past row L. */
  T: Float64Array;
  /** [L, K] exp(gc) * k: the state pass's left operand for Y (W's place). */
  Kb: Float64Array;
  /** [L, K] T^T Kd: the state pass's operand of the state update (Kd's place). */
  Kt: Float64Array;
  /** [64, 64] A_qk T (lower, zero past row L): the output pass's A_qk. */
  M: Float64Array;
  /** [K] gc at the chunk's last row (or [1] where GK = 1): the state's decay exp(gc_last). */
  gcLast: Float64Array;
}

/** The pre-pass of the Kt form for one chunk of one head: Kb, Kt and M (and the intra pass's A_qk, T). */
export function ktChunkReference(c: IntraChunk): KtChunkResult {
  const { L, K } = c;
  const { Aqk, T } = intraChunkReference(c);
  const g = (i: number, ch: number) => (c.GK === 1 ? c.gc[i] : c.gc[i * K + ch]);
  const gcLast = Float64Array.from({ length: c.GK === 1 ? 1 : K }, (_, ch) => g(L - 1, ch));
  const Kb = new Float64Array(L * K);
  const Kd = new Float64Array(L * K);
  for (let i = 0; i < L; i++) {
    for (let ch = 0; ch < K; ch++) {
      Kb[i * K + ch] = c.k[i * K + ch] * Math.exp(g(i, ch));
      Kd[i * K + ch] = c.k[i * K + ch] * Math.exp(g(L - 1, ch) - g(i, ch));
    }
  }
  // Kt = T^T Kd with T = I + strictly lower: Kt[j] = Kd[j] + sum_{i > j} T[i, j] Kd[i].
  const Kt = new Float64Array(L * K);
  for (let j = 0; j < L; j++) {
    for (let ch = 0; ch < K; ch++) {
      let s = Kd[j * K + ch];
      for (let i = j + 1; i < L; i++) s += T[i * 64 + j] * Kd[i * K + ch];
      Kt[j * K + ch] = s;
    }
  }
  // M = A_qk T: M[i, j] = A_qk[i, j] + sum_{j < m <= i} A_qk[i, m] T[m, j] (zero above the diagonal).
  const M = new Float64Array(64 * 64);
  for (let i = 0; i < L; i++) {
    for (let j = 0; j <= i; j++) {
      let s = Aqk[i * 64 + j];
      for (let m = j + 1; m <= i; m++) s += Aqk[i * 64 + m] * T[m * 64 + j];
      M[i * 64 + j] = s;
    }
  }
  return { Aqk, T, Kb, Kt, M, gcLast };
}

export interface KtStateChunk {
  L: number;
  K: number;
  V: number;
  /** [K, V] row-major: the state entering the chunk. */
  S: ArrayLike<number>;
  /** [L, K] row-major (ktChunkReference). */
  Kb: ArrayLike<number>;
  Kt: ArrayLike<number>;
  /** [L, V] row-major; beta [L]. */
  v: ArrayLike<number>;
  beta: ArrayLike<number>;
  /** [K] (or [1]: one decay a head, GK = 1). */
  gcLast: ArrayLike<number>;
}

/** One step of the Kt form's state pass: Y = Diag(beta) (V - Kb S) and the state leaving the chunk. */
export function ktStateChunkReference(c: KtStateChunk): { Y: Float64Array; S: Float64Array } {
  const { L, K, V } = c;
  const Y = new Float64Array(L * V);
  for (let i = 0; i < L; i++) {
    for (let col = 0; col < V; col++) {
      let s = c.v[i * V + col];
      for (let r = 0; r < K; r++) s -= c.Kb[i * K + r] * c.S[r * V + col];
      Y[i * V + col] = c.beta[i] * s;
    }
  }
  const S = new Float64Array(K * V);
  for (let r = 0; r < K; r++) {
    const decay = Math.exp(c.gcLast.length === 1 ? c.gcLast[0] : c.gcLast[r]);
    for (let col = 0; col < V; col++) {
      let s = decay * c.S[r * V + col];
      for (let j = 0; j < L; j++) s += c.Kt[j * K + r] * Y[j * V + col];
      S[r * V + col] = s;
    }
  }
  return { Y, S };
}

/**
 * The whole chunked forward in the Kt form (chunk 64; sequences packed along time as in reference.ts): per chunk
 * the pre-pass (ktChunkReference), the state step (ktStateChunkReference), and the output pass's reference
 * (outputChunkReference) with M and Y in place of A_qk and V'. `hbBf16`: the output pass reads the state entering
 * each chunk rounded to bf16 (kdaForwardTuning.hbBf16: the state pass stores hB so; bf16State), the carried state
 * and the final one not rounded.
 */
export function kdaChunkKtReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  g: ArrayLike<number>,
  beta: ArrayLike<number>,
  d: KdaDims,
  scale: number,
  S0?: ArrayLike<number>,
  opts: { hbBf16?: boolean } = {},
): KdaForwardResult {
  const { H, K, V, GK, cu } = d;
  const N = cu.length - 1;
  const o = new Float32Array(cu[N] * H * V);
  const Sout = new Float32Array(N * H * K * V);
  // Rows t0 .. t0 + L - 1 of head h of a [T, H, W] tensor, [L, W] row-major.
  const rows = (x: ArrayLike<number>, W: number, t0: number, L: number, h: number) =>
    Float64Array.from({ length: L * W }, (_, e) => x[((t0 + Math.floor(e / W)) * H + h) * W + (e % W)]);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      const base = (n * H + h) * K * V;
      let S: ArrayLike<number> = S0
        ? Float64Array.from({ length: K * V }, (_, e) => S0[base + e])
        : new Float64Array(K * V);
      for (let t0 = cu[n]; t0 < cu[n + 1]; t0 += 64) {
        const L = Math.min(64, cu[n + 1] - t0);
        const gRows = rows(g, GK, t0, L, h);
        const gc = new Float64Array(L * GK);
        for (let ch = 0; ch < GK; ch++) {
          let acc = 0;
          for (let i = 0; i < L; i++) {
            acc += gRows[i * GK + ch];
            gc[i * GK + ch] = acc;
          }
        }
        const qc = rows(q, K, t0, L, h);
        const vc = rows(v, V, t0, L, h);
        const bc = rows(beta, 1, t0, L, h);
        const pre = ktChunkReference({ L, K, V, q: qc, k: rows(k, K, t0, L, h), v: vc, gc, GK, beta: bc, scale });
        const step = ktStateChunkReference({ L, K, V, S, Kb: pre.Kb, Kt: pre.Kt, v: vc, beta: bc, gcLast: pre.gcLast });
        const oChunk = { L, K, V, q: qc, gc, GK, S, Aqk: pre.M, Vp: step.Y, scale };
        const oc = outputChunkReference(opts.hbBf16 ? bf16State(oChunk) : oChunk);
        for (let e = 0; e < L * V; e++) o[((t0 + Math.floor(e / V)) * H + h) * V + (e % V)] = oc[e];
        S = step.S;
      }
      Sout.set(Float32Array.from(S), base);
    }
  }
  return { o, S: Sout };
}
