/**
 * Fused recurrent KDA (decode and short prompts): token by token over a sequence, the state held in
 * registers for the whole sequence, read once from its slot and written back once.
 *
 * Grid: (V / BV value tiles, H heads, N sequences). The recurrence never mixes value columns (u = v - S^T k
 * and o = S^T q both reduce over K only), so a workgroup owns the slab S[:, tile of BV columns] with no
 * communication between workgroups: at decode time the state of every (sequence, head) is streamed once
 * in and once out by N*H*V/BV workgroups, which is what saturates HBM (the state is the only large
 * operand). Thread (rg, c), c = lid % BV fastest so each state row segment is one coalesced access,
 * holds rows r = rg + j*NRG (j < K/NRG) of column c. Per token: two reductions over K (k^T S for the
 * delta-rule error, q^T S for the output), each a partial per thread plus a sum over the NRG row groups
 * in workgroup memory; three barriers.
 *
 * Layer mode (decode from raw projections): l2norm of q and k, the gate -exp(A_log) softplus(g + dt_bias)
 * and sigmoid(beta) are applied in the kernel on the token's vectors in workgroup memory.
 * Gate width GK = K (per channel, KDA) or 1 (per head, Gated DeltaNet; broadcast over channels).
 */
import { bindings, computeMain, SEQUENCE_BOUNDS, valueTileIds, workgroupIds } from './wgslParts.js';

export interface RecurrentVariant {
  K: number;
  V: number;
  BV: number;
  GK: number;
  layer: boolean;
  /** 16-byte state loads: each thread owns 4 adjacent columns (needs BV % 4 == 0 and V % 4 == 0). */
  vec?: boolean;
}

/** Whether the vec4 variant applies: 4 adjacent columns per thread, a whole number of row groups. */
export function recurrentVecFits(K: number, V: number, BV: number): boolean {
  if (BV % 4 !== 0 || V % 4 !== 0) return false;
  const { WG, NRG } = recurrentVecGeometry(K, BV);
  return Number.isInteger(NRG) && K % NRG === 0 && WG >= BV / 4;
}

/** vec4 variant: QW = BV/4 threads per row segment, up to 128 threads, NRG row groups of RPT rows each. */
export function recurrentVecGeometry(K: number, BV: number): { WG: number; QW: number; NRG: number; RPT: number } {
  const QW = BV / 4;
  const WG = Math.min(128, K * QW);
  const NRG = WG / QW;
  return { WG, QW, NRG, RPT: K / NRG };
}

export function recurrentGeometry(K: number, BV: number): { WG: number; NRG: number; RPT: number } {
  const WG = Math.min(256, K * BV);
  const NRG = WG / BV;
  if (!Number.isInteger(NRG) || K % NRG !== 0) {
    throw new Error(`kda recurrent: K=${K}, BV=${BV} do not tile a workgroup of ${WG} (use powers of two)`);
  }
  return { WG, NRG, RPT: K / NRG };
}

export const recurrentKey = (v: RecurrentVariant) =>
  `kda_rec_k${v.K}_v${v.V}_bv${v.BV}_gk${v.GK}_${v.layer ? 'layer' : 'core'}${v.vec ? '_vec4' : ''}`;

/** WGSL of the layer-level transforms, shared with the prep kernel. */
export const PREP_FNS = /* wgsl */ `
fn softplusF(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  if (x < -15.0) { return exp(x); }
  return log(1.0 + exp(x));
}
fn sigmoidF(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}`;

export function recurrentWgsl(v: RecurrentVariant): string {
  if (v.vec) return recurrentVec4Wgsl(v);
  const { K, V, BV } = v;
  const { WG, NRG, RPT } = recurrentGeometry(K, BV);
  return /* wgsl */ `
${recurrentHeader(v, WG, 'f32')}

${computeMain(WG)}
  ${valueTileIds(BV)}
  ${SEQUENCE_BOUNDS}
  let base = (u32(slots[n]) * H + h) * ${K * V}u + col;
  var s: array<f32, ${RPT}>;
  for (var j = 0u; j < ${RPT}u; j++) { s[j] = state[base + (rg + j * ${NRG}u) * ${V}u]; }
  for (var t = t0; t < t1; t++) {
    let row = t * H + h;
${stageToken(v, WG)}
    var acc = 0.0;
    for (var j = 0u; j < ${RPT}u; j++) {
      let r = rg + j * ${NRG}u;
      s[j] *= ga[r];
      acc += ks[r] * s[j];
    }
    red1[lid] = acc;
    workgroupBarrier();
    var kS = 0.0;
    for (var m = 0u; m < ${NRG}u; m++) { kS += red1[m * ${BV}u + c]; }
    let u = bs * (vs[c] - kS * kn) * kn;
    var acc2 = 0.0;
    for (var j = 0u; j < ${RPT}u; j++) {
      let r = rg + j * ${NRG}u;
      s[j] += ks[r] * u;
      acc2 += qs[r] * s[j];
    }
    red2[lid] = acc2;
    workgroupBarrier();
    if (rg == 0u) {
      var os = 0.0;
      for (var m = 0u; m < ${NRG}u; m++) { os += red2[m * ${BV}u + c]; }
      o[row * ${V}u + col] = os * qn;
    }
  }
  for (var j = 0u; j < ${RPT}u; j++) { state[base + (rg + j * ${NRG}u) * ${V}u] = s[j]; }
}`;
}

