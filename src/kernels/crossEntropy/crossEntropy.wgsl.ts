/**
 * Cross-entropy kernels:
 *   count       one workgroup: C = number of counted rows (target in [0, V) and not ignoreIndex), and 1/C
 *               (0 when C = 0, so an all-ignored batch gives loss 0 and zero gradients, not NaN)
 *   rows        one workgroup per row: an online logsumexp over V (each thread keeps a running max and
 *               sum over its strided share, then a tree merge), the row's loss lse - z_target, then the
 *               gradient (softmax - onehot) / C over the row. In place (over the logits) for the fused
 *               LM-head path, whose logits chunk is scratch.
 *   finish      one workgroup: loss = (sum of row losses) / C, in a fixed order (deterministic)
 *   accumulate  dst += src (the dW sum over row chunks)
 * A target outside [0, V) that is not ignoreIndex cannot raise an error on the GPU; such a row is treated
 * as ignored (never read out of bounds).
 */
import { linearGroup } from '../common.js';

export const CE_WG = 256;
export const ACC_WG = 256;

const valid = 'tgt != p.ignoreIndex && tgt >= 0 && tgt < i32(p.V)';

export function countWgsl(): string {
  return /* wgsl */ `
struct Params { N: u32, V: u32, ignoreIndex: i32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
var<workgroup> part: array<u32, ${CE_WG}>;
@compute @workgroup_size(${CE_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var n = 0u;
  for (var i = lid; i < p.N; i += ${CE_WG}u) {
    let tgt = targets[i];
    if (${valid}) { n++; }
  }
  part[lid] = n;
  workgroupBarrier();
  for (var s = ${CE_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let c = part[0];
    stats[0] = f32(c);
    stats[1] = select(0.0, 1.0 / f32(c), c > 0u);
  }
}`;
}

export function rowsKey(inPlace: boolean): string {
  return `cross_entropy_rows_${inPlace ? 'inplace' : 'out'}`;
}

/** Rows of a [nRows, V] logits block whose row 0 is global row rowOff (targets and rowLoss are global). */
export function rowsWgsl(inPlace: boolean): string {
  return /* wgsl */ `
struct Params { nRows: u32, V: u32, ignoreIndex: i32, rowOff: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, ${inPlace ? 'read_write' : 'read'}> Z: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;
${inPlace ? '' : '@group(0) @binding(5) var<storage, read_write> G: array<f32>;'}
var<workgroup> pm: array<f32, ${CE_WG}>;
var<workgroup> ps: array<f32, ${CE_WG}>;
@compute @workgroup_size(${CE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${linearGroup};
  if (row >= p.nRows) { return; }
  let base = row * p.V;
  var m = -3.0e38;
  var s = 0.0;
  for (var v = lid; v < p.V; v += ${CE_WG}u) {
    let x = Z[base + v];
    if (x > m) { s = s * exp(m - x) + 1.0; m = x; } else { s += exp(x - m); }
  }
  pm[lid] = m;
  ps[lid] = s;
  workgroupBarrier();
  for (var st = ${CE_WG / 2}u; st > 0u; st >>= 1u) {
    if (lid < st) {
      let m2 = pm[lid + st];
      let mm = max(pm[lid], m2);
      ps[lid] = ps[lid] * exp(pm[lid] - mm) + ps[lid + st] * exp(m2 - mm);
      pm[lid] = mm;
    }
    workgroupBarrier();
  }
  let lse = pm[0] + log(ps[0]);
  let tgt = targets[row + p.rowOff];
  let ok = ${valid};
  let ti = u32(clamp(tgt, 0, i32(p.V) - 1));
  if (lid == 0u) { rowLoss[row + p.rowOff] = select(0.0, lse - Z[base + ti], ok); }
  // The in-place gradient below overwrites z_target, which thread 0 has just read.
  workgroupBarrier();
  let scale = select(0.0, stats[1], ok);
  for (var v = lid; v < p.V; v += ${CE_WG}u) {
    let g = (exp(Z[base + v] - lse) - select(0.0, 1.0, v == ti)) * scale;
    ${inPlace ? 'Z' : 'G'}[base + v] = g;
  }
}`;
}

export function finishWgsl(): string {
  return /* wgsl */ `
struct Params { N: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rowLoss: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
var<workgroup> part: array<f32, ${CE_WG}>;
@compute @workgroup_size(${CE_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.N; i += ${CE_WG}u) { acc += rowLoss[i]; }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${CE_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { loss[0] = part[0] * stats[1]; }
}`;
}

export function accumulateWgsl(): string {
  return /* wgsl */ `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${ACC_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${ACC_WG}u + lid;
  if (i < p.n) { dst[i] += src[i]; }
}`;
}
