/**
 * Pass 2 of the chunked KDA forward (the sequential state pass), stateTiled.wgsl.ts's threads, tiles and sums (in
 * the same order: equal results) with the W and Kd tiles staged as half tiles into two workgroup buffers, each
 * half staged while the products on the other one run.
 *
 * Why: stateTiled has one tile buffer, holding W then Kd, so a step is four phases one after the other: stage W |
 * V' | stage Kd (with Kd's exps) | Kd^T V', the stagings on the sequential path and done by all 256 threads while
 * the product phases use the first 128. On the H200 (H=16, d=128, T=32768) leaving the stagings out (StateProbe
 * nostage) took the pass from 2.73 to 1.91 ms, leaving out the barriers (nobarrier: the idle threads then run
 * ahead into the next staging) to 2.32. Here a step is four phases, each half of a product phase on the product
 * threads and the staging of the next half tile by all threads, the two buffers (X, Y) alternating:
 *   P1: V' over channels 0 .. K/2 from X (W_a)        | stage W_b into Y; next chunk's W, U, gc_last loads
 *   P2: V' over channels K/2 .. K from Y (W_b)        | stage Kd rows 0 .. 31 into X
 *   P3: Kd^T V' over rows 0 .. 31 from X              | stage Kd rows 32 .. 63 into Y; next chunk's Kd loads
 *   P4: Kd^T V' over rows 32 .. 63 from Y, S update   | stage the next chunk's W_a into X
 * with a barrier after each (four a chunk, as stateTiled). The V' sum runs over the channels in stateTiled's order
 * and the state sum over the rows in its order (acc and sacc carried across the barrier), so V', S and o equal
 * stateTiled's (with `fma`, stateTiled's with `fma`). Loads stay a chunk ahead (W_a of chunk j + 1 is loaded in P1 of chunk j, staged in its P4).
 *
 * Workgroup memory: the buffers hold a W half [64][K/8 + 1] vec4 (rows padded by one vec4 as stateTiled's tile, so
 * the 8 rows a subgroup reads fall on distinct banks) or a Kd half [32][K/4 + 1]; with S [K][BV] and V' [64][BV]
 * 46 KiB at K=128, BV=16 (stateTiled: 45). Flat vec4 arrays, so it joins the shared pipeline (statePipeline.ts).
 *
 * Not the default: slower. H200 (H=16, d=128, T=32768, shared pipeline, plain V' sum, one sitting,
 * bench/results/2026-12-02-h200-kstate3-s1-summary.txt): 3.215 / 3.209 ms against stateTiled's 2.751 / 2.755
 * (forward 6.160 / 6.168 against 5.704 / 5.704); --check (T=2048) against the default: 0 (o and final state). Not
 * profiled further (no device time left in that session); what differs from stateTiled besides where the stagings
 * sit: each product phase is two loops over half the channels or rows with a barrier between, the product threads
 * stage their share of each half tile (and take their share of Kd's exps) at the start of every phase, and the
 * stagings' loops carry a bounds test (f < HN) the driver cannot drop.
 */
import {
  type StateTiledVariant,
  tiledGeometry,
  tiledPrologue,
  tiledRegsStore,
  tiledRowsFetch,
} from './stateTiled.wgsl.js';
import {
  bindings,
  computeMain,
  forwardChunkWalk,
  GROUP_PARAMS,
  gcAtFn,
  SEQUENCE_CHUNKS,
  workgroupIds,
} from './wgslParts.js';

export type StateOverlapVariant = Omit<StateTiledVariant, 'probe'>;

export const stateOverlapKey = (v: StateOverlapVariant) =>
  `kda_chunk_state_overlap_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}_ra${v.RA}_wg${tiledGeometry(v).wg}${v.kdFromK ? '_kdk' : ''}${v.fma ? '_fma' : ''}`;

/** stateTiled's threads plus the half tiles: HN vec4 a half, PH per thread, buffer length BUF. */
function overlapGeometry(v: StateOverlapVariant) {
  const g = tiledGeometry(v);
  const KH4 = g.K4 / 2;
  const WS = KH4 + 1; // W half row stride (padded)
  const HN = 32 * g.K4; // vec4 in a half tile (64 rows x K/8 or 32 rows x K/4)
  return { ...g, KH4, WS, HN, PH: Math.ceil(HN / g.wg), BUF: Math.max(64 * WS, 32 * g.TS) };
}

export const stateOverlapBytes = (v: StateOverlapVariant) => {
  const g = overlapGeometry(v);
  return 4 * (v.K * v.BV + 8 * g.BUF + 64 * v.BV);
};

/** K a multiple of 8 (channel halves of vec4), BV of 4, K / 4 dividing the threads (one gc_last vec4 a thread). */
export function stateOverlapFits(v: StateOverlapVariant, smemBytes: number): boolean {
  if (v.K % 8 !== 0 || v.BV % 4 !== 0 || v.V % v.BV !== 0) return false;
  const g = overlapGeometry(v);
  return g.wg % g.K4 === 0 && g.P1N <= g.wg && g.P2N <= g.wg && stateOverlapBytes(v) <= smemBytes;
}

