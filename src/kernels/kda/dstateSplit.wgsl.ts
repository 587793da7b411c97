/**
 * The backward state pass split into a parallel part and a sequential part (replaces backward.wgsl.ts's
 * dstate kernel where the geometry fits; see dstateSplitFits). The sequential part runs as
 * dstateSeqTiled.wgsl.ts's register-tiled kernel where that fits (dstateSeqWgsl here with
 * kdaBackwardTuning.prevDstateSeq).
 *
 * Per chunk, from the last one, the backward state recurrence is (G = gradient of the chunk's outgoing state)
 *     dV' = A_qk^T dO + Kd G
 *     G  <- exp(gc_last) G + Qg^T dO - W^T dV'        (Qg = scale q exp(gc))
 * The terms A_qk^T dO ([64, V]) and Qg^T dO ([K, V]) do not depend on G, so they are computed for all chunks
 * at once first (`dstatePreWgsl`, grid: chunk slots x value tiles x heads): dVpre = A_qk^T dO goes to the
 * dV' buffer and R = Qg^T dO to the chunk's slot of the outgoing-state-gradient buffer dh (the one the
 * sequential pass then overwrites with G). What is left for the sequential pass (`dstateSeqWgsl`) is
 *     dV' = dVpre + Kd G,    G <- exp(gc_last) G + R - W^T dV'
 * which has the shape of the forward state pass (V' = U - W S, S <- exp(gc_last) S + Kd^T V'), with the roles
 * of W and Kd exchanged; it is written like stateWgslPrefetch (chunk.wgsl.ts): every global load of the next
 * chunk (Kd, W, dVpre, R, the decay) is issued into registers while the current chunk computes, so the
 * sequential loop pays memory latency once per chunk at most. The old kernel did twice the arithmetic in the
 * sequential loop (four products instead of two), one exp per loaded q element, and no prefetch.
 */
import { stateBK, stateBV } from './chunk.wgsl.js';
import {
  bindings,
  chunkSlotPrologue,
  computeMain,
  GROUP_PARAMS,
  gcAtFn,
  groupSlabBase,
  LOCATE,
  reverseChunkWalk,
  SEQUENCE_CHUNKS,
  slabBase,
  slabLoad,
  slabStore,
  stateGeometry,
  valueTileIds,
  vec4At,
} from './wgslParts.js';

const WG = 256;

export interface DstateVariant {
  K: number;
  V: number;
  GK: number;
}

/** Value columns per workgroup of the parallel pass: the widest of 64, 32, 16, 8, 4 dividing V. */
export function preBV(V: number): number {
  for (const bv of [64, 32, 16, 8, 4]) if (V % bv === 0) return bv;
  return 0;
}

/**
 * Row groups of the parallel pass: thread (rg, cg) owns KR = K / RG rows of R (a multiple of 4, so its Qg
 * operands are whole vec4) and 64 / RG rows of dVpre, each row one vec4 of 4 value columns.
 */
const preRG = (K: number) => Math.min(16, K / 4);
/** Chunk rows per load step of the parallel pass. */
const PRE_IB = 16;

/** Value-tile width of the sequential pass: the forward state pass's rule (the same workgroup arrays). */
export function seqBV(V: number, N: number, H: number, K: number, smem: number): number {
  return stateBV(V, N, H, K, smem);
}

/**
 * Whether the split runs with sequential value tiles of BV: K a multiple of 16, V of 4, and one whole [64, K]
 * tile of Kd or W fits beside the [K, BV] G slab and the [64, BV] dV' tile (45 KiB at K = 128, BV = 16);
 * otherwise the single-kernel pass.
 */
export function dstateSplitFits(v: DstateVariant, BV: number, smem: number): boolean {
  const { K, V } = v;
  if (K % 16 !== 0 || preBV(V) === 0 || V % BV !== 0) return false;
  if (stateBK(K, BV, smem) !== K) return false;
  const { wg, VR, SR } = stateGeometry(K, BV, WG);
  return Number.isInteger(VR) && Number.isInteger(SR) && (16 * K) % wg === 0;
}

export const dstateKey = (name: string, v: DstateVariant, extra = '') => `${name}_k${v.K}_v${v.V}_gk${v.GK}${extra}`;

