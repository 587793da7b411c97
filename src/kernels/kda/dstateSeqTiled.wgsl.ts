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
import { reverseChunkWalk, SEQUENCE_CHUNKS } from './wgslParts.js';
import {
  stateTiledFits,
  tiledColumnSum,
  tiledGeometry,
  tiledPrologue,
  tiledRegsStore,
  tiledRowsFetch,
  tiledRowsPhase,
  tiledHeader,
  tileFetch,
  tileStore,
} from './stateTiled.wgsl.js';

export interface DstateSeqTiledVariant {
  K: number;
  V: number;
  GK: number;
  BV: number;
  /** dV' rows per thread: 2 (the default, as the forward's state pass), 1 or 4. */
  RA: 1 | 2 | 4;
}

export const dstateSeqTiledKey = (v: DstateSeqTiledVariant) =>
  `kda_bwd_dstate_seq_tiled_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}_ra${v.RA}`;

/** The forward's tiles (stateTiled.wgsl.ts: 256 threads, the same workgroup arrays with G as the slab). */
export const dstateSeqTiledFits = (v: DstateSeqTiledVariant, smemBytes: number): boolean =>
  stateTiledFits(v, smemBytes);

export function dstateSeqTiledWgsl(v: DstateSeqTiledVariant): string {
  const { K, V, GK, RA } = v;
  if (!dstateSeqTiledFits(v, Number.POSITIVE_INFINITY)) {
    throw new Error(`kda dstate seq (tiled): K=${K}, V=${V}, BV=${v.BV}, RA=${RA} do not tile`);
  }
  const g = tiledGeometry(v);
  const { BV4, R1, PF, V4 } = g;
  const fetch = (dst: string, buf: string, ts: string, Ln: string) => tileFetch(g, dst, buf, ts, Ln);
  // dVpre rows of the dV' phase, R rows and the decay exponent of the G phase, for chunk slot `sl`.
  const rowsFetch = (ts: string, Ln: string, sl: string) => `${tiledRowsFetch(g, 'dVp', ts, Ln)}
      if (is2) {
        let rb = ((${sl}) * p.HB + hb) * ${K * V4}u + col4;
        for (var a = 0u; a < 4u; a++) {
          rpre[a] = dh[rb + (4u * b + a) * ${V4}u];
          gpre[a] = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + a);
        }
      }`;
  const phase2 = `    if (is2) {
      ${tiledColumnSum(g, 'w', 'di')}
      for (var a = 0u; a < 4u; a++) {
        greg[a] = decay[a] * greg[a] + radd[a] - sacc[a];
        Gsh[(4u * b + a) * ${BV4}u + cb] = greg[a];
      }
    }`;
  return /* wgsl */ `
${tiledHeader(g, GK, ['cu: i32', 'Kd: vec4<f32>', 'W: vec4<f32>', 'gcB'], ['G: vec4<f32>', 'dh: vec4<f32>', 'dVp: vec4<f32>'], 'Gsh')}
  // dV' phase: thread (b, cb), rows b + ${R1} a; G phase: thread (b, cb), G rows 4 b .. 4 b + 3.
  ${tiledPrologue(g, K, 'G', 'greg', 'Gsh')}
  ${SEQUENCE_CHUNKS}
  let nch = (t1 - t0 + 63u) / 64u;
  var kpre: array<vec4<f32>, ${PF}>;
  var wpre: array<vec4<f32>, ${PF}>;
  var upre: array<vec4<f32>, ${RA}>;
  var rpre: array<vec4<f32>, 4>;
  var gpre: array<f32, 4>;
  ${reverseChunkWalk([fetch('kpre', 'Kd', 'ts', 'L0'), fetch('wpre', 'W', 'ts', 'L0'), rowsFetch('ts', 'L0', 'base + nch - 1u')])}
    workgroupBarrier();
    ${tileStore(g, 'kpre')}
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
      ${tiledRegsStore(g, 'dh', 'hbase', 'greg')}
    }
    // The previous chunk (a whole one): Kd, dVpre, R and decay while this one computes.
    if (more) {
      ${fetch('kpre', 'Kd', 'tn', '64u')}
      ${rowsFetch('tn', '64u', 'slot - 1u')}
    }
    workgroupBarrier();
    // dV' = dVpre + Kd G (Kd rows past the chunk's end are 0, and so is dVpre there)
    ${tiledRowsPhase(g, 'Gsh', 'kd', '+=', 'dVp')}
    workgroupBarrier();
    ${tileStore(g, 'wpre')}
    if (more) {
      ${fetch('wpre', 'W', 'tn', '64u')}
    }
    workgroupBarrier();
    // G = exp(gc_last) G + R - W^T dV' (G in registers; W rows past the end are 0)
${phase2}
  }
  if (is2) {
    ${tiledRegsStore(g, 'G', 'sbase', 'greg')}
  }
}`;
}
