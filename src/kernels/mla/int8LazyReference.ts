/**
 * Reference for a candidate P x V scheme of the int8 MLA decode (issue #4): p quantised against a reference that
 * changes rarely, so the integer P x V products can stay in i32 accumulators across the blocks of a chunk, instead
 * of the current scheme's per-block quantisation (int8Reference.ts: P8 relative to each 32-token block's max of
 * p' = p s_t, so every block's i32 result is scaled by its own m / 127 and folded into an f32 O).
 *
 * Per chunk (the kernel's chunk of ~8K tokens at 1M; partials (m, l, o) merged as merge.wgsl.ts does), in the
 * kernel's base-2 domain (scores s = scale log2(e) q . k):
 *   s_ref = max over the chunk of the value scales s_t (c_kv's absmax / 127, read up front);
 *   m_ref = the running max of the scores, kept stale (lazy rescale, as FlashAttention-3/4 do) until a block's
 *           max exceeds it by more than tau; then m_ref = that block's max (a rescale: the accumulators are
 *           folded into the f32 partial, o = o 2^(m_old - m_new), and cleared);
 *   x_t   = 2^(s_t' - m_ref - tau) s_t / s_ref in [0, 1]       (s_t' the score, s_t the value scale)
 *   Q_t   = floor(QMAX x_t + u_t) (dithered, u_t = lazyDither(t, h) in [0, 1); or round_half_even(QMAX x_t)),
 *           QMAX = 127 (one int8 digit) or 128 * 127 + 127 = 16383 (two: hi = Q >> 7, lo = Q & 127, both in [0, 127]);
 *   A_hi += hi_t C8_t, A_lo += lo_t C8_t        (C8_t the row's c_kv codes; i32, exact: |A| <= 127 * 127 * tokens,
 *                                                below 2^31 up to 133K tokens a chunk)
 *   o     = (128 A_hi + A_lo) * 2^tau s_ref / QMAX at the chunk's end (in f32), l = sum_t 2^(s_t' - m_ref) (f32,
 *           unquantised, as now), m = m_ref.
 * The weight a token gets is exact up to one unit, 2^tau s_ref / QMAX (relative to 2^m_ref; half a unit rounded to
 * nearest), the same for every token of the chunk: a token far below the chunk's max (a diffuse tail) or with a small
 * s_t keeps only the digits it has, which is why one digit is not enough (a weight below 1 / 254 of the top rounds to
 * 0) and why two digits are dithered: rounded to nearest, weights below 1 / 32766 of the top are all dropped, a bias
 * that adds up over a 64K-token tail (4.7e-1 of max |o| in one chunk); dithered, each is kept on average. tau trades
 * rescales (each one a fold of every accumulator through workgroup memory) for resolution (x <= 1 needs the 2^-tau,
 * so tau bits of QMAX are lost). Measured in test/mla-int8-lazy.test.ts.
 */
import { int8PoolView, MLA_INT8_TT, quantizeRowInt8, roundHalfEven } from './int8Reference.js';
import type { MlaDecodeDims } from './reference.js';

export interface LazyPvOptions {
  /** Staleness allowed to m_ref before a rescale, in log2 units (x <= 2^tau before the 2^-tau). */
  tau: number;
  /** int8 digits of x: 1 (QMAX 127) or 2 (QMAX 16383). */
  digits: 1 | 2;
  /** Tokens a chunk (a multiple of MLA_INT8_TT): each chunk has its own s_ref, m_ref and partial. */
  chunkLen: number;
  /**
   * How x QMAX becomes an integer: 'nearest' (round half even: a weight below half a unit is dropped, a bias that
   * adds up over a diffuse tail), or 'dither' (floor(x QMAX + u_t), u_t in [0, 1) a hash of the token's position
   * (lazyDither): unbiased, each token's error within one unit, the tail's sum correct on average).
   */
  rounding?: 'nearest' | 'dither';
  /**
   * Where m_ref comes from: 'running' (the lazy scheme above: the running max, rescaled past tau), or 'chunkMax'
   * (the two-pass scheme, decodeInt8Scores / decodeInt8Pv: every score of the chunk is known before P is quantised,
   * so m_ref is the chunk's max from the start and no rescale ever happens; with tau 0, x <= 1 holds exactly).
   */
  mRef?: 'running' | 'chunkMax';
}

/**
 * The dither of token t (and head h): a 32-bit integer hash (lowbias32, two multiply-xorshift rounds: a few integer
 * instructions in WGSL) of t + h 2^20, its top 24 bits as a fraction in [0, 1).
 */
export function lazyDither(t: number, h = 0): number {
  let x = (t + h * 0x100000) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return (x >>> 8) / 16777216;
}

/**
 * Chosen from test/mla-int8-lazy.test.ts's measurements (see there): two digits (one loses 6e-2-1.4e-1 of max |o|
 * on every case), dithered (round to nearest drops a diffuse tail: 4.7e-1 on one 64K chunk, against 1.5e-2
 * dithered), tau = 1 (tau = 0 halves the error but rescales 2-4x as often: 46 against 2 on the tail case, 78
 * against 20 on a ramp; tau = 3 costs 3 bits). 8192-token chunks are the 1M default's (~132 chunks).
 */
