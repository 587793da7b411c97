/**
 * The sequential part of the split backward state pass (dstateSplit.wgsl.ts dstateSeqWgsl) with register
 * tiles, as the forward's stateTiled.wgsl.ts does for its state pass (the default where it fits;
 * kdaBackwardTuning.prevDstateSeq runs the one-column kernel). Same recurrence per chunk, from the last:
 *     dV' = dVpre + Kd G,    G <- exp(gc_last) G + R - W^T dV'
 * (dVpre = A_qk^T dO already in dVp, R = Qg^T dO in the chunk's slot of dh, both from dstatePreWgsl), same
 * prefetch of chunk j-1's Kd, W, dVpre, R and decay while chunk j computes, same sums in the same order over
 * the chunk's rows (the dV' sum over channels groups 4 channels per step, so it may round differently).
 *
 * Why tiles: the one-column kernel gives each thread one value column, so every FMA costs a workgroup-memory
 * read, most of them broadcasts; the sequential pass waits on those reads chunk after chunk. Here:
 *  - dV' phase: thread (b, cb) of the first (64 / RA) * BV / 4 threads owns rows b + (64 / RA) a (a < RA) and
 *    the 4 value columns 4 cb ..: per 4 channels it reads RA vec4 of Kd (row-major tile, rows padded by one
 *    vec4 against bank conflicts) and 4 vec4 of G, for 16 RA FMAs.
 *  - G phase: thread (b, cb) of the first K / 4 * BV / 4 threads owns G rows 4 b .. 4 b + 3, columns 4 cb ..:
 *    G lives in its registers across chunks (workgroup memory holds a copy for the dV' phase), and so do its
 *    R operands; per chunk row i it reads one vec4 of W and one of dV' for 16 FMAs. The thread stores its G
 *    over R in dh (it read R there a chunk earlier).
 * Threads past those counts only load and store tiles. Needs K, BV multiples of 4.
 * H200, H = 16, d = 128, T = 32768, BV = 16 (bench/results/2026-12-01-h200-kbwd-s5-*): 2.69 ms against 2.92 for
 * the one-column kernel. Measured and left out: the G phase's row sum split in two halves over twice the
 * threads (the idle ones; one more barrier per chunk): 3.25 ms; RA = 1 and 4 (with that split): 3.42, 4.00.
 */
import { bindings, computeMain, GROUP_PARAMS, gcAtFn, SEQUENCE_CHUNKS, workgroupIds } from './wgslParts.js';

export interface DstateSeqTiledVariant {
  K: number;
  V: number;
  GK: number;
  BV: number;
  /** dV' rows per thread: 2 (the default, as the forward's state pass), 1 or 4. */
  RA: 1 | 2 | 4;
}

const WG = 256;

function geometry(v: DstateSeqTiledVariant) {
  const K4 = v.K / 4;
  const BV4 = v.BV / 4;
  const wg = Math.min(WG, 64 * K4);
  return { K4, BV4, wg, R1: 64 / v.RA, P1N: (64 / v.RA) * BV4, P2N: K4 * BV4, PF: (64 * K4) / wg };
}

export const dstateSeqTiledKey = (v: DstateSeqTiledVariant) =>
  `kda_bwd_dstate_seq_tiled_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}_ra${v.RA}`;

/** Workgroup bytes: G [K][BV], the padded [64][K + 4] Kd / W tile, dV' [64][BV]. */
export const dstateSeqTiledBytes = (v: DstateSeqTiledVariant) => 4 * (v.K * v.BV + 64 * (v.K + 4) + 64 * v.BV);

export function dstateSeqTiledFits(v: DstateSeqTiledVariant, smemBytes: number): boolean {
  if (v.K % 4 !== 0 || v.BV % 4 !== 0 || v.V % v.BV !== 0) return false;
  const g = geometry(v);
  return Number.isInteger(g.PF) && g.P1N <= g.wg && g.P2N <= g.wg && dstateSeqTiledBytes(v) <= smemBytes;
}

export function dstateSeqTiledWgsl(v: DstateSeqTiledVariant): string {
  const { K, V, GK, RA } = v;
  if (!dstateSeqTiledFits(v, Number.POSITIVE_INFINITY)) {
    throw new Error(`kda dstate seq (tiled): K=${K}, V=${V}, BV=${v.BV}, RA=${RA} do not tile`);
  }
  const { K4, BV4, wg, R1, P1N, P2N, PF } = geometry(v);
  const V4 = V / 4;
  const TS = K4 + 1; // tile row stride in vec4
  const fetch = (dst: string, buf: string, ts: string, Ln: string) => `
      for (var m = 0u; m < ${PF}u; m++) {
        let e = lid + m * ${wg}u;
        let i = e / ${K4}u;
        ${dst}[m] = select(vec4<f32>(0.0), ${buf}[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + e % ${K4}u], i < ${Ln});
      }`;
  // dVpre rows of the dV' phase, R rows and the decay exponent of the G phase, for chunk slot `sl`.
  const rowsFetch = (ts: string, Ln: string, sl: string) => `if (is1) {
        for (var a = 0u; a < ${RA}u; a++) {
          let i = b + a * ${R1}u;
          upre[a] = select(vec4<f32>(0.0), dVp[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${V4}u + col4], i < ${Ln});
        }
      }
      if (is2) {
        let rb = ((${sl}) * p.HB + hb) * ${K * V4}u + col4;
        for (var a = 0u; a < 4u; a++) {
          rpre[a] = dh[rb + (4u * b + a) * ${V4}u];
          gpre[a] = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + a);
        }
      }`;
  const wsum = (bb: string, i0: string, i1: string) => `var sacc: array<vec4<f32>, 4>;
      for (var a = 0u; a < 4u; a++) { sacc[a] = vec4<f32>(0.0); }
      for (var i = ${i0}; i < ${i1}; i++) {
        let w = tile[i * ${TS}u + ${bb}];
        let di = Vsh[i * ${BV4}u + cb];
        sacc[0] += w.x * di;
        sacc[1] += w.y * di;
        sacc[2] += w.z * di;
        sacc[3] += w.w * di;
      }`;
  const phase2 = `    if (is2) {
      ${wsum('b', '0u', '64u')}
      for (var a = 0u; a < 4u; a++) {
        greg[a] = decay[a] * greg[a] + radd[a] - sacc[a];
        Gsh[(4u * b + a) * ${BV4}u + cb] = greg[a];
      }
    }`;
  const storeTile = (src: string) =>
    `for (var m = 0u; m < ${PF}u; m++) { let e = lid + m * ${wg}u; tile[(e / ${K4}u) * ${TS}u + e % ${K4}u] = ${src}[m]; }`;
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'Kd: vec4<f32>', 'W: vec4<f32>', 'gcB'], ['G: vec4<f32>', 'dh: vec4<f32>', 'dVp: vec4<f32>'])}
${gcAtFn(GK)}
var<workgroup> Gsh: array<vec4<f32>, ${K * BV4}>;
var<workgroup> tile: array<vec4<f32>, ${64 * TS}>;
var<workgroup> Vsh: array<vec4<f32>, ${64 * BV4}>;

