/**
 * Pass 2 of the chunked KDA forward (the sequential state pass, grid: value tiles x heads x sequences), the
 * register-tiled form of stateTiled.wgsl.ts (same per-thread tiles: RA V' rows x 4 columns, a 4 x 4 block of
 * S kept in registers across chunks; same prefetch of chunk j+1's W, Kd, U and gc_last while chunk j computes)
 * with two changes:
 *
 *  - Every per-thread array is a set of named variables and the inner loops are unrolled by the generator
 *    (UK channel steps, UI rows at a time, their workgroup-memory reads issued before the FMAs that use them).
 *    Indexed private arrays whose indices the driver cannot resolve live in local memory (the backward's
 *    kernels gained 10-25% from the same change), and a rolled loop leaves one read's latency per step in a
 *    phase where one subgroup per scheduler has nothing else to issue.
 *  - `halves` = 2: both phases use all the workgroup's threads. stateTiled gives the V' phase and the state
 *    phase to the first 128 of its 256 threads (64 / RA * BV / 4 and K / 4 * BV / 4 tiles), so half of the
 *    SM's subgroups sit out both phases while the other half runs a chain of ~1k FMAs each, latency-bound.
 *    Here the second half of the threads takes the same tiles over the other half of the reduction: the V'
 *    phase splits the K channels (half 0: k < K/2, starting from U; half 1: the rest), the state phase the
 *    chunk's rows (half 0: rows < 32; half 1: the rest). Half 0 leaves its partial sums in workgroup memory
 *    (V' in Vsh, the state update in Ssh, which no thread reads in between) and half 1 adds them in; half 1
 *    owns S. The barriers per chunk stay 4: the partial exchanges take the places of the barriers the
 *    one-half kernel has between its phases anyway.
 *
 * Per chunk: [store the incoming S (hB); stage W; fetch chunk j+1] B [V' = U - W S, partial] B [half 1 adds
 * half 0's V', stores V' (Vsh, Vp); stage Kd] B [state update Kd^T V', partial] B [half 1: S = exp(gc_last) S
 * + both partials]. With `halves` = 1 it is stateTiled's kernel (same sums in the same order) in named form.
 * The sums of two halves differ from stateTiled's in rounding only. Needs K a multiple of 4 halves, BV of 4.
 *
 * Measured on the H200 (H=16, d=128, BV=16, T=32768; bench/results/2026-12-01-h200-kfwd-s5-run{1,2}): no gain,
 * so not the default (kdaForwardTuning.state = 'halves' asks for it). halves = 2: 2.77-2.78 ms fully or 8x
 * unrolled (UK 16 / 8, UI 32 / 16), 2.84 at UK 4, 2.97 at UK 2, 3.07 at UK 1, against 2.78-2.84 for stateTiled
 * in the same sittings; halves = 1: 3.17-3.35, 4.08 fully unrolled. Twice the subgroups on half the work each
 * changing nothing says the pass is not bound by one subgroup's latency chain in the two product phases; the
 * per-chunk rest (two tile stagings, four barriers, the S and V' stores) is the part to attack next.
 */
import { forwardTiledHeader, stateTiledBytes, tiledGeometry } from './stateTiled.wgsl.js';
import { forwardChunkWalk, SEQUENCE_CHUNKS } from './wgslParts.js';

export interface StateHalvesVariant {
  K: number;
  V: number;
  GK: number;
  BV: number;
  /** V' rows per thread (as stateTiled's RA). */
  RA: 1 | 2 | 4;
  /** 1: one half of the threads computes (stateTiled's split), 2: both halves, each half the reduction. */
  halves: 1 | 2;
  /** Channel steps of 4 per unrolled V' step (reads first, then 16 RA FMAs per step). */
  UK?: number;
  /** Chunk rows per unrolled state-update step. */
  UI?: number;
  /** Threads per workgroup (default 256). */
  wg?: number;
}

const R4 = [0, 1, 2, 3];
const X = 'xyzw';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** stateTiled's tiles (the same threads, per-thread tiles and workgroup arrays), plus the split into halves. */
function geometry(v: StateHalvesVariant) {
  const g = tiledGeometry(v);
  const HALF = g.wg / v.halves;
  const KH4 = g.K4 / v.halves; // channel vec4 of one half's V' reduction
  const IH = 64 / v.halves; // rows of one half's state update
  const UK = Math.min(v.UK ?? 2, KH4);
  const UI = Math.min(v.UI ?? 4, IH);
  return { ...g, HALF, KH4, IH, UK, UI };
}

export const stateHalvesKey = (v: StateHalvesVariant) => {
  const g = geometry(v);
  return `kda_chunk_state_halves_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}_ra${v.RA}_h${v.halves}_uk${g.UK}_ui${g.UI}_wg${g.wg}`;
};