export const LAZY_PV_DEFAULTS: LazyPvOptions = { tau: 1, digits: 2, chunkLen: 8192, rounding: 'dither' };

/**
 * The two-pass kernels' scheme (int8TwoPassPlan.ts): m_ref the chunk's max (known from the scores pass), tau 0 (no
 * staleness to leave room for: every x <= 1), two dithered digits. Measured in test/mla-int8-two-pass.test.ts.
 */
export const TWO_PASS_PV: LazyPvOptions = { tau: 0, digits: 2, chunkLen: 8192, rounding: 'dither', mRef: 'chunkMax' };

export interface LazyPvStats {
  /** Rescales after a chunk's first block (its first block always sets m_ref). */
  rescales: number;
  /** Largest |A_hi|, |A_lo| over the chunks (must stay below 2^31). */
  maxAcc: number;
}

/**
 * One head's attention output over one sequence under the lazy scheme: scores s (base 2, [T]), value scales sL
 * ([T]) and c_kv codes ([T, Rv], row-major); o [Rv] = sum_t p_t sL_t C8_t / sum_t p_t, through per-chunk partials.
 */
export function lazyPv(
  s: ArrayLike<number>,
  sL: ArrayLike<number>,
  codes: Int8Array,
  Rv: number,
  opts: LazyPvOptions = LAZY_PV_DEFAULTS,
  stats?: LazyPvStats,
  /** The head (for the dither's hash). */
  head = 0,
): Float64Array {
  const { tau, digits, chunkLen } = opts;
  const dither = opts.rounding === 'dither';
  if (!(chunkLen > 0 && chunkLen % MLA_INT8_TT === 0))
    throw new Error(`lazyPv: chunkLen must be a positive multiple of ${MLA_INT8_TT}, got ${chunkLen}`);
  if (!(tau >= 0)) throw new Error(`lazyPv: tau must be >= 0, got ${tau}`);
  const QMAX = digits === 2 ? 128 * 127 + 127 : 127;
  const T = s.length;
  const parts: { m: number; l: number; o: Float64Array }[] = [];
  const f = Math.fround;
  for (let c0 = 0; c0 < T; c0 += chunkLen) {
    const c1 = Math.min(T, c0 + chunkLen);
    let sRef = 0;
    for (let t = c0; t < c1; t++) sRef = Math.max(sRef, sL[t]);
    const o = new Float64Array(Rv);
    const aHi = new Float64Array(Rv);
    const aLo = new Float64Array(Rv);
    let mRef = Number.NEGATIVE_INFINITY;
    // chunkMax: m_ref known up front, so no block raises it (mx <= m_ref) and only the chunk's end flushes.
    if (opts.mRef === 'chunkMax') for (let t = c0; t < c1; t++) mRef = Math.max(mRef, s[t]);
    let l = 0;
    let first = true;
    // The accumulators into o (f32 per element, as a lane folds them) relative to 2^mRef, then o scaled to mNew.
    const flush = (mNew: number) => {
      const unit = f((2 ** tau * sRef) / QMAX);
      const alpha = mRef === Number.NEGATIVE_INFINITY ? 0 : f(2 ** (mRef - mNew));
      for (let c = 0; c < Rv; c++) {
        if (stats) stats.maxAcc = Math.max(stats.maxAcc, Math.abs(aHi[c]), Math.abs(aLo[c]));
        const a = digits === 2 ? f(f(128 * f(aHi[c])) + f(aLo[c])) : f(aHi[c]);
        o[c] = f(f(o[c] + f(unit * a)) * (mNew === mRef ? 1 : alpha));
        aHi[c] = 0;
        aLo[c] = 0;
      }
      l = f(l * (mNew === mRef ? 1 : alpha));
      mRef = mNew;
    };
    for (let t0 = c0; t0 < c1; t0 += MLA_INT8_TT) {
      const t1 = Math.min(c1, t0 + MLA_INT8_TT);
      let mx = Number.NEGATIVE_INFINITY;
      for (let t = t0; t < t1; t++) mx = Math.max(mx, s[t]);
      if (mx > mRef + tau) {
        if (!first && stats) stats.rescales++;
        flush(mx);
      }
      first = false;
      const inv = sRef > 0 ? 1 / sRef : 0;
      for (let t = t0; t < t1; t++) {
        const p = f(2 ** (s[t] - mRef));
        l = f(l + p);
        const x = Math.min(1, f(f(2 ** (s[t] - mRef - tau)) * f(sL[t] * inv)));
        const Q = dither
          ? Math.min(QMAX, Math.floor(f(f(x * QMAX) + lazyDither(t, head))))
          : roundHalfEven(f(x * QMAX));
        const hi = digits === 2 ? Q >> 7 : Q;
        const lo = digits === 2 ? Q & 127 : 0;
        for (let c = 0; c < Rv; c++) {
          const v = codes[t * Rv + c];
          aHi[c] += hi * v;
          aLo[c] += lo * v;
        }
      }
    }
    flush(mRef);
    parts.push({ m: mRef, l, o });
  }
  return mergeParts(parts, Rv);
}

