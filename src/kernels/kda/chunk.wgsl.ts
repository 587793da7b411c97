/**
 * Chunked KDA forward (prefill, training), chunk C = 64, in three dispatches:
 *
 *  1. intra (grid: chunk slots x heads; all chunks at once; intra.wgsl.ts, or where K % 16 == 0 and
 *     V % 4 == 0 gc.wgsl.ts then intraVec.wgsl.ts, the same quantities in vec4 form): gc = cumsum(g), A_kk and
 *     A_qk by 16-row sub-chunks, the UT transform T = (I + Diag(beta) A_kk)^-1 by 16-row blocks, then
 *     W = T Diag(beta) exp(gc) K, U = T Diag(beta) V. Stores gc, W, U, A_qk (scaled, masked; pass 3),
 *     T (strictly lower part; the backward) and Kd = k exp(gc_last - gc) (so the state loop only loads).
 *  2. state (grid: value tiles x heads x sequences): the only sequential part. A workgroup keeps the slab
 *     S[:, tile of BV columns] in workgroup memory and walks its sequence's chunks: stores S (the chunk's
 *     incoming state, for pass 3 and the backward), V' = U - W S, then S = exp(gc_last) S + Kd^T V' with
 *     Kd = k exp(gc_last - gc). Splitting the value columns gives H*V/BV independent workgroups. The kernels
 *     here give a thread one value column; stateTiled.wgsl.ts (the default where it fits) register tiles.
 *  3. output (grid: chunk slots x value tiles x heads; all chunks at once; outputPipelined.wgsl.ts, or
 *     output.wgsl.ts, or the scalar kernel here when K or V is not a multiple of 4):
 *     O = (scale q exp(gc)) S_in + A_qk V'.
 * The per-chunk states are kept per head group (chunk.ts headGroups) so each fits one storage binding;
 * passes 2 and 3 run once per group (`p.h0`, `p.HB`).
 *
 * Chunk slots: sequence s's chunk j lives in slot floor(cu[s]/64) + s + j. That map is injective and
 * stays below floor(T/64) + N, so every per-chunk buffer has a size known on the host without reading
 * cu_seqlens, and a workgroup finds its (sequence, chunk) by binary search over cu. Slots past a
 * sequence's end exit at once. Per-token intermediates (gc, W, U, V') are indexed by token.
 *
 * Every exp() argument is gc_i - gc_j with j <= i (or gc_last - gc_j), so <= 0; no cumulative decay is
 * ever divided by. f32 throughout. Workgroup memory stays <= 32 KiB (lavapipe has 32, the H200 48).
 */
import {
  bindings,
  GROUP_PARAMS,
  groupSlabBase,
  chunkSlotPrologue,
  computeMain,
  forwardChunkWalk,
  gcAtFn,
  LOCATE,
  SEQUENCE_CHUNKS,
  slabBase,
  slabLoad,
  slabStore,
  stateGeometry,
  valueTileIds,
} from './wgslParts.js';

export const CHUNK = 64;
const WG = 256;

export interface ChunkVariant {
  K: number;
  V: number;
  GK: number;
}

export const chunkKey = (name: string, v: ChunkVariant, extra = '') => `${name}_k${v.K}_v${v.V}_gk${v.GK}${extra}`;

/** Tile width over K for the intra and state passes. */
export function chunkBK(K: number): number {
  const bk = Math.min(K, 32);
  if (K % bk !== 0) throw new Error(`kda chunked: K=${K} must be a multiple of 32 or a power of two below 32`);
  return bk;
}

const STATE_HEADER = (
  GK: number,
) => `${bindings(GROUP_PARAMS, ['cu: i32', 'W', 'U', 'Kd', 'gcB'], ['state', 'hB', 'Vp'])}
${gcAtFn(GK)}`;

const OUTPUT_HEADER = (GK: number) => `${bindings(GROUP_PARAMS, ['cu: i32', 'q', 'gcB', 'hB', 'Vp', 'Aqk'], ['o'])}
${LOCATE}
${gcAtFn(GK)}`;

