/**
 * The Kt form's pre-pass (intraWUKt.wgsl.ts: Kt = T^T Kd, M = A_qk T) with its products on the f16 tensor cores
 * (f16mma.ts; kdaForwardTuning.tc16Kt, bf16 inputs only: tc16Applies). The same bindings, tensors, layouts and
 * grid as intraWUKt (one workgroup of 256 threads per (chunk slot, head); cu, k (bf16), gc, A_qk, T in; Kt, M out
 * in f32), so the forward's other passes read the same tensors.
 *
 * Per chunk, with T the unit lower triangular inverse the first kernel stored (strictly lower, transposed: T's
 * column j as 64 contiguous floats, which is T^T row-major):
 *    Kt = T^T Kd  ([64, K]: K / 64 items of 64 columns; Kd = k exp(gc_last - gc), 0 past the chunk)
 *    M  = A_qk T  ([64, 64], lower; written for all 64 rows, 0 above the diagonal)
 * Range (f16: max 65504): none of T, A_qk, Kd is bounded by construction (T is an inverse, k is the caller's), so
 * each is staged as f16 times a power of two of its own, 2^-e with e = floor(log2 max |x|) - 14 over the chunk
 * (the largest element lands in [2^14, 2^15); exact: a power of two; e clamped to [-110, 113] so that ldexp's
 * argument stays in f32's range), and each product is scaled back by 2^(e_left + e_right) as it leaves (ldexp in
 * two steps, each within f32's exponent range). The maxima are one workgroup reduction (subgroupMax, then one
 * value a subgroup through workgroup memory) over the whole chunk, all its loads being in registers then.
 * T's unit diagonal is added while staging (T_full = I + T, as both products need), so max |T| >= 1.
 *
 * Walk (barriers B): all loads (T, A_qk, each item's k, gc, gc_last) issued at once; the maxima; B; stage T
 * and Kd item 0 as f16; B; the item's fragments (which subgroup multiplies which: ktFragment, M_FRAGMENTS) into
 * the f32 result tile; B; stage the next item's operand (Kd item i + 1, then A_qk) while the lanes scale and store
 * the result tile to Kt (rows < L) or M; B; ... So the next item's staging overlaps this item's stores, and the
 * loads of other workgroups on the SM overlap this one's products.
 * Fragments (16 x 16 x 16 f16 -> f32): Kt item: row block jb (of T^T) times Kd's column block cb, summed over
 * ib >= jb (T^T[jb, ib] = 0 for ib < jb): 4 - jb products; fragment f of 4 CB: row block order 0, 1, 3, 2 (gray
 * code) so that subgroup s (f = s, s + 8) gets 5 products at CB = 4. M: the 10 lower blocks (ib >= jb), sum over
 * mb = jb .. ib (ib - jb + 1 products), in an order that gives no subgroup more than 4 of the 20.
 * Operands in workgroup memory as f16 (`a16`): T^T at 0 (row j = T's column j, stride 64), the item's operand at
 * 4096 (Kd item or A_qk, row-major, stride 64); every fragment offset a multiple of 16 elements (the 16-byte
 * alignment a load needs). M's right operand T is T^T read column-major. The result tile `r32`: 64 x 64 f32,
 * row-major; before the first product it holds the reduction's per-subgroup maxima. 32 KiB in all (lavapipe's
 * limit: its stub compile is CI's check). Subgroups are taken as runs of subgroup_size consecutive invocations
 * (as the MLA int8 kernels take them), so subgroup sg = lid / subgroup_size multiplies fragments sg, sg + nsg, ...
 *
 * H200 (B=1, H=16, d=128, T=32768, bf16 inputs, eleventh session, bench/results/2026-12-02-h200-ktckt-*, each row its
 * own process, on against off in the same sitting): CORRECT BUT SLOWER. kda_chunk_intra_wu 1.895 / 1.893 ms against
 * the f32 kernel's 0.603 / 0.603 (forward 6.491 / 6.498 against 5.199 / 5.194). --check (T=2048): final state 2.02e-4
 * from the f32 forward (off: 0; this is f16's rounding of T, A_qk and Kd), 2.02e-4 from the recurrent kernel; o
 * 2.94e-3 against 2.83e-3 off (o's own bf16 rounding dominates); T=65: state 2.60e-4, o 3.10e-3. Where the time goes
 * (probes, intraKtTc16ProbeWgsl, same sitting): without Dawn's bounds clamps (--disable-robustness) 1.361 ms; without
 * the products (nomma) 0.801, i.e. the loads, exps, reduction, f16 staging and result stores alone already cost more
 * than the whole f32 kernel, and the ~40 products a subgroup (on ~14 fragments) add ~1.1 ms (0.5 of it robustness:
 * per-load clamps on subgroupMatrixLoad); M's right operand row-major instead of column-major (rowM) 1.883: not it;
 * fixed trip counts with the zero blocks multiplied too ('uniform') 2.138: the extra products cost, the divergent
 * loops do not. Not examined further (no profiler there): why a 16x16x16 product from workgroup memory costs this
 * much here when the probe's register-resident ones ran at ~600 TFLOP/s, and why the non-product part is slower
 * than the f32 kernel's (registers: all of a chunk's loads are held at once; the f16 staging's scalar 2-byte stores).
 */
