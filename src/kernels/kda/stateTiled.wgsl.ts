/**
 * Pass 2 of the chunked KDA forward (the sequential state pass, grid: value tiles x heads x sequences) with
 * register tiles (RA x 4 in the V' phase, 4 x 4 in the state phase). Same arithmetic as chunk.wgsl.ts stateWgslPrefetch (per chunk: store S, V' = U - W S,
 * S = exp(gc_last) S + Kd^T V'), same prefetch of chunk j+1's W, Kd, U and gc_last while chunk j computes.
 *
 * Why tiles: that kernel gives each thread one value column and 4 V' rows (8 state rows), so every FMA
 * costs more than one workgroup-memory read, and most of those reads are broadcasts (the 16 lanes of a
 * column group read the same W row), which the hardware serves at the cost of distinct ones. On the H200
 * its 6.6 us per chunk is close to its count of workgroup-memory transactions (~10k per chunk per
 * workgroup), not to its FMAs (~2k cycles). Here:
 *  - V' phase: thread (b, cb) of the first R1 * BV/4 threads owns rows b + R1 a (a < RA, R1 = 64 / RA) and
 *    the 4 columns 4 cb ..: per 4 channels k it reads RA vec4 of W (row-major tile, rows padded by one vec4 so
 *    the 8 rows a subgroup reads fall on distinct banks) and 4 vec4 of S, for 16 RA FMAs. RA = 2 is the
 *    default: on the H200 (H=16, d=128, BV=16, T=32768) 2.82 ms against 3.79 with RA = 4, whose 64 threads
 *    (2 subgroups) leave two of the SM's four schedulers without FMAs in this phase, and 2.99 with RA = 1;
 *    512 threads: 2.95; the one-column kernel took 3.36 (BV = 8, 256 workgroups: 4.98 with RA = 2, 6.68
 *    with RA = 4). bench/results/2026-12-01-h200-kfwd-s4-run{2,3}.txt.
 *  - state phase: thread (rb, cb) of the first K/4 * BV/4 threads owns state rows 4 rb .. 4 rb + 3, columns
 *    4 cb ..: S lives in its registers across chunks (workgroup memory gets a copy for the V' phase); per
 *    chunk row i it reads one vec4 of Kd and one of V' for 16 FMAs.
 * Threads past those counts only load and store tiles. Needs K, BV multiples of 4.
 */
import { bindings, computeMain, GROUP_PARAMS, gcAtFn, SEQUENCE_CHUNKS, workgroupIds } from './wgslParts.js';

export interface StateTiledVariant {
  K: number;
  V: number;
  GK: number;
  BV: number;
  /** V' rows per thread: 4 (64 / 4 * BV / 4 threads in that phase), 2 or 1 (more threads, fewer rows each). */
  RA: 1 | 2 | 4;
  /** Threads per workgroup (default 256, at most 64 K / 4: one tile vec4 each). */
  wg?: number;
}

const WG = 256;

export const stateTiledKey = (v: StateTiledVariant) =>
  `kda_chunk_state_tiled_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}_ra${v.RA}_wg${geometry(v).wg}`;

function geometry(v: StateTiledVariant) {
  const K4 = v.K / 4;
  const BV4 = v.BV / 4;
  const wg = Math.min(v.wg ?? WG, 64 * K4);
  return { K4, BV4, wg, R1: 64 / v.RA, P1N: (64 / v.RA) * BV4, P2N: K4 * BV4, PF: (64 * K4) / wg };
}

/** Workgroup bytes: S [K][BV], the padded [64][K + 4] tile, V' [64][BV]. */
export const stateTiledBytes = (v: StateTiledVariant) => 4 * (v.K * v.BV + 64 * (v.K + 4) + 64 * v.BV);

export function stateTiledFits(v: StateTiledVariant, smemBytes: number): boolean {
  if (v.K % 4 !== 0 || v.BV % 4 !== 0 || v.V % v.BV !== 0) return false;
  const g = geometry(v);
  return Number.isInteger(g.PF) && g.P1N <= g.wg && g.P2N <= g.wg && stateTiledBytes(v) <= smemBytes;
}

