/**
 * rmsnorm backward, one workgroup per row (as the forward): a reduction for sum(x^2), a second for
 * sum(w dy xhat), then each thread writes its elements of dx, of the per-row weight gradient
 * dy * xhat (summed over rows afterwards by a reduction, so no atomics), and of dgate when gated.
 */
import { linearGroup } from '../common.js';
import { type FloatDType, loadFn, storageElem, WGSL_SIGMOID, workgroupReduce } from '../wgslLib.js';
import { NORM_WG } from './rmsnorm.wgsl.js';

export interface NormBackwardVariant {
  wDtype: FloatDType;
  gated: boolean;
}

export function normBackwardKey(v: NormBackwardVariant): string {
  return `rmsnorm_backward_${v.wDtype}${v.gated ? '_gated' : ''}`;
}

export function normBackwardWgsl(v: NormBackwardVariant): string {
  const g = v.gated;
  const b = g ? [1, 2, 3, 4, 5, 6, 7] : [1, 2, 3, 0, 4, 5, 0];
  return /* wgsl */ `
struct Params { rows: u32, D: u32, eps: f32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(${b[0]}) var<storage, read> x: array<f32>;
@group(0) @binding(${b[1]}) var<storage, read> w: array<${storageElem(v.wDtype)}>;
@group(0) @binding(${b[2]}) var<storage, read> dout: array<f32>;
${g ? `@group(0) @binding(${b[3]}) var<storage, read> gate: array<f32>;` : ''}
@group(0) @binding(${b[4]}) var<storage, read_write> dx: array<f32>;
@group(0) @binding(${b[5]}) var<storage, read_write> dwRows: array<f32>;
${g ? `@group(0) @binding(${b[6]}) var<storage, read_write> dgate: array<f32>;` : ''}
${loadFn('weight', 'w', v.wDtype)}
${WGSL_SIGMOID}
${workgroupReduce('red', NORM_WG, 'f32', 'a + b')}
// d loss / d y (before the gate) at element k of the row starting at base.
fn dyAt(base: u32, k: u32) -> f32 {
  return dout[base + k]${g ? ' * sigmoid(gate[base + k])' : ''};
}
@compute @workgroup_size(${NORM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${linearGroup};
  if (row >= p.rows) { return; }
  let base = row * p.D;
  var ss = 0.0;
  for (var i = lid; i < p.D; i += ${NORM_WG}u) {
    let v = x[base + i];
    ss += v * v;
  }
  let inv = 1.0 / sqrt(redReduce(lid, ss) / f32(p.D) + p.eps);
  var dot = 0.0;
  for (var i = lid; i < p.D; i += ${NORM_WG}u) {
    dot += weight(i) * dyAt(base, i) * x[base + i] * inv;
  }
  let mean = redReduce(lid, dot) / f32(p.D);
  for (var i = lid; i < p.D; i += ${NORM_WG}u) {
    let xhat = x[base + i] * inv;
    let dy = dyAt(base, i);
    dx[base + i] = inv * (weight(i) * dy - xhat * mean);
    dwRows[base + i] = dy * xhat;
${
  g
    ? `    let s = sigmoid(gate[base + i]);
    dgate[base + i] = dout[base + i] * weight(i) * xhat * s * (1.0 - s);`
    : ''
}
  }
}`;
}