/**
 * The same recurrence with 16-byte state traffic: thread (rg, cq) owns columns 4cq..4cq+3 of the tile
 * for rows rg + j*NRG, as vec4s, so each state row segment moves in 16-byte loads and stores (the scalar
 * kernel above moves 4 bytes per thread and reached 2.85 TB/s of state at decode batch 64 on the H200,
 * against 3.9 TB/s for a 16-byte copy). Same three barriers per token; the reductions over K sum vec4s.
 */
function recurrentVec4Wgsl(v: RecurrentVariant): string {
  const { K, V, BV } = v;
  const { WG, QW, NRG, RPT } = recurrentVecGeometry(K, BV);
  const V4 = V / 4;
  return /* wgsl */ `
${recurrentHeader(v, WG, 'vec4<f32>')}

${computeMain(WG)}
  ${workgroupIds(['vt', 'h', 'n'])}
  let cq = lid % ${QW}u;
  let rg = lid / ${QW}u;
  ${SEQUENCE_BOUNDS}
${vec4StateLoad({ QW, NRG, RPT }, K, V4)}
  for (var t = t0; t < t1; t++) {
    let row = t * H + h;
${stageToken(v, WG)}
${vec4TokenUpdate(recurrentVecGeometry(K, BV), V4, '    ')}
  }
${vec4StateStore({ NRG, RPT }, V4)}
}`;
}

/**
 * One token's delta-rule update and output in the vec4 layout (thread (rg, cq): columns 4cq..4cq+3 of the
 * tile, rows rg + j NRG held in s[j]), from the staged qs, ks, ga, vs, bs and the norms qn, kn: decay, k^T S
 * reduced over the row groups (red1), u = beta (v - k^T S kn) kn, S += k u, q^T S reduced (red2), o stored.
 * Shared by recurrentVec4Wgsl and the gate-folding decode kernel (recurrentGated.wgsl.ts), so both run the
 * same arithmetic. `ind` indents the lines; `store` writes o's vec4 at index i (default `o[i] = x;`: the fused KDA
 * handoff publishes it instead, fused/kdaHandoff.wgsl.ts).
 */
/**
 * WGSL (indented 2): thread (rg, cq)'s rows rg + j NRG of the vec4 state tile (value tile vt of head h in slot
 * slots[n]) into `s`, and `base`, the tile's first vec4 for this thread; vec4StateStore writes them back. Shared by
 * the vec4 recurrent kernel and the gated decode kernels (recurrentGated*.wgsl.ts), which own the same tiles.
 */
export const vec4StateLoad = (g: { QW: number; NRG: number; RPT: number }, K: number, V4: number): string =>
  `  let base = (u32(slots[n]) * H + h) * ${K * V4}u + vt * ${g.QW}u + cq;
  var s: array<vec4<f32>, ${g.RPT}>;
  for (var j = 0u; j < ${g.RPT}u; j++) { s[j] = state[base + (rg + j * ${g.NRG}u) * ${V4}u]; }`;

/**
 * WGSL (indented 2): `s` back to the thread's rows of the vec4 state tile (see vec4StateLoad), where `live` holds
 * (a WGSL bool; the fused KDA handoff's idle invocations, which mirror a thread's rows, store nothing).
 */
export const vec4StateStore = (g: { NRG: number; RPT: number }, V4: number, live?: string): string =>
  live
    ? `  if (${live}) { for (var j = 0u; j < ${g.RPT}u; j++) { state[base + (rg + j * ${g.NRG}u) * ${V4}u] = s[j]; } }`
    : `  for (var j = 0u; j < ${g.RPT}u; j++) { state[base + (rg + j * ${g.NRG}u) * ${V4}u] = s[j]; }`;