import { C32, F16_MMA_HEAD, ld16, st32 } from '../f16mma.js';
import { vec4Elem, WGSL_BF16 } from './bf16.wgsl.js';
import type { IntraWUVariant } from './intraWU.wgsl.js';
import { bindings, chunkSlotPrologue, LOCATE } from './wgslParts.js';

const WG = 256;
const R4 = [0, 1, 2, 3];
/** f16 offset of the item's operand (Kd item or A_qk) in a16; T^T sits at 0. */
export const X16 = 4096;
/** Staging exponent clamp: 2^-e must stay within f32 (ldexp's argument <= 127). */
export const E_MIN = -110;
export const E_MAX = 113;

/** Kt items (64 columns each) and their 16-column blocks. */
export const ktItems = (K: number): number => Math.ceil(K / 64);
export const ktColumnBlocks = (K: number, item: number): number => Math.min(4, (K - 64 * item) / 16);

/** Fragment f (of 4 CB) of a Kt item: T^T's row block jb (gray order 0, 1, 3, 2 over f / CB), Kd's column block cb. */
export function ktFragment(f: number, CB: number): { jb: number; cb: number } {
  const rb = Math.floor(f / CB);
  return { jb: rb ^ (rb >> 1), cb: f % CB };
}

/** M's lower blocks (ib, jb), in the order subgroups take them (sg, sg + nsg, ...): the heavy ones first. */
export const M_FRAGMENTS: readonly (readonly [number, number])[] = [
  [2, 0],
  [3, 1],
  [1, 0],
  [2, 1],
  [3, 2],
  [3, 0],
  [0, 0],
  [1, 1],
  [2, 2],
  [3, 3],
];

/** Operand offsets (f16 elements in a16, stride 64) of the products. */
export const ktLeft = (jb: number, ib: number) => jb * 1024 + ib * 16; // T^T[jb, ib], row-major
export const ktRight = (ib: number, cb: number) => X16 + ib * 1024 + cb * 16; // Kd[ib, cb], row-major
export const mLeft = (ib: number, mb: number) => X16 + ib * 1024 + mb * 16; // A_qk[ib, mb], row-major
export const mRight = (mb: number, jb: number) => jb * 1024 + mb * 16; // T[mb, jb] = T^T[jb, mb], column-major
export const resultAt = (rb: number, cb: number) => rb * 1024 + cb * 16; // r32, stride 64

/** The staging shift of a tile whose largest magnitude is m (see the header); 0 for 0, NaN or infinity. */
export function tileShift(m: number): number {
  if (!(m > 0) || !Number.isFinite(m)) return 0;
  return Math.min(Math.max(Math.floor(Math.log2(m)) - 14, E_MIN), E_MAX);
}

/** Whether the kernel covers the variant: the Kt form with bf16 inputs (mixed mode), K a multiple of 16. */
/**
 * WGSL: one Kt item's 4 x CB fragments, spread over the subgroups: fragment (jb, cb) sums T^T[jb, ib] Kd[ib, cb] over
 * ib >= jb (T^T at 0 in a16, 64 wide), Kd read at `kdAt` (a WGSL offset in ib and cb) with row stride `kdStride`;
 * the result to r32. Shared by the one-slot kernel and the walk, which stage Kd differently.
 */
export const ktFragmentProducts = (
  CB: number,
  kdAt: string,
  kdStride: string,
): string => `for (var f = sg; f < ${4 * CB}u; f += nsg) {
    let rb = f / ${CB}u;
    let jb = rb ^ (rb >> 1u);
    let cb = f % ${CB}u;
    var acc = ${C32}();
    for (var ib = jb; ib < 4u; ib++) {
      acc = subgroupMatrixMultiplyAccumulate(${ld16('left', '&a16', 'jb * 1024u + ib * 16u', '64u')}, ${ld16('right', '&a16', kdAt, kdStride)}, acc);
    }
    ${st32('&r32', 'jb * 1024u + cb * 16u', 'acc', '64u')};
  }`;

