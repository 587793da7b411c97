/**
 * Pass 3 of the chunked KDA backward, the UT transform backward, with vec4 operands (replaces
 * backward.wgsl.ts's utBackwardWgsl unless kdaBackwardTuning.legacyUt; itself replaced by utRows.wgsl.ts
 * where that fits, unless prevUtRows, prevUt or utVarRows). Same arithmetic, per chunk and head:
 * for each tile of 16 columns of X = [W | U] and dX = [dW | dV'],
 *     dB = T^T dX                          (T = (I + Diag(beta) A_kk)^-1, lower, unit diagonal)
 *     dk, dgc, dv, dbeta terms from dB     (B = Diag(beta) [exp(gc) K | V])
 *     dA -= dB X^T                         (strictly lower part kept; stored over A_qk)
 * What changes is the data layout:
 *  - dB: thread (jg, c) owns rows 4 jg .. 4 jg + 3 of column c; T sits in workgroup memory as vec4 rows,
 *    so per row i one vec4 read of T[i, 4 jg ..] (shared by the 16 lanes of a column group) and one scalar
 *    of dX feed 4 FMAs, and the sum starts at i = 4 jg (T is 0 above the diagonal; the old kernel ran all 64).
 *  - dA: thread (ig, jg) owns a 4 x 4 tile; dB^T and X^T tiles [16][64] as vec4 rows (padded by one vec4 so
 *    the component-wise writes spread over banks): 2 vec4 reads per 16 FMAs (the old kernel: 8 scalars).
 *  - the next tile's X and dX are loaded into registers while the current tile computes.
 *  - (`scatterAhead`, the default) so are the operands of the next tile's dB scatter: exp(gc), exp(gc) k,
 *    and the dk, dgc it adds to (key columns), or v (value columns). Without it each column tile waits for
 *    those global loads between its dB sum and its dA product (kdaBackwardTuning.prevUt runs that form).
 *    This form also keeps its per-thread tiles (X / dX prefetch, the dA accumulators) in named variables of
 *    generated straight-line code instead of indexed arrays (which a driver may place in local memory), and
 *    runs the dB sum as two chains (even and odd rows) for twice the loads in flight.
 *  - (`fixedRows`, the default, with scatterAhead) the dB sum runs over the 16 row groups of 4 with a
 *    constant trip count (groups before the thread's own skipped by a test), not from 4 jg to L: a loop the
 *    driver can unroll and schedule across (the same change took the pair pass from 6.10 to 4.97 ms on the
 *    H200). Rows past the chunk add exact zeros (dX is 0 there, and T's rows past L are set to 0 when
 *    staged, whatever the buffer holds), in the same two chains and order, so the sums are unchanged.
 *    kdaBackwardTuning.utVarRows runs the loop to L.
 */
import {
  BETA_TO_SHARED,
  bindings,
  chunkSlotPrologue,
  computeMain,
  gcAtFn,
  LOCATE,
  utScatterRow,
  vec4At,
} from './wgslParts.js';

export interface UtVariant {
  K: number;
  V: number;
  GK: number;
}

const WG = 256;
const CW = 16;

export const utKey = (v: UtVariant, scatterAhead = true, fixedRows = true) =>
  `kda_bwd_ut4_k${v.K}_v${v.V}_gk${v.GK}${scatterAhead ? '_sa' : ''}${scatterAhead && fixedRows ? '_fr' : ''}`;