/**
 * Value-tile width of the state passes: 32 columns, halved while that leaves fewer than 128 workgroups
 * (sequences x heads x tiles; on the H200 at H=16 a threshold of 256, BV=8, was slower: 5.7 vs 3.4 ms
 * forward, 22.5 vs 14.2 ms dstate at T=32768, since every workgroup reloads the chunk's W and Kd) or while the tile does not fit `smemBytes` of workgroup memory
 * (the backward's dstate pass holds two more [64, BK] and [64, BV] tiles than the forward).
 */
export function stateBV(V: number, N: number, H: number, K = 128, smemBytes = 32768, backward = false): number {
  const bk = Math.min(K, 32);
  const bytes = (bv: number) => 4 * (K * bv + (backward ? Math.max(2 * 64 * bk, 4096) + 2 * 64 * bv : 64 * (bk + bv)));
  let bv = Math.min(V, 32);
  while (bv > 8 && V % (bv / 2) === 0 && (N * H * (V / bv) < 128 || bytes(bv) > smemBytes)) bv /= 2;
  return bv;
}

/**
 * K-tile width of the state passes: the widest of K, 64, 32 that fits next to the state slab. Whole-K
 * tiles mean one load phase (and barrier) per operand per chunk, which is what bounds the sequential
 * pass: its time is mostly latency, not arithmetic.
 */
export function stateBK(K: number, BV: number, smemBytes: number, backward = false): number {
  for (const bk of [K, 64, 32]) {
    if (bk > K || K % bk !== 0) continue;
    const tiles = backward ? Math.max(2 * 64 * bk, 4096) + 2 * 64 * BV : 64 * (bk + BV);
    if (4 * (K * BV + tiles) <= smemBytes) return bk;
  }
  return chunkBK(K);
}

/** Row split of the state passes' V' rows: thread (rg, c) holds rows rg + m NRG, m < VR, of column c. */
interface VRows {
  V: number;
  BV: number;
  NRG: number;
  VR: number;
}

/** WGSL: this thread's U rows of the chunk at token ts (Ln rows, 0 past the end) into dst[m]. */
function uRowsLoad(g: VRows, dst: string, ts: string, Ln: string): string {
  return `for (var m = 0u; m < ${g.VR}u; m++) {
      let i = rg + m * ${g.NRG}u;
      ${dst}[m] = select(0.0, U[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${g.V}u + col], i < ${Ln});
    }`;
}

/** WGSL: V' (in acc) to workgroup memory for the state update and, rows inside the chunk, to global Vp. */
function vPrimeStore(g: VRows): string {
  return `for (var m = 0u; m < ${g.VR}u; m++) {
      let i = rg + m * ${g.NRG}u;
      Vsh[i * ${g.BV}u + c] = acc[m];
      if (i < L) { Vp[((ts + i) * H + h) * ${g.V}u + col] = acc[m]; }
    }`;
}

