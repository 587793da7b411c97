/**
 * Chunked KDA backward, after a chunked forward that kept gc, W, U, T, A_qk, V' and the per-chunk
 * incoming states S (chunk.ts). Four dispatches, mirroring kdaChunkBackwardReference:
 *
 *  1. dstate (grid: value tiles x heads x sequences; the only sequential part, the forward state pass
 *     run backwards): G = dS_final; per chunk from the last: store G (the outgoing-state gradient),
 *     dV' = A_qk^T dO + Kd G, then G = exp(gc_last) G + Qg^T dO - W^T dV'. The last G is dS0.
 *  2. dqkw (grid: chunk slots x K tiles x heads, all chunks at once): the products with the states,
 *     dQg = dO S^T, dW = -dV' S^T, dKd = V' G^T (sums over V in tiles), turned at once into the first
 *     terms of dq, dk and dgc (the gradient of gc = cumsum g), plus dgc_last += exp(gc_last) rowsum(G o S).
 *  3. ut (grid: chunk slots x heads): the UT transform backward. dB = T^T [dW | dU] 16 columns at a time,
 *     dA = -(dB X^T) (strictly lower; X = [W | U]), and from dB: dv, the beta terms, dk and dgc of
 *     B = Diag(beta) [exp(gc) K | V]. dA is stored over A_qk (no longer needed).
 *  4. pairs (grid: chunk slots x heads): dA_qk = scale dO V'^T, then every pair term
 *     sum_c x_i[c] y_j[c] exp(gc_i[c] - gc_j[c]) of A_kk and A_qk sends gradients to q, k and gc (both
 *     roles of each row, K in tiles of 16, exponents recomputed: one exp per (i, j, c) and role, all
 *     arguments <= 0); dbeta from dA o A_raw; finally dg = reverse cumsum of dgc within the chunk.
 *     dA (lower) and dA_qk (upper, transposed) share one 64x64 tile of workgroup memory.
 * dq, dk and dgc are accumulated in global memory: each element belongs to one workgroup per dispatch.
 *
 * Kernels 1-4 here are the fallbacks / references of faster versions in their own files, which run by
 * default where their geometry fits (backwardGpu.ts): dstateSplit.wgsl.ts (the state pass split into a
 * parallel and a prefetching sequential part), dqkw.wgsl.ts and ut.wgsl.ts (register tiles, vec4 operands),
 * pairs.wgsl.ts (the decay factored by row blocks: one exp per pair only inside a block).
 * The pair pass issues its global loads ahead of use (dA tile, next K tile of k, q, gc; the dq, dk, dgc it
 * adds to) so their latency overlaps arithmetic. (Tried on the H200 and reverted: straight-line per-row pair
 * steps and the final reverse cumsum through workgroup memory, 13.3 vs 11.7 ms at T=32768.)
 */
import { chunkBK } from './chunk.wgsl.js';
import {
  BETA_TO_SHARED,
  bindings,
  GROUP_PARAMS,
  groupSlabBase,
  chunkSlotPrologue,
  computeMain,
  gcAtFn,
  LOCATE,
  SEQUENCE_CHUNKS,
  slabBase,
  slabLoad,
  slabStore,
  stateGeometry,
  utScatterRow,
  valueTileIds,
  vec4At,
  dgReverseCumsum,
  stageDoVp,
} from './wgslParts.js';

const WG = 256;

export interface BackwardVariant {
  K: number;
  V: number;
  GK: number;
}

export const bwdKey = (name: string, v: BackwardVariant, extra = '') => `${name}_k${v.K}_v${v.V}_gk${v.GK}${extra}`;

const PARAMS = 'H: u32, N: u32, scale: f32, _a: u32';

/** Bindings, then the chunk-slot locator and gcAt: the head of every per-chunk backward kernel. */
const chunkHeader = (
  GK: number,
  read: readonly string[],
  write: readonly string[],
  params = PARAMS,
) => `${bindings(params, read, write)}
${LOCATE}
${gcAtFn(GK)}`;

