/**
 * The layer-level transforms on the GPU, for the chunked and backward paths (the recurrent kernel fuses
 * them itself):
 *  - prep: one workgroup of 64 per (token, head) row: l2norm of q and k (tree reduction of the squares),
 *    the gate g = -exp(A_log) softplus(g_raw + dt_bias) and beta = sigmoid(beta_raw).
 *  - prep backward: per row, the l2norm chain rule dx = r (dy - y (y . dy)), dg_raw = dg * -exp(A_log)
 *    sigmoid(z), dbeta_raw = dbeta * s(1 - s).
 *  - param reduce: sums dg_raw over tokens into ddt_bias and dg * g into dA_log. Split (default): a grid of
 *    (token slice, head) workgroups writes per-slice partial sums, then one workgroup per head adds the
 *    slices; the single-pass form (one workgroup per head walking all tokens) is kept for A/B, but it
 *    runs only H workgroups, so at T = 4096 it took ~0.5 ms a layer on an H200 for ~1 MB of input.
 */
import { PREP_FNS } from './recurrent.wgsl.js';
import { bindings, computeMain } from './wgslParts.js';

export const PREP_WG = 64;
const PREP_PARAMS = 'H: u32, rows: u32, _a: u32, _b: u32';

const reduce2 = /* wgsl */ `
var<workgroup> ra: array<f32, ${PREP_WG}>;
var<workgroup> rb: array<f32, ${PREP_WG}>;
fn reduce2(lid: u32, a: f32, b: f32) -> vec2<f32> {
  ra[lid] = a;
  rb[lid] = b;
  workgroupBarrier();
  for (var s = ${PREP_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ra[lid] += ra[lid + s]; rb[lid] += rb[lid + s]; }
    workgroupBarrier();
  }
  let r = vec2<f32>(ra[0], rb[0]);
  workgroupBarrier();
  return r;
}`;

/** Bindings and helpers of the per-row prep kernels, up to `row` (one workgroup per (token, head)) and `h`. */
const prepHead = (
  write: readonly string[],
) => `${bindings(PREP_PARAMS, ['q', 'k', 'g', 'beta', 'A_log', 'dt_bias'], write)}
${PREP_FNS}
${reduce2}
@compute @workgroup_size(${PREP_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let h = row % p.H;`;

export function prepWgsl(K: number, GK: number): string {
  return /* wgsl */ `
${prepHead(['qo', 'ko', 'go', 'bo'])}
  var sq = 0.0;
  var sk = 0.0;
  for (var i = lid; i < ${K}u; i += ${PREP_WG}u) {
    sq += q[row * ${K}u + i] * q[row * ${K}u + i];
    sk += k[row * ${K}u + i] * k[row * ${K}u + i];
  }
  let s = reduce2(lid, sq, sk);
  let rq = inverseSqrt(s.x + 1e-6);
  let rk = inverseSqrt(s.y + 1e-6);
  for (var i = lid; i < ${K}u; i += ${PREP_WG}u) {
    qo[row * ${K}u + i] = q[row * ${K}u + i] * rq;
    ko[row * ${K}u + i] = k[row * ${K}u + i] * rk;
  }
  let a = -exp(A_log[h]);
  for (var i = lid; i < ${GK}u; i += ${PREP_WG}u) {
    go[row * ${GK}u + i] = a * softplusF(g[row * ${GK}u + i] + dt_bias[h * ${GK}u + i]);
  }
  if (lid == 0u) { bo[row] = sigmoidF(beta[row]); }
}`;
}

export function prepBackwardWgsl(K: number, GK: number): string {
  return /* wgsl */ `
${prepHead(['dq', 'dk', 'dg', 'db'])}
  let o = row * ${K}u;
  var sq = 0.0;
  var sk = 0.0;
  for (var i = lid; i < ${K}u; i += ${PREP_WG}u) { sq += q[o + i] * q[o + i]; sk += k[o + i] * k[o + i]; }
  let s = reduce2(lid, sq, sk);
  let rq = inverseSqrt(s.x + 1e-6);
  let rk = inverseSqrt(s.y + 1e-6);
  // dq, dk hold the core gradients on entry (with respect to the unit vectors) and the raw ones on exit.
  var pq = 0.0;
  var pk = 0.0;
  for (var i = lid; i < ${K}u; i += ${PREP_WG}u) { pq += q[o + i] * rq * dq[o + i]; pk += k[o + i] * rk * dk[o + i]; }
  let d = reduce2(lid, pq, pk);
  for (var i = lid; i < ${K}u; i += ${PREP_WG}u) {
    dq[o + i] = rq * (dq[o + i] - q[o + i] * rq * d.x);
    dk[o + i] = rk * (dk[o + i] - k[o + i] * rk * d.y);
  }
  let a = -exp(A_log[h]);
  for (var i = lid; i < ${GK}u; i += ${PREP_WG}u) {
    let z = g[row * ${GK}u + i] + dt_bias[h * ${GK}u + i];
    dg[row * ${GK}u + i] = dg[row * ${GK}u + i] * a * sigmoidF(z);
  }
  if (lid == 0u) {
    let sb = sigmoidF(beta[row]);
    db[row] = db[row] * sb * (1.0 - sb);
  }
}`;
}

export const PARAM_WG = 256;

/**
 * Per head: ddt_bias[h, c] = sum_t dg * -exp(A_log) sigmoid(z) and dA_log[h] = sum_{t,c} dg * g, with
 * z = g_raw + dt_bias and g = -exp(A_log) softplus(z) recomputed from the raw input. Reads the core dg,
 * so it runs before the row kernel rewrites dg in place.
 */