export function stateWgsl(v: ChunkVariant, BV: number, BK = chunkBK(v.K)): string {
  const { K, V, GK } = v;
  const { wg, NRG, VR, SR } = stateGeometry(K, BV, WG); // VR V' rows, SR state rows per thread
  const slab = { K, V, BV, wg };
  const vrows = { V, BV, NRG, VR };
  if (!Number.isInteger(VR) || !Number.isInteger(SR)) throw new Error(`kda state pass: K=${K}, BV=${BV} do not tile`);
  return /* wgsl */ `
${STATE_HEADER(GK)}
var<workgroup> Ssh: array<f32, ${K * BV}>;
var<workgroup> tile: array<f32, ${64 * BK}>;
var<workgroup> Vsh: array<f32, ${64 * BV}>;

${computeMain(wg)}
  ${valueTileIds(BV, true)}
  let sbase = ${slabBase(slab, 'n')};
  ${slabLoad(slab, 'Ssh', 'state', 'sbase')}
  ${SEQUENCE_CHUNKS}
  for (var j = 0u; t0 + j * 64u < t1; j++) {
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    workgroupBarrier();
    let hbase = ${groupSlabBase(slab, 'slot')};
    ${slabStore(slab, 'Ssh', 'hB', 'hbase')}
    // V' = U - W S
    var acc: array<f32, ${VR}> = array<f32, ${VR}>();
    ${uRowsLoad(vrows, 'acc', 'ts', 'L')}
    for (var kt = 0u; kt < ${K / BK}u; kt++) {
      for (var e = lid; e < ${64 * BK}u; e += ${wg}u) {
        let i = e / ${BK}u;
        tile[e] = select(0.0, W[((ts + min(i, L - 1u)) * H + h) * ${K}u + kt * ${BK}u + e % ${BK}u], i < L);
      }
      workgroupBarrier();
      for (var m = 0u; m < ${VR}u; m++) {
        let i = rg + m * ${NRG}u;
        var s = 0.0;
        for (var kk = 0u; kk < ${BK}u; kk++) { s += tile[i * ${BK}u + kk] * Ssh[(kt * ${BK}u + kk) * ${BV}u + c]; }
        acc[m] -= s;
      }
      workgroupBarrier();
    }
    ${vPrimeStore(vrows)}
    // S = exp(gc_last) S + Kd^T V'
    let tl = ts + L - 1u;
    for (var kt = 0u; kt < ${K / BK}u; kt++) {
      for (var e = lid; e < ${64 * BK}u; e += ${wg}u) {
        let i = e / ${BK}u;
        let r = kt * ${BK}u + e % ${BK}u;
        let ti = ts + min(i, L - 1u);
        tile[e] = select(0.0, Kd[(ti * H + h) * ${K}u + r], i < L);
      }
      workgroupBarrier();
      for (var m = 0u; m < ${SR}u; m++) {
        let r = rg + m * ${NRG}u;
        if (r / ${BK}u == kt) {
          let kk = r % ${BK}u;
          var s = 0.0;
          for (var i = 0u; i < 64u; i++) { s += tile[i * ${BK}u + kk] * Vsh[i * ${BV}u + c]; }
          Ssh[r * ${BV}u + c] = exp(gcAt(tl, h, r)) * Ssh[r * ${BV}u + c] + s;
        }
      }
      workgroupBarrier();
    }
  }
  workgroupBarrier();
  ${slabStore(slab, 'Ssh', 'state', 'sbase')}
}`;
}

/**
 * The fused state-and-output pass (stateWgslPrefetch with `fuse`): besides the recurrence it writes
 * o = Qg S_in + A_qk V' for the chunk while S_in and V' sit in workgroup memory, so the per-chunk states
 * (0.54 GB at H=16, d=128, T=32768) need not go through global memory and pass 3 does not run.
 * `keep`: still store the per-chunk states (hB) and V' (Vp) for the backward; without it neither binding
 * exists. Needs K % 4 == 0 (Qg and A_qk are read as vec4).
 */
export interface StateFuse {
  keep: boolean;
}

export const stateFuseKey = (f: StateFuse | undefined) => (f ? `_fused${f.keep ? '_keep' : ''}` : '');

/**
 * The state pass when one [64, K] tile fits (BK = K): the same arithmetic, with every global load of
 * chunk j+1 (W, Kd, U and the decay exp(gc_last)) issued into registers while chunk j computes, so the
 * sequential loop waits on memory latency once at the start instead of at every phase.
 *
 * With `fuse` (StateFuse) the output of the chunk is computed in the same two phases, with no barrier
 * added: the V' phase also forms Qg S_in (Qg rows read from global memory, stored by the gc pass: the
 * workgroup memory holds the W tile, and a second [64, K] tile would not fit in 48 KiB), the state-update
 * phase adds A_qk V' (A_qk rows from global memory, V' from workgroup memory; A_qk is zero above the
 * diagonal, so the sum stops at the thread's row) and stores o. The output is off the recurrence's
 * dependency chain: it only adds arithmetic and loads to the phases the chain already has.
 */
