/**
 * Pass 2 of the chunked KDA forward (sequential state pass) with W in registers and two workgroup barriers a
 * chunk instead of stateTiled.wgsl.ts's four. Same recurrence (per chunk: store S, V' = U - W S,
 * S = exp(gc_last) S + Kd^T V'), same state phase (tiledColumnSum: thread (b, cb), S rows 4 b .., columns 4 cb ..,
 * S in registers), same Kd staging (the padded tile, Kd from k and gc where kdFromK), same one-chunk-ahead loads.
 *
 * Not the default: no gain. H200 (H=16, d=128, T=32768, one sitting, bench/results/2026-12-01-h200-kstate-summary.txt,
 * -regw-own.json): in the shared pipeline with intra 2.948 ms against the tiled pass's 2.755 / 2.758 (forward 6.320
 * against 6.125 / 6.131); each in its own pipeline 2.967 against 2.990. So two barriers and the W staging fewer
 * buy back only what the 4-lane split costs (4 S loads per 4 vec4 FMAs where the tiled V' phase has 6 per 8, and
 * the shuffles), and the kernel does not gain from intra's register allocation as the tiled one does
 * (statePipeline.ts): presumably its own allocation (W, Kd, k and gc prefetch registers) is already that large.
 * --check: o 2.7e-7, final state 2.1e-7 relative to the tiled default.
 *
 * Why it was tried (H200, H=16, d=128, T=32768; the tiled pass's probes, StateProbe, bench/results/
 * 2026-12-01-h200-kstate-probe-r2.json, state pass 2.73 ms): without the W/Kd staging 1.91, without their loads 2.20, without barriers 2.32, without
 * the V' products 1.97, without the state products 2.20, without the S store 2.70; 128 rows a step (the
 * chunk-pair decomposition in 48 KiB) 2.67 for half the steps: a 128-row step costs 1.95x a 64-row step, so the
 * pair decomposition does not pay here, and the step's cost is spread over loads, staging, barriers and both
 * product phases. This kernel takes out what a different thread map can: the tiled pass stages W in the tile,
 * then Kd over it, so the V' phase and the state phase need a barrier each side (4 a chunk). Here W never goes
 * through workgroup memory: thread (i, kq) of 64 rows x 4 lanes holds the K / 16 vec4 of W row i at channels
 * vec4 4 m + kq in registers (loaded a chunk ahead, as the tiled pass loads them for its tile), computes its part of
 * (W S)[i, :] over those channels, and the 4 lanes of a row add their parts by two xor shuffles (subgroups; the
 * lanes of a row are 4 consecutive invocations, consecutive lanes of one subgroup on every device that runs it:
 * NVIDIA, lavapipe). So the Kd tile is staged in the same phase as V' (nothing reads the tile there), and a chunk
 * is: barrier, [S store, Kd staging, V'], barrier, [state phase]. All 256 threads run the V' phase (128 in the tiled
 * pass). S's workgroup copy is padded (a row group of 4 rows per 4 BV / 4 + 1 vec4) so the 4 lanes of a row, which
 * read channel vec4s 4 m + kq at once, hit distinct banks.
 * Sums: (W S)[i, :] is summed per lane over its channels, then over the lanes (the tiled pass: one running sum
 * over the channels in order), so V' differs by rounding (tests: <= 1e-5 relative to the tiled pass).
 * Needs K a multiple of 16, BV of 4, 256 threads (64 rows x 4 lanes), subgroups of at least 4.
 */
