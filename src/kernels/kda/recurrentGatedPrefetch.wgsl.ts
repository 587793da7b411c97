/**
 * The gate-folding KDA decode step (recurrentGated.wgsl.ts) reorganised around one round trip to memory:
 * every global load a workgroup needs (its state slab, the token's q, k, v, f_a | g_a and beta, its f_b
 * rows, its g_b chunks, A_log and dt_bias) is issued before the first barrier, and the gate GEMV is spread
 * over all threads instead of BV of them.
 *
 * Why (the eighth-session kernel, 48B decode, H = 32, d = r = 128, bf16 f_b / g_b): its f_b rows were loaded
 * after the staging barrier and its g_b rows after the f_b dot products, by BV threads each reading a whole
 * 256-byte row, so a workgroup waited on up to three dependent trips to L2 / HBM where the core step waits on
 * one; and every one of its 128 threads summed q^T q and k^T k itself (256 broadcast workgroup-memory loads
 * a thread). Here:
 *  - f_b row i of the head and the thread's (column, chunk) pairs of g_b are in registers before the barrier;
 *  - the gate's BV * (rg / per) chunk products go one a thread (at BV = 8, 16 chunks: exactly 128) into
 *    workgroup memory, and BV threads add them after the second barrier in the GEMV's tree;
 *  - f_a | g_a are staged as vec4s, so each chunk's inputs are one or two 16-byte workgroup loads;
 *  - norm 'one': q^T q and k^T k are summed by one thread each (of different warps on any GPU with subgroups
 *    of WG / 2 lanes or fewer) between the two barriers, overlapping the f_b products, and shared through
 *    workgroup memory; 'split': in blocks of 8 squares by K / 8 threads each between the barriers, the
 *    blocks' sums added by every thread after (a chain of 8 + K / 8 instead of K, another summation order);
 *    'all' keeps every thread summing them after the second barrier (as before).
 *
 * Exactness: the eighth-session kernel's expressions (so the two-dispatch path's values up to the compiler's
 * contraction of multiply-adds): f's and the gate's partials and trees are rowDot's, and the token update is
 * vec4TokenUpdate. Two reassociations: q^T q and k^T k in blocks with norm 'split' (the default; 'one' and
 * 'all' keep the serial sums), and the value tile (BV 32 by default where the eighth-session kernel had
 * recurrentBV's 8 at batch 1), which regroups k^T S and q^T S over the rows (NRG partials of RPT rows). Checked
 * at 1e-6 of max |value| against the two-op path (test/kda-recurrent-gated.test.ts); in the 48B decode on the
 * H200 (bench decode --check, 4K, int8) the logits are within 3.5e-6 of the unfused step's (2.6e-6 with the
 * eighth-session kernel), greedy tokens equal.
 *
 * H200 (bench kda --decode-gated, H = 32, d = r = 128, bf16 f_b / g_b; us a dispatch, back to back), batch 1 /
 * 8: eighth-session kernel 14.49 / 28.43; this one 6.06-6.09 / 24.0 (norm 'one' 6.24 / 25.0, 'all' 6.49 /
 * 25.2; BV 16: 7.45 / 37.0, BV 8: 11.0 / 67.9); the core step 5.65 / 10.8, the layer-mode step alone 7.95 /
 * 13.4, the GEMVs + layer-mode step 14.27 / 26.9. Probes at batch 1 / 8: without the fold 4.70 / 11.4, without
 * the norms 5.89 / 23.1, without the update 5.61 / 21.6: the fold is what remains (1.4 us at batch 1; at batch
 * 8 its registers, ~64 a thread for the f_b row, leave fewer workgroups an SM for 1024 workgroups).
 *
 * Probes (profiling only, wrong results; bench kda --decode-gated): 'fold' skips the f_b / g_b products and
 * their loads (g = 0, gate = 0), 'norm' the l2 norms (qn = scale, kn = 1), 'update' the state update (the
 * slab is loaded and stored back, o = its first rows).
 */
import { GATED_GEMV_LANES, gatedModuleHead, type RecurrentGatedVariant } from './recurrentGated.wgsl.js';
import { recurrentVecGeometry, vec4StateLoad, vec4StateStore, vec4TokenUpdate } from './recurrent.wgsl.js';

export type GatedNorm = 'one' | 'split' | 'all';

/** Squares a thread of norm 'split' sums (q^T q and k^T k in K / 8 blocks). */
const NORM_BLOCK = 8;