/**
 * WGSL: M's 10 lower 16 x 16 blocks (MFRAG), spread over the subgroups: block (ib, jb) sums A_qk[ib, mb] T[mb, jb]
 * over jb <= mb <= ib, A_qk staged at `aAt` in a16 (row-major, 64 wide), T^T at 0 (read column-major), the result to
 * r32. Shared by the one-slot kernel and the walk (intraKtTc16Walk.wgsl.ts), which stage A_qk at different offsets.
 */
export const mFragmentProducts = (aAt: number): string => `for (var f = sg; f < 10u; f += nsg) {
    let ij = MFRAG[f];
    let ib = ij >> 2u;
    let jb = ij & 3u;
    var acc = ${C32}();
    for (var mb = jb; mb <= ib; mb++) {
      acc = subgroupMatrixMultiplyAccumulate(${ld16('left', '&a16', `${aAt}u + ib * 1024u + mb * 16u`, '64u')}, ${ld16('right', '&a16', 'jb * 1024u + mb * 16u', '64u', true)}, acc);
    }
    ${st32('&r32', 'ib * 1024u + jb * 16u', 'acc', '64u')};
  }`;

export const intraKtTc16Fits = (v: IntraWUVariant): boolean =>
  v.ktForm === true && v.bf16 === true && v.midF32 === true && v.K % 16 === 0 && (v.GK === 1 || v.GK === v.K);

/**
 * WGSL: the module head of the tensor-core pre-pass kernels (this one and the chunk walk, intraKtTc16Walk.wgsl.ts):
 * the directives, intraWUKt's bindings, the locator, bf16 widening, gc4, M's fragment order, workgroup memory (a16 of
 * `a16Len` f16, r32 of 64 x 64 f32) and the scaling helpers.
 */
export function intraKtTc16Head(v: IntraWUVariant, a16Len: number): string {
  const { K, GK } = v;
  const K4 = K / 4;
  return `enable subgroups;
${F16_MMA_HEAD}
${bindings(
  'H: u32, N: u32, scale: f32, storeT: u32',
  ['cu: i32', `k: ${vec4Elem(true)}`, GK === 1 ? 'gcB' : 'gcB: vec4<f32>', 'Aqk: vec4<f32>', 'Tt: vec4<f32>'],
  ['Kt: vec4<f32>', 'M: vec4<f32>'],
)}
${LOCATE}
${WGSL_BF16}
fn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }
/** M's lower blocks (ib, jb) as ib * 4 + jb, in the order the subgroups take them (intraKtTc16.wgsl.ts M_FRAGMENTS). */
const MFRAG = array<u32, 10>(${M_FRAGMENTS.map(([ib, jb]) => `${ib * 4 + jb}u`).join(', ')});
var<workgroup> a16: array<f16, ${a16Len}>;
var<workgroup> r32: array<f32, 4096>;

/** floor(log2 m) - 14, clamped: 2^-e brings the largest magnitude m into [2^14, 2^15); 0 for 0, NaN, inf. */
fn tileShift(m: f32) -> i32 {
  if (!(m > 0.0) || !(m <= 3.4028234e38)) { return 0; }
  return clamp(frexp(m).exp - 15, ${E_MIN}, ${E_MAX});
}
/** x 2^e in two exact steps, each argument within f32's exponent range. */
fn scaleOut(x: vec4<f32>, e: i32) -> vec4<f32> {
  let e1 = clamp(e, -126, 126);
  return ldexp(ldexp(x, vec4<i32>(e1)), vec4<i32>(e - e1));
}
fn r32v(o: u32) -> vec4<f32> { return vec4<f32>(r32[o], r32[o + 1u], r32[o + 2u], r32[o + 3u]); }
`;
}

/** WGSL: max |x| over the components of vec4 expressions xs. */
export const maxAbsOf = (xs: string[]): string =>
  xs
    .map((x) => `max(max(abs(${x}.x), abs(${x}.y)), max(abs(${x}.z), abs(${x}.w)))`)
    .reduce((a, b) => `max(${a}, ${b})`);