export function stateOverlapWgsl(v: StateOverlapVariant): string {
  const { K, GK, RA } = v;
  if (!stateOverlapFits(v, Number.POSITIVE_INFINITY))
    throw new Error(`kda state pass (overlap): K=${K}, V=${v.V}, BV=${v.BV} do not tile`);
  if (v.kdFromK && GK !== K) throw new Error(`kda state pass (overlap): Kd from k needs GK = K, got GK=${GK}`);
  const g = overlapGeometry(v);
  const { K4, BV4, V4, TS, R1, wg, KH4, WS, HN, PH, BUF } = g;
  // Half tile element f = lid + m wg (m < PH; f < HN): W half `half` row f / KH4, channel vec4 half KH4 + f % KH4;
  // Kd half `half` row 32 half + f / K4, channel vec4 f % K4 (= lid % K4: wg is a multiple of K4).
  const each = (body: string) => `for (var m = 0u; m < ${PH}u; m++) {
        let f = lid + m * ${wg}u;
        if (f < ${HN}u) { ${body} }
      }`;
  const wFetch = (dst: string, half: number, ts: string, Ln: string) =>
    each(`let i = f / ${KH4}u;
          ${dst}[m] = select(vec4<f32>(0.0), W[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + ${half * KH4}u + f % ${KH4}u], i < ${Ln});`);
  const wStage = (src: string, buf: string) => each(`${buf}[(f / ${KH4}u) * ${WS}u + f % ${KH4}u] = ${src}[m];`);
  const kdFetch = (dst: string, gdst: string, half: number, ts: string, Ln: string) =>
    each(`let i = ${32 * half}u + f / ${K4}u;
          let r = ((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + f % ${K4}u;
          ${
            v.kdFromK
              ? `${dst}[m] = select(vec4<f32>(0.0), kk[r], i < ${Ln});
          ${gdst}[m] = gc4[r];`
              : `${dst}[m] = select(vec4<f32>(0.0), Kd[r], i < ${Ln});`
          }`);
  const kdFetchBoth = (
    ts: string,
    Ln: string,
  ) => `${v.kdFromK ? `klast = gc4[((${ts} + ${Ln} - 1u) * H + h) * ${K4}u + lid % ${K4}u];` : ''}
      ${kdFetch('ka', 'kga', 0, ts, Ln)}
      ${kdFetch('kb', 'kgb', 1, ts, Ln)}`;
  // Kd = k exp(gc_last - gc) as stateTiled's kdStore (the gc pass's expression) where kdFromK.
  const kdStage = (src: string, gsrc: string, buf: string) =>
    each(`${buf}[(f / ${K4}u) * ${TS}u + f % ${K4}u] = ${src}[m]${v.kdFromK ? ` * exp(klast - ${gsrc}[m])` : ''};`);
  const gFetch = (ts: string, Ln: string) =>
    `if (is2) { for (var a = 0u; a < 4u; a++) { gpre[a] = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + a); } }`;
  // V' over channel vec4 k0 .. k1 - 1 of W half in `buf` (stateTiled's tiledRowsPhase sum, same order).
  const vPart = (buf: string, k0: number) => `for (var k4 = ${k0}u; k4 < ${k0 + KH4}u; k4++) {
        let s0 = Ssh[(4u * k4) * ${BV4}u + cb];
        let s1 = Ssh[(4u * k4 + 1u) * ${BV4}u + cb];
        let s2 = Ssh[(4u * k4 + 2u) * ${BV4}u + cb];
        let s3 = Ssh[(4u * k4 + 3u) * ${BV4}u + cb];
        for (var a = 0u; a < ${RA}u; a++) {
          let w = ${buf}[(b + a * ${R1}u) * ${WS}u + k4 - ${k0}u];
          ${
            v.fma
              ? 'acc[a] = fma(vec4<f32>(-w.x), s0, acc[a]); acc[a] = fma(vec4<f32>(-w.y), s1, acc[a]); acc[a] = fma(vec4<f32>(-w.z), s2, acc[a]); acc[a] = fma(vec4<f32>(-w.w), s3, acc[a]);'
              : 'acc[a] -= w.x * s0 + w.y * s1 + w.z * s2 + w.w * s3;'
          }
        }
      }`;
  // Kd^T V' over chunk rows i0 .. i0 + 31 of Kd half in `buf` (stateTiled's tiledColumnSum, same order).
  const sPart = (buf: string, i0: number) => `for (var i = ${i0}u; i < ${i0 + 32}u; i++) {
        let kd = ${buf}[(i - ${i0}u) * ${TS}u + b];
        let vi = Vsh[i * ${BV4}u + cb];
        sacc[0] += kd.x * vi;
        sacc[1] += kd.y * vi;
        sacc[2] += kd.z * vi;
        sacc[3] += kd.w * vi;
      }`;
  const read = v.kdFromK
    ? ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'kk: vec4<f32>', 'gcB', 'gc4: vec4<f32>']
    : ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'Kd: vec4<f32>', 'gcB'];
  return /* wgsl */ `
${bindings(GROUP_PARAMS, read, ['state: vec4<f32>', 'hB: vec4<f32>', 'Vp: vec4<f32>'])}
${gcAtFn(GK)}
var<workgroup> Ssh: array<vec4<f32>, ${K * BV4}>;
var<workgroup> bufX: array<vec4<f32>, ${BUF}>;
var<workgroup> bufY: array<vec4<f32>, ${BUF}>;
var<workgroup> Vsh: array<vec4<f32>, ${64 * BV4}>;

${computeMain(wg)}
  ${workgroupIds(['vt', 'h', 'n'], true)}
  // V' phase: thread (b, cb), rows b + ${R1} a; state phase: thread (b, cb), state rows 4 b .. 4 b + 3.
  ${tiledPrologue(g, K, 'state', 'sreg', 'Ssh')}
  ${SEQUENCE_CHUNKS}
  var wa: array<vec4<f32>, ${PH}>;
  var wb: array<vec4<f32>, ${PH}>;
  var ka: array<vec4<f32>, ${PH}>;
  var kb: array<vec4<f32>, ${PH}>;${
    v.kdFromK
      ? `
  var kga: array<vec4<f32>, ${PH}>;
  var kgb: array<vec4<f32>, ${PH}>;
  var klast: vec4<f32>;`
      : ''
  }
  var upre: array<vec4<f32>, ${RA}>;
  var gpre: array<f32, 4>;
  var acc: array<vec4<f32>, ${RA}>;
  var sacc: array<vec4<f32>, 4>;
  ${forwardChunkWalk([
    wFetch('wa', 0, 't0', 'L0'),
    wFetch('wb', 1, 't0', 'L0'),
    kdFetchBoth('t0', 'L0'),
    tiledRowsFetch(g, 'U', 't0', 'L0'),
    gFetch('t0', 'L0'),
    wStage('wa', 'bufX'),
  ])}
    workgroupBarrier();
    // P1: stage W_b; V' over the first half of the channels from W_a (X)
    ${wStage('wb', 'bufY')}
    for (var a = 0u; a < ${RA}u; a++) { acc[a] = upre[a]; }
    var decay: array<f32, 4>;
    for (var a = 0u; a < 4u; a++) { decay[a] = exp(gpre[a]); }
    if (Ln > 0u) {
      ${wFetch('wa', 0, 'tn', 'Ln')}
      ${wFetch('wb', 1, 'tn', 'Ln')}
      ${tiledRowsFetch(g, 'U', 'tn', 'Ln')}
      ${gFetch('tn', 'Ln')}
    }
    if (is2) {
      let hbase = (slot * p.HB + hb) * ${K * V4}u + col4;
      ${tiledRegsStore(g, 'hB', 'hbase', 'sreg')}
    }
    if (is1) {
      ${vPart('bufX', 0)}
    }
    workgroupBarrier();
    // P2: stage Kd rows 0 .. 31 (X); V' over the second half from W_b (Y), then V' out
    ${kdStage('ka', 'kga', 'bufX')}
    if (is1) {
      ${vPart('bufY', KH4)}
      for (var a = 0u; a < ${RA}u; a++) {
        let i = b + a * ${R1}u;
        Vsh[i * ${BV4}u + cb] = acc[a];
        if (i < L) { Vp[((ts + i) * H + h) * ${V4}u + col4] = acc[a]; }
      }
    }
    workgroupBarrier();
    // P3: stage Kd rows 32 .. 63 (Y); Kd^T V' over rows 0 .. 31 (X)
    ${kdStage('kb', 'kgb', 'bufY')}
    if (Ln > 0u) {
      ${kdFetchBoth('tn', 'Ln')}
    }
    if (is2) {
      for (var a = 0u; a < 4u; a++) { sacc[a] = vec4<f32>(0.0); }
      ${sPart('bufX', 0)}
    }
    workgroupBarrier();
    // P4: stage the next chunk's W_a (X; stale past the sequence's end, never read); rows 32 .. 63 (Y), S update
    ${wStage('wa', 'bufX')}
    if (is2) {
      ${sPart('bufY', 32)}
      for (var a = 0u; a < 4u; a++) {
        sreg[a] = decay[a] * sreg[a] + sacc[a];
        Ssh[(4u * b + a) * ${BV4}u + cb] = sreg[a];
      }
    }
  }
  if (is2) {
    ${tiledRegsStore(g, 'state', 'sbase', 'sreg')}
  }
}`;
}
