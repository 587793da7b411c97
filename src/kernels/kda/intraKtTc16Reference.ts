/**
 * What the Kt form's tensor-core pre-pass (intraKtTc16.wgsl.ts) computes, in plain TS, twice:
 *  - ktTc16ChunkReference: the arithmetic, element by element: T_full = I + T, A_qk and Kd = k exp(gc_last - gc)
 *    (f32) each times 2^-e of its chunk (tileShift) rounded to f16 (f16Round), the products summed per 16-element
 *    block of the contraction (one tensor-core product: exact in f64, as f16 x f16 products are, then added to the
 *    f32 accumulator: Math.fround), blocks in ascending order, the result times 2^(e_left + e_right);
 *  - emulateIntraKtTc16: the kernel's work layout: the f16 operands where the kernel stages them (a16, stride 64),
 *    each subgroup's fragments as the kernel walks them (ktFragment, M_FRAGMENTS; subgroup sg takes fragments sg,
 *    sg + nsg, ...), the loads at the kernel's offsets (row- or column-major), the results stored into the f32
 *    tile r32 and from there to Kt (rows < L) and M (0 above the diagonal blocks). It records which subgroup
 *    wrote each result element, so a test can check every fragment is multiplied once.
 * Equal to each other bit for bit (the same sums in the same order); against the f64 reference (ktFormReference.ts
 * ktChunkReference) within f16's rounding of the operands (test/kda-kt-tc16.test.ts).
 * The f32 operands: T (strictly lower, row-major [64, 64]: T[i * 64 + j]), A_qk ([64, 64]), k ([L, K], the bf16
 * values), gc ([L, GK]).
 */
import { f16Round } from '../f16mma.js';
import {
  ktColumnBlocks,
  ktFragment,
  ktItems,
  ktLeft,
  ktRight,
  M_FRAGMENTS,
  mLeft,
  mRight,
  resultAt,
  tileShift,
  X16,
} from './intraKtTc16.wgsl.js';
import { WALK_A, WALK_KD } from './intraKtTc16Walk.wgsl.js';

export interface KtTc16Chunk {
  L: number;
  K: number;
  GK: number;
  /** [64, 64] row-major, strictly lower (the unit diagonal implicit), 0 past row L. */
  T: ArrayLike<number>;
  /** [64, 64] row-major, lower, 0 past row L. */
  Aqk: ArrayLike<number>;
  /** [L, K] and [L, GK]. */
  k: ArrayLike<number>;
  gc: ArrayLike<number>;
}

export interface KtTc16Result {
  /** [L, K] and [64, 64], f32 values. */
  Kt: Float32Array;
  M: Float32Array;
  /** The staging shifts of T, A_qk and Kd. */
  eT: number;
  eA: number;
  eK: number;
}

const fr = Math.fround;

/** The kernel's f32 operands: T_full^T ([64, 64], row j = T's column j), A_qk, and Kd ([64, K], 0 past L). */
function operands(c: KtTc16Chunk) {
  const { L, K, GK } = c;
  const Tt = new Float32Array(64 * 64);
  for (let j = 0; j < 64; j++) for (let i = 0; i < 64; i++) Tt[j * 64 + i] = c.T[i * 64 + j] + (i === j ? 1 : 0);
  const A = Float32Array.from({ length: 64 * 64 }, (_, e) => c.Aqk[e]);
  const Kd = new Float32Array(64 * K);
  const g = (i: number, ch: number) => c.gc[GK === 1 ? i : i * K + ch];
  for (let i = 0; i < L; i++)
    for (let ch = 0; ch < K; ch++) Kd[i * K + ch] = fr(c.k[i * K + ch] * fr(Math.exp(fr(g(L - 1, ch) - g(i, ch)))));
  return { Tt, A, Kd };
}

const maxAbs = (x: ArrayLike<number>) => {
  let m = 0;
  for (let e = 0; e < x.length; e++) m = Math.max(m, Math.abs(x[e]));
  return m;
};
const staged = (x: Float32Array, e: number) => Float64Array.from(x, (y) => f16Round(y * 2 ** -e));
/** acc 2^e as the kernel's scaleOut (two exact steps; f32 at the end). */
const scaleOut = (x: number, e: number) => {
  const e1 = Math.min(Math.max(e, -126), 126);
  return fr(fr(x * 2 ** e1) * 2 ** (e - e1));
};

export function ktTc16ChunkReference(c: KtTc16Chunk): KtTc16Result {
  const { L, K } = c;
  const { Tt, A, Kd } = operands(c);
  const [eT, eA, eK] = [tileShift(maxAbs(Tt)), tileShift(maxAbs(A)), tileShift(maxAbs(Kd))];
  const [t16, a16, k16] = [staged(Tt, eT), staged(A, eA), staged(Kd, eK)];
  /** sum over 16-blocks b of left(r, i) right(i, c), each block exact then added in f32. */
  const product = (left: (i: number) => number, right: (i: number) => number) => {
    let acc = 0;
    for (let b = 0; b < 4; b++) {
      let s = 0;
      for (let i = 16 * b; i < 16 * b + 16; i++) s += left(i) * right(i);
      acc = fr(acc + s);
    }
    return acc;
  };
  const Kt = new Float32Array(L * K);
  for (let j = 0; j < L; j++)
    for (let ch = 0; ch < K; ch++)
      Kt[j * K + ch] = scaleOut(
        product(
          (i) => t16[j * 64 + i],
          (i) => k16[i * K + ch],
        ),
        eT + eK,
      );
  const M = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++)
    for (let j = 0; j < 64; j++)
      if (Math.floor(j / 16) <= Math.floor(i / 16))
        M[i * 64 + j] = scaleOut(
          product(
            (m) => a16[i * 64 + m],
            (m) => t16[j * 64 + m],
          ),
          eA + eT,
        );
  return { Kt, M, eT, eA, eK };
}