export function stateWgslPrefetch(v: ChunkVariant, BV: number, maxWg = WG, fuse?: StateFuse): string {
  const { K, V, GK } = v;
  const { wg, NRG, VR, SR } = stateGeometry(K, BV, maxWg);
  const slab = { K, V, BV, wg };
  const vrows = { V, BV, NRG, VR };
  const K4 = K / 4;
  const PF = (64 * K4) / wg; // vec4 per thread per [64, K] tile
  if (!Number.isInteger(VR) || !Number.isInteger(SR) || !Number.isInteger(PF)) {
    throw new Error(`kda state pass: K=${K}, BV=${BV} do not tile`);
  }
  const load4 = (buf: string, row: string, col4: string) =>
    `vec4<f32>(${buf}[(${row}) * ${K}u + ${col4} * 4u], ${buf}[(${row}) * ${K}u + ${col4} * 4u + 1u], ${buf}[(${row}) * ${K}u + ${col4} * 4u + 2u], ${buf}[(${row}) * ${K}u + ${col4} * 4u + 3u])`;
  const fetch = (dst: string, buf: string, ts: string, Ln: string) => `
      for (var m = 0u; m < ${PF}u; m++) {
        let e = lid + m * ${wg}u;
        let i = e / ${K4}u;
        ${dst}[m] = select(vec4<f32>(0.0), ${load4(buf, `(${ts} + min(i, ${Ln} - 1u)) * H + h`, `(e % ${K4}u)`)}, i < ${Ln});
      }`;
  const keepOut = !fuse || fuse.keep; // per-chunk states and V' go to global memory
  const header = fuse
    ? `${bindings(
        GROUP_PARAMS,
        ['cu: i32', 'W', 'U', 'Kd', 'gcB', 'Qg: vec4<f32>', 'Aqk: vec4<f32>'],
        ['state', ...(fuse.keep ? ['hB', 'Vp'] : []), 'o'],
      )}
${gcAtFn(GK)}`
    : STATE_HEADER(GK);
  const vStore = keepOut
    ? vPrimeStore(vrows)
    : `for (var m = 0u; m < ${VR}u; m++) { Vsh[(rg + m * ${NRG}u) * ${BV}u + c] = acc[m]; }`;
  return /* wgsl */ `
${header}
var<workgroup> Ssh: array<f32, ${K * BV}>;
// W, then Kd, of the chunk as [64][K/4] vec4: one workgroup-memory read feeds 4 FMAs.
var<workgroup> tile: array<vec4<f32>, ${64 * K4}>;
var<workgroup> Vsh: array<f32, ${64 * BV}>;

${computeMain(wg)}
  ${valueTileIds(BV, true)}
  // V' rows of this thread: rg + m NRG; state rows: the ${SR} consecutive rows from rg * ${SR}.
  let r0 = rg * ${SR}u;
  let sbase = ${slabBase(slab, 'n')};
  ${slabLoad(slab, 'Ssh', 'state', 'sbase')}
  ${SEQUENCE_CHUNKS}
  var wpre: array<vec4<f32>, ${PF}>;
  var kpre: array<vec4<f32>, ${PF}>;
  var upre: array<f32, ${VR}>;
  var gpre: array<f32, ${SR}>;
  ${forwardChunkWalk([
    fetch('wpre', 'W', 't0', 'L0'),
    fetch('kpre', 'Kd', 't0', 'L0'),
    uRowsLoad(vrows, 'upre', 't0', 'L0'),
    `for (var m = 0u; m < ${SR}u; m++) { gpre[m] = gcAt(t0 + L0 - 1u, h, r0 + m); }`,
  ])}
    workgroupBarrier();
    for (var m = 0u; m < ${PF}u; m++) { tile[lid + m * ${wg}u] = wpre[m]; }
    var acc: array<f32, ${VR}> = array<f32, ${VR}>();
    for (var m = 0u; m < ${VR}u; m++) { acc[m] = upre[m]; }
    var decay: array<f32, ${SR}>;
    for (var m = 0u; m < ${SR}u; m++) { decay[m] = exp(gpre[m]); }
    // Next chunk's W, U and decay while this one computes.
    if (Ln > 0u) {
      ${fetch('wpre', 'W', 'tn', 'Ln')}
      ${uRowsLoad(vrows, 'upre', 'tn', 'Ln')}
      for (var m = 0u; m < ${SR}u; m++) { gpre[m] = gcAt(tn + Ln - 1u, h, r0 + m); }
    }
    ${
      keepOut
        ? `let hbase = ${groupSlabBase(slab, 'slot')};
    ${slabStore(slab, 'Ssh', 'hB', 'hbase')}`
        : ''
    }
    workgroupBarrier();
    // V' = U - W S${fuse ? ', and Qg S for the output' : ''}
${
  fuse
    ? `    var oacc: array<f32, ${VR}> = array<f32, ${VR}>();
    var qrow: array<u32, ${VR}>;
    for (var m = 0u; m < ${VR}u; m++) { qrow[m] = ((ts + min(rg + m * ${NRG}u, L - 1u)) * H + h) * ${K4}u; }
`
    : ''
}    for (var k4 = 0u; k4 < ${K4}u; k4++) {
      let s4 = vec4<f32>(Ssh[(k4 * 4u) * ${BV}u + c], Ssh[(k4 * 4u + 1u) * ${BV}u + c],
                         Ssh[(k4 * 4u + 2u) * ${BV}u + c], Ssh[(k4 * 4u + 3u) * ${BV}u + c]);
      for (var m = 0u; m < ${VR}u; m++) { acc[m] -= dot(tile[(rg + m * ${NRG}u) * ${K4}u + k4], s4); }${
        fuse
          ? `
      for (var m = 0u; m < ${VR}u; m++) { oacc[m] += dot(Qg[qrow[m] + k4], s4); }`
          : ''
      }
    }
    workgroupBarrier();
    ${vStore}
    for (var m = 0u; m < ${PF}u; m++) { tile[lid + m * ${wg}u] = kpre[m]; }
    if (Ln > 0u) {
      ${fetch('kpre', 'Kd', 'tn', 'Ln')}
    }
    workgroupBarrier();
    // S = exp(gc_last) S + Kd^T V'
${
  SR % 4 === 0
    ? `    var sacc: array<vec4<f32>, ${SR / 4}> = array<vec4<f32>, ${SR / 4}>();
    for (var m = 0u; m < ${SR / 4}u; m++) { sacc[m] = vec4<f32>(0.0); }
    for (var i = 0u; i < 64u; i++) {
      let vi = Vsh[i * ${BV}u + c];
      for (var m = 0u; m < ${SR / 4}u; m++) { sacc[m] += tile[i * ${K4}u + rg * ${SR / 4}u + m] * vi; }
    }
    for (var m = 0u; m < ${SR}u; m++) {
      let r = r0 + m;
      Ssh[r * ${BV}u + c] = decay[m] * Ssh[r * ${BV}u + c] + sacc[m / 4u][m % 4u];
    }`
    : `    for (var m = 0u; m < ${SR}u; m++) {
      let r = r0 + m;
      var sa = 0.0;
      for (var i = 0u; i < 64u; i++) { sa += tile[i * ${K4}u + r / 4u][r % 4u] * Vsh[i * ${BV}u + c]; }
      Ssh[r * ${BV}u + c] = decay[m] * Ssh[r * ${BV}u + c] + sa;
    }`
}${
  fuse
    ? `
    // o = Qg S_in + A_qk V' (rows past the chunk's end are not stored).
    for (var m = 0u; m < ${VR}u; m++) {
      let i = rg + m * ${NRG}u;
      let arow = ((slot * H + h) * 64u + i) * 16u;
      var s = oacc[m];
      for (var j4 = 0u; j4 <= i / 4u; j4++) {
        let a = Aqk[arow + j4];
        s += a.x * Vsh[(j4 * 4u) * ${BV}u + c] + a.y * Vsh[(j4 * 4u + 1u) * ${BV}u + c]
           + a.z * Vsh[(j4 * 4u + 2u) * ${BV}u + c] + a.w * Vsh[(j4 * 4u + 3u) * ${BV}u + c];
      }
      if (i < L) { o[((ts + i) * H + h) * ${V}u + col] = s; }
    }`
    : ''
}
  }
  workgroupBarrier();
  ${slabStore(slab, 'Ssh', 'state', 'sbase')}
}`;
}

