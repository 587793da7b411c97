/**
 * Row normalisation, one workgroup per row: 256 threads stride over the row (coalesced) summing x^2,
 * a tree reduction in workgroup memory gives the row's sum to every thread, then each thread scales
 * its elements. `rms` divides by sqrt(mean + eps) and multiplies by a weight [D] (f32 or bf16);
 * `l2` divides by sqrt(sum + eps) with no weight. A gated rms also multiplies by sigmoid(gate).
 */
import { linearGroup } from '../common.js';
import { subgroupReduceWgsl } from '../fused/sweep.js';
import { type FloatDType, loadFn, storageElem, WGSL_SIGMOID, workgroupReduce } from '../wgslLib.js';

export const NORM_WG = 256;

export interface NormVariant {
  kind: 'rms' | 'l2';
  /** The weight's dtype (rms only). */
  wDtype?: FloatDType;
  /** rms only: multiply by sigmoid(gate[row, i]) (KDA's gated output norm) in the same pass. */
  gated?: boolean;
  /**
   * The sum of squares by subgroup shuffles for subgroups of this size (a decode step's norm:
   * fused/sweep.ts decodeTuning.subgroupSumsRest); unset: the tree.
   */
  sg?: number;
}

export function normKey(v: NormVariant): string {
  return `rownorm_${v.kind}_${v.wDtype ?? 'none'}${v.gated ? '_gated' : ''}${v.sg ? `_sg${v.sg}` : ''}`;
}

export function normWgsl(v: NormVariant): string {
  const rms = v.kind === 'rms';
  const wDtype = v.wDtype ?? 'f32';
  const gated = rms && !!v.gated;
  return /* wgsl */ `${v.sg ? '\nenable subgroups;' : ''}
struct Params { rows: u32, D: u32, eps: f32, _p: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${
  rms
    ? `@group(0) @binding(2) var<storage, read> w: array<${storageElem(wDtype)}>;
${gated ? '@group(0) @binding(3) var<storage, read> gate: array<f32>;' : ''}
@group(0) @binding(${gated ? 4 : 3}) var<storage, read_write> out: array<f32>;
${loadFn('weight', 'w', wDtype)}
${WGSL_SIGMOID}`
    : '@group(0) @binding(2) var<storage, read_write> out: array<f32>;'
}
${v.sg ? subgroupReduceWgsl('red', NORM_WG, v.sg) : workgroupReduce('red', NORM_WG, 'f32', 'a + b')}
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
  let total = redReduce(lid, ss);
  let inv = 1.0 / sqrt(${rms ? 'total / f32(p.D)' : 'total'} + p.eps);
  for (var i = lid; i < p.D; i += ${NORM_WG}u) {
    out[base + i] = ${rms ? 'weight(i) * ' : ''}(x[base + i] * inv)${gated ? ' * sigmoid(gate[base + i])' : ''};
  }
}`;
}