export function dstateWgsl(v: BackwardVariant, BV: number, BK = chunkBK(v.K)): string {
  const { K, V, GK } = v;
  const { wg, NRG, VR, SR } = stateGeometry(K, BV, WG);
  const slab = { K, V, BV, wg };
  const B4 = BK / 4;
  if (!Number.isInteger(VR) || !Number.isInteger(SR) || BK % 4 !== 0 || (SR > BK ? SR % BK : BK % SR) !== 0) {
    throw new Error(`kda dstate: K=${K}, BV=${BV}, BK=${BK} do not tile`);
  }
  const TB = 16 * BK; // vec4 offset of the second tile
  // The G update: rows r0 .. r0 + SR of this thread, consecutive, inside tile kt.
  const gUpdate =
    SR % 4 === 0
      ? `        var ga: array<vec4<f32>, ${SR / 4}> = array<vec4<f32>, ${SR / 4}>();
        for (var m = 0u; m < ${SR / 4}u; m++) { ga[m] = vec4<f32>(0.0); }
        let o4 = (r0 % ${BK}u) / 4u;
        for (var i = 0u; i < 64u; i++) {
          let d = dOsh[i * ${BV}u + c];
          let e = dVsh[i * ${BV}u + c];
          for (var m = 0u; m < ${SR / 4}u; m++) {
            ga[m] += tt[i * ${B4}u + o4 + m] * d - tt[${TB}u + i * ${B4}u + o4 + m] * e;
          }
        }
        for (var m = 0u; m < ${SR}u; m++) {
          let r = r0 + m;
          Gsh[r * ${BV}u + c] = exp(gcAt(tl, h, r)) * Gsh[r * ${BV}u + c] + ga[m / 4u][m % 4u];
        }`
      : `        for (var m = 0u; m < ${SR}u; m++) {
          let r = r0 + m;
          let kk = r % ${BK}u;
          var s = 0.0;
          for (var i = 0u; i < 64u; i++) {
            s += tt[i * ${B4}u + kk / 4u][kk % 4u] * dOsh[i * ${BV}u + c]
              - tt[${TB}u + i * ${B4}u + kk / 4u][kk % 4u] * dVsh[i * ${BV}u + c];
          }
          Gsh[r * ${BV}u + c] = exp(gcAt(tl, h, r)) * Gsh[r * ${BV}u + c] + s;
        }`;
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'q', 'Kd', 'gcB', 'W', 'Aqk', 'dO'], ['G', 'dh', 'dVp'])}
${gcAtFn(GK)}
var<workgroup> Gsh: array<f32, ${K * BV}>;
// vec4 tiles [64][BK/4] at 0 and TB (Kd; then Qg and W), or the chunk's A_qk [64][16] at the start.
var<workgroup> tt: array<vec4<f32>, ${Math.max(32 * BK, 1024)}>;
var<workgroup> dOsh: array<f32, ${64 * BV}>;
var<workgroup> dVsh: array<f32, ${64 * BV}>;