export function stateTiledWgsl(v: StateTiledVariant): string {
  const { K, V, GK, RA } = v;
  const { K4, BV4, wg, R1, P1N, P2N, PF } = geometry(v);
  const V4 = V / 4;
  const TS = K4 + 1; // tile row stride in vec4
  const fetch = (dst: string, buf: string, ts: string, Ln: string) => `
      for (var m = 0u; m < ${PF}u; m++) {
        let e = lid + m * ${wg}u;
        let i = e / ${K4}u;
        ${dst}[m] = select(vec4<f32>(0.0), ${buf}[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + e % ${K4}u], i < ${Ln});
      }`;
  const uFetch = (ts: string, Ln: string) => `if (is1) {
        for (var a = 0u; a < ${RA}u; a++) {
          let i = b + a * ${R1}u;
          upre[a] = select(vec4<f32>(0.0), U[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${V4}u + col4], i < ${Ln});
        }
      }`;
  const gFetch = (ts: string, Ln: string) =>
    `if (is2) { for (var a = 0u; a < 4u; a++) { gpre[a] = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + a); } }`;
  const storeTile = (src: string) =>
    `for (var m = 0u; m < ${PF}u; m++) { let e = lid + m * ${wg}u; tile[(e / ${K4}u) * ${TS}u + e % ${K4}u] = ${src}[m]; }`;
  return /* wgsl */ `
${bindings(GROUP_PARAMS, ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'Kd: vec4<f32>', 'gcB'], ['state: vec4<f32>', 'hB: vec4<f32>', 'Vp: vec4<f32>'])}
${gcAtFn(GK)}
var<workgroup> Ssh: array<vec4<f32>, ${K * BV4}>;
var<workgroup> tile: array<vec4<f32>, ${64 * TS}>;
var<workgroup> Vsh: array<vec4<f32>, ${64 * BV4}>;

${computeMain(wg)}
  ${workgroupIds(['vt', 'h', 'n'], true)}
  // V' phase: thread (b, cb), rows b + ${R1} a; state phase: thread (b, cb), state rows 4 b .. 4 b + 3.
  let is1 = lid < ${P1N}u;
  let is2 = lid < ${P2N}u;
  let cb = lid % ${BV4}u;
  let b = lid / ${BV4}u;
  let col4 = vt * ${BV4}u + cb;
  let sbase = (n * H + h) * ${K * V4}u + col4;
  var sreg: array<vec4<f32>, 4>;
  if (is2) {
    for (var a = 0u; a < 4u; a++) {
      sreg[a] = state[sbase + (4u * b + a) * ${V4}u];
      Ssh[(4u * b + a) * ${BV4}u + cb] = sreg[a];
    }
  }
  ${SEQUENCE_CHUNKS}
  var wpre: array<vec4<f32>, ${PF}>;
  var kpre: array<vec4<f32>, ${PF}>;
  var upre: array<vec4<f32>, ${RA}>;
  var gpre: array<f32, 4>;
  if (t0 < t1) {
    let L0 = min(64u, t1 - t0);
    ${fetch('wpre', 'W', 't0', 'L0')}
    ${fetch('kpre', 'Kd', 't0', 'L0')}
    ${uFetch('t0', 'L0')}
    ${gFetch('t0', 'L0')}
  }
  for (var j = 0u; t0 + j * 64u < t1; j++) {
    let ts = t0 + j * 64u;
    let L = min(64u, t1 - ts);
    let slot = base + j;
    let tn = ts + 64u;
    let Ln = select(0u, min(64u, t1 - tn), tn < t1);
    workgroupBarrier();
    ${storeTile('wpre')}
    var acc: array<vec4<f32>, ${RA}>;
    for (var a = 0u; a < ${RA}u; a++) { acc[a] = upre[a]; }
    var decay: array<f32, 4>;
    for (var a = 0u; a < 4u; a++) { decay[a] = exp(gpre[a]); }
    if (Ln > 0u) {
      ${fetch('wpre', 'W', 'tn', 'Ln')}
      ${uFetch('tn', 'Ln')}
      ${gFetch('tn', 'Ln')}
    }
    if (is2) {
      let hbase = (slot * p.HB + hb) * ${K * V4}u + col4;
      for (var a = 0u; a < 4u; a++) { hB[hbase + (4u * b + a) * ${V4}u] = sreg[a]; }
    }
    workgroupBarrier();
    // V' = U - W S
    if (is1) {
      for (var k4 = 0u; k4 < ${K4}u; k4++) {
        let s0 = Ssh[(4u * k4) * ${BV4}u + cb];
        let s1 = Ssh[(4u * k4 + 1u) * ${BV4}u + cb];
        let s2 = Ssh[(4u * k4 + 2u) * ${BV4}u + cb];
        let s3 = Ssh[(4u * k4 + 3u) * ${BV4}u + cb];
        for (var a = 0u; a < ${RA}u; a++) {
          let w = tile[(b + a * ${R1}u) * ${TS}u + k4];
          acc[a] -= w.x * s0 + w.y * s1 + w.z * s2 + w.w * s3;
        }
      }
      for (var a = 0u; a < ${RA}u; a++) {
        let i = b + a * ${R1}u;
        Vsh[i * ${BV4}u + cb] = acc[a];
        if (i < L) { Vp[((ts + i) * H + h) * ${V4}u + col4] = acc[a]; }
      }
    }
    workgroupBarrier();
    ${storeTile('kpre')}
    if (Ln > 0u) {
      ${fetch('kpre', 'Kd', 'tn', 'Ln')}
    }
    workgroupBarrier();
    // S = exp(gc_last) S + Kd^T V' (S in registers; rows 4 b .., Kd rows past the end are 0)
    if (is2) {
      var sacc: array<vec4<f32>, 4>;
      for (var a = 0u; a < 4u; a++) { sacc[a] = vec4<f32>(0.0); }
      for (var i = 0u; i < 64u; i++) {
        let kd = tile[i * ${TS}u + b];
        let vi = Vsh[i * ${BV4}u + cb];
        sacc[0] += kd.x * vi;
        sacc[1] += kd.y * vi;
        sacc[2] += kd.z * vi;
        sacc[3] += kd.w * vi;
      }
      for (var a = 0u; a < 4u; a++) {
        sreg[a] = decay[a] * sreg[a] + sacc[a];
        Ssh[(4u * b + a) * ${BV4}u + cb] = sreg[a];
      }
    }
  }
  if (is2) {
    for (var a = 0u; a < 4u; a++) { state[sbase + (4u * b + a) * ${V4}u] = sreg[a]; }
  }
}`;
}
