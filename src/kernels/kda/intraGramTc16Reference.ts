/**
 * What intraGramTc16.wgsl.ts computes for one chunk of one head, in plain TS: A_qk and T as intraReference.ts's
 * intraChunkReference, except the entries between different 16-row blocks (i in block I, j in block J < I), which
 * are products of f16-rounded operands with the per-row power-of-two scales (see the kernel's header):
 *    A_kk[i, j] = 2^ek_i 2^ek_j sum_c f16(k_ic 2^-ek_i exp(gc_ic - gc_Nc)) f16(k_jc 2^-ek_j exp(gc_Nc - gc_jc)),
 *    A_qk[i, j] = scale 2^eq_i 2^ek_j sum_c f16(q_ic 2^-eq_i exp(gc_ic - gc_Nc)) f16(k_jc ...),   N = 16 I,
 * the scaled, decayed operands rounded through f32 first (as the kernel forms them), the sums in f64 (the tensor
 * cores' f32 accumulation order is theirs; a test's tolerance covers it). Everything else in f64.
 *
 * intraGramTc16Layout (below) replays the kernel's work layout instead: the f16 staging array at the offsets the
 * kernel stages into (TC16_STAGING), each subgroup's fragments where tc16Fragments puts them, the result blocks and
 * the epilogue's tile mapping, so a test can check that the layout and this reference agree.
 */
import { f16Round } from '../f16mma.js';
import { type IntraChunk, unitLowerInverse } from './intraReference.js';
import { type IntraGramTc16Variant, TC16_PAIRS, tc16Fragments, tc16Staging } from './intraGramTc16.wgsl.js';

export interface IntraGramResult {
  /** [64, 64], zero above the diagonal and past row L. */
  Aqk: Float64Array;
  /** [64, 64] strictly lower part of T, zero past row L. */
  T: Float64Array;
  /** [64, 64] A_kk, strictly lower (beta not applied), zero past row L: what T inverts. */
  Akk: Float64Array;
}

const fr = Math.fround;

/**
 * The exponent e of a row's power-of-two scale 2^-e: the row's largest |x| = f 2^x with f in [0.5, 1) (frexp),
 * e = x - 8 (so the scaled maximum lies in [128, 256)), clamped to [-126, 126]; 0 gives e = -8.
 */
export function tc16RowExponent(row: ArrayLike<number>): number {
  let m = 0;
  for (let c = 0; c < row.length; c++) m = Math.max(m, Math.abs(row[c]));
  const x = m === 0 ? 0 : Math.floor(Math.log2(m)) + 1;
  // log2 may round at exact powers of two: fix x so that 2^(x - 1) <= m < 2^x.
  const xe = m === 0 ? 0 : m >= 2 ** x ? x + 1 : m < 2 ** (x - 1) ? x - 1 : x;
  return Math.min(126, Math.max(-126, xe - 8));
}

/** The kernel's operands for one chunk: the row exponents and the decayed, scaled f16 operands by row. */
function tc16Operands(c: IntraChunk) {
  const { L, K } = c;
  const g = (i: number, ch: number) => (c.GK === 1 ? c.gc[Math.min(i, L - 1)] : c.gc[Math.min(i, L - 1) * K + ch]);
  const row = (x: ArrayLike<number>, i: number) => Array.from({ length: K }, (_, ch) => (i < L ? x[i * K + ch] : 0));
  const eq = Array.from({ length: 64 }, (_, i) => tc16RowExponent(row(c.q, i)));
  const ek = Array.from({ length: 64 }, (_, i) => tc16RowExponent(row(c.k, i)));
  /** f16(x 2^-e exp(a - b)), the product rounded through f32 as the kernel forms it. */
  const op = (x: number, e: number, a: number, b: number) => f16Round(fr(fr(x * 2 ** -e) * fr(Math.exp(fr(a - b)))));
  const N = (i: number) => 16 * Math.floor(i / 16);
  /** QS, KS of row i (reference row N(i)); KN_I of row j (reference row 16 I). */
  const qs = (i: number, ch: number) => op(row(c.q, i)[ch], eq[i], g(i, ch), g(N(i), ch));
  const ks = (i: number, ch: number) => op(row(c.k, i)[ch], ek[i], g(i, ch), g(N(i), ch));
  const kn = (I: number, j: number, ch: number) => op(row(c.k, j)[ch], ek[j], g(16 * I, ch), g(j, ch));
  return { eq, ek, qs, ks, kn };
}

export function intraGramTc16Reference(c: IntraChunk): IntraGramResult {
  const { L, K } = c;
  const g = (i: number, ch: number) => (c.GK === 1 ? c.gc[i] : c.gc[i * K + ch]);
  const { eq, ek, qs, ks, kn } = tc16Operands(c);
  const Aqk = new Float64Array(64 * 64);
  const Akk = new Float64Array(64 * 64);
  const N = new Float64Array(64 * 64); // Diag(beta) A_kk, strictly lower
  for (let i = 0; i < L; i++) {
    const I = Math.floor(i / 16);
    for (let j = 0; j <= i; j++) {
      let sq = 0;
      let sk = 0;
      if (Math.floor(j / 16) < I) {
        for (let ch = 0; ch < K; ch++) {
          const r = kn(I, j, ch);
          sq += qs(i, ch) * r;
          sk += ks(i, ch) * r;
        }
        sq *= 2 ** eq[i] * 2 ** ek[j];
        sk *= 2 ** ek[i] * 2 ** ek[j];
      } else {
        for (let ch = 0; ch < K; ch++) {
          const kd = c.k[j * K + ch] * Math.exp(g(i, ch) - g(j, ch));
          sq += c.q[i * K + ch] * kd;
          sk += c.k[i * K + ch] * kd;
        }
      }
      Aqk[i * 64 + j] = c.scale * sq;
      if (j < i) {
        Akk[i * 64 + j] = sk;
        N[i * 64 + j] = c.beta[i] * sk;
      }
    }
  }
  return { Aqk, T: unitLowerInverse(N, L), Akk };
}