/** Whether the norm fits the geometry: 'split' needs K / 8 threads for q and as many for k in each half. */
export function gatedNormFits(norm: GatedNorm, K: number, WG: number): boolean {
  return norm !== 'split' || (K % NORM_BLOCK === 0 && K / NORM_BLOCK <= WG / 2);
}
export type GatedProbe = 'fold' | 'norm' | 'update';

export interface RecurrentGatedPrefetchVariant extends RecurrentGatedVariant {
  norm: GatedNorm;
  probe?: GatedProbe;
}

export const recurrentGatedPrefetchKey = (v: RecurrentGatedPrefetchVariant) =>
  `kda_rec_gated_pf_k${v.K}_v${v.V}_bv${v.BV}_rf${v.rf}_rg${v.rg}_${v.wDtype}_n${v.norm}${v.probe ? `_probe_${v.probe}` : ''}`;

/**
 * How another kernel runs this step as one role of its workgroups (fused/kdaHandoff.wgsl.ts): the value tile of BV
 * columns with the geometry `geo` (a tile of BV' = M BV columns with M times the invocations keeps NRG and RPT, so
 * every sum has the terms and order of the BV tile's), in workgroups of `threads` invocations (>= geo.WG; the
 * loads and the gate's work spread over all of them, those past geo.WG idle in the state update: they mirror the
 * last row group's rows and store nothing), o and the gate written by `storeO` / `storeGate` (WGSL statements for
 * index i and value x: o's vec4 index and the gate's f32 index, of sequence n's row as the o / gate buffers lay
 * them out).
 */
export interface GatedStepRole {
  BV: number;
  geo: { WG: number; QW: number; NRG: number; RPT: number };
  threads: number;
  storeO: (i: string, x: string) => string;
  storeGate: (i: string, x: string) => string;
}

export function recurrentGatedPrefetchWgsl(v: RecurrentGatedPrefetchVariant): string {
  const { decls, body } = gatedPrefetchParts(v);
  const { WG } = recurrentVecGeometry(v.K, v.BV);
  return /* wgsl */ `
${gatedModuleHead(v)}
${decls}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let vt = wid.x; let h = wid.y; let n = wid.z;
  let H = p.H;
${body}
}`;
}

/**
 * The step's module-scope workgroup arrays (after gatedModuleHead) and its body: statements run by invocation `lid`
 * for value tile `vt` of head `h` of sequence `n` (with `H` bound), as recurrentGatedPrefetchWgsl's main runs them,
 * or as `role` says.
 */
