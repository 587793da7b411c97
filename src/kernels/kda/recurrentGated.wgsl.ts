/**
 * One decode token per sequence of a KDA layer with its gate projections folded in: the recurrent step of
 * recurrent.wgsl.ts (vec4 state, layer mode) whose workgroups also compute, from the low-rank columns of
 * the layer's input projection, the decay logits g = f_b f_a(h) of their head and the output gate
 * gate = g_b g_a(h) of their value tile, instead of reading them from a GEMV dispatch before it.
 *
 * Why: in the 48B decode step that GEMV ([[f_b, 0], [0, g_b]] against f_a|g_a, 4 MB) was a dispatch of its
 * own in each of the 20 KDA layers (~10-14 us profiled each on the H200, mostly a dispatch's fixed cost:
 * launch, one round trip, a lane tree). Its products are tiny (2 * H * d * r MACs), so repeating the head's
 * f_b rows in each of the head's V / BV workgroups costs L2 reads (32 KB each at d = r = 128), no dispatch.
 *
 * Exactness: each output is summed as the decode GEMV sums it (matmul/gemv.wgsl.ts at one chunk per lane,
 * which the block-diagonal GEMV has at (rf + rg) / per <= 32): lane l's partial is the dot of chunk l
 * (16 bytes of W: 8 bf16 or 4 f32) with the matching inputs, the zero block's lanes give 0, and the 32
 * partials meet in the same tree (l += l + 16, then 8, 4, 2, 1), here in one thread's registers; the
 * recurrence after them is recurrent.wgsl.ts's (same expressions, same order). So the values are the
 * two-dispatch path's up to how the shader compiler contracts multiply-adds in each kernel (lavapipe:
 * last-bit differences, test/kda-recurrent-gated.test.ts checks 1e-6 of max |value|).
 *
 * Since the ninth session the default is recurrentGatedPrefetch.wgsl.ts (every load before the first barrier,
 * the gate GEMV over all threads, 32-column tiles: 6.1 against this kernel's 14.5 us on the H200 at the 48B
 * shapes, batch 1); this one stays for comparison (recurrentGatedTuning.kernel 'v1').
 *
 * Grid (V / BV, H, N); thread layout, state traffic and barriers as recurrentVec4Wgsl. Sequence n's token
 * is batch row n: q, k, v in planes 0, 1, 2 of the conv output [3, N, H * K]; f_a, g_a and beta in the
 * projection row [N, ld] at columns fA, gA, beta.
 */
import { PREP_FNS, recurrentVecGeometry, vec4StateLoad, vec4StateStore, vec4TokenUpdate } from './recurrent.wgsl.js';

export interface RecurrentGatedVariant {
  K: number;
  V: number;
  BV: number;
  /** Ranks of f_a and g_a. */
  rf: number;
  rg: number;
  wDtype: 'f32' | 'bf16';
}

/** Lanes of the GEMV whose summation the fold reproduces (matmul/gemv.wgsl.ts GEMV_LANES). */
export const GATED_GEMV_LANES = 32;

/** Whether the fold applies: vec4 state tiles and one 16-byte chunk per GEMV lane over f_a|g_a. */
export function recurrentGatedFits(v: RecurrentGatedVariant): boolean {
  const per = v.wDtype === 'bf16' ? 8 : 4;
  if (v.K !== v.V || v.rf % per !== 0 || v.rg % per !== 0) return false;
  if ((v.rf + v.rg) / per > GATED_GEMV_LANES) return false;
  if (v.BV % 4 !== 0 || v.V % v.BV !== 0) return false;
  const { WG, NRG } = recurrentVecGeometry(v.K, v.BV);
  return Number.isInteger(NRG) && v.K % NRG === 0 && WG >= v.BV / 4;
}

export const recurrentGatedKey = (v: RecurrentGatedVariant) =>
  `kda_rec_gated_k${v.K}_v${v.V}_bv${v.BV}_rf${v.rf}_rg${v.rg}_${v.wDtype}`;

/**
 * WGSL both gated step kernels (this file's and recurrentGatedPrefetch.wgsl.ts) open with: Params, the bindings
 * (slots, the conv planes qkv, the projection row proj, f_b and g_b as vec4 of bf16 pairs or f32, A_log, dt_bias, the
 * state pool, o, gate), the prep functions, bf16 widening, and the workgroup arrays of q, k, the decay and v.
 * `fused`: another Params struct (WGSL, with the fields above), bindings 0..8 only, and a value tile of BV columns.
 */
export function gatedModuleHead(v: RecurrentGatedVariant, fused?: { params: string; BV: number }): string {
  const { K } = v;
  const BV = fused?.BV ?? v.BV;
  const bf16 = v.wDtype === 'bf16';
  const wElem = bf16 ? 'vec4<u32>' : 'vec4<f32>';
  // `fused` (fused/kdaHandoff.wgsl.ts): its own Params fields and no o / gate bindings (it publishes them).
  const outputs = fused
    ? ''
    : `
@group(0) @binding(9) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> gate: array<f32>;`;
  return `${fused?.params ?? 'struct Params { H: u32, ld: u32, fA: u32, gA: u32, beta: u32, plane: u32, scale: f32, _a: u32 };'}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> slots: array<i32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> proj: array<f32>;
@group(0) @binding(4) var<storage, read> FB: array<${wElem}>;
@group(0) @binding(5) var<storage, read> GB: array<${wElem}>;
@group(0) @binding(6) var<storage, read> A_log: array<f32>;
@group(0) @binding(7) var<storage, read> dt_bias: array<f32>;
@group(0) @binding(8) var<storage, read_write> state: array<vec4<f32>>;${outputs}

${PREP_FNS.trim()}
${bf16 ? 'fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }\nfn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }' : ''}

var<workgroup> qs: array<f32, ${K}>;
var<workgroup> ks: array<f32, ${K}>;
var<workgroup> ga: array<f32, ${K}>;
var<workgroup> vs: array<f32, ${BV}>;`;
}