export function stateHalvesFits(v: StateHalvesVariant, smemBytes: number): boolean {
  if (v.K % (4 * v.halves) !== 0 || v.BV % 4 !== 0 || v.V % v.BV !== 0) return false;
  const g = geometry(v);
  return (
    Number.isInteger(g.PF) &&
    Number.isInteger(g.HALF) &&
    g.P1N <= g.HALF &&
    g.P2N <= g.HALF &&
    g.KH4 % g.UK === 0 &&
    g.IH % g.UI === 0 &&
    stateTiledBytes(v) <= smemBytes
  );
}

export function stateHalvesWgsl(v: StateHalvesVariant): string {
  const { K, V, GK, RA, halves } = v;
  if (!stateHalvesFits(v, Infinity)) throw new Error(`kda state pass (halves): K=${K}, V=${V}, BV=${v.BV} do not tile`);
  const g = geometry(v);
  const { K4, BV4, V4, wg, TS, HALF, KH4, IH, UK, UI, R1, P1N, P2N, PF } = g;
  const RAs = range(RA);
  const PFs = range(PF);
  const lines = (xs: number[], f: (i: number) => string, sep = '\n      ') => xs.map(f).join(sep);
  const fetch = (dst: string, buf: string, ts: string, Ln: string) =>
    lines(
      PFs,
      (m) => `{
        let e = lid + ${m * wg}u;
        let i = e / ${K4}u;
        ${dst}${m} = select(vec4<f32>(0.0), ${buf}[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + e % ${K4}u], i < ${Ln});
      }`,
    );
  const storeTile = (src: string) =>
    lines(
      PFs,
      (m) => `tile[((lid + ${m * wg}u) / ${K4}u) * ${TS}u + (lid + ${m * wg}u) % ${K4}u] = ${src}${m};`,
      '\n    ',
    );
  // Who loads U (the V' sum starts from it) and who owns S (and its decay).
  const uLoader = halves === 2 ? 'is1 && half == 0u' : 'is1';
  const uFetch = (ts: string, Ln: string) => `if (${uLoader}) {
        ${lines(
          RAs,
          (a) => `{
          let i = b + ${a * R1}u;
          up${a} = select(vec4<f32>(0.0), U[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${V4}u + col4], i < ${Ln});
        }`,
        )}
      }`;
  const gFetch = (ts: string, Ln: string) =>
    `if (own) { ${lines(R4, (a) => `gp${a} = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + ${a}u);`, ' ')} }`;
  // V' phase, one unrolled step: channels 4 (k4 + u), u < UK.
  const vStep = `${lines(
    range(UK),
    (u) => `let s${u}0 = Ssh[(4u * (k4 + ${u}u)) * ${BV4}u + cb];
        let s${u}1 = Ssh[(4u * (k4 + ${u}u) + 1u) * ${BV4}u + cb];
        let s${u}2 = Ssh[(4u * (k4 + ${u}u) + 2u) * ${BV4}u + cb];
        let s${u}3 = Ssh[(4u * (k4 + ${u}u) + 3u) * ${BV4}u + cb];
        ${lines(RAs, (a) => `let w${u}${a} = tile[(b + ${a * R1}u) * ${TS}u + k4 + ${u}u];`, '\n        ')}`,
    '\n        ',
  )}
        ${lines(
          range(UK),
          (u) =>
            lines(
              RAs,
              (a) =>
                `acc${a} -= w${u}${a}.x * s${u}0 + w${u}${a}.y * s${u}1 + w${u}${a}.z * s${u}2 + w${u}${a}.w * s${u}3;`,
              '\n        ',
            ),
          '\n        ',
        )}`;
  // State phase, one unrolled step: rows i + u, u < UI.
  const sStep = `${lines(
    range(UI),
    (u) => `let kd${u} = tile[(i + ${u}u) * ${TS}u + b];
        let vi${u} = Vsh[(i + ${u}u) * ${BV4}u + cb];`,
    '\n        ',
  )}
        ${lines(range(UI), (u) => lines(R4, (a) => `q${a} += kd${u}.${X[a]} * vi${u};`, ' '), '\n        ')}`;
  const sIdx = (a: number) => `(4u * b + ${a}u) * ${BV4}u + cb`;
  const vStore = `${lines(
    RAs,
    (a) => `{
        let i = b + ${a * R1}u;
        Vsh[i * ${BV4}u + cb] = acc${a};
        if (i < L) { Vp[((ts + i) * H + h) * ${V4}u + col4] = acc${a}; }
      }`,
  )}`;
  const sUpdate = (partial: boolean) =>
    lines(
      R4,
      (a) => `sr${a} = d${a} * sr${a} + ${partial ? `(Ssh[${sIdx(a)}] + q${a})` : `q${a}`};
      Ssh[${sIdx(a)}] = sr${a};`,
    );
  return /* wgsl */ `
${forwardTiledHeader(g, GK)}
  // Thread (half, b, cb): V' rows b + ${R1} a, state rows 4 b .. 4 b + 3, columns 4 cb .. of the tile.
  let half = lid / ${HALF}u;
  let l = lid % ${HALF}u;
  let is1 = l < ${P1N}u;
  let is2 = l < ${P2N}u;
  let own = is2 && half == ${halves - 1}u;
  let cb = l % ${BV4}u;
  let b = l / ${BV4}u;
  let col4 = vt * ${BV4}u + cb;
  let sbase = (n * H + h) * ${K * V4}u + col4;
  ${lines(R4, (a) => `var sr${a} = vec4<f32>(0.0);`, '\n  ')}
  if (own) {
    ${lines(R4, (a) => `sr${a} = state[sbase + (4u * b + ${a}u) * ${V4}u];\n    Ssh[${sIdx(a)}] = sr${a};`, '\n    ')}
  }
  ${SEQUENCE_CHUNKS}
  ${lines(PFs, (m) => `var wp${m} = vec4<f32>(0.0);\n  var kp${m} = vec4<f32>(0.0);`, '\n  ')}
  ${lines(RAs, (a) => `var up${a} = vec4<f32>(0.0);`, '\n  ')}
  ${lines(R4, (a) => `var gp${a} = 0.0;`, '\n  ')}
  ${forwardChunkWalk([fetch('wp', 'W', 't0', 'L0'), fetch('kp', 'Kd', 't0', 'L0'), uFetch('t0', 'L0'), gFetch('t0', 'L0')])}
    if (own) {
      let hbase = (slot * p.HB + hb) * ${K * V4}u + col4;
      ${lines(R4, (a) => `hB[hbase + (4u * b + ${a}u) * ${V4}u] = sr${a};`)}
    }
    ${storeTile('wp')}
    ${lines(RAs, (a) => `var acc${a} = ${halves === 2 ? `select(vec4<f32>(0.0), up${a}, half == 0u)` : `up${a}`};`, '\n    ')}
    ${lines(R4, (a) => `let d${a} = exp(gp${a});`, '\n    ')}
    if (Ln > 0u) {
      ${fetch('wp', 'W', 'tn', 'Ln')}
      ${uFetch('tn', 'Ln')}
      ${gFetch('tn', 'Ln')}
    }
    workgroupBarrier();
    // V' = U - W S${halves === 2 ? ' (this half of the channels)' : ''}
    if (is1) {
      for (var k4 = ${halves === 2 ? `half * ${KH4}u` : '0u'}; k4 < ${halves === 2 ? `(half + 1u) * ${KH4}u` : `${KH4}u`}; k4 += ${UK}u) {
        ${vStep}
      }
${
  halves === 2
    ? `      if (half == 0u) {
        ${lines(RAs, (a) => `Vsh[(b + ${a * R1}u) * ${BV4}u + cb] = acc${a};`, '\n        ')}
      }
    }
    workgroupBarrier();
    if (is1 && half == 1u) {
      ${lines(RAs, (a) => `acc${a} += Vsh[(b + ${a * R1}u) * ${BV4}u + cb];`)}
      ${vStore}
    }`
    : `      ${vStore}
    }
    workgroupBarrier();`
}
    ${storeTile('kp')}
    if (Ln > 0u) {
      ${fetch('kp', 'Kd', 'tn', 'Ln')}
    }
    workgroupBarrier();
    // S = exp(gc_last) S + Kd^T V'${halves === 2 ? ' (this half of the rows; Kd rows past the end are 0)' : ' (Kd rows past the end are 0)'}
    ${lines(R4, (a) => `var q${a} = vec4<f32>(0.0);`, '\n    ')}
    if (is2) {
      for (var i = ${halves === 2 ? `half * ${IH}u` : '0u'}; i < ${halves === 2 ? `(half + 1u) * ${IH}u` : '64u'}; i += ${UI}u) {
        ${sStep}
      }
${
  halves === 2
    ? `      if (half == 0u) {
        ${lines(R4, (a) => `Ssh[${sIdx(a)}] = q${a};`, '\n        ')}
      }
    }
    workgroupBarrier();
    if (own) {
      ${sUpdate(true)}
    }`
    : `      if (own) {
        ${sUpdate(false)}
      }
    }
    workgroupBarrier();`
}
  }
  if (own) {
    ${lines(R4, (a) => `state[sbase + (4u * b + ${a}u) * ${V4}u] = sr${a};`, '\n    ')}
  }
}`;
}