${computeMain(wg)}
  ${valueTileIds(BV, true)}
  let r0 = rg * ${SR}u;
  let sbase = ${slabBase(slab, 'n')};
  ${slabLoad(slab, 'Gsh', 'G', 'sbase')}
  ${SEQUENCE_CHUNKS}
  let nch = (t1 - t0 + 63u) / 64u;
  for (var jj = 0u; jj < nch; jj++) {
    let j = nch - 1u - jj;
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    let tl = ts + L - 1u;
    workgroupBarrier();
    let hbase = ${groupSlabBase(slab, 'slot')};
    ${slabStore(slab, 'Gsh', 'dh', 'hbase')}
    for (var e = lid; e < ${64 * BV}u; e += ${wg}u) {
      let i = e / ${BV}u;
      dOsh[e] = select(0.0, dO[((ts + min(i, L - 1u)) * H + h) * ${V}u + vt * ${BV}u + e % ${BV}u], i < L);
    }
    for (var e = lid; e < 1024u; e += ${wg}u) { tt[e] = ${vec4At('Aqk', '(slot * H + h) * 4096u + e * 4u')}; }
    workgroupBarrier();
    // dV' = A_qk^T dO + Kd G
    var acc: array<f32, ${VR}> = array<f32, ${VR}>();
    for (var m = 0u; m < ${VR}u; m++) {
      let i = rg + m * ${NRG}u;
      var s = 0.0;
      for (var i2 = i; i2 < L; i2++) { s += tt[i2 * 16u + i / 4u][i % 4u] * dOsh[i2 * ${BV}u + c]; }
      acc[m] = s;
    }
    workgroupBarrier();
    for (var kt = 0u; kt < ${K / BK}u; kt++) {
      for (var e = lid; e < ${16 * BK}u; e += ${wg}u) {
        let i = e / ${B4}u;
        let idx = ((ts + min(i, L - 1u)) * H + h) * ${K}u + kt * ${BK}u + (e % ${B4}u) * 4u;
        tt[e] = select(vec4<f32>(0.0), ${vec4At('Kd', 'idx')}, i < L);
      }
      workgroupBarrier();
      for (var k4 = 0u; k4 < ${B4}u; k4++) {
        let r = kt * ${BK}u + k4 * 4u;
        let g4 = vec4<f32>(Gsh[r * ${BV}u + c], Gsh[(r + 1u) * ${BV}u + c], Gsh[(r + 2u) * ${BV}u + c],
                           Gsh[(r + 3u) * ${BV}u + c]);
        for (var m = 0u; m < ${VR}u; m++) { acc[m] += dot(tt[(rg + m * ${NRG}u) * ${B4}u + k4], g4); }
      }
      workgroupBarrier();
    }
    for (var m = 0u; m < ${VR}u; m++) {
      let i = rg + m * ${NRG}u;
      let x = select(0.0, acc[m], i < L);
      dVsh[i * ${BV}u + c] = x;
      if (i < L) { dVp[((ts + i) * H + h) * ${V}u + col] = x; }
    }
    // G = exp(gc_last) G + Qg^T dO - W^T dV'
    for (var kt = 0u; kt < ${K / BK}u; kt++) {
      for (var e = lid; e < ${16 * BK}u; e += ${wg}u) {
        let i = e / ${B4}u;
        let ti = ts + min(i, L - 1u);
        let r = kt * ${BK}u + (e % ${B4}u) * 4u;
        let idx = (ti * H + h) * ${K}u + r;
        let ok = i < L;
        let eg = vec4<f32>(exp(gcAt(ti, h, r)), exp(gcAt(ti, h, r + 1u)), exp(gcAt(ti, h, r + 2u)), exp(gcAt(ti, h, r + 3u)));
        tt[e] = select(vec4<f32>(0.0), ${vec4At('q', 'idx')} * eg * p.scale, ok);
        tt[${TB}u + e] = select(vec4<f32>(0.0), ${vec4At('W', 'idx')}, ok);
      }
      workgroupBarrier();
      if (r0 / ${BK}u == kt) {
${gUpdate}
      }
      workgroupBarrier();
    }
  }
  workgroupBarrier();
  ${slabStore(slab, 'Gsh', 'G', 'sbase')}
}`;
}

/** K-tile width of the dqkw pass and V-tile width of its sums. */
export const DQKW_BV = 16;

export function dqkwWgsl(v: BackwardVariant): string {
  const { K, V, GK } = v;
  const BK = chunkBK(K);
  const BVt = Math.min(V, DQKW_BV);
  if (V % BVt !== 0) throw new Error(`kda dqkw: V=${V} must be a multiple of ${BVt}`);
  const NRG = WG / BK;
  const R = 64 / NRG;
  // S and G tiles are read with the channel varying across lanes: row stride BVt + 1 spreads them over banks.
  const BVP = BVt + 1;
  const S0 = 0;
  const G0 = BK * BVP;
  const D0 = 2 * BK * BVP;
  const E0 = D0 + 64 * BVt;
  const P0 = E0 + 64 * BVt;
  return /* wgsl */ `