/** The flash-decoding merge of chunk partials (merge.wgsl.ts), in f64. */
function mergeParts(parts: { m: number; l: number; o: Float64Array }[], Rv: number): Float64Array {
  const out = new Float64Array(Rv);
  if (!parts.length) return out;
  const M = Math.max(...parts.map((q) => q.m));
  let L = 0;
  for (const q of parts) {
    const w = 2 ** (q.m - M);
    L += q.l * w;
    for (let c = 0; c < Rv; c++) out[c] += q.o[c] * w;
  }
  for (let c = 0; c < Rv; c++) out[c] /= L;
  return out;
}

/** The current scheme on the same inputs (int8Reference.ts: P8 per block of MLA_INT8_TT against its max of p'). */
export function blockPv(s: ArrayLike<number>, sL: ArrayLike<number>, codes: Int8Array, Rv: number): Float64Array {
  const T = s.length;
  let max = Number.NEGATIVE_INFINITY;
  for (let t = 0; t < T; t++) max = Math.max(max, s[t]);
  const out = new Float64Array(Rv);
  let sum = 0;
  for (let t0 = 0; t0 < T; t0 += MLA_INT8_TT) {
    const t1 = Math.min(T, t0 + MLA_INT8_TT);
    let m = 0;
    for (let t = t0; t < t1; t++) m = Math.max(m, Math.fround(2 ** (s[t] - max) * sL[t]));
    const inv = m > 0 ? 127 / m : 0;
    for (let t = t0; t < t1; t++) {
      const p = 2 ** (s[t] - max);
      sum += p;
      const w = (m / 127) * roundHalfEven(Math.fround(p * sL[t]) * inv);
      for (let c = 0; c < Rv; c++) out[c] += w * codes[t * Rv + c];
    }
  }
  for (let c = 0; c < Rv; c++) out[c] = T ? out[c] / sum : 0;
  return out;
}

/** Exact attention (f64, unquantised weights) on the same inputs: what both schemes approximate. */
export function exactPv(s: ArrayLike<number>, sL: ArrayLike<number>, codes: Int8Array, Rv: number): Float64Array {
  const T = s.length;
  let max = Number.NEGATIVE_INFINITY;
  for (let t = 0; t < T; t++) max = Math.max(max, s[t]);
  const out = new Float64Array(Rv);
  let sum = 0;
  for (let t = 0; t < T; t++) {
    const p = 2 ** (s[t] - max);
    sum += p;
    for (let c = 0; c < Rv; c++) out[c] += p * sL[t] * codes[t * Rv + c];
  }
  for (let c = 0; c < Rv; c++) out[c] = T ? out[c] / sum : 0;
  return out;
}

/**
 * Absorbed MLA decode over an int8 pool with the lazy P x V scheme; o_lat [B, H, Rv]. The scores are
 * int8Reference.ts's (the same integer dot products and scales), taken to base 2 as the kernel does; only the
 * weighing of the values differs (lazyPv).
 */
export function mlaDecodeInt8LazyReference(
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaDecodeDims,
  opts: LazyPvOptions = LAZY_PV_DEFAULTS,
): Float32Array {
  const { B, H, R, Rv, scale } = d;
  const { L, poolF, byte, rowOf } = int8PoolView(pool, pageTable, d);
  const out = new Float32Array(B * H * Rv);
  for (let b = 0; b < B; b++) {
    const T = lengths[b];
    const row = (t: number) => rowOf(b, t);
    const sL = new Float64Array(T);
    const codes = new Int8Array(T * Rv);
    for (let t = 0; t < T; t++) {
      sL[t] = poolF[row(t) + L.SW];
      for (let c = 0; c < Rv; c++) codes[t * Rv + c] = byte(row(t), c);
    }
    for (let h = 0; h < H; h++) {
      const qw = quantizeRowInt8(qFull.subarray((b * H + h) * R, (b * H + h + 1) * R), R, Rv);
      const qf = new Float32Array(qw.buffer);
      const qb = (w: number, i: number) => (qw[w + (i >> 2)] << (24 - 8 * (i & 3))) >> 24;
      const s = new Float64Array(T);
      for (let t = 0; t < T; t++) {
        const o = row(t);
        let dl = 0;
        for (let c = 0; c < Rv; c++) dl += qb(0, c) * byte(o, c);
        let dr = 0;
        for (let c = 0; c < R - Rv; c++) dr += qb(L.LWp, c) * byte(o + L.LWp, c);
        s[t] = Math.LOG2E * scale * (qf[L.SW] * poolF[o + L.SW] * dl + qf[L.SW + 1] * poolF[o + L.SW + 1] * dr);
      }
      const o = lazyPv(s, sL, codes, Rv, opts, undefined, h);
      for (let c = 0; c < Rv; c++) out[(b * H + h) * Rv + c] = o[c];
    }
  }
  return out;
}