export function utTiledWgsl(v: UtVariant, scatterAhead = true, fixedRows = true): string {
  const { K, V, GK } = v;
  const NCT = Math.ceil((K + V) / CW);
  const XP = 17; // padded row (vec4) of the X^T and dB^T tiles
  // Per thread: X / dX elements of a tile, 64 x 16 / 256.
  const PE = (64 * CW) / WG;
  const ms = [...Array(PE).keys()];
  // Row j = 4 jg + a of dB at column cc, from this tile's prefetched operands sc{a}; then the next tile's.
  const scatterAheadRow = (a: number) => `{
      let j = jg * 4u + ${a}u;
      let s = sb[${a}];
      let sv = sc${a};
      if (j < L && cc < ${K + V}u) {
        let row = (t0 + j) * H + h;
        if (cc < ${K}u) {
          let idx = row * ${K}u + cc;
          dk[idx] = sv.z + bsh[j] * sv.x * s;
          dgc[idx] = sv.w + s * bsh[j] * sv.y;
        } else {
          dv[row * ${V}u + cc - ${K}u] = bsh[j] * s;
        }
        dbp[${a}] += s * sv.y;
      }
      if (ct + 1u < ${NCT}u) { sc${a} = scLoad(t0, L, h, j, cc + ${CW}u); }
    }`;
  const SC_LOAD = `// Scatter operands of row j, column cc: (exp(gc), exp(gc) k, dk, dgc) for a key column, (0, v, 0, 0) for a
// value column, 0 past the chunk or past K + V.
fn scLoad(t0: u32, L: u32, h: u32, j: u32, cc: u32) -> vec4<f32> {
  if (j >= L) { return vec4<f32>(0.0); }
  let row = (t0 + j) * p.H + h;
  if (cc < ${K}u) {
    let idx = row * ${K}u + cc;
    let eg = exp(gcAt(t0 + j, h, cc));
    return vec4<f32>(eg, eg * k[idx], dk[idx], dgc[idx]);
  }
  if (cc < ${K + V}u) { return vec4<f32>(0.0, vv[row * ${V}u + cc - ${K}u], 0.0, 0.0); }
  return vec4<f32>(0.0);
}

`;
  return /* wgsl */ `
${bindings('H: u32, N: u32, scale: f32, _a: u32', ['cu: i32', 'Tb', 'W', 'U', 'dW', 'dVp', 'beta', 'vv', 'k', 'gcB'], ['dk', 'dgc', 'dv', 'dbeta', 'dA'])}
${LOCATE}
${gcAtFn(GK)}
// T [64 rows i][16 vec4 over j]; dX tile [64][16]; X^T and dB^T tiles [16 columns][64 rows as 16 vec4 + pad].
var<workgroup> tsh: array<vec4<f32>, 1024>;
var<workgroup> dxs: array<f32, ${64 * CW}>;
var<workgroup> xt: array<vec4<f32>, ${CW * XP}>;
var<workgroup> bt: array<vec4<f32>, ${CW * XP}>;
var<workgroup> bsh: array<f32, 64>;

// Element e (< 64 x 16) of column tile ct: X and dX (0 outside the chunk or past K + V columns).
fn xLoad(t0: u32, L: u32, h: u32, ct: u32, e: u32) -> vec2<f32> {
  let i = e / ${CW}u;
  let cc = ct * ${CW}u + e % ${CW}u;
  if (i >= L) { return vec2<f32>(0.0); }
  let row = (t0 + i) * p.H + h;
  if (cc < ${K}u) { return vec2<f32>(W[row * ${K}u + cc], dW[row * ${K}u + cc]); }
  if (cc < ${K + V}u) { return vec2<f32>(U[row * ${V}u + cc - ${K}u], dVp[row * ${V}u + cc - ${K}u]); }
  return vec2<f32>(0.0);
}

${scatterAhead ? SC_LOAD : ''}${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  let tb = (slot * H + h) * 4096u;
  for (var e = lid; e < 1024u; e += ${WG}u) {
    let i = e / 16u;
    let j4 = (e % 16u) * 4u;
    // T's unit diagonal is implicit in the stored strictly-lower part.
    let t = ${vec4At('Tb', 'tb + e * 4u')};
    tsh[e] = select(t, vec4<f32>(1.0), vec4<u32>(j4, j4 + 1u, j4 + 2u, j4 + 3u) == vec4<u32>(i));${
      scatterAhead && fixedRows ? '\n    if (i >= L) { tsh[e] = vec4<f32>(0.0); }' : ''
    }
  }
  ${BETA_TO_SHARED}
  let c = lid % ${CW}u;
  let jg = lid / ${CW}u;
  let ig = jg;
  let tj = c;
  ${
    scatterAhead
      ? `${ms.map((m) => `var pre${m} = xLoad(t0, L, h, 0u, lid + ${m * WG}u);`).join('\n  ')}
  ${[0, 1, 2, 3].map((a) => `var sc${a} = scLoad(t0, L, h, jg * 4u + ${a}u, c);\n  var da${a} = vec4<f32>(0.0);`).join('\n  ')}`
      : `var pre: array<vec2<f32>, ${PE}>;
  for (var m = 0u; m < ${PE}u; m++) { pre[m] = xLoad(t0, L, h, 0u, lid + m * ${WG}u); }
  var da: array<vec4<f32>, 4>;
  for (var a = 0u; a < 4u; a++) { da[a] = vec4<f32>(0.0); }`
  }
  var dbp = vec4<f32>(0.0);
  for (var ct = 0u; ct < ${NCT}u; ct++) {
    workgroupBarrier();
    ${
      scatterAhead
        ? `${ms
            .map(
              (m) => `{
      let e = lid + ${m * WG}u;
      let i = e / ${CW}u;
      xt[(e % ${CW}u) * ${XP}u + i / 4u][i % 4u] = pre${m}.x;
      dxs[e] = pre${m}.y;
    }`,
            )
            .join('\n    ')}
    if (ct + 1u < ${NCT}u) {
      ${ms.map((m) => `pre${m} = xLoad(t0, L, h, ct + 1u, lid + ${m * WG}u);`).join('\n      ')}
    }
    workgroupBarrier();
    // dB[j, c] = sum_{i >= j} T[i, j] dX[i, c] for j = 4 jg .. 4 jg + 3, as two chains (even, odd i).
    var sb = vec4<f32>(0.0);
    var sb2 = vec4<f32>(0.0);
    ${
      fixedRows
        ? `for (var g = 0u; g < 16u; g++) {
      if (g >= jg) {
        ${[0, 1, 2, 3].map((a) => `${a % 2 ? 'sb2' : 'sb'} += tsh[g * 64u + ${a * 16}u + jg] * dxs[g * ${4 * CW}u + ${a * CW}u + c];`).join('\n        ')}
      }
    }`
        : `var i = jg * 4u;
    for (; i + 1u < L; i += 2u) {
      sb += tsh[i * 16u + jg] * dxs[i * ${CW}u + c];
      sb2 += tsh[i * 16u + 16u + jg] * dxs[i * ${CW}u + ${CW}u + c];
    }
    if (i < L) { sb += tsh[i * 16u + jg] * dxs[i * ${CW}u + c]; }`
    }
    sb += sb2;`
        : `for (var m = 0u; m < ${PE}u; m++) {
      let e = lid + m * ${WG}u;
      let i = e / ${CW}u;
      let cl = e % ${CW}u;
      xt[cl * ${XP}u + i / 4u][i % 4u] = pre[m].x;
      dxs[e] = pre[m].y;
    }
    if (ct + 1u < ${NCT}u) {
      for (var m = 0u; m < ${PE}u; m++) { pre[m] = xLoad(t0, L, h, ct + 1u, lid + m * ${WG}u); }
    }
    workgroupBarrier();
    // dB[j, c] = sum_{i >= j} T[i, j] dX[i, c] for j = 4 jg .. 4 jg + 3.
    var sb = vec4<f32>(0.0);
    for (var i = jg * 4u; i < L; i++) { sb += tsh[i * 16u + jg] * dxs[i * ${CW}u + c]; }`
    }
    bt[c * ${XP}u + jg] = sb;
    let cc = ct * ${CW}u + c;
    ${
      scatterAhead
        ? [0, 1, 2, 3].map(scatterAheadRow).join('\n    ')
        : `for (var a = 0u; a < 4u; a++) {
      let j = jg * 4u + a;
      let s = sb[a];
      ${utScatterRow(K, V, 'dbp[a]')}
    }`
    }
    workgroupBarrier();
    // dA[i, j] -= sum_c dB[i, c] X[j, c]: 4 x 4 tile (rows 4 ig .., columns 4 tj ..), lower tiles only.
    if (tj <= ig) {
      for (var x = 0u; x < ${CW}u; x++) {
        let b = bt[x * ${XP}u + ig];
        let xj = xt[x * ${XP}u + tj];
        ${'xyzw'
          .split('')
          .map((q, a) => `${scatterAhead ? `da${a}` : `da[${a}]`} -= b.${q} * xj;`)
          .join('\n        ')}
      }
    }
  }
  ${
    scatterAhead
      ? [0, 1, 2, 3]
          .map(
            (a) => `{
    let i = ig * 4u + ${a}u;
    let j4 = tj * 4u;
    let o = select(vec4<f32>(0.0), da${a}, vec4<u32>(j4, j4 + 1u, j4 + 2u, j4 + 3u) < vec4<u32>(i));
    let idx = tb + i * 64u + j4;
    dA[idx] = o.x;
    dA[idx + 1u] = o.y;
    dA[idx + 2u] = o.z;
    dA[idx + 3u] = o.w;
  }`,
          )
          .join('\n  ')
      : `for (var a = 0u; a < 4u; a++) {
    let i = ig * 4u + a;
    let j4 = tj * 4u;
    let keep = vec4<u32>(j4, j4 + 1u, j4 + 2u, j4 + 3u) < vec4<u32>(i);
    let o = select(vec4<f32>(0.0), da[a], keep);
    let idx = tb + i * 64u + j4;
    dA[idx] = o.x;
    dA[idx + 1u] = o.y;
    dA[idx + 2u] = o.z;
    dA[idx + 3u] = o.w;
  }`
  }
  // dbeta_j = sum over all columns of dB[j, c] (exp(gc) k | v)[j, c]: reduce over the 16 column lanes.
  workgroupBarrier();
  bt[lid] = dbp;
  workgroupBarrier();
  if (lid < 64u && lid < L) {
    let g = lid / 4u;
    var s = 0.0;
    for (var x = 0u; x < ${CW}u; x++) { s += bt[g * ${CW}u + x][lid % 4u]; }
    dbeta[(t0 + lid) * H + h] = s;
  }
}`;
}