${chunkHeader(GK, ['cu: i32', 'q', 'k', 'gcB', 'hB', 'dh', 'dO', 'dVp', 'Vp'], ['dq', 'dk', 'dgc', 'dW'], GROUP_PARAMS)}
// S tile [BK][BVt] at S0, G tile at G0, dO / dV' / V' tiles [64][BVt] at D0, E0, P0.
var<workgroup> sm: array<f32, ${P0 + 64 * BVt}>;
var<workgroup> red: array<f32, ${WG}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'kt', 'h'], true)}
  let tl = t0 + L - 1u;
  let c = lid % ${BK}u;
  let rg = lid / ${BK}u;
  let r = kt * ${BK}u + c;
  let sb = (slot * p.HB + hb) * ${K * V}u;
  var aQ: array<f32, ${R}> = array<f32, ${R}>();
  var aW: array<f32, ${R}> = array<f32, ${R}>();
  var aK: array<f32, ${R}> = array<f32, ${R}>();
  var gs = 0.0;
  for (var v0 = 0u; v0 < ${V}u; v0 += ${BVt}u) {
    for (var e = lid; e < ${BK * BVt}u; e += ${WG}u) {
      let rr = kt * ${BK}u + e / ${BVt}u;
      let se = (e / ${BVt}u) * ${BVP}u + e % ${BVt}u;
      sm[${S0}u + se] = hB[sb + rr * ${V}u + v0 + e % ${BVt}u];
      sm[${G0}u + se] = dh[sb + rr * ${V}u + v0 + e % ${BVt}u];
    }
    for (var e = lid; e < ${64 * BVt}u; e += ${WG}u) {
      let i = e / ${BVt}u;
      let idx = ((t0 + min(i, L - 1u)) * H + h) * ${V}u + v0 + e % ${BVt}u;
      let ok = i < L;
      sm[${D0}u + e] = select(0.0, dO[idx], ok);
      sm[${E0}u + e] = select(0.0, dVp[idx], ok);
      sm[${P0}u + e] = select(0.0, Vp[idx], ok);
    }
    workgroupBarrier();
    for (var m = 0u; m < ${R}u; m++) {
      let i = rg + m * ${NRG}u;
      var sq = 0.0;
      var sw = 0.0;
      var sk = 0.0;
      for (var cc = 0u; cc < ${BVt}u; cc++) {
        let s = sm[${S0}u + c * ${BVP}u + cc];
        sq += sm[${D0}u + i * ${BVt}u + cc] * s;
        sw += sm[${E0}u + i * ${BVt}u + cc] * s;
        sk += sm[${P0}u + i * ${BVt}u + cc] * sm[${G0}u + c * ${BVP}u + cc];
      }
      aQ[m] += sq;
      aW[m] -= sw;
      aK[m] += sk;
    }
    if (rg == 0u) {
      for (var cc = 0u; cc < ${BVt}u; cc++) { gs += sm[${S0}u + c * ${BVP}u + cc] * sm[${G0}u + c * ${BVP}u + cc]; }
    }
    workgroupBarrier();
  }
  let gl = gcAt(tl, h, r);
  var kdSum = 0.0;
  for (var m = 0u; m < ${R}u; m++) {
    let i = rg + m * ${NRG}u;
    if (i < L) {
      let t = t0 + i;
      let idx = (t * H + h) * ${K}u + r;
      let eg = exp(gcAt(t, h, r));
      let ed = exp(gl - gcAt(t, h, r));
      let kd = k[idx] * ed;
      dq[idx] = p.scale * eg * aQ[m];
      dk[idx] = aK[m] * ed;
      dgc[idx] = aQ[m] * p.scale * q[idx] * eg - aK[m] * kd;
      dW[idx] = aW[m];
      kdSum += aK[m] * kd;
    }
  }
  red[lid] = kdSum;
  storageBarrier();
  workgroupBarrier();
  if (lid < ${BK}u) {
    var s = 0.0;
    for (var m = 0u; m < ${NRG}u; m++) { s += red[m * ${BK}u + lid]; }
    let idx = (tl * H + h) * ${K}u + r;
    dgc[idx] += s + exp(gl) * gs;
  }
}`;
}

export function utBackwardWgsl(v: BackwardVariant): string {
  const { K, V, GK } = v;
  const CW = 16;
  const RG = WG / CW;
  const RR = 64 / RG;
  const NCT = Math.ceil((K + V) / CW);
  const T0 = 0;
  // X rows are read 4 apart across lanes in dA: row stride CW + 1 (2 lanes per bank at most).
  const CWP = CW + 1;
  const X0 = 4096;
  const B0 = X0 + 64 * CWP;
  const D0 = B0 + 64 * CW;
  return /* wgsl */ `