import {
  kdFetch,
  kdStore,
  type StateTiledVariant,
  type TiledGeometry,
  tiledColumnSum,
  tiledGeometry,
  tileFetch,
  tileStore,
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

export type StateRegWVariant = Pick<StateTiledVariant, 'K' | 'V' | 'GK' | 'BV' | 'kdFromK'>;

const WG = 256;

export const stateRegWKey = (v: StateRegWVariant) =>
  `kda_chunk_state_regw_k${v.K}_v${v.V}_gk${v.GK}_bv${v.BV}${v.kdFromK ? '_kdk' : ''}`;

/** The tiled pass's geometry at 256 threads (its Kd tile, state-phase map and prefetch counts are reused). */
const geometry = (v: StateRegWVariant): TiledGeometry => tiledGeometry({ ...v, RA: 2, wg: WG });

/** Workgroup bytes: the padded S copy, the padded [64][K + 4] Kd tile, V' [64][BV]. */
export const stateRegWBytes = (v: Pick<StateRegWVariant, 'K' | 'BV'>) =>
  4 * ((v.K / 4) * (v.BV + 4) + 64 * (v.K + 4) + 64 * v.BV);

export function stateRegWFits(v: StateRegWVariant, smemBytes: number, subgroups: boolean): boolean {
  if (!subgroups || v.K % 16 !== 0 || v.BV % 4 !== 0 || v.V % v.BV !== 0) return false;
  if (v.kdFromK && v.GK !== v.K) return false;
  const g = geometry(v);
  return g.wg === WG && Number.isInteger(g.PF) && g.P2N <= WG && stateRegWBytes(v) <= smemBytes;
}

export function stateRegWWgsl(v: StateRegWVariant): string {
  const { K, GK } = v;
  const g = geometry(v);
  if (!stateRegWFits(v, Infinity, true))
    throw new Error(`kda state pass (regw): K=${K} BV=${v.BV} GK=${GK} kdFromK=${!!v.kdFromK} do not fit`);
  const { BV4, K4, V4, PF } = g;
  const KQ = K4 / 4; // W vec4 per lane
  const SR = 4 * BV4 + 1; // padded stride of a channel vec4's 4 S rows in Ssh
  const sAt = (k4: string, x: string, c: string) => `Ssh[(${k4}) * ${SR}u + (${x}) * ${BV4}u + ${c}]`;
  const NU = Math.ceil(BV4 / 4); // value vec4 per lane in the V' store (columns kq + 4 t)
  const rep = (n: number, f: (i: number) => string, sep = '\n      ') =>
    Array.from({ length: n }, (_, i) => f(i)).join(sep);
  const read = v.kdFromK
    ? ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'kk: vec4<f32>', 'gcB', 'gc4: vec4<f32>']
    : ['cu: i32', 'W: vec4<f32>', 'U: vec4<f32>', 'Kd: vec4<f32>', 'gcB'];
  const kdFetchAt = (ts: string, Ln: string) =>
    v.kdFromK ? kdFetch(g, 'kpre', ts, Ln) : tileFetch(g, 'kpre', 'Kd', ts, Ln);
  // W row i (clamped inside the chunk, 0 past it), channel vec4s 4 m + kq, into wreg.
  const wFetch = (ts: string, Ln: string) => `
      for (var m = 0u; m < ${KQ}u; m++) {
        wreg[m] = select(vec4<f32>(0.0), W[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${K4}u + 4u * m + kq], i < ${Ln});
      }`;
  // U row i at this lane's columns kq + 4 t.
  const uFetch = (ts: string, Ln: string) => `
      ${rep(
        NU,
        (t) => `if (kq + ${4 * t}u < ${BV4}u) {
        upre[${t}] = select(vec4<f32>(0.0), U[((${ts} + min(i, ${Ln} - 1u)) * H + h) * ${V4}u + vt * ${BV4}u + kq + ${4 * t}u], i < ${Ln});
      }`,
      )}`;
  const gFetch = (ts: string, Ln: string) =>
    `if (is2) { for (var a = 0u; a < 4u; a++) { gpre[a] = gcAt(${ts} + ${Ln} - 1u, h, 4u * b + a); } }`;
  // acc_c for column vec4 c: after the shuffles every lane of the row has the sums; lane kq keeps c = kq + 4 t.
  const pick = (t: number) => {
    const cs = [0, 1, 2, 3].map((q) => Math.min(q + 4 * t, BV4 - 1));
    return `select(select(select(acc${cs[0]}, acc${cs[1]}, kq == 1u), acc${cs[2]}, kq == 2u), acc${cs[3]}, kq == 3u)`;
  };
  return /* wgsl */ `enable subgroups;
${bindings(GROUP_PARAMS, read, ['state: vec4<f32>', 'hB: vec4<f32>', 'Vp: vec4<f32>'])}
${gcAtFn(GK)}
var<workgroup> Ssh: array<vec4<f32>, ${K4 * SR}>;
var<workgroup> tile: array<vec4<f32>, ${64 * g.TS}>;
var<workgroup> Vsh: array<vec4<f32>, ${64 * BV4}>;

${computeMain(WG)}
  ${workgroupIds(['vt', 'h', 'n'], true)}
  // V' phase: thread (i, kq), row i, channel vec4s 4 m + kq; state phase: thread (b, cb), S rows 4 b .., columns 4 cb ..
  let i = lid / 4u;
  let kq = lid % 4u;
  let is2 = lid < ${g.P2N}u;
  let cb = lid % ${BV4}u;
  let b = lid / ${BV4}u;
  let col4 = vt * ${BV4}u + cb;
  let sbase = (n * H + h) * ${K * V4}u + col4;
  var sreg: array<vec4<f32>, 4>;
  if (is2) {
    for (var a = 0u; a < 4u; a++) {
      sreg[a] = state[sbase + (4u * b + a) * ${V4}u];
      ${sAt('b', 'a', 'cb')} = sreg[a];
    }
  }
  ${SEQUENCE_CHUNKS}
  var wreg: array<vec4<f32>, ${KQ}>;
  var kpre: array<vec4<f32>, ${PF}>;
  var upre: array<vec4<f32>, ${NU}>;
  var gpre: array<f32, 4>;${
    v.kdFromK
      ? `
  var kgc: array<vec4<f32>, ${PF}>;
  var klast: vec4<f32>;`
      : ''
  }
  ${forwardChunkWalk([wFetch('t0', 'L0'), kdFetchAt('t0', 'L0'), uFetch('t0', 'L0'), gFetch('t0', 'L0')])}
    workgroupBarrier();
    // S entering chunk j for the output pass; the Kd tile (the state phase of chunk j - 1 is done with it).
    if (is2) {
      let hbase = (slot * p.HB + hb) * ${K * V4}u + col4;
      for (var a = 0u; a < 4u; a++) { hB[hbase + (4u * b + a) * ${V4}u] = sreg[a]; }
    }
    var decay: array<f32, 4>;
    for (var a = 0u; a < 4u; a++) { decay[a] = exp(gpre[a]); }
    ${v.kdFromK ? kdStore(g, 'kpre') : tileStore(g, 'kpre')}
    // (W S)[i, :] over this lane's channels, then over the row's 4 lanes.
    ${rep(BV4, (c) => `var acc${c} = vec4<f32>(0.0);`, '\n    ')}
    for (var m = 0u; m < ${KQ}u; m++) {
      let w = wreg[m];
      let k4 = 4u * m + kq;
      ${rep(BV4, (c) => `acc${c} += w.x * ${sAt('k4', '0u', `${c}u`)} + w.y * ${sAt('k4', '1u', `${c}u`)} + w.z * ${sAt('k4', '2u', `${c}u`)} + w.w * ${sAt('k4', '3u', `${c}u`)};`)}
    }
    ${rep(BV4, (c) => `acc${c} += subgroupShuffleXor(acc${c}, 1u);\n    acc${c} += subgroupShuffleXor(acc${c}, 2u);`, '\n    ')}
    // V' = U - W S, row i, columns kq + 4 t.
    ${rep(
      NU,
      (t) => `if (kq + ${4 * t}u < ${BV4}u) {
      let c = kq + ${4 * t}u;
      let vp = upre[${t}] - ${pick(t)};
      Vsh[i * ${BV4}u + c] = vp;
      if (i < L) { Vp[((ts + i) * H + h) * ${V4}u + vt * ${BV4}u + c] = vp; }
    }`,
      '\n    ',
    )}
    if (Ln > 0u) {
      ${wFetch('tn', 'Ln')}
      ${uFetch('tn', 'Ln')}
      ${kdFetchAt('tn', 'Ln')}
      ${gFetch('tn', 'Ln')}
    }
    workgroupBarrier();
    // S = exp(gc_last) S + Kd^T V' (S in registers; Kd rows past the end are 0)
    if (is2) {
      ${tiledColumnSum(g, 'kd', 'vi')}
      for (var a = 0u; a < 4u; a++) {
        sreg[a] = decay[a] * sreg[a] + sacc[a];
        ${sAt('b', 'a', 'cb')} = sreg[a];
      }
    }
  }
  if (is2) {
    for (var a = 0u; a < 4u; a++) { state[sbase + (4u * b + a) * ${V4}u] = sreg[a]; }
  }
}`;
}