${computeMain(wg)}
  ${workgroupIds(['vt', 'h', 'n'], true)}
  // dV' phase: thread (b, cb), rows b + ${R1} a; G phase: thread (b, cb), G rows 4 b .. 4 b + 3.
  let is1 = lid < ${P1N}u;
  let is2 = lid < ${P2N}u;
  let cb = lid % ${BV4}u;
  let b = lid / ${BV4}u;
  let col4 = vt * ${BV4}u + cb;
  let sbase = (n * H + h) * ${K * V4}u + col4;
  var greg: array<vec4<f32>, 4>;
  if (is2) {
    for (var a = 0u; a < 4u; a++) {
      greg[a] = G[sbase + (4u * b + a) * ${V4}u];
      Gsh[(4u * b + a) * ${BV4}u + cb] = greg[a];
    }
  }
  ${SEQUENCE_CHUNKS}
  let nch = (t1 - t0 + 63u) / 64u;
  var kpre: array<vec4<f32>, ${PF}>;
  var wpre: array<vec4<f32>, ${PF}>;
  var upre: array<vec4<f32>, ${RA}>;
  var rpre: array<vec4<f32>, 4>;
  var gpre: array<f32, 4>;
  if (nch > 0u) {
    let ts = t0 + (nch - 1u) * 64u;
    let L0 = t1 - ts;
    ${fetch('kpre', 'Kd', 'ts', 'L0')}
    ${fetch('wpre', 'W', 'ts', 'L0')}
    ${rowsFetch('ts', 'L0', 'base + nch - 1u')}
  }
  for (var jj = 0u; jj < nch; jj++) {
    let j = nch - 1u - jj;
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    let more = j > 0u;
    let tn = ts - select(0u, 64u, more);
    workgroupBarrier();
    ${storeTile('kpre')}
    var acc: array<vec4<f32>, ${RA}>;
    for (var a = 0u; a < ${RA}u; a++) { acc[a] = upre[a]; }
    var decay: array<f32, 4>;
    var radd: array<vec4<f32>, 4>;
    for (var a = 0u; a < 4u; a++) {
      decay[a] = exp(gpre[a]);
      radd[a] = rpre[a];
    }
    // G is this chunk's outgoing-state gradient: stored over R (read a chunk ago by this thread).
    if (is2) {
      let hbase = (slot * p.HB + hb) * ${K * V4}u + col4;
      for (var a = 0u; a < 4u; a++) { dh[hbase + (4u * b + a) * ${V4}u] = greg[a]; }
    }
    // The previous chunk (a whole one): Kd, dVpre, R and decay while this one computes.
    if (more) {
      ${fetch('kpre', 'Kd', 'tn', '64u')}
      ${rowsFetch('tn', '64u', 'slot - 1u')}
    }
    workgroupBarrier();
    // dV' = dVpre + Kd G (Kd rows past the chunk's end are 0, and so is dVpre there)
    if (is1) {
      for (var k4 = 0u; k4 < ${K4}u; k4++) {
        let s0 = Gsh[(4u * k4) * ${BV4}u + cb];
        let s1 = Gsh[(4u * k4 + 1u) * ${BV4}u + cb];
        let s2 = Gsh[(4u * k4 + 2u) * ${BV4}u + cb];
        let s3 = Gsh[(4u * k4 + 3u) * ${BV4}u + cb];
        for (var a = 0u; a < ${RA}u; a++) {
          let kd = tile[(b + a * ${R1}u) * ${TS}u + k4];
          acc[a] += kd.x * s0 + kd.y * s1 + kd.z * s2 + kd.w * s3;
        }
      }
      for (var a = 0u; a < ${RA}u; a++) {
        let i = b + a * ${R1}u;
        Vsh[i * ${BV4}u + cb] = acc[a];
        if (i < L) { dVp[((ts + i) * H + h) * ${V4}u + col4] = acc[a]; }
      }
    }
    workgroupBarrier();
    ${storeTile('wpre')}
    if (more) {
      ${fetch('wpre', 'W', 'tn', '64u')}
    }
    workgroupBarrier();
    // G = exp(gc_last) G + R - W^T dV' (G in registers; W rows past the end are 0)
${phase2}
  }
  if (is2) {
    for (var a = 0u; a < 4u; a++) { G[sbase + (4u * b + a) * ${V4}u] = greg[a]; }
  }
}`;
}