/** WGSL: K tile kt of Qg = scale q exp(gc), the chunk's rows [64][BK] into `dst` (0 past the end). */
function qgTileLoad(dst: string, K: number, BK: number, wg: number): string {
  return `for (var e = lid; e < ${64 * BK}u; e += ${wg}u) {
      let i = e / ${BK}u;
      let r = kt * ${BK}u + e % ${BK}u;
      let ti = t0 + min(i, L - 1u);
      ${dst}[e] = select(0.0, q[(ti * H + h) * ${K}u + r] * exp(gcAt(ti, h, r)) * p.scale, i < L);
    }`;
}

/** Value columns per workgroup of the scalar output kernel (K or V not a multiple of 4; see output.wgsl.ts). */
export function outputScalarBV(V: number): number {
  return Math.min(V, 32);
}

export function outputWgslScalar(v: ChunkVariant): string {
  const { K, V, GK } = v;
  const BK = chunkBK(K);
  const BV = outputScalarBV(V);
  const NRG = WG / BV;
  const OR = 64 / NRG;
  const H0 = 64 * BK;
  return /* wgsl */ `
${OUTPUT_HEADER(GK)}
// Phase A: q tile [64][BK] at 0, state tile [BK][BV] at H0. Phase B: A_qk [64][64] at 0, V' [64][BV] at 4096.
var<workgroup> sm: array<f32, ${4096 + 64 * BV}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'vt', 'h'], true)}
  let c = lid % ${BV}u;
  let rg = lid / ${BV}u;
  let col = vt * ${BV}u + c;
  var acc: array<f32, ${OR}> = array<f32, ${OR}>();
  let hbase = ${groupSlabBase({ K, V, BV }, 'slot')};
  for (var kt = 0u; kt < ${K / BK}u; kt++) {
    ${qgTileLoad('sm', K, BK, WG)}
    for (var e = lid; e < ${BK * BV}u; e += ${WG}u) {
      sm[${H0}u + e] = hB[hbase + (kt * ${BK}u + e / ${BV}u) * ${V}u + e % ${BV}u];
    }
    workgroupBarrier();
    for (var m = 0u; m < ${OR}u; m++) {
      let i = rg + m * ${NRG}u;
      var s = 0.0;
      for (var kk = 0u; kk < ${BK}u; kk++) { s += sm[i * ${BK}u + kk] * sm[${H0}u + kk * ${BV}u + c]; }
      acc[m] += s;
    }
    workgroupBarrier();
  }
  for (var e = lid; e < 4096u; e += ${WG}u) { sm[e] = Aqk[(slot * H + h) * 4096u + e]; }
  for (var e = lid; e < ${64 * BV}u; e += ${WG}u) {
    let j = e / ${BV}u;
    sm[4096u + e] = select(0.0, Vp[((t0 + min(j, L - 1u)) * H + h) * ${V}u + vt * ${BV}u + e % ${BV}u], j < L);
  }
  workgroupBarrier();
  for (var m = 0u; m < ${OR}u; m++) {
    let i = rg + m * ${NRG}u;
    if (i < L) {
      var s = acc[m];
      for (var j = 0u; j <= i; j++) { s += sm[i * 64u + j] * sm[4096u + j * ${BV}u + c]; }
      o[((t0 + i) * H + h) * ${V}u + col] = s;
    }
  }
}`;
}