/** WGSL: 4 vec4 a thread (x(m): element lid + 256 m of a 64-column tile) stored as f16 times 2^-e from f16 offset at. */
export const stageF16 = (x: (m: number) => string, at: number, e: string): string =>
  R4.map(
    (m) =>
      `{ let s = vec4<f16>(ldexp(${x(m)}, vec4<i32>(-${e}))); let o = ${at}u + 4u * (lid + ${m * WG}u); a16[o] = s.x; a16[o + 1u] = s.y; a16[o + 2u] = s.z; a16[o + 3u] = s.w; }`,
  ).join('\n  ');

/**
 * Profiling only (wrong results): the kernel with a part changed, to find what its time goes to. 'nomma': no
 * products (nor their stores to r32); 'noload': no global loads (T, A_qk, k, gc synthesized from the thread
 * index); 'rowM': M's right operand loaded row-major (what the column-major load costs).
 */
export type KtTc16Probe = 'nomma' | 'noload' | 'rowM' | 'uniform';

export function intraKtTc16ProbeWgsl(v: IntraWUVariant, probe: KtTc16Probe): string {
  let code = intraKtTc16Wgsl(v, probe === 'uniform');
  if (probe === 'nomma')
    code = code.replace(/for \(var f = sg;[\s\S]*?subgroupMatrixStore[^;]*;\n {2}\}/g, '// (probe: no products)');
  if (probe === 'noload')
    code = code
      .replace(/Tt\[[^\]]*\]/g, 'vec4<f32>(f32(lid) * 0.001)')
      .replace(/Aqk\[[^\]]*\]/g, 'vec4<f32>(f32(lid) * 0.002)')
      .replace(/\bk\[row[^\]]*\]/g, 'vec2<u32>(lid * 65537u, lid)')
      .replace(
        /fn gc4\(row: u32, c4: u32\) -> vec4<f32> \{[^\n]*\}/,
        'fn gc4(row: u32, c4: u32) -> vec4<f32> { return vec4<f32>(-f32(row % 7u)); }',
      );
  if (probe === 'rowM') code = code.replace(/, col_major>/g, ', row_major>');
  return code;
}