/**
 * Parallel pass (grid: chunk slots x V / BV x heads of the group): dVpre = A_qk^T dO into dVp and
 * R = Qg^T dO into dh[slot]. The chunk's rows come in steps of 16 (Qg, dO and the matching rows of A_qk in
 * workgroup memory as vec4, rows past the chunk's end as zeros); per row i a thread reads KR / 4 + VR / 4 + 1
 * vec4 for 4 (KR + VR) FMAs.
 */
export function dstatePreWgsl(v: DstateVariant): string {
  const { K, V, GK } = v;
  const BV = preBV(V);
  const CG = BV / 4;
  const RG = preRG(K);
  const wg = RG * CG;
  const KR = K / RG;
  const VR = 64 / RG;
  const K4 = K / 4;
  const IB = PRE_IB;
  if (K % 16 !== 0 || BV === 0) throw new Error(`kda dstate pre: K=${K}, V=${V} do not tile`);
  // Straight-line code with constant accumulator indices (registers whether or not the driver unrolls).
  const fma4 = (acc: string, base: number, x: string) =>
    [0, 1, 2, 3].map((i) => `${acc}[${base + i}] += ${x}.${'xyzw'[i]} * o;`).join('\n        ');
  const unrolled = (n: number, f: (m: number) => string) => Array.from({ length: n }, (_, m) => f(m)).join('\n      ');
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'q', 'gcB', 'Aqk', 'dO'], ['dh', 'dVp'])}
${LOCATE}
${gcAtFn(GK)}
// Rows ib .. ib + ${IB} of the chunk: Qg [${IB}][K / 4], dO [${IB}][BV / 4], A_qk [${IB}][64 / 4], all vec4.
var<workgroup> qs: array<vec4<f32>, ${IB * K4}>;
var<workgroup> os: array<vec4<f32>, ${IB * CG}>;
var<workgroup> as4: array<vec4<f32>, ${IB * 16}>;