export function vec4TokenUpdate(
  g: { QW: number; NRG: number; RPT: number },
  V4: number,
  ind: string,
  store: (i: string, x: string) => string = (i, x) => `o[${i}] = ${x};`,
): string {
  const { QW, NRG, RPT } = g;
  const body = `var acc = vec4<f32>(0.0);
for (var j = 0u; j < ${RPT}u; j++) {
  let r = rg + j * ${NRG}u;
  s[j] *= ga[r];
  acc += ks[r] * s[j];
}
red1[lid] = acc;
workgroupBarrier();
var kS = vec4<f32>(0.0);
for (var m = 0u; m < ${NRG}u; m++) { kS += red1[m * ${QW}u + cq]; }
let v4 = vec4<f32>(vs[4u * cq], vs[4u * cq + 1u], vs[4u * cq + 2u], vs[4u * cq + 3u]);
let u = bs * (v4 - kS * kn) * kn;
var acc2 = vec4<f32>(0.0);
for (var j = 0u; j < ${RPT}u; j++) {
  let r = rg + j * ${NRG}u;
  s[j] += ks[r] * u;
  acc2 += qs[r] * s[j];
}
red2[lid] = acc2;
workgroupBarrier();
if (rg == 0u) {
  var os = vec4<f32>(0.0);
  for (var m = 0u; m < ${NRG}u; m++) { os += red2[m * ${QW}u + cq]; }
  ${store(`row * ${V4}u + vt * ${QW}u + cq`, 'os * qn')}
}`;
  return body
    .split('\n')
    .map((l) => ind + l)
    .join('\n');
}

/** Bindings, the layer transforms and the workgroup arrays of both recurrent kernels; `T` is the state type. */
function recurrentHeader(v: RecurrentVariant, WG: number, T: 'f32' | 'vec4<f32>'): string {
  const state = T === 'f32' ? ['state', 'o'] : ['state: vec4<f32>', 'o: vec4<f32>'];
  return `${bindings(
    'H: u32, _a: u32, scale: f32, _b: u32',
    ['cu: i32', 'slots: i32', 'q', 'k', 'vv', 'g', 'beta'],
    state,
    v.layer ? ['A_log', 'dt_bias'] : [],
  )}
${PREP_FNS}

var<workgroup> qs: array<f32, ${v.K}>;
var<workgroup> ks: array<f32, ${v.K}>;
var<workgroup> ga: array<f32, ${v.K}>;
var<workgroup> vs: array<f32, ${v.BV}>;
var<workgroup> red1: array<${T}, ${WG}>;
var<workgroup> red2: array<${T}, ${WG}>;
var<workgroup> bs: f32;`;
}

/**
 * Token `row`'s q, k, decay exp(g) and the tile's v values into workgroup memory (with the layer-mode
 * gate and sigmoid(beta)), a barrier, then `qn` and `kn`: the layer-mode l2norm of q and k (every thread
 * reduces the short vectors itself) or the core mode's plain scale.
 */
function stageToken(v: RecurrentVariant, WG: number): string {
  const { K, V, BV, GK, layer } = v;
  const gExpr = layer ? `-exp(A_log[h]) * softplusF(graw + dt_bias[h * ${GK}u + ${GK === 1 ? '0u' : 'i'}])` : 'graw';
  const norm = layer
    ? `    var qq = 0.0;
    var kk = 0.0;
    for (var i = 0u; i < ${K}u; i++) { qq += qs[i] * qs[i]; kk += ks[i] * ks[i]; }
    let qn = inverseSqrt(qq + 1e-6) * p.scale;
    let kn = inverseSqrt(kk + 1e-6);`
    : `    let qn = p.scale;
    let kn = 1.0;`;
  return `    for (var i = lid; i < ${K}u; i += ${WG}u) {
      qs[i] = q[row * ${K}u + i];
      ks[i] = k[row * ${K}u + i];
      let graw = g[row * ${GK}u + ${GK === 1 ? '0u' : 'i'}];
      ga[i] = exp(${gExpr});
    }
    for (var i = lid; i < ${BV}u; i += ${WG}u) { vs[i] = vv[row * ${V}u + vt * ${BV}u + i]; }
    if (lid == 0u) { bs = ${layer ? 'sigmoidF(beta[row])' : 'beta[row]'}; }
    workgroupBarrier();
${norm}`;
}
