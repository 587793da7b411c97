/**
 * Pass 2 of the chunked KDA forward (the sequential state pass), stateTiled.wgsl.ts's kernel (same threads, tiles,
 * prefetch, barriers and, without `fma`, the same sums in the same order) with its two product loops unrolled by
 * the generator so that every workgroup-memory read has a constant or a loop-invariant index.
 *
 * Why: Dawn's robustness (Tint's Robustness transform) clamps every non-constant array index, `a[min(i, n - 1)]`,
 * so each read of the tiled pass's loops costs an add, a min and the shift into a byte address besides the load,
 * and those reads are half of what a product phase issues (per channel vec4 of the V' phase 6 reads against 8 vec4
 * FMAs; per row of the state phase 2 reads against 4). On the H200 a product phase runs one subgroup per SM
 * scheduler (RA = 2: 128 threads), so what it costs is close to the instructions it issues: the `halves` pass
 * (stateHalves.wgsl.ts: twice the subgroups on half the work each, the same instructions) gained nothing. Here:
 *  - `index` 'rows': the workgroup arrays are two-dimensional (tile [64][K/4 + 1], S [K][BV/4], V' [64][BV/4]) and
 *    each read is arr[constant][invariant] or arr[invariant][constant]: the clamp of the invariant index is one
 *    per thread (hoisted), that of the constant one none, and the rest is a load at a constant offset from one
 *    address. The horizontal fusion (statePipeline.ts) takes flat vec4 arrays only, so this form runs in its own
 *    pipeline (without intra's register allocation);
 *  - `index` 'flat': the arrays as stateTiled's (so it fuses), the thread-derived part of each index capped to the
 *    range its thread has (a min in the prologue, the same value there), so that a driver which tracks integer
 *    ranges can prove the per-read clamp redundant; the clamps stay where it cannot.
 * `fma`: the V' sum as fused multiply-add chains, acc = fma(-w.x, s0, acc) per channel (4 instructions per 4
 * channels and column vec4, against stateTiled's mul, 3 fma and the subtraction of the 4-channel sum): V' and so
 * everything after it differ from stateTiled's by rounding (tests: <= 1e-5 relative; the H200 check in the report).
 * Without `fma` the sums are stateTiled's, expression for expression (tests: equal to it).
 */