${chunkHeader(GK, ['cu: i32', 'Tb', 'W', 'U', 'dW', 'dVp', 'beta', 'vv', 'k', 'gcB'], ['dk', 'dgc', 'dv', 'dbeta', 'dA'])}
// T [64][64] at T0; X tile [64][CW] at X0; dB tile at B0; dX tile at D0 (CW = 16 columns of [W | U]).
var<workgroup> sm: array<f32, ${D0 + 64 * CW}>;
var<workgroup> bsh: array<f32, 64>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  for (var e = lid; e < 4096u; e += ${WG}u) {
    let i = e / 64u;
    let j = e % 64u;
    // T's unit diagonal is implicit in the stored strictly-lower part.
    sm[${T0}u + e] = select(Tb[(slot * H + h) * 4096u + e], 1.0, i == j);
  }
  ${BETA_TO_SHARED}
  let c = lid % ${CW}u;
  let rg = lid / ${CW}u;
  let ti = lid / 16u;
  let tj = lid % 16u;
  var da: array<f32, 16> = array<f32, 16>();
  var dbp: array<f32, ${RR}> = array<f32, ${RR}>();
  for (var ct = 0u; ct < ${NCT}u; ct++) {
    let cc = ct * ${CW}u + c;
    for (var i = rg; i < 64u; i += ${RG}u) {
      var x = 0.0;
      var dx = 0.0;
      if (i < L) {
        let row = (t0 + i) * H + h;
        if (cc < ${K}u) {
          x = W[row * ${K}u + cc];
          dx = dW[row * ${K}u + cc];
        } else if (cc < ${K + V}u) {
          x = U[row * ${V}u + cc - ${K}u];
          dx = dVp[row * ${V}u + cc - ${K}u];
        }
      }
      sm[${X0}u + i * ${CWP}u + c] = x;
      sm[${D0}u + i * ${CW}u + c] = dx;
    }
    workgroupBarrier();
    // dB = T^T dX: one sweep over the rows i serves this thread's ${RR} rows j (independent chains; T's
    // unit diagonal is in the stored tile, and its zero upper part masks i < j).
    var sb: array<f32, ${RR}> = array<f32, ${RR}>();
    for (var i = 0u; i < L; i++) {
      let di = sm[${D0}u + i * ${CW}u + c];
      for (var m = 0u; m < ${RR}u; m++) { sb[m] += sm[${T0}u + i * 64u + rg + m * ${RG}u] * di; }
    }
    for (var m = 0u; m < ${RR}u; m++) {
      let j = rg + m * ${RG}u;
      let s = sb[m];
      sm[${B0}u + j * ${CW}u + c] = s;
      ${utScatterRow(K, V, 'dbp[m]')}
    }
    workgroupBarrier();
    // dA = -(dB X^T), strictly lower (masked at the store); 4x4 register tile per thread.
    if (tj <= ti) {
      for (var x = 0u; x < ${CW}u; x++) {
        var bi: array<f32, 4>;
        var xj: array<f32, 4>;
        for (var a = 0u; a < 4u; a++) {
          bi[a] = sm[${B0}u + (ti * 4u + a) * ${CW}u + x];
          xj[a] = sm[${X0}u + (tj * 4u + a) * ${CWP}u + x];
        }
        for (var a = 0u; a < 4u; a++) {
          for (var b = 0u; b < 4u; b++) { da[a * 4u + b] -= bi[a] * xj[b]; }
        }
      }
    }
    workgroupBarrier();
  }
  for (var a = 0u; a < 4u; a++) {
    for (var b = 0u; b < 4u; b++) {
      dA[((slot * H + h) * 64u + ti * 4u + a) * 64u + tj * 4u + b] = select(0.0, da[a * 4u + b], tj * 4u + b < ti * 4u + a);
    }
  }
  for (var m = 0u; m < ${RR}u; m++) { sm[${X0}u + (rg + m * ${RG}u) * ${CW}u + c] = dbp[m]; }
  workgroupBarrier();
  if (lid < L) {
    var s = 0.0;
    for (var x = 0u; x < ${CW}u; x++) { s += sm[${X0}u + lid * ${CW}u + x]; }
    dbeta[(t0 + lid) * H + h] = s;
  }
}`;
}

/** K-tile width of the pair pass. */
export function pairsBK(K: number): number {
  return Math.min(K, 16);
}

export function pairsWgsl(v: BackwardVariant): string {
  const { K, V, GK } = v;
  const BK = pairsBK(K);
  if (K % BK !== 0) throw new Error(`kda pairs: K=${K} must be a multiple of ${BK}`);
  const NRG = WG / BK;
  const R = 64 / NRG;
  const BVt = Math.min(V, 32);
  const M0 = 0;
  const K0 = 4096;
  const Q0 = K0 + 64 * BK;
  const G0 = Q0 + 64 * BK;
  // dO / V' tile rows are read 4 apart across lanes: row stride BVt + 1.
  const BVP = BVt + 1;
  const size = Math.max(G0 + 64 * BK, 2 * 64 * BVP);
  const PF = (64 * BK) / WG; // k, q, gc elements per thread of one K tile
  if (!Number.isInteger(PF)) throw new Error(`kda pairs: K tile ${BK} x 64 rows does not split over ${WG} threads`);
  const tileFetch = (kt: string) => `for (var m = 0u; m < ${PF}u; m++) {
    let e = lid + m * ${WG}u;
    let i = e / ${BK}u;
    let r = (${kt}) * ${BK}u + e % ${BK}u;
    let ti2 = t0 + min(i, L - 1u);
    let idx = (ti2 * H + h) * ${K}u + r;
    pk[m] = select(0.0, k[idx], i < L);
    pq[m] = select(0.0, q[idx], i < L);
    pg[m] = gcAt(ti2, h, r);
  }`;
  return /* wgsl */ `
