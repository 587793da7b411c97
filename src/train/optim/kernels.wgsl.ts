/**
 * WGSL for the optimizer steps. Every kernel updates f32 tensors in place, one element per invocation,
 * over a 1-D grid from grid1d. The gradient scale (1/accumulation times the global-norm clip factor) is
 * read on the device from a slot of the step's scalar buffer, so clipping needs no readback.
 */
import { linearGroup } from '../../kernels/common.js';

export const OPTIM_WG = 256;
/** Work-groups of the first sum-of-squares pass (the second pass sums their partials in one group). */
export const SUMSQ_GROUPS = 256;

const entry = (body: string) => /* wgsl */ `
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${OPTIM_WG}u + lid;
  if (i >= p.n) { return; }
${body}
}`;

/**
 * AdamW (Loshchilov & Hutter): m, v moments of the scaled gradient, bias-corrected, decoupled decay.
 * upd receives the change applied to w (for the update/weight RMS metric).
 */
export function adamwWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, coefSlot: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scalars: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read_write> upd: array<f32>;
${entry(`  let gs = g[i] * scalars[p.coefSlot];
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * gs;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * gs * gs;
  m[i] = mi;
  v[i] = vi;
  let u = -p.lr * ((mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps) + p.wd * w[i]);
  w[i] = w[i] + u;
  upd[i] = u;`)}`;
}

/** Muon's Nesterov momentum: m = mu*m + g; out = g + mu*m (the matrix that gets orthogonalised). */
export function muonMomentumWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, coefSlot: u32, mu: f32, _pad: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scalars: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
${entry(`  let gs = g[i] * scalars[p.coefSlot];
  let mi = p.mu * m[i] + gs;
  m[i] = mi;
  out[i] = gs + p.mu * mi;`)}`;
}

/** x / (||row||_F + eps) for x viewed as [R, L], with sumsq[R] the squared norms of the rows. */
export function normalizeRowsWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, rowLen: u32, eps: f32, _pad: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> sumsq: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${entry('  out[i] = x[i] / (sqrt(sumsq[i / p.rowLen]) + p.eps);')}`;
}

/** out = alpha * x + beta * y. */
export function axpbyWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, alpha: f32, beta: f32, _pad: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${entry('  out[i] = p.alpha * x[i] + p.beta * y[i];')}`;
}

/** Muon's apply: w <- w - lr * (scale * o + wd * w), with o the orthogonalised update in w's layout. */
export function muonApplyWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, lr: f32, scale: f32, wd: f32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> upd: array<f32>;
${entry(`  let u = -p.lr * (p.scale * o[i] + p.wd * w[i]);
  w[i] = w[i] + u;
  upd[i] = u;`)}`;
}

/** w[r, :] *= factor[r] for w viewed as [R, L] (QK-clip; factor 1 leaves a row alone). */
export function scaleRowsWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, rowLen: u32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> factor: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
${entry('  w[i] = w[i] * factor[i / p.rowLen];')}`;
}

/** Pass 1 of sum(x^2): each of nwg groups strides over x and leaves one partial sum. */
export function sumsqPartialWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, stride: u32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
var<workgroup> acc: array<f32, ${OPTIM_WG}>;
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  var s = 0.0;
  for (var i = wid.x * ${OPTIM_WG}u + lid; i < p.n; i += p.stride) { let v = x[i]; s += v * v; }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = ${OPTIM_WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[wid.x] = acc[0]; }
}`;
}

/**
 * Pass 1 of the squared Frobenius norms of R matrices x [R, L] (Newton-Schulz's normalisation): workgroup
 * (gi, r) strides over row r with G = nwg.x groups and leaves partial[r G + gi]. A whole row per workgroup
 * (as a plain reduce does) gave 39 workgroups for the 39 [768, 768] projections: 5 ms per Muon step.
 */
export function sumsqRowsPartialWgsl(): string {
  return /* wgsl */ `
struct Params { L: u32, _p0: u32, _p1: u32, _p2: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
var<workgroup> acc: array<f32, ${OPTIM_WG}>;
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let base = wid.y * p.L;
  var s = 0.0;
  for (var i = wid.x * ${OPTIM_WG}u + lid; i < p.L; i += nwg.x * ${OPTIM_WG}u) { let v = x[base + i]; s += v * v; }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = ${OPTIM_WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[wid.y * nwg.x + wid.x] = acc[0]; }
}`;
}

/** Pass 2: out[r] = sum of row r's G partials (one workgroup per row). */
export function sumsqRowsFinishWgsl(): string {
  return /* wgsl */ `
struct Params { G: u32, _p0: u32, _p1: u32, _p2: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> acc: array<f32, ${OPTIM_WG}>;
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  var s = 0.0;
  for (var i = lid; i < p.G; i += ${OPTIM_WG}u) { s += partial[wid.x * p.G + i]; }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = ${OPTIM_WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[wid.x] = acc[0]; }
}`;
}

/**
 * Pass 2: out[slot] = sum of the partials. With clip mode (maxNorm >= 0) it instead reads the squared
 * norms in out[first .. first+count), writes the global norm of the averaged gradient to out[slot] and
 * the gradient factor gradScale * min(1, maxNorm / (norm + 1e-6)) to out[slot + 1].
 */
export function sumsqFinishWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, slot: u32, first: u32, clip: u32, gradScale: f32, maxNorm: f32, _p0: u32, _p1: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> acc: array<f32, ${OPTIM_WG}>;
@compute @workgroup_size(${OPTIM_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.count; i += ${OPTIM_WG}u) {
    s += select(partial[i], out[p.first + i], p.clip == 1u);
  }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = ${OPTIM_WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    if (p.clip == 1u) {
      let norm = sqrt(acc[0]) * p.gradScale;
      var f = p.gradScale;
      if (p.maxNorm > 0.0) { f = p.gradScale * min(1.0, p.maxNorm / (norm + 1e-6)); }
      out[p.slot] = norm;
      out[p.slot + 1u] = f;
    } else {
      out[p.slot] = acc[0];
    }
  }
}`;
}
