/**
 * Residual add + RMSNorm in one pass, one workgroup per row (the layout of rmsnorm.wgsl.ts): each thread
 * forms its elements of y = x + (d0 [+ d1]), writes them, and sums their squares; a tree reduction
 * gives the row's sum of squares; then n = w * (y * inv). Same arithmetic as the unfused add and
 * rmsnorm kernels, one dispatch instead of two (three with the MoE shared-expert add).
 */
import { linearGroup } from '../common.js';
import { type FloatDType, loadFn, storageElem, workgroupReduce } from '../wgslLib.js';
import { subgroupReduceWgsl } from './sweep.js';

export const ADD_NORM_WG = 256;

export interface AddNormVariant {
  deltas: 1 | 2;
  wDtype: FloatDType;
  /** The sum of squares by subgroup shuffles for subgroups of this size (decodeTuning.subgroupSumsRest); unset: the tree. */
  sg?: number;
}

export function addNormKey(v: AddNormVariant): string {
  return `add_rmsnorm_d${v.deltas}_${v.wDtype}${v.sg ? `_sg${v.sg}` : ''}`;
}

export function addNormWgsl(v: AddNormVariant): string {
  const two = v.deltas === 2;
  const wb = two ? 4 : 3;
  return /* wgsl */ `${v.sg ? '\nenable subgroups;' : ''}
struct Params { rows: u32, D: u32, eps: f32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> d0: array<f32>;
${two ? '@group(0) @binding(3) var<storage, read> d1: array<f32>;' : ''}
@group(0) @binding(${wb}) var<storage, read> w: array<${storageElem(v.wDtype)}>;
@group(0) @binding(${wb + 1}) var<storage, read_write> y: array<f32>;
@group(0) @binding(${wb + 2}) var<storage, read_write> n: array<f32>;
${loadFn('weight', 'w', v.wDtype)}
${v.sg ? subgroupReduceWgsl('red', ADD_NORM_WG, v.sg) : workgroupReduce('red', ADD_NORM_WG, 'f32', 'a + b')}
@compute @workgroup_size(${ADD_NORM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${linearGroup};
  if (row >= p.rows) { return; }
  let base = row * p.D;
  var ss = 0.0;
  for (var i = lid; i < p.D; i += ${ADD_NORM_WG}u) {
    let v = x[base + i] + ${two ? '(d0[base + i] + d1[base + i])' : 'd0[base + i]'};
    y[base + i] = v;
    ss += v * v;
  }
  let total = redReduce(lid, ss);
  let inv = 1.0 / sqrt(total / f32(p.D) + p.eps);
  for (var i = lid; i < p.D; i += ${ADD_NORM_WG}u) {
    n[base + i] = weight(i) * (y[base + i] * inv);
  }
}`;
}