export function recurrentGatedWgsl(v: RecurrentGatedVariant): string {
  const { K, V, BV, rf, rg } = v;
  const { WG, QW, NRG, RPT } = recurrentVecGeometry(K, BV);
  const V4 = V / 4;
  const bf16 = v.wDtype === 'bf16';
  const per = bf16 ? 8 : 4;
  const cf = rf / per;
  const cg = rg / per;
  // The GEMV lane's term for chunk c of a row (W value w) against the staged inputs starting at x0.
  const term = (w: string, x0: string) =>
    bf16
      ? `dot(xin(${x0}), vec4<f32>(lo(${w}.x), hi(${w}.x), lo(${w}.y), hi(${w}.y))) + ` +
        `dot(xin(${x0} + 4u), vec4<f32>(lo(${w}.z), hi(${w}.z), lo(${w}.w), hi(${w}.w)))`
      : `dot(xin(${x0}), ${w})`;
  // A row's output: partials at lanes [first, first + n) (the rest 0), then the GEMV's tree over 32 lanes.
  const rowDot = (name: string, W: string, row: string, n: number, first: number, xOff: number) => {
    const L: string[] = [];
    L.push(`fn ${name}(r: u32) -> f32 {`);
    L.push(`  let base = (${row}) * ${n}u;`);
    // Loads first (all in flight), then the terms; the tree unrolled over named partials (registers).
    for (let c = 0; c < n; c++) L.push(`  let w${c} = ${W}[base + ${c}u];`);
    for (let l = 0; l < GATED_GEMV_LANES; l++) {
      const c = l - first;
      L.push(`  var pl${l} = ${c >= 0 && c < n ? term(`w${c}`, `${xOff + c * per}u`) : '0.0'};`);
    }
    for (let s = GATED_GEMV_LANES / 2; s >= 1; s /= 2) {
      for (let l = 0; l < s; l++) L.push(`  pl${l} += pl${l + s};`);
    }
    L.push('  return pl0;');
    L.push('}');
    return L.join('\n');
  };
  return /* wgsl */ `
${gatedModuleHead(v)}
// f_a then g_a of the token (the GEMV's input row).
var<workgroup> xa: array<f32, ${rf + rg}>;
var<workgroup> red1: array<vec4<f32>, ${WG}>;
var<workgroup> red2: array<vec4<f32>, ${WG}>;
var<workgroup> bs: f32;

fn xin(i: u32) -> vec4<f32> { return vec4<f32>(xa[i], xa[i + 1u], xa[i + 2u], xa[i + 3u]); }
${rowDot('fRow', 'FB', 'r', cf, 0, 0)}
${rowDot('gRow', 'GB', 'r', cg, cf, rf)}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let vt = wid.x; let h = wid.y; let n = wid.z;
  let H = p.H;
  let cq = lid % ${QW}u;
  let rg = lid / ${QW}u;
${vec4StateLoad({ QW, NRG, RPT }, K, V4)}
  let row = n * H + h;
  let pr = n * p.ld;
  for (var i = lid; i < ${rf}u; i += ${WG}u) { xa[i] = proj[pr + p.fA + i]; }
  for (var i = lid; i < ${rg}u; i += ${WG}u) { xa[${rf}u + i] = proj[pr + p.gA + i]; }
  for (var i = lid; i < ${K}u; i += ${WG}u) {
    qs[i] = qkv[row * ${K}u + i];
    ks[i] = qkv[p.plane + row * ${K}u + i];
  }
  for (var i = lid; i < ${BV}u; i += ${WG}u) { vs[i] = qkv[2u * p.plane + row * ${V}u + vt * ${BV}u + i]; }
  if (lid == 0u) { bs = sigmoidF(proj[pr + p.beta + h]); }
  workgroupBarrier();
  // g of the head's channels (every workgroup of the head), the gate of this value tile (written once).
  for (var i = lid; i < ${K}u; i += ${WG}u) {
    let graw = fRow(h * ${K}u + i);
    ga[i] = exp(-exp(A_log[h]) * softplusF(graw + dt_bias[h * ${K}u + i]));
  }
  for (var c = lid; c < ${BV}u; c += ${WG}u) {
    let col = h * ${V}u + vt * ${BV}u + c;
    gate[n * H * ${V}u + col] = gRow(col);
  }
  workgroupBarrier();
  var qq = 0.0;
  var kk = 0.0;
  for (var i = 0u; i < ${K}u; i++) { qq += qs[i] * qs[i]; kk += ks[i] * ks[i]; }
  let qn = inverseSqrt(qq + 1e-6) * p.scale;
  let kn = inverseSqrt(kk + 1e-6);
${vec4TokenUpdate({ QW, NRG, RPT }, V4, '  ')}
${vec4StateStore({ NRG, RPT }, V4)}
}`;
}