import {
  kdFetch,
  type StateTiledVariant,
  stateTiledFits,
  type TiledGeometry,
  tiledGeometry,
  tiledRowsFetch,
  tiledRegsStore,
  tileFetch,
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

export interface StateUnrolledVariant extends Omit<StateTiledVariant, 'probe'> {
  /** 'rows': two-dimensional workgroup arrays (own pipeline only); 'flat': stateTiled's arrays (fusable). */
  index: 'flat' | 'rows';
  /** The V' sum as fma chains (rounding differs from stateTiled's). */
  fma: boolean;
}

export const stateUnrolledKey = (v: StateUnrolledVariant) =>
  `kda_chunk_state_unrolled_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}_ra${v.RA}_wg${tiledGeometry(v).wg}_${v.index}${v.fma ? '_fma' : ''}${v.kdFromK ? '_kdk' : ''}`;

/**
 * The tiled pass's condition (same workgroup bytes: the 2-D arrays have the flat ones' sizes), and K / 4 dividing
 * the threads (the staging's row and column of a thread are then the same for all its tile vec4).
 */
export const stateUnrolledFits = (v: StateUnrolledVariant, smemBytes: number) =>
  stateTiledFits(v, smemBytes) && tiledGeometry(v).wg % tiledGeometry(v).K4 === 0;

/** WGSL index of element (row, col) of workgroup array `arr` (tile, Ssh, Vsh) in the variant's layout. */
function accessor(g: TiledGeometry, index: 'flat' | 'rows') {
  const stride = { tile: g.TS, Ssh: g.BV4, Vsh: g.BV4 };
  return (arr: keyof typeof stride, row: string, col: string) =>
    index === 'rows' ? `${arr}[${row}][${col}]` : `${arr}[(${row}) * ${stride[arr]}u + ${col}]`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const X = 'xyzw';

export function stateUnrolledWgsl(v: StateUnrolledVariant): string {
  const { K, GK, RA } = v;
  const g = tiledGeometry(v);
  if (!stateUnrolledFits(v, Number.POSITIVE_INFINITY)) {
    throw new Error(`kda state pass (unrolled): K=${K}, V=${v.V}, BV=${v.BV}, RA=${RA} do not tile`);
  }
  if (v.kdFromK && GK !== K) throw new Error(`kda state pass (unrolled): Kd from k needs GK = K, got GK=${GK}`);
  const { K4, BV4, V4, TS, R1, P1N, P2N, PF, wg } = g;
  const at = accessor(g, v.index);
  const arrays =
    v.index === 'rows'
      ? `var<workgroup> Ssh: array<array<vec4<f32>, ${BV4}>, ${K}>;
var<workgroup> tile: array<array<vec4<f32>, ${TS}>, 64>;
var<workgroup> Vsh: array<array<vec4<f32>, ${BV4}>, 64>;`
      : `var<workgroup> Ssh: array<vec4<f32>, ${K * BV4}>;
var<workgroup> tile: array<vec4<f32>, ${64 * TS}>;
var<workgroup> Vsh: array<vec4<f32>, ${64 * BV4}>;`;
  const read = v.kdFromK
    ? ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'kk: vec4<f32>', 'gcB', 'gc4: vec4<f32>']
    : ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'Kd: vec4<f32>', 'gcB'];
  const fetchKd = (ts: string, Ln: string) =>
    v.kdFromK ? kdFetch(g, 'kpre', ts, Ln) : tileFetch(g, 'kpre', 'Kd', ts, Ln);
  // Staging: element e = lid + m wg of the tile is row sr + m (wg / K4), column sc (wg a multiple of K4).
  const stage = (src: string, factor?: (m: number) => string) =>
    range(PF)
      .map((m) => `${at('tile', `sr + ${(m * wg) / K4}u`, 'sc')} = ${src}[${m}]${factor ? ` * ${factor(m)}` : ''};`)
      .join('\n    ');
  const gFetch = (ts: string, Ln: string) =>
    `if (is2) { for (var a = 0u; a < 4u; a++) { gpre[a] = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + a); } }`;
  // V' = U - W S over the K channels, rows bv + R1 a, columns 4 cb ..: per channel vec4 the 4 S rows, then W.
  const vPhase = range(K4)
    .map((k4) => {
      const s = range(4).map((c) => `let s${c} = ${at('Ssh', `${4 * k4 + c}u`, 'cb')};`);
      const w = range(RA).map((a) => `let w${a} = ${at('tile', a === 0 ? 'bv' : `bv + ${a * R1}u`, `${k4}u`)};`);
      const f = range(RA).map((a) =>
        v.fma
          ? range(4)
              .map((c) => `acc[${a}] = fma(vec4<f32>(-w${a}.${X[c]}), s${c}, acc[${a}]);`)
              .join(' ')
          : `acc[${a}] -= w${a}.x * s0 + w${a}.y * s1 + w${a}.z * s2 + w${a}.w * s3;`,
      );
      return `{\n        ${[...s, ...w, ...f].join('\n        ')}\n      }`;
    })
    .join('\n      ');
  // Kd^T V' over the chunk's 64 rows for state rows 4 bs .., columns 4 cb ..
  const sPhase = range(64)
    .map(
      (i) => `{
        let kd = ${at('tile', `${i}u`, 'bs')};
        let vi = ${at('Vsh', `${i}u`, 'cb')};
        ${range(4)
          .map((a) => `sacc[${a}] += kd.${X[a]} * vi;`)
          .join(' ')}
      }`,
    )
    .join('\n      ');
  return /* wgsl */ `
${bindings(GROUP_PARAMS, read, ['state: vec4<f32>', 'hB: vec4<f32>', 'Vp: vec4<f32>'])}
${gcAtFn(GK)}
${arrays}

${computeMain(wg)}
  ${workgroupIds(['vt', 'h', 'n'], true)}
  // V' phase: thread (b, cb), rows b + ${R1} a; state phase: thread (b, cb), state rows 4 b .. 4 b + 3.
  let is1 = lid < ${P1N}u;
  let is2 = lid < ${P2N}u;
  let cb = lid % ${BV4}u;
  let b = lid / ${BV4}u;
  // b where each phase uses it (b < ${R1} in the V' phase, b < ${K4} in the state phase): the same value there,
  // capped so that its range shows in the workgroup indices.
  let bv = min(b, ${R1 - 1}u);
  let bs = min(b, ${K4 - 1}u);
  let sr = lid / ${K4}u;
  let sc = lid % ${K4}u;
  let col4 = vt * ${BV4}u + cb;
  let sbase = (n * H + h) * ${K * V4}u + col4;
  var sreg: array<vec4<f32>, 4>;
  if (is2) {
    ${range(4)
      .map(
        (a) =>
          `sreg[${a}] = state[sbase + (4u * b + ${a}u) * ${V4}u];\n    ${at('Ssh', `4u * bs + ${a}u`, 'cb')} = sreg[${a}];`,
      )
      .join('\n    ')}
  }
  ${SEQUENCE_CHUNKS}
  var wpre: array<vec4<f32>, ${PF}>;
  var kpre: array<vec4<f32>, ${PF}>;
  var upre: array<vec4<f32>, ${RA}>;
  var gpre: array<f32, 4>;${
    v.kdFromK
      ? `
  var kgc: array<vec4<f32>, ${PF}>;
  var klast: vec4<f32>;`
      : ''
  }
  ${forwardChunkWalk([tileFetch(g, 'wpre', 'W', 't0', 'L0'), fetchKd('t0', 'L0'), tiledRowsFetch(g, 'U', 't0', 'L0'), gFetch('t0', 'L0')])}
    workgroupBarrier();
    ${stage('wpre')}
    var acc: array<vec4<f32>, ${RA}>;
    ${range(RA)
      .map((a) => `acc[${a}] = upre[${a}];`)
      .join(' ')}
    var decay: array<f32, 4>;
    for (var a = 0u; a < 4u; a++) { decay[a] = exp(gpre[a]); }
    if (Ln > 0u) {
      ${tileFetch(g, 'wpre', 'W', 'tn', 'Ln')}
      ${tiledRowsFetch(g, 'U', 'tn', 'Ln')}
      ${gFetch('tn', 'Ln')}
    }
    if (is2) {
      let hbase = (slot * p.HB + hb) * ${K * V4}u + col4;
      ${tiledRegsStore(g, 'hB', 'hbase', 'sreg')}
    }
    workgroupBarrier();
    // V' = U - W S
    if (is1) {
      ${vPhase}
      ${range(RA)
        .map(
          (a) => `{
        let i = bv + ${a * R1}u;
        ${at('Vsh', 'i', 'cb')} = acc[${a}];
        if (i < L) { Vp[((ts + i) * H + h) * ${V4}u + col4] = acc[${a}]; }
      }`,
        )
        .join('\n      ')}
    }
    workgroupBarrier();
    ${v.kdFromK ? stage('kpre', (m) => `exp(klast - kgc[${m}])`) : stage('kpre')}
    if (Ln > 0u) {
      ${fetchKd('tn', 'Ln')}
    }
    workgroupBarrier();
    // S = exp(gc_last) S + Kd^T V' (S in registers; rows 4 b .., Kd rows past the end are 0)
    if (is2) {
      var sacc: array<vec4<f32>, 4>;
      for (var a = 0u; a < 4u; a++) { sacc[a] = vec4<f32>(0.0); }
      ${sPhase}
      ${range(4)
        .map(
          (a) =>
            `sreg[${a}] = decay[${a}] * sreg[${a}] + sacc[${a}];\n      ${at('Ssh', `4u * bs + ${a}u`, 'cb')} = sreg[${a}];`,
        )
        .join('\n      ')}
    }
  }
  if (is2) {
    ${tiledRegsStore(g, 'state', 'sbase', 'sreg')}
  }
}`;
}
