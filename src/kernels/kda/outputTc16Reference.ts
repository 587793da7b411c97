/**
 * What the f16 tensor-core output pass (outputTc16.wgsl.ts) computes, in plain TS, for one chunk of one head:
 *    O = 2^-aQ 2^-aS (f16(2^aQ Qg) f16(2^aS S)) + 2^-aM 2^-aY (f16(2^aM A_qk) f16(2^aY V'))
 * per tile of 64 value columns, Qg = scale q exp(gc) in f32, each operand's exponent a = 14 - floor(log2 max |x|)
 * over the tile (clamped to -114 .. 126; rows past the chunk's end and A_qk above the diagonal zero), f16 the
 * rounding to the nearest f16 (f16Round), the products summed in f64 (the tensor cores sum in f32, in an order of
 * their own: outputTc16Emulate sums per 16-step fragment in f32 as they may). Against outputChunkReference (the
 * exact sums) the difference of element (i, c) is within
 *    2^-10 (sum_k |Qg_ik S_kc| + sum_j |A_ij V'_jc|) + 2^-23 (2^-aQ 2^-aS K + 2^-aM 2^-aY 64)
 * (each operand's relative rounding 2^-11, twice in a product; the subnormal floor 2^-25 of each scaled operand
 * against the other's 2^15): the test checks that bound, with large-magnitude values (v times 1e6) too.
 * outputTc16Emulate also walks the kernel's work layout (outputTc16Fragments: which subgroup multiplies which
 * fragments, which causal steps) and checks every output fragment is written exactly once.
 */
import { f16Round } from '../f16mma.js';
import { OUTPUT_TC16_BV, outputTc16Fragments } from './outputTc16.wgsl.js';
import type { OutputChunk } from './outputReference.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The kernel's scaleExp: 14 - floor(log2 m) from m's f32 exponent bits, clamped to -114 .. 126. */
export function tc16ScaleExp(m: number): number {
  f32[0] = m;
  const e = ((u32[0] >>> 23) & 0xff) - 127;
  return Math.min(126, Math.max(-114, 14 - e));
}