${computeMain(wg)}
  ${chunkSlotPrologue(['slot', 'vt', 'h'], true)}
  let cg = lid % ${CG}u;
  let rg = lid / ${CG}u;
  var racc: array<vec4<f32>, ${KR}>;
  for (var a = 0u; a < ${KR}u; a++) { racc[a] = vec4<f32>(0.0); }
  var vacc: array<vec4<f32>, ${VR}>;
  for (var a = 0u; a < ${VR}u; a++) { vacc[a] = vec4<f32>(0.0); }
  let abase = (slot * H + h) * 4096u;
  for (var ib = 0u; ib < L; ib += ${IB}u) {
    workgroupBarrier();
    for (var e = lid; e < ${IB * K4}u; e += ${wg}u) {
      let i = e / ${K4}u;
      let r = (e % ${K4}u) * 4u;
      let ti = t0 + min(ib + i, L - 1u);
      let row = (ti * H + h) * ${K}u + r;
      let eg = vec4<f32>(exp(gcAt(ti, h, r)), exp(gcAt(ti, h, r + 1u)), exp(gcAt(ti, h, r + 2u)), exp(gcAt(ti, h, r + 3u)));
      qs[e] = select(vec4<f32>(0.0), ${vec4At('q', 'row')} * eg * p.scale, ib + i < L);
    }
    for (var e = lid; e < ${IB * CG}u; e += ${wg}u) {
      let i = e / ${CG}u;
      let ti = t0 + min(ib + i, L - 1u);
      let idx = (ti * H + h) * ${V}u + vt * ${BV}u + (e % ${CG}u) * 4u;
      os[e] = select(vec4<f32>(0.0), ${vec4At('dO', 'idx')}, ib + i < L);
    }
    // A_qk rows past the chunk's end are not guaranteed to be written: masked.
    for (var e = lid; e < ${IB * 16}u; e += ${wg}u) {
      let i = e / 16u;
      let idx = abase + (ib + i) * 64u + (e % 16u) * 4u;
      as4[e] = select(vec4<f32>(0.0), ${vec4At('Aqk', 'idx')}, ib + i < L);
    }
    workgroupBarrier();
    for (var i = 0u; i < ${IB}u; i++) {
      let o = os[i * ${CG}u + cg];
      // R[r] += Qg[i, r] dO[i] for rows r = KR rg ..; dVpre[j] += A_qk[i, j] dO[i] for rows j = VR rg ..
      // (A_qk is 0 for j > i).
      ${unrolled(
        KR / 4,
        (a4) => `{
        let x = qs[i * ${K4}u + rg * ${KR / 4}u + ${a4}u];
        ${fma4('racc', a4 * 4, 'x')}
      }`,
      )}
      ${unrolled(
        VR / 4,
        (a4) => `{
        let x = as4[i * 16u + rg * ${VR / 4}u + ${a4}u];
        ${fma4('vacc', a4 * 4, 'x')}
      }`,
      )}
    }
  }
  let hbase = (slot * p.HB + hb) * ${K * V}u + vt * ${BV}u + cg * 4u;
  for (var a = 0u; a < ${KR}u; a++) {
    let idx = hbase + (rg * ${KR}u + a) * ${V}u;
    dh[idx] = racc[a].x;
    dh[idx + 1u] = racc[a].y;
    dh[idx + 2u] = racc[a].z;
    dh[idx + 3u] = racc[a].w;
  }
  for (var a = 0u; a < ${VR}u; a++) {
    let j = rg * ${VR}u + a;
    if (j < L) {
      let idx = ((t0 + j) * H + h) * ${V}u + vt * ${BV}u + cg * 4u;
      dVp[idx] = vacc[a].x;
      dVp[idx + 1u] = vacc[a].y;
      dVp[idx + 2u] = vacc[a].z;
      dVp[idx + 3u] = vacc[a].w;
    }
  }
}`;
}

/**
 * Sequential pass (grid: value tiles x heads of the group x sequences): G slab [K, BV] in workgroup
 * memory, chunks from the last. Per chunk: store G to dh[slot] (after reading R from there, same thread,
 * same element), dV' = dVpre + Kd G to dVp (read and written by the same thread), then
 * G = exp(gc_last) G + R - W^T dV'. Only the last chunk of a sequence can be short, so every chunk after the
 * first one processed (the next one loaded) is a whole 64 rows.
 */
export function dstateSeqWgsl(v: DstateVariant, BV: number): string {
  const { K, V, GK } = v;
  const { wg, NRG, VR, SR } = stateGeometry(K, BV, WG);
  const slab = { K, V, BV, wg };
  const K4 = K / 4;
  const PF = (64 * K4) / wg;
  if (!Number.isInteger(VR) || !Number.isInteger(SR) || !Number.isInteger(PF) || K % 4 !== 0) {
    throw new Error(`kda dstate seq: K=${K}, BV=${BV} do not tile`);
  }
  const fetch = (dst: string, buf: string, ts: string, Ln: string) => `
      for (var m = 0u; m < ${PF}u; m++) {
        let e = lid + m * ${wg}u;
        let i = e / ${K4}u;
        let idx = ((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K}u + (e % ${K4}u) * 4u;
        ${dst}[m] = select(vec4<f32>(0.0), ${vec4At(buf, 'idx')}, i < ${Ln});
      }`;
  // This thread's dVpre rows (rg + m NRG, column col) and R rows (r0 + m, column col) of chunk slot `sl`.
  const rowsFetch = (ts: string, Ln: string, sl: string) => `
      for (var m = 0u; m < ${VR}u; m++) {
        let i = rg + m * ${NRG}u;
        upre[m] = select(0.0, dVp[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${V}u + col], i < ${Ln});
      }
      let rb = ${groupSlabBase(slab, sl)} + c;
      for (var m = 0u; m < ${SR}u; m++) {
        rpre[m] = dh[rb + (r0 + m) * ${V}u];
        gpre[m] = gcAt(${ts} + ${Ln} - 1u, h, r0 + m);
      }`;
  const gUpdate =
    SR % 4 === 0
      ? `    var sacc: array<vec4<f32>, ${SR / 4}>;
    for (var m = 0u; m < ${SR / 4}u; m++) { sacc[m] = vec4<f32>(0.0); }
    for (var i = 0u; i < 64u; i++) {
      let di = Vsh[i * ${BV}u + c];
      for (var m = 0u; m < ${SR / 4}u; m++) { sacc[m] += tile[i * ${K4}u + rg * ${SR / 4}u + m] * di; }
    }
    for (var m = 0u; m < ${SR}u; m++) {
      let r = r0 + m;
      Gsh[r * ${BV}u + c] = decay[m] * Gsh[r * ${BV}u + c] + radd[m] - sacc[m / 4u][m % 4u];
    }`
      : `    for (var m = 0u; m < ${SR}u; m++) {
      let r = r0 + m;
      var sa = 0.0;
      for (var i = 0u; i < 64u; i++) { sa += tile[i * ${K4}u + r / 4u][r % 4u] * Vsh[i * ${BV}u + c]; }
      Gsh[r * ${BV}u + c] = decay[m] * Gsh[r * ${BV}u + c] + radd[m] - sa;
    }`;
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'Kd', 'W', 'gcB'], ['G', 'dh', 'dVp'])}
${gcAtFn(GK)}
var<workgroup> Gsh: array<f32, ${K * BV}>;
// Kd, then W, of the chunk as [64][K/4] vec4.
var<workgroup> tile: array<vec4<f32>, ${64 * K4}>;
var<workgroup> Vsh: array<f32, ${64 * BV}>;

${computeMain(wg)}
  ${valueTileIds(BV, true)}
  // dV' rows of this thread: rg + m NRG; G rows: the ${SR} consecutive rows from r0.
  let r0 = rg * ${SR}u;
  let sbase = ${slabBase(slab, 'n')};
  ${slabLoad(slab, 'Gsh', 'G', 'sbase')}
  ${SEQUENCE_CHUNKS}
  let nch = (t1 - t0 + 63u) / 64u;
  var kpre: array<vec4<f32>, ${PF}>;
  var wpre: array<vec4<f32>, ${PF}>;
  var upre: array<f32, ${VR}>;
  var rpre: array<f32, ${SR}>;
  var gpre: array<f32, ${SR}>;
  ${reverseChunkWalk([fetch('kpre', 'Kd', 'ts', 'L0'), fetch('wpre', 'W', 'ts', 'L0'), rowsFetch('ts', 'L0', '(base + nch - 1u)')])}
    workgroupBarrier();
    for (var m = 0u; m < ${PF}u; m++) { tile[lid + m * ${wg}u] = kpre[m]; }
    var acc: array<f32, ${VR}>;
    for (var m = 0u; m < ${VR}u; m++) { acc[m] = upre[m]; }
    var decay: array<f32, ${SR}>;
    var radd: array<f32, ${SR}>;
    for (var m = 0u; m < ${SR}u; m++) {
      decay[m] = exp(gpre[m]);
      radd[m] = rpre[m];
    }
    // G is this chunk's outgoing-state gradient: stored over R (already read) by the thread that owns it.
    let hb0 = ${groupSlabBase(slab, 'slot')} + c;
    for (var m = 0u; m < ${SR}u; m++) { dh[hb0 + (r0 + m) * ${V}u] = Gsh[(r0 + m) * ${BV}u + c]; }
    // The previous chunk's (a whole one) Kd, dVpre, R and decay while this one computes.
    if (more) {
      ${fetch('kpre', 'Kd', 'tn', '64u')}
      ${rowsFetch('tn', '64u', '(slot - 1u)')}
    }
    workgroupBarrier();
    // dV' = dVpre + Kd G
    for (var k4 = 0u; k4 < ${K4}u; k4++) {
      let g4 = vec4<f32>(Gsh[(k4 * 4u) * ${BV}u + c], Gsh[(k4 * 4u + 1u) * ${BV}u + c],
                         Gsh[(k4 * 4u + 2u) * ${BV}u + c], Gsh[(k4 * 4u + 3u) * ${BV}u + c]);
      for (var m = 0u; m < ${VR}u; m++) { acc[m] += dot(tile[(rg + m * ${NRG}u) * ${K4}u + k4], g4); }
    }
    workgroupBarrier();
    for (var m = 0u; m < ${VR}u; m++) {
      let i = rg + m * ${NRG}u;
      Vsh[i * ${BV}u + c] = acc[m];
      if (i < L) { dVp[((ts + i) * H + h) * ${V}u + col] = acc[m]; }
    }
    for (var m = 0u; m < ${PF}u; m++) { tile[lid + m * ${wg}u] = wpre[m]; }
    if (more) {
      ${fetch('wpre', 'W', 'tn', '64u')}
    }
    workgroupBarrier();
    // G = exp(gc_last) G + R - W^T dV'
${gUpdate}
  }
  workgroupBarrier();
  ${slabStore(slab, 'Gsh', 'G', 'sbase')}
}`;
}