/** A 16 x 16 operand read from `mem` at `offset` with `stride` (row-major: (r, c) at offset + r stride + c). */
const load16 =
  (mem: Float64Array, offset: number, stride: number, colMajor = false) =>
  (r: number, c: number) =>
    mem[offset + (colMajor ? c * stride + r : r * stride + c)];

/** acc += left right, one tensor-core product: each element's 16 products exact, added to the f32 accumulator. */
function mma(acc: Float64Array, left: (r: number, c: number) => number, right: (r: number, c: number) => number) {
  for (let r = 0; r < 16; r++)
    for (let c = 0; c < 16; c++) {
      let s = 0;
      for (let i = 0; i < 16; i++) s += left(r, i) * right(i, c);
      acc[r * 16 + c] = fr(acc[r * 16 + c] + s);
    }
}

export interface KtTc16Emulation extends KtTc16Result {
  /** Per Kt item and for M: [64 * 64] the subgroup that stored each result element (-1: none), and how often. */
  writers: Int32Array[];
  writes: Int32Array[];
}

/**
 * The kernel's walk with `nsg` subgroups (8 on the H200: 256 threads of 32), in the one-slot kernel's layout (T^T at
 * 0, the item's operand, Kd item or A_qk, at X16, stride 64) or the chunk walk's (intraKtTc16Walk.wgsl.ts: T^T at 0,
 * A_qk at WALK_A, the whole Kd at WALK_KD with stride K, all staged before the products).
 */
export function emulateIntraKtTc16(c: KtTc16Chunk, nsg = 8, layout: 'one' | 'walk' = 'one'): KtTc16Emulation {
  const { L, K } = c;
  const { Tt, A, Kd } = operands(c);
  const [eT, eA, eK] = [tileShift(maxAbs(Tt)), tileShift(maxAbs(A)), tileShift(maxAbs(Kd))];
  const walk = layout === 'walk';
  const a16 = new Float64Array(walk ? WALK_KD + 64 * K : 8192);
  a16.set(staged(Tt, eT), 0);
  if (walk) {
    a16.set(staged(A, eA), WALK_A);
    a16.set(staged(Kd, eK), WALK_KD);
  }
  const r32 = new Float32Array(4096);
  const writers: Int32Array[] = [];
  const writes: Int32Array[] = [];
  /** One item: `frags` fragments, fragment f's products and result block. */
  const item = (
    n: number,
    /** Fragment f: its result block and products (left offset, right offset, right column-major, right stride). */
    frag: (f: number) => { rb: number; cb: number; prods: [number, number, boolean, number][] },
  ): void => {
    r32.fill(Number.NaN); // what a fragment never stores must never reach the output
    const who = new Int32Array(4096).fill(-1);
    const count = new Int32Array(4096);
    for (let sg = 0; sg < nsg; sg++) {
      for (let f = sg; f < n; f += nsg) {
        const { rb, cb, prods } = frag(f);
        const acc = new Float64Array(256);
        for (const [lo, ro, rColMajor, rs] of prods) mma(acc, load16(a16, lo, 64), load16(a16, ro, rs, rColMajor));
        const at = resultAt(rb, cb);
        for (let r = 0; r < 16; r++)
          for (let col = 0; col < 16; col++) {
            r32[at + r * 64 + col] = acc[r * 16 + col];
            who[at + r * 64 + col] = sg;
            count[at + r * 64 + col]++;
          }
      }
    }
    writers.push(who);
    writes.push(count);
  };
  const Kt = new Float32Array(L * K).fill(Number.NaN);
  for (let it = 0; it < ktItems(K); it++) {
    const CB = ktColumnBlocks(K, it);
    // Kd item it staged row-major at X16 (columns past K: 0), or all of Kd already at WALK_KD.
    if (!walk)
      for (let i = 0; i < 64; i++)
        for (let col = 0; col < 64; col++) {
          const ch = 64 * it + col;
          a16[X16 + i * 64 + col] = ch < K ? f16Round(Kd[i * K + ch] * 2 ** -eK) : 0;
        }
    item(4 * CB, (f) => {
      const { jb, cb } = ktFragment(f, CB);
      const prods: [number, number, boolean, number][] = [];
      for (let ib = jb; ib < 4; ib++)
        prods.push(
          walk
            ? [ktLeft(jb, ib), WALK_KD + ib * 16 * K + 64 * it + cb * 16, false, K]
            : [ktLeft(jb, ib), ktRight(ib, cb), false, 64],
        );
      return { rb: jb, cb, prods };
    });
    for (let j = 0; j < L; j++)
      for (let col = 0; col < 16 * CB; col++) Kt[j * K + 64 * it + col] = scaleOut(r32[j * 64 + col], eT + eK);
  }
  if (!walk) a16.set(staged(A, eA), X16);
  item(M_FRAGMENTS.length, (f) => {
    const [ib, jb] = M_FRAGMENTS[f];
    const prods: [number, number, boolean, number][] = [];
    for (let mb = jb; mb <= ib; mb++)
      prods.push([walk ? WALK_A + ib * 1024 + mb * 16 : mLeft(ib, mb), mRight(mb, jb), true, 64]);
    return { rb: ib, cb: jb, prods };
  });
  const M = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++)
    for (let j = 0; j < 64; j++)
      M[i * 64 + j] = Math.floor(j / 16) <= Math.floor(i / 16) ? scaleOut(r32[i * 64 + j], eA + eT) : 0;
  return { Kt, M, eT, eA, eK, writers, writes };
}