${chunkHeader(GK, ['cu: i32', 'q', 'k', 'gcB', 'beta', 'dO', 'Vp', 'dA'], ['dq', 'dk', 'dgc', 'dbeta', 'dg'])}
// M [64][64]: dA (gradient of Diag(beta) A_kk) below the diagonal, dA_qk transposed on and above it.
// Then k, q, gc tiles [64][BK] at K0, Q0, G0. (Before M: the dO / V' tiles [64][BVt + 1] for dA_qk at 0.)
var<workgroup> sm: array<f32, ${size}>;
var<workgroup> bsh: array<f32, 64>;
var<workgroup> red: array<f32, ${WG}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  ${BETA_TO_SHARED}
  let ti = lid / 16u;
  let tj = lid % 16u;
  // Global loads issued ahead of their use, so their latency overlaps the dA_qk products: this thread's
  // 4 x 4 tile of dA, then the first K tile of k, q, gc (and each next one during the current one).
  var dal: array<f32, 16>;
  for (var a = 0u; a < 4u; a++) {
    for (var b = 0u; b < 4u; b++) {
      let i = ti * 4u + a;
      let j = tj * 4u + b;
      dal[a * 4u + b] = select(0.0, dA[((slot * H + h) * 64u + i) * 64u + min(j, i)], j < i);
    }
  }
  var pk: array<f32, ${PF}>;
  var pq: array<f32, ${PF}>;
  var pg: array<f32, ${PF}>;
  ${tileFetch('0u')}
  var aq: array<f32, 16> = array<f32, 16>();
  for (var v0 = 0u; v0 < ${V}u; v0 += ${BVt}u) {
${stageDoVp(V, BVt, BVP, WG)}
    workgroupBarrier();
    // Entries above the diagonal are computed but never used.
    if (tj <= ti) {
      for (var x = 0u; x < ${BVt}u; x++) {
        var oi: array<f32, 4>;
        var vj: array<f32, 4>;
        for (var a = 0u; a < 4u; a++) {
          oi[a] = sm[(ti * 4u + a) * ${BVP}u + x];
          vj[a] = sm[${64 * BVP}u + (tj * 4u + a) * ${BVP}u + x];
        }
        for (var a = 0u; a < 4u; a++) {
          for (var b = 0u; b < 4u; b++) { aq[a * 4u + b] += oi[a] * vj[b]; }
        }
      }
    }
    workgroupBarrier();
  }
  for (var a = 0u; a < 4u; a++) {
    let i = ti * 4u + a;
    for (var b = 0u; b < 4u; b++) {
      let j = tj * 4u + b;
      if (j < i) { sm[${M0}u + i * 64u + j] = dal[a * 4u + b]; }
      if (j <= i) { sm[${M0}u + j * 64u + i] = select(0.0, aq[a * 4u + b] * p.scale, i < L); }
    }
  }
  let r0 = lid % ${BK}u;
  let rg = lid / ${BK}u;
  var dbA: array<f32, ${R}> = array<f32, ${R}>();
  for (var kt = 0u; kt < ${K / BK}u; kt++) {
    workgroupBarrier();
    for (var m = 0u; m < ${PF}u; m++) {
      let e = lid + m * ${WG}u;
      sm[${K0}u + e] = pk[m];
      sm[${Q0}u + e] = pq[m];
      sm[${G0}u + e] = pg[m];
    }
    if (kt + 1u < ${K / BK}u) {
      ${tileFetch('kt + 1u')}
    }
    // The values this pass adds to (from the dqkw and ut passes), read now and added at the end.
    var acc0: array<vec3<f32>, ${R}>;
    for (var m = 0u; m < ${R}u; m++) {
      let x = rg + m * ${NRG}u;
      let idx = ((t0 + min(x, L - 1u)) * H + h) * ${K}u + kt * ${BK}u + r0;
      acc0[m] = vec3<f32>(dq[idx], dk[idx], dgc[idx]);
    }
    workgroupBarrier();
    // One sweep over the chunk's rows t serves all R rows x of this thread (R independent chains; row t's
    // k, q, gc, beta loaded once). Pair (x, t) with t <= x: x is the later index (its q and k terms);
    // pair (t, x) with t >= x: x is the earlier one (its k term). Both use exp(-|gc_x - gc_t|) (gc is
    // non-increasing, so that is exp(gc_later - gc_earlier) <= 1) and the two entries M[t, x], M[x, t].
    var aQ: array<f32, ${R}> = array<f32, ${R}>();
    var sK: array<f32, ${R}> = array<f32, ${R}>();
    var bK: array<f32, ${R}> = array<f32, ${R}>();
    var xs: array<vec4<f32>, ${R}>; // k, q, gc, beta of row x
    for (var m = 0u; m < ${R}u; m++) {
      let x = rg + m * ${NRG}u;
      xs[m] = vec4<f32>(sm[${K0}u + x * ${BK}u + r0], sm[${Q0}u + x * ${BK}u + r0], sm[${G0}u + x * ${BK}u + r0], bsh[x]);
    }
    for (var t = 0u; t < L; t++) {
      let kt_ = sm[${K0}u + t * ${BK}u + r0];
      let qt_ = sm[${Q0}u + t * ${BK}u + r0];
      let gt_ = sm[${G0}u + t * ${BK}u + r0];
      let bkt = bsh[t] * kt_;
      for (var m = 0u; m < ${R}u; m++) {
        let x = rg + m * ${NRG}u;
        let e = exp(-abs(xs[m].z - gt_));
        let mTX = sm[${M0}u + t * 64u + x];
        let mXT = sm[${M0}u + x * 64u + t];
        let ek = e * kt_;
        aQ[m] += select(0.0, mTX, t <= x) * ek;
        sK[m] += select(0.0, mXT, t < x) * ek;
        bK[m] += (select(0.0, mXT, t >= x) * qt_ + select(0.0, mTX, t > x) * bkt) * e;
      }
    }
    for (var m = 0u; m < ${R}u; m++) {
      let x = rg + m * ${NRG}u;
      if (x < L) {
        let kx = xs[m].x;
        let aK = xs[m].w * sK[m];
        let idx = ((t0 + x) * H + h) * ${K}u + kt * ${BK}u + r0;
        dq[idx] = acc0[m].x + aQ[m];
        dk[idx] = acc0[m].y + aK + bK[m];
        dgc[idx] = acc0[m].z + xs[m].y * aQ[m] + kx * aK - kx * bK[m];
        dbA[m] += kx * sK[m];
      }
    }
  }
  // dbeta_i += sum_j dA[i,j] A_raw[i,j], summed over the BK lanes of each row.
  for (var m = 0u; m < ${R}u; m++) {
    red[lid] = dbA[m];
    workgroupBarrier();
    if (r0 == 0u) {
      let x = rg + m * ${NRG}u;
      var s = 0.0;
      for (var l = 0u; l < ${BK}u; l++) { s += red[rg * ${BK}u + l]; }
      if (x < L) { dbeta[(t0 + x) * H + h] += s; }
    }
    workgroupBarrier();
  }
  storageBarrier();
  workgroupBarrier();
  // dg = reverse cumsum of dgc within the chunk (gc = cumsum g).
${dgReverseCumsum(K, GK, WG, (i) => `bsh[${i}]`)}
}`;
}