export function intraKtTc16Wgsl(v: IntraWUVariant, uniform = false): string {
  if (!intraKtTc16Fits(v)) throw new Error(`kda Kt tc16: K=${v.K} (a multiple of 16), GK=${v.GK}, bf16 mixed mode`);
  const { K } = v;
  const K4 = K / 4;
  const KT = ktItems(K);
  const items = Array.from({ length: KT }, (_, i) => i);
  const loads = (i: number) =>
    [
      `let kc_${i} = min(${i * 16}u + cg, ${K4 - 1}u);`,
      `let gl_${i} = gc4(rowLast, kc_${i});`,
      ...R4.map(
        (m) =>
          `let kd${i}_${m} = select(vec4<f32>(0.0), bf4(k[row${m} * ${K4}u + kc_${i}]), i${m} < L && ${i * 16}u + cg < ${K4}u) * exp(gl_${i} - gc4(row${m}, kc_${i}));`,
      ),
    ].join('\n  ');
  const maxOf = maxAbsOf;
  const stage = stageF16;
  const r4 = (m: number) => `r32v(4u * (lid + ${m * WG}u))`;
  /**
   * 'uniform': every loop's trip count fixed (8 subgroups of 32 assumed): 2 fragments a subgroup, each summing all 4
   * blocks (the blocks outside the triangle are zero, so the sums are the same); M's 16 blocks (its upper ones 0).
   */
  const uniformKt = `for (var q = 0u; q < 2u; q++) {
    let f = sg + 8u * q;
    let rb = f / 4u;
    let jb = rb ^ (rb >> 1u);
    let cb = f % 4u;
    var acc = ${C32}();
    for (var ib = 0u; ib < 4u; ib++) {
      acc = subgroupMatrixMultiplyAccumulate(${ld16('left', '&a16', 'jb * 1024u + ib * 16u', '64u')}, ${ld16('right', '&a16', `${X16}u + ib * 1024u + cb * 16u`, '64u')}, acc);
    }
    ${st32('&r32', 'jb * 1024u + cb * 16u', 'acc', '64u')};
  }`;
  const uniformM = `for (var q = 0u; q < 2u; q++) {
    let f = sg + 8u * q;
    let ib = f / 4u;
    let jb = f % 4u;
    var acc = ${C32}();
    for (var mb = 0u; mb < 4u; mb++) {
      acc = subgroupMatrixMultiplyAccumulate(${ld16('left', '&a16', `${X16}u + ib * 1024u + mb * 16u`, '64u')}, ${ld16('right', '&a16', 'jb * 1024u + mb * 16u', '64u', true)}, acc);
    }
    ${st32('&r32', 'ib * 1024u + jb * 16u', 'acc', '64u')};
  }`;
  const ktProducts = (i: number) => {
    const CB = ktColumnBlocks(K, i);
    if (uniform && CB === 4) return uniformKt;
    return ktFragmentProducts(CB, `${X16}u + ib * 1024u + cb * 16u`, '64u');
  };
  const ktStores = (i: number) =>
    R4.map(
      (m) =>
        `if (i${m} < L && ${i * 16}u + cg < ${K4}u) { Kt[((t0 + i${m}) * H + h) * ${K4}u + ${i * 16}u + cg] = scaleOut(${r4(m)}, eT + eK); }`,
    ).join('\n  ');
  const mProducts = uniform ? uniformM : mFragmentProducts(X16);
  // M's blocks above the diagonal (column block cg / 4 > row block i / 16) are 0 and were never multiplied.
  const mStores = R4.map(
    (m) => `M[abase + lid + ${m * WG}u] = select(vec4<f32>(0.0), scaleOut(${r4(m)}, eA + eT), cg / 4u <= i${m} / 16u);`,
  ).join('\n  ');
  const walk: string[] = [];
  for (const i of items) {
    const next =
      i + 1 < KT
        ? `// Kd item ${i + 1} staged while item ${i}'s results are stored.\n  ${stage((m) => `kd${i + 1}_${m}`, X16, 'eK')}`
        : `// A_qk staged while the last Kt item's results are stored.\n  ${stage((m) => `ax_${m}`, X16, 'eA')}`;
    walk.push(`// Kt item ${i}: columns ${64 * i} .. ${64 * i + 16 * ktColumnBlocks(K, i) - 1}.
  ${ktProducts(i)}
  workgroupBarrier();
  ${next}
  ${ktStores(i)}
  workgroupBarrier();`);
  }
  return /* wgsl */ `${intraKtTc16Head(v, 8192)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_size) sgs: u32) {
  ${chunkSlotPrologue(['tg', 'slot', 'h'])}
  let abase = (slot * H + h) * 1024u;
  let cg = lid % 16u;
  let sg = lid / sgs;
  let nsg = ${WG}u / sgs;
  let rowLast = (t0 + L - 1u) * H + h;
  // Element lid + 256 m of a tile: row lid / 16 + 16 m of the chunk (clamped to it for the loads), column group cg.
  ${R4.map((m) => `let i${m} = lid / 16u + ${16 * m}u;\n  let row${m} = (t0 + min(i${m}, L - 1u)) * H + h;`).join('\n  ')}
  // Every load of the chunk at once: T (its unit diagonal added: T^T row i, columns 4 cg ..), A_qk, each item's Kd.
  ${R4.map((m) => `let td_${m} = Tt[abase + lid + ${m * WG}u] + select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<u32>(4u * cg) + vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(i${m}));`).join('\n  ')}
  ${R4.map((m) => `let ax_${m} = Aqk[abase + lid + ${m * WG}u];`).join('\n  ')}
  ${items.map(loads).join('\n  ')}
  // The chunk's maxima: per subgroup, then over the subgroups through r32 (each lane stores its subgroup's).
  r32[lid] = subgroupMax(${maxOf(R4.map((m) => `td_${m}`))});
  r32[${WG}u + lid] = subgroupMax(${maxOf(R4.map((m) => `ax_${m}`))});
  r32[${2 * WG}u + lid] = subgroupMax(${maxOf(items.flatMap((i) => R4.map((m) => `kd${i}_${m}`)))});
  workgroupBarrier();
  var mT = 0.0;
  var mA = 0.0;
  var mK = 0.0;
  for (var s = 0u; s < ${WG}u; s += sgs) {
    mT = max(mT, r32[s]);
    mA = max(mA, r32[${WG}u + s]);
    mK = max(mK, r32[${2 * WG}u + s]);
  }
  let eT = tileShift(mT);
  let eA = tileShift(mA);
  let eK = tileShift(mK);
  ${stage((m) => `td_${m}`, 0, 'eT')}
  ${stage((m) => `kd0_${m}`, X16, 'eK')}
  workgroupBarrier();
  ${walk.join('\n  ')}
  // M = A_qk T.
  ${mProducts}
  workgroupBarrier();
  ${mStores}
}`;
}