/** The four operands of one column tile as the kernel stages them (f32 values, masked) and their exponents. */
export function tc16Operands(c: OutputChunk, vt: number) {
  const { L, K, V } = c;
  const BV = OUTPUT_TC16_BV;
  const fr = Math.fround;
  const Qg = new Float64Array(64 * K);
  const S = new Float64Array(K * BV);
  const A = new Float64Array(64 * 64);
  const Y = new Float64Array(64 * BV);
  for (let i = 0; i < L; i++)
    for (let k = 0; k < K; k++) {
      const g = c.GK === 1 ? c.gc[i] : c.gc[i * K + k];
      Qg[i * K + k] = fr(fr(c.q[i * K + k] * fr(Math.exp(g))) * c.scale);
    }
  for (let k = 0; k < K; k++) for (let x = 0; x < BV; x++) S[k * BV + x] = fr(c.S[k * V + vt * BV + x]);
  for (let i = 0; i < L; i++) for (let j = 0; j <= i; j++) A[i * 64 + j] = fr(c.Aqk[i * 64 + j]);
  for (let j = 0; j < L; j++) for (let x = 0; x < BV; x++) Y[j * BV + x] = fr(c.Vp[j * V + vt * BV + x]);
  const maxAbs = (a: Float64Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const a = {
    Q: tc16ScaleExp(maxAbs(Qg)),
    S: tc16ScaleExp(maxAbs(S)),
    M: tc16ScaleExp(maxAbs(A)),
    Y: tc16ScaleExp(maxAbs(Y)),
  };
  const h = (x: Float64Array, e: number) => x.map((y) => f16Round(y * 2 ** e));
  return { Qg, S, A, Y, a, h: { Qg: h(Qg, a.Q), S: h(S, a.S), A: h(A, a.M), Y: h(Y, a.Y) } };
}

/** O of the chunk as the tensor-core kernel computes it (before o's bf16 rounding), [L, V] row-major, f64 sums. */
export function outputTc16Reference(c: OutputChunk): Float64Array {
  const { L, K, V } = c;
  const BV = OUTPUT_TC16_BV;
  const o = new Float64Array(L * V);
  for (let vt = 0; vt < V / BV; vt++) {
    const { h, a } = tc16Operands(c, vt);
    for (let i = 0; i < L; i++)
      for (let x = 0; x < BV; x++) {
        let sa = 0;
        for (let k = 0; k < K; k++) sa += h.Qg[i * K + k] * h.S[k * BV + x];
        let sb = 0;
        for (let j = 0; j <= i; j++) sb += h.A[i * 64 + j] * h.Y[j * BV + x];
        o[i * V + vt * BV + x] = sa * 2 ** -a.Q * 2 ** -a.S + sb * 2 ** -a.M * 2 ** -a.Y;
      }
  }
  return o;
}

/**
 * The kernel's work layout run in plain TS: each subgroup's two fragments (outputTc16Fragments), Qg S over K / 16
 * steps and A_qk V' over the causal steps, each 16 x 16 x 16 step's sums in f32 added to an f32 accumulator, the
 * results stored to the [64][64] tile and scaled back as the lanes do. Throws where a fragment is written twice or
 * never. Returns o [L, V] (f32 values, before bf16 rounding).
 */
export function outputTc16Emulate(c: OutputChunk, subgroups: 8 | 16 = 8): Float64Array {
  const { L, K, V } = c;
  const BV = OUTPUT_TC16_BV;
  const fr = Math.fround;
  const o = new Float64Array(L * V);
  for (let vt = 0; vt < V / BV; vt++) {
    const { h, a } = tc16Operands(c, vt);
    // One product: the fragment (rb, cb) of left [64][ls] x right [.][64] over steps 0 .. steps - 1.
    const product = (left: Float64Array, ls: number, right: Float64Array, rb: number, cb: number, steps: number) => {
      const acc = new Float64Array(256);
      for (let s = 0; s < steps; s++)
        for (let r = 0; r < 16; r++)
          for (let x = 0; x < 16; x++) {
            let d = 0;
            for (let k = 0; k < 16; k++)
              d += left[(rb * 16 + r) * ls + s * 16 + k] * right[(s * 16 + k) * BV + cb * 16 + x];
            acc[r * 16 + x] = fr(acc[r * 16 + x] + fr(d));
          }
      return acc;
    };
    const phase = (left: Float64Array, ls: number, right: Float64Array, causal: boolean) => {
      const res = new Float64Array(64 * 64).fill(Number.NaN);
      for (let sg = 0; sg < subgroups; sg++) {
        const { rows, cb } = outputTc16Fragments(sg, subgroups);
        for (const rb of rows) {
          const acc = product(left, ls, right, rb, cb, causal ? rb + 1 : K / 16);
          for (let r = 0; r < 16; r++)
            for (let x = 0; x < 16; x++) {
              const at = (rb * 16 + r) * 64 + cb * 16 + x;
              if (!Number.isNaN(res[at])) throw new Error(`tc16 output layout: element ${at} written twice`);
              res[at] = acc[r * 16 + x];
            }
        }
      }
      if (res.some(Number.isNaN)) throw new Error('tc16 output layout: an element never written');
      return res;
    };
    const ra = phase(h.Qg, K, h.S, false);
    const rbm = phase(h.A, 64, h.Y, true);
    for (let i = 0; i < L; i++)
      for (let x = 0; x < BV; x++) {
        const e = i * 64 + x;
        const oa = fr(fr(ra[e] * 2 ** -a.Q) * 2 ** -a.S);
        o[i * V + vt * BV + x] = fr(oa + fr(fr(rbm[e] * 2 ** -a.M) * 2 ** -a.Y));
      }
  }
  return o;
}

/**
 * The error bound stated above for element (i, x) of o: |Qg||S| + |A||V'| sums and the subnormal floors. With
 * `hbBf16` (the kernel reading hB as bf16, OutputTc16Variant.hbBf16; run on bf16State(c)) against the exact sums on
 * c's unrounded S: S's relative rounding is bf16's 2^-9 (its f16 staging then exact, see there) instead of f16's
 * 2^-11, so the |Qg||S| sum's factor is 2^-9 + 2^-10 (Qg's 2^-11 and the f32 sums' slack) instead of 2^-10.
 */
export function outputTc16Bound(c: OutputChunk, o: { hbBf16?: boolean } = {}): Float64Array {
  const { L, K, V } = c;
  const BV = OUTPUT_TC16_BV;
  const b = new Float64Array(L * V);
  for (let vt = 0; vt < V / BV; vt++) {
    const { Qg, S, A, Y, a } = tc16Operands(c, vt);
    const floor = 2 ** -23 * (2 ** (-a.Q - a.S) * K + 2 ** (-a.M - a.Y) * 64);
    for (let i = 0; i < L; i++)
      for (let x = 0; x < BV; x++) {
        let sq = 0;
        for (let k = 0; k < K; k++) sq += Math.abs(Qg[i * K + k] * S[k * BV + x]);
        let sa = 0;
        for (let j = 0; j <= i; j++) sa += Math.abs(A[i * 64 + j] * Y[j * BV + x]);
        b[i * V + vt * BV + x] = (o.hbBf16 ? 2 ** -9 + 2 ** -10 : 2 ** -10) * sq + 2 ** -10 * sa + floor;
      }
  }
  return b;
}
