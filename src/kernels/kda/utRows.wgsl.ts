/**
 * Pass 3 of the chunked KDA backward, the UT transform backward, with row-quad scatter and a triangular dA
 * map (the default where utRowsFits; kdaBackwardTuning.prevUtRows runs ut.wgsl.ts). Same arithmetic per
 * chunk and head, for each tile of 16 columns of X = [W | U] and dX = [dW | dV']:
 *     dB = T^T dX                          (T = (I + Diag(beta) A_kk)^-1, lower, unit diagonal)
 *     dk, dgc, dv, dbeta terms from dB     (B = Diag(beta) [exp(gc) K | V])
 *     dA -= dB X^T                         (strictly lower part kept; stored over A_qk)
 * The dB sum is ut.wgsl.ts's (thread (jg, c): rows 4 jg .. 4 jg + 3 of column c, 16 constant row groups, two
 * chains, T's rows past the chunk zeroed). What changes is who does the rest:
 *  - Global traffic by row quads: thread (i, cq) = (lid / 4, lid % 4) loads X and dX of row i, columns
 *    4 cq .. 4 cq + 3 as one vec4 each (ut.wgsl.ts: 4 scalars each), and scatters dB's row i at those 4
 *    columns: its operands exp(gc), exp(gc) k, dk, dgc (or v) are 4 vec4 loads (were 16 scalars, each with
 *    its own index clamp under robustness) issued a tile ahead, and dk, dgc (or dv) 2 vec4 stores (were 8).
 *    It reads its 4 values of dB back from the dB^T tile, so the scatter moves after the barrier that the dA
 *    product waits on anyway (no barrier added).
 *  - dA: the 136 tiles of 4 x 4 on or below the diagonal go to threads 0 .. 135 (`triangular`), so 4 of the 8
 *    subgroups run the product with every lane busy; in ut.wgsl.ts thread (ig, tj) = (lid / 16, lid % 16) ran
 *    it when tj <= ig, so every subgroup ran all 16 steps with 3 to 31 of its 32 lanes busy. Threads past
 *    the tiles above the diagonal store their zeros (the buffer holds exactly what ut.wgsl.ts leaves).
 * Results equal ut.wgsl.ts's except dbeta's sum over columns, which runs in another order (per thread over
 * its 4 columns and the tiles, then over the 4 threads of a row; was per column lane, then 16 lanes).
 * Needs K and V multiples of 4 (quads inside K or inside V) and the gate per channel or per head.
 * H200, H = 16, d = 128, T = 32768 (bench/results/2026-12-01-h200-kbwd-s5-*, one sitting): 4.14 ms against
 * 5.93 for ut.wgsl.ts; with the square dA map (`triangular` false) 4.45.
 */
import { BETA_TO_SHARED, bindings, chunkSlotPrologue, computeMain, LOCATE } from './wgslParts.js';

export interface UtRowsVariant {
  K: number;
  V: number;
  GK: number;
  /** dA product over the 136 lower tiles only (default); false: ut.wgsl.ts's 16 x 16 thread map. */
  triangular?: boolean;
}

const WG = 256;
const CW = 16;
const XP = 17; // padded row (vec4) of the X^T and dB^T tiles

export const utRowsFits = (v: UtRowsVariant) => v.K % 4 === 0 && v.V % 4 === 0 && (v.GK === v.K || v.GK === 1);

export const utRowsKey = (v: UtRowsVariant) =>
  `kda_bwd_ut_rows_k${v.K}_v${v.V}_gk${v.GK}${v.triangular === false ? '_sq' : ''}`;