export function paramReduceWgsl(GK: number): string {
  if (PARAM_WG % GK !== 0) throw new Error(`kda: gate width ${GK} must divide ${PARAM_WG}`);
  return /* wgsl */ `
${bindings(PREP_PARAMS, ['gradG', 'g', 'A_log', 'dt_bias'], ['dA', 'ddt'])}
${PREP_FNS}
var<workgroup> sd: array<f32, ${PARAM_WG}>;
var<workgroup> sa: array<f32, ${PARAM_WG}>;
${computeMain(PARAM_WG)}
  let h = wid.x;
  let c = lid % ${GK}u;
  let a = exp(A_log[h]);
  let bias = dt_bias[h * ${GK}u + c];
  var accD = 0.0;
  var accA = 0.0;
  for (var i = lid / ${GK}u; i < p.rows; i += ${PARAM_WG / GK}u) {
    let idx = (i * p.H + h) * ${GK}u + c;
    let z = g[idx] + bias;
    let dgv = gradG[idx];
    // g = -a softplus(z): d/dz = -a sigmoid(z), d/dA_log = g.
    accD += dgv * -a * sigmoidF(z);
    accA += dgv * -a * softplusF(z);
  }
  sd[lid] = accD;
  sa[lid] = accA;
  workgroupBarrier();
  for (var s = ${PARAM_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      sa[lid] += sa[lid + s];
      if (s >= ${GK}u) { sd[lid] += sd[lid + s]; }
    }
    workgroupBarrier();
  }
  if (lid < ${GK}u) { ddt[h * ${GK}u + lid] = sd[lid]; }
  if (lid == 0u) { dA[h] = sa[0]; }
}`;
}

/**
 * Tokens per slice of the split reduction's first pass (at least; more when the slices would pass the 65535
 * workgroup limit): T = 4096 gives 64 slices x H heads of workgroups.
 */
export const PARAM_SLICE_ROWS = 64;

/** Tree over the PARAM_WG / GK row lanes of sd, sa (lane j holds entries j*GK .. j*GK+GK-1); ends at lid < GK. */
const laneTree = (GK: number) => /* wgsl */ `
  sd[lid] = accD;
  sa[lid] = accA;
  workgroupBarrier();
  for (var s = ${PARAM_WG / 2}u; s >= ${GK}u; s >>= 1u) {
    if (lid < s) { sd[lid] += sd[lid + s]; sa[lid] += sa[lid + s]; }
    workgroupBarrier();
  }`;

/**
 * Split pass 1, workgroup (slice s, head h): over tokens [s*R, min(s*R+R, rows)), R = p._a, the per-channel partial
 * sums of dg * -exp(A_log) sigmoid(z) and dg * g, written to partD, partA at [(s*H + h)*GK + c].
 */
export function paramReducePartialWgsl(GK: number): string {
  if (PARAM_WG % GK !== 0) throw new Error(`kda: gate width ${GK} must divide ${PARAM_WG}`);
  return /* wgsl */ `
${bindings(PREP_PARAMS, ['gradG', 'g', 'A_log', 'dt_bias'], ['partD', 'partA'])}
${PREP_FNS}
var<workgroup> sd: array<f32, ${PARAM_WG}>;
var<workgroup> sa: array<f32, ${PARAM_WG}>;
${computeMain(PARAM_WG)}
  let sl = wid.x;
  let h = wid.y;
  let c = lid % ${GK}u;
  let a = exp(A_log[h]);
  let bias = dt_bias[h * ${GK}u + c];
  let end = min(sl * p._a + p._a, p.rows);
  var accD = 0.0;
  var accA = 0.0;
  for (var i = sl * p._a + lid / ${GK}u; i < end; i += ${PARAM_WG / GK}u) {
    let idx = (i * p.H + h) * ${GK}u + c;
    let z = g[idx] + bias;
    let dgv = gradG[idx];
    accD += dgv * -a * sigmoidF(z);
    accA += dgv * -a * softplusF(z);
  }
${laneTree(GK)}
  if (lid < ${GK}u) {
    partD[(sl * p.H + h) * ${GK}u + lid] = sd[lid];
    partA[(sl * p.H + h) * ${GK}u + lid] = sa[lid];
  }
}`;
}

/**
 * Split pass 2, one workgroup per head: ddt[h, c] = sum over slices of partD, dA[h] = sum over slices and
 * channels of partA (p.rows = the number of slices here).
 */
export function paramReduceFinishWgsl(GK: number): string {
  if (PARAM_WG % GK !== 0) throw new Error(`kda: gate width ${GK} must divide ${PARAM_WG}`);
  return /* wgsl */ `
${bindings(PREP_PARAMS, ['partD', 'partA'], ['dA', 'ddt'])}
var<workgroup> sd: array<f32, ${PARAM_WG}>;
var<workgroup> sa: array<f32, ${PARAM_WG}>;
${computeMain(PARAM_WG)}
  let h = wid.x;
  let c = lid % ${GK}u;
  var accD = 0.0;
  var accA = 0.0;
  for (var i = lid / ${GK}u; i < p.rows; i += ${PARAM_WG / GK}u) {
    accD += partD[(i * p.H + h) * ${GK}u + c];
    accA += partA[(i * p.H + h) * ${GK}u + c];
  }
${laneTree(GK)}
  // sa[0 .. GK) holds dA per channel: the channels' sum is dA[h].
  ${
    GK > 1
      ? `for (var s = ${GK / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { sa[lid] += sa[lid + s]; }
    workgroupBarrier();
  }`
      : ''
  }
  if (lid < ${GK}u) { ddt[h * ${GK}u + lid] = sd[lid]; }
  if (lid == 0u) { dA[h] = sa[0]; }
}`;
}