export function gatedPrefetchParts(
  v: RecurrentGatedPrefetchVariant,
  role?: GatedStepRole,
): { decls: string; body: string } {
  const { K, V, rf, rg, norm, probe } = v;
  const BV = role?.BV ?? v.BV;
  const { QW, NRG, RPT } = role?.geo ?? recurrentVecGeometry(K, BV);
  // WG: the invocations the loads and the gate's work are spread over (the workgroup's).
  const WG = role?.threads ?? recurrentVecGeometry(K, BV).WG;
  // Invocations past the state geometry's (a role's idle ones): row groups clamped, no stores of s or o.
  const idle = role !== undefined && role.threads > role.geo.WG;
  const live = idle ? `lid < ${role.geo.WG}u` : undefined;
  const storeGate = role?.storeGate ?? ((i: string, x: string) => `gate[${i}] = ${x};`);
  const storeO = role?.storeO ?? ((i: string, x: string) => `o[${i}] = ${x};`);
  const storeOLive = live ? (i: string, x: string) => `if (${live}) { ${storeO(i, x)} }` : storeO;
  const V4 = V / 4;
  const bf16 = v.wDtype === 'bf16';
  const per = bf16 ? 8 : 4;
  const cf = rf / per;
  const cg = rg / per;
  const X4 = (rf + rg) / 4;
  const fold = probe !== 'fold';
  // The GEMV lane's term for a chunk (W value w) against the staged inputs from vec4 i4 of xa (the same
  // dot products as recurrentGated.wgsl.ts's, whose xin(x0) is xa[x0 / 4] here).
  const term = (w: string, i4: string) =>
    bf16
      ? `dot(xa[${i4}], vec4<f32>(lo(${w}.x), hi(${w}.x), lo(${w}.y), hi(${w}.y))) + ` +
        `dot(xa[${i4} + 1u], vec4<f32>(lo(${w}.z), hi(${w}.z), lo(${w}.w), hi(${w}.w)))`
      : `dot(xa[${i4}], ${w})`;
  // A 32-lane GEMV tree over named partials pl0..pl31 (lanes outside [first, first + n) hold 0).
  const tree = (ind: string, part: (c: number) => string, n: number, first: number) => {
    const L: string[] = [];
    for (let l = 0; l < GATED_GEMV_LANES; l++) {
      const c = l - first;
      L.push(`${ind}var pl${l} = ${c >= 0 && c < n ? part(c) : '0.0'};`);
    }
    for (let s = GATED_GEMV_LANES / 2; s >= 1; s /= 2)
      for (let l = 0; l < s; l++) L.push(`${ind}pl${l} += pl${l + s};`);
    return L.join('\n');
  };
  // Rows of f a thread computes (thread lid: rows lid + t WG), clamped for the loads where K < WG.
  const FR = Math.ceil(K / WG);
  // The gate's (column, chunk) pairs: pair q = column * cg + chunk, thread lid takes q = lid + t WG.
  const GP = BV * cg;
  const GT = Math.ceil(GP / WG);
  const pre: string[] = [];
  const fwork: string[] = [];
  if (fold) {
    for (let t = 0; t < FR; t++) {
      pre.push(`  let fi${t} = min(lid + ${t * WG}u, ${K - 1}u);`);
      pre.push(`  let fb${t} = (h * ${K}u + fi${t}) * ${cf}u;`);
      for (let c = 0; c < cf; c++) pre.push(`  let wf${t}_${c} = FB[fb${t} + ${c}u];`);
      pre.push(`  let dtb${t} = dt_bias[h * ${K}u + fi${t}];`);
      fwork.push(`  {`);
      fwork.push(tree('    ', (c) => term(`wf${t}_${c}`, `${(c * per) / 4}u`), cf, 0));
      fwork.push(`    if (lid + ${t * WG}u < ${K}u) { ga[fi${t}] = exp(-aExp * softplusF(pl0 + dtb${t})); }`);
      fwork.push(`  }`);
    }
    for (let t = 0; t < GT; t++) {
      pre.push(`  let gq${t} = min(lid + ${t * WG}u, ${GP - 1}u);`);
      pre.push(`  let wg${t} = GB[(h * ${V}u + vt * ${BV}u + gq${t} / ${cg}u) * ${cg}u + gq${t} % ${cg}u];`);
      fwork.push(`  if (lid + ${t * WG}u < ${GP}u) {`);
      fwork.push(`    gp[gq${t}] = ${term(`wg${t}`, `${rf / 4}u + (gq${t} % ${cg}u) * ${per / 4}u`)};`);
      fwork.push('  }');
    }
  } else {
    // f_b and g_b stay bound (the layout is 'auto'): one 16-byte load each, times 0.
    pre.push(`  let dtb0 = dt_bias[h * ${K}u + min(lid, ${K - 1}u)];`);
    pre.push('  let touch = f32(FB[0].x) * f32(GB[0].x) * 0.0;');
    fwork.push(`  if (lid < ${K}u) { ga[lid] = exp(-aExp * softplusF(dtb0)); }`);
    fwork.push(`  if (lid < ${GP}u) { gp[lid] = touch; }`);
  }
  // The gate of column c of the tile: the GEMV's tree over its chunks (lanes cf .. cf + cg).
  const gateOut = fold
    ? `  for (var c = lid; c < ${BV}u; c += ${WG}u) {
${tree('    ', (j) => `gp[c * ${cg}u + ${j}u]`, cg, cf)}
    ${storeGate(`n * H * ${V}u + h * ${V}u + vt * ${BV}u + c`, 'pl0')}
  }`
    : `  for (var c = lid; c < ${BV}u; c += ${WG}u) { ${storeGate(`n * H * ${V}u + h * ${V}u + vt * ${BV}u + c`, 'gp[c]')} }`;
  const qqLoop = `var qq = 0.0;\n  for (var i = 0u; i < ${K}u; i++) { qq += qs[i] * qs[i]; }`;
  const kkLoop = `var kk = 0.0;\n  for (var i = 0u; i < ${K}u; i++) { kk += ks[i] * ks[i]; }`;
  // The norms. 'one': between the barriers by two threads, shared through nrm. 'split': between the barriers,
  // K / 8 threads sum 8 squares of q each (and as many of k), every thread adds those partials after them.
  // 'all': every thread sums all of them after the barriers (the eighth-session kernel).
  const S = K / NORM_BLOCK;
  const normMid =
    probe === 'norm' || norm === 'all'
      ? ''
      : norm === 'one'
        ? `  if (lid == 0u) {
  ${qqLoop}
    nrm.x = inverseSqrt(qq + 1e-6) * p.scale;
  }
  if (lid == ${WG - 1}u) {
  ${kkLoop}
    nrm.y = inverseSqrt(kk + 1e-6);
  }`
        : `  if (lid < ${S}u) {
    var a = 0.0;
    for (var i = 0u; i < ${NORM_BLOCK}u; i++) { let x = qs[${NORM_BLOCK}u * lid + i]; a += x * x; }
    qkp[lid] = a;
  }
  if (lid >= ${WG / 2}u && lid < ${WG / 2 + S}u) {
    let j = lid - ${WG / 2}u;
    var a = 0.0;
    for (var i = 0u; i < ${NORM_BLOCK}u; i++) { let x = ks[${NORM_BLOCK}u * j + i]; a += x * x; }
    qkp[${S}u + j] = a;
  }`;
  const normAfter =
    probe === 'norm'
      ? '  let qn = p.scale;\n  let kn = 1.0;'
      : norm === 'one'
        ? '  let qn = nrm.x;\n  let kn = nrm.y;'
        : norm === 'split'
          ? `  var qq = 0.0;
  var kk = 0.0;
  for (var j = 0u; j < ${S}u; j++) { qq += qkp[j]; kk += qkp[${S}u + j]; }
  let qn = inverseSqrt(qq + 1e-6) * p.scale;
  let kn = inverseSqrt(kk + 1e-6);`
          : `  ${qqLoop}\n  ${kkLoop}\n  let qn = inverseSqrt(qq + 1e-6) * p.scale;\n  let kn = inverseSqrt(kk + 1e-6);`;
  const update =
    probe === 'update'
      ? `  if (rg == 0u) { ${storeOLive(`row * ${V4}u + vt * ${QW}u + cq`, 's[0] * qn * kn * bs * ga[0] * vs[0] * qs[0] * ks[0]')} }`
      : vec4TokenUpdate({ QW, NRG, RPT }, V4, '  ', storeOLive);
  const decls = `// f_a then g_a of the token (the GEMV's input row), as vec4s.
var<workgroup> xa: array<vec4<f32>, ${X4}>;
// The gate's chunk partials, column-major by chunk (column c's at c * ${cg} ..).
var<workgroup> gp: array<f32, ${GP}>;
var<workgroup> red1: array<vec4<f32>, ${WG}>;
var<workgroup> red2: array<vec4<f32>, ${WG}>;
var<workgroup> bs: f32;
var<workgroup> nrm: vec2<f32>;
var<workgroup> qkp: array<f32, ${Math.max(2, (2 * K) / NORM_BLOCK)}>;`;
  const body = `  let cq = lid % ${QW}u;
  let rg = ${idle ? `min(lid / ${QW}u, ${NRG - 1}u)` : `lid / ${QW}u`};
${vec4StateLoad({ QW, NRG, RPT }, K, V4)}
  // Every other global load of the step, before the first barrier (one trip to memory).
${pre.join('\n')}
  let aExp = exp(A_log[h]);
  let row = n * H + h;
  let pr = n * p.ld;
  for (var i = lid; i < ${X4}u; i += ${WG}u) {
    let c = 4u * i;
    let at = pr + select(p.gA + c - ${rf}u, p.fA + c, c < ${rf}u);
    xa[i] = vec4<f32>(proj[at], proj[at + 1u], proj[at + 2u], proj[at + 3u]);
  }
  for (var i = lid; i < ${K}u; i += ${WG}u) {
    qs[i] = qkv[row * ${K}u + i];
    ks[i] = qkv[p.plane + row * ${K}u + i];
  }
  for (var i = lid; i < ${BV}u; i += ${WG}u) { vs[i] = qkv[2u * p.plane + row * ${V}u + vt * ${BV}u + i]; }
  if (lid == 0u) { bs = sigmoidF(proj[pr + p.beta + h]); }
  workgroupBarrier();
  // g of the head's channels and the gate's chunk partials of this tile (and the norms, norm 'one').
${fwork.join('\n')}
${normMid}
  workgroupBarrier();
${gateOut}
${normAfter}
${update}
${vec4StateStore({ NRG, RPT }, V4, live)}`;
  return { decls, body };
}