export function utRowsWgsl(v: UtRowsVariant): string {
  const { K, V, GK } = v;
  if (!utRowsFits(v)) throw new Error(`kda ut (row quads): K=${K}, V=${V}, GK=${GK} do not fit`);
  const tri = v.triangular !== false;
  const NCT = Math.ceil((K + V) / CW);
  const K4 = K / 4;
  const V4 = V / 4;
  const gc4 =
    GK === 1
      ? `fn gc4(t: u32, h: u32, c: u32) -> vec4<f32> { return vec4<f32>(gcB[t * p.H + h]); }`
      : `fn gc4(t: u32, h: u32, c: u32) -> vec4<f32> { return gcB[(t * p.H + h) * ${K4}u + c / 4u]; }`;
  const q4 = [0, 1, 2, 3];
  return /* wgsl */ `
${bindings(
  'H: u32, N: u32, scale: f32, _a: u32',
  [
    'cu: i32',
    'Tb: vec4<f32>',
    'W: vec4<f32>',
    'U: vec4<f32>',
    'dW: vec4<f32>',
    'dVp: vec4<f32>',
    'beta',
    'vv: vec4<f32>',
    'k: vec4<f32>',
    GK === 1 ? 'gcB' : 'gcB: vec4<f32>',
  ],
  ['dk: vec4<f32>', 'dgc: vec4<f32>', 'dv: vec4<f32>', 'dbeta', 'dA: vec4<f32>'],
)}
${LOCATE}
${gc4}
// T [64 rows i][16 vec4 over j]; dX tile [64 rows][4 vec4]; X^T and dB^T tiles [16 columns][64 rows as
// 16 vec4 + pad].
var<workgroup> tsh: array<vec4<f32>, 1024>;
var<workgroup> dxs: array<vec4<f32>, ${(64 * CW) / 4}>;
var<workgroup> xt: array<vec4<f32>, ${CW * XP}>;
var<workgroup> bt: array<vec4<f32>, ${CW * XP}>;
var<workgroup> bsh: array<f32, 64>;

// Row i, columns cc .. cc + 3 (cc a multiple of 4) of X = [W | U] and of dX = [dW | dV'] (0 past the chunk or
// past K + V).
fn xAt(t0: u32, L: u32, h: u32, i: u32, cc: u32) -> vec4<f32> {
  if (i >= L) { return vec4<f32>(0.0); }
  let row = (t0 + i) * p.H + h;
  if (cc < ${K}u) { return W[row * ${K4}u + cc / 4u]; }
  if (cc < ${K + V}u) { return U[row * ${V4}u + (cc - ${K}u) / 4u]; }
  return vec4<f32>(0.0);
}
fn dxAt(t0: u32, L: u32, h: u32, i: u32, cc: u32) -> vec4<f32> {
  if (i >= L) { return vec4<f32>(0.0); }
  let row = (t0 + i) * p.H + h;
  if (cc < ${K}u) { return dW[row * ${K4}u + cc / 4u]; }
  if (cc < ${K + V}u) { return dVp[row * ${V4}u + (cc - ${K}u) / 4u]; }
  return vec4<f32>(0.0);
}

// Scatter operands of row j, columns cc ..: (exp(gc), exp(gc) k, dk, dgc) for key columns, (0, v, 0, 0) for
// value columns, zeros past the chunk or past K + V.
struct Sc { eg: vec4<f32>, kb: vec4<f32>, dk: vec4<f32>, dg: vec4<f32> };
fn scLoad(t0: u32, L: u32, h: u32, j: u32, cc: u32) -> Sc {
  let z = vec4<f32>(0.0);
  if (j >= L) { return Sc(z, z, z, z); }
  let row = (t0 + j) * p.H + h;
  if (cc < ${K}u) {
    let idx = row * ${K4}u + cc / 4u;
    let eg = exp(gc4(t0 + j, h, cc));
    return Sc(eg, eg * k[idx], dk[idx], dgc[idx]);
  }
  if (cc < ${K + V}u) { return Sc(z, vv[row * ${V4}u + (cc - ${K}u) / 4u], z, z); }
  return Sc(z, z, z, z);
}

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  let tb4 = (slot * H + h) * 1024u;
  for (var e = lid; e < 1024u; e += ${WG}u) {
    let i = e / 16u;
    let j4 = (e % 16u) * 4u;
    // T's unit diagonal is implicit in the stored strictly-lower part; rows past the chunk are zeroed (the
    // dB sum runs over all 16 row groups).
    tsh[e] = select(select(Tb[tb4 + e], vec4<f32>(1.0), vec4<u32>(j4, j4 + 1u, j4 + 2u, j4 + 3u) == vec4<u32>(i)), vec4<f32>(0.0), i >= L);
  }
  ${BETA_TO_SHARED}
  // dB sum: thread (jg, c); loads and scatter: thread (qi, cq), row qi, columns 4 cq ..
  let c = lid % ${CW}u;
  let jg = lid / ${CW}u;
  let qi = lid / 4u;
  let cq = lid % 4u;
  // dA product: 4 x 4 tile (ig, tj), tj <= ig.
  ${
    tri
      ? `let act = lid < 136u;
  var ig = u32((sqrt(8.0 * f32(lid) + 1.0) - 1.0) * 0.5);
  if ((ig + 1u) * (ig + 2u) / 2u <= lid) { ig += 1u; }
  if (ig * (ig + 1u) / 2u > lid) { ig -= 1u; }
  let tj = lid - ig * (ig + 1u) / 2u;`
      : `let ig = lid / 16u;
  let tj = lid % 16u;
  let act = tj <= ig;`
  }
  var preX = xAt(t0, L, h, qi, 4u * cq);
  var preD = dxAt(t0, L, h, qi, 4u * cq);
  var sc = scLoad(t0, L, h, qi, 4u * cq);
  ${q4.map((a) => `var da${a} = vec4<f32>(0.0);`).join('\n  ')}
  var dbp = 0.0;
  for (var ct = 0u; ct < ${NCT}u; ct++) {
    workgroupBarrier();
    ${q4.map((x) => `xt[(4u * cq + ${x}u) * ${XP}u + qi / 4u][qi % 4u] = preX.${'xyzw'[x]};`).join('\n    ')}
    dxs[qi * 4u + cq] = preD;
    if (ct + 1u < ${NCT}u) {
      preX = xAt(t0, L, h, qi, (ct + 1u) * ${CW}u + 4u * cq);
      preD = dxAt(t0, L, h, qi, (ct + 1u) * ${CW}u + 4u * cq);
    }
    workgroupBarrier();
    // dB[j, c] = sum_{i >= j} T[i, j] dX[i, c] for j = 4 jg .. 4 jg + 3, as two chains (even, odd i).
    var sb = vec4<f32>(0.0);
    var sb2 = vec4<f32>(0.0);
    for (var g = 0u; g < 16u; g++) {
      if (g >= jg) {
        ${q4
          .map(
            (a) =>
              `${a % 2 ? 'sb2' : 'sb'} += tsh[g * 64u + ${a * 16}u + jg] * dxs[(g * 4u + ${a}u) * 4u + c / 4u][c % 4u];`,
          )
          .join('\n        ')}
      }
    }
    bt[c * ${XP}u + jg] = sb + sb2;
    workgroupBarrier();
    // Row qi of dB at columns cc .. cc + 3, scattered with the operands loaded a tile ago.
    let cc = ct * ${CW}u + 4u * cq;
    let s = vec4<f32>(${q4.map((x) => `bt[(4u * cq + ${x}u) * ${XP}u + qi / 4u][qi % 4u]`).join(', ')});
    if (qi < L && cc < ${K + V}u) {
      let row = (t0 + qi) * H + h;
      let bj = bsh[qi];
      if (cc < ${K}u) {
        let idx = row * ${K4}u + cc / 4u;
        dk[idx] = sc.dk + bj * sc.eg * s;
        dgc[idx] = sc.dg + s * bj * sc.kb;
      } else {
        dv[row * ${V4}u + (cc - ${K}u) / 4u] = bj * s;
      }
      dbp += s.x * sc.kb.x + s.y * sc.kb.y + s.z * sc.kb.z + s.w * sc.kb.w;
    }
    if (ct + 1u < ${NCT}u) { sc = scLoad(t0, L, h, qi, cc + ${CW}u); }
    // dA[i, j] -= sum_c dB[i, c] X[j, c]: rows 4 ig .., columns 4 tj ..
    if (act) {
      for (var x = 0u; x < ${CW}u; x++) {
        let b = bt[x * ${XP}u + ig];
        let xj = xt[x * ${XP}u + tj];
        ${q4.map((a) => `da${a} -= b.${'xyzw'[a]} * xj;`).join('\n        ')}
      }
    }
  }
  if (act) {
    ${q4
      .map(
        (a) => `{
      let i = ig * 4u + ${a}u;
      let j4 = tj * 4u;
      dA[tb4 + i * 16u + tj] = select(vec4<f32>(0.0), da${a}, vec4<u32>(j4, j4 + 1u, j4 + 2u, j4 + 3u) < vec4<u32>(i));
    }`,
      )
      .join('\n    ')}
  }
  // The tiles above the diagonal hold zeros.
  if (lid % 16u > lid / 16u) {
    for (var a = 0u; a < 4u; a++) { dA[tb4 + ((lid / 16u) * 4u + a) * 16u + lid % 16u] = vec4<f32>(0.0); }
  }
  // dbeta_j = sum over all columns of dB[j, c] (exp(gc) k | v)[j, c]: the 4 threads of row j.
  workgroupBarrier();
  bt[lid] = vec4<f32>(dbp);
  workgroupBarrier();
  if (lid < 64u && lid < L) {
    dbeta[(t0 + lid) * H + h] = bt[lid * 4u].x + bt[lid * 4u + 1u].x + bt[lid * 4u + 2u].x + bt[lid * 4u + 3u].x;
  }
}`;
}