/**
 * The cross-block entries of A_kk and A_qk ([64, 64] each, zero elsewhere; A_qk without `scale`) through the
 * kernel's work layout for the layout choices of `v` (pad, knT, halves): the staging threads' stores into the f16
 * array (tc16Staging offsets, one K tile of 16 channels at a time; the rows no product reads are never stored, so
 * they stay NaN and poison any fragment that reaches them), each subgroup's fragments read where tc16Fragments
 * says (left row-major, right column-major or row-major, at their strides), its products accumulated into the
 * result array at outK / outQ (with halves two arrays, one a round; else one, so overlapping blocks would show),
 * then the epilogue's tile t = lid % 96 of thread lid < 192 mapped back to (row, column) and unscaled as the kernel
 * does.
 */
export function intraGramTc16Layout(
  c: IntraChunk,
  v: Pick<IntraGramTc16Variant, 'pad' | 'knT' | 'halves'> = {},
): { Akk: Float64Array; Aqk: Float64Array } {
  const { K } = c;
  const { eq, ek, qs, ks, kn } = tc16Operands(c);
  const BK = 16;
  const st = tc16Staging(v);
  const resK = new Float64Array(12 * 256);
  const resQ = v.halves ? new Float64Array(12 * 256) : resK;
  for (let kt = 0; kt < K / BK; kt++) {
    // Staging: row si, channels 16 kt .. 16 kt + 15 (the kernel's four threads of a row, one 4-channel group each).
    const sh = new Float64Array(st.size).fill(Number.NaN);
    for (let si = 0; si < 64; si++) {
      for (let cc = 0; cc < BK; cc++) {
        const ch = kt * BK + cc;
        if (si >= 16) {
          sh[st.qs(si, cc)] = qs(si, ch);
          sh[st.ks(si, cc)] = ks(si, ch);
        }
        for (let I = 1; I <= 3; I++) if (si < 16 * I) sh[st.kn(I, si, cc)] = kn(I, si, ch);
      }
    }
    // Subgroup P + 2: C += A B, A (16 x 16) row-major at left (stride leftStride), B (16 x 16) at right: element
    // (x, col) at right + col stride + x (column-major) or right + x stride + col (row-major).
    for (let P = 0; P < TC16_PAIRS.length; P++) {
      const f = tc16Fragments(P, v);
      for (const o of [f.right, f.leftK, f.leftQ, f.leftStride, f.rightStride]) expect16Bytes(o);
      const B = (x: number, col: number) =>
        sh[f.right + (f.rightColMajor ? col * f.rightStride + x : x * f.rightStride + col)];
      for (const [left, out, res] of [
        [f.leftK, f.outK, resK],
        [f.leftQ, f.outQ, resQ],
      ] as const) {
        for (let r = 0; r < 16; r++) {
          for (let col = 0; col < 16; col++) {
            let s = 0;
            for (let x = 0; x < 16; x++) s += sh[left + r * f.leftStride + x] * B(x, col);
            res[out + r * 16 + col] += s;
          }
        }
      }
    }
  }
  // Epilogue: thread lid < 192's 4x4 tile, as the kernel maps it.
  const Akk = new Float64Array(64 * 64);
  const Aqk = new Float64Array(64 * 64);
  for (let lid = 0; lid < 192; lid++) {
    const tq = lid >= 96;
    const t = lid % 96;
    const pr = Math.floor(t / 16);
    const I16 = 1 + (pr >= 1 ? 1 : 0) + (pr >= 3 ? 1 : 0);
    const J16 = pr - (I16 * (I16 - 1)) / 2;
    const I4 = 4 * I16 + Math.floor((t % 16) / 4);
    const J4 = 4 * J16 + (t % 4);
    const rb = (v.halves ? pr * 256 : pr * 512 + (tq ? 256 : 0)) + 4 * (I4 % 4) * 16 + 4 * (J4 % 4);
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 4; b++) {
        const i = 4 * I4 + a;
        const j = 4 * J4 + b;
        const val = (tq ? resQ : resK)[rb + a * 16 + b] * 2 ** (tq ? eq[i] : ek[i]) * 2 ** ek[j];
        (tq ? Aqk : Akk)[i * 64 + j] = val;
      }
    }
  }
  return { Akk, Aqk };
}

/** Subgroup-matrix loads from workgroup memory must start 16-byte aligned (f16mma.ts): offsets, strides of 8 f16. */
function expect16Bytes(elements: number): void {
  if (elements % 8 !== 0) throw new Error(`tc16 gram layout: ${elements} f16 elements is not 16-byte aligned`);
}
