/**
 * Zero-filled scratch through a compute dispatch rather than clearBuffer, so that every KDA op can be
 * recorded inside a timed compute pass (GpuContext.time forbids encoder-level copies and clears).
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Shape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { grid1d, linearGroup } from '../common.js';

const WG = 256;

const code = () => /* wgsl */ `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${WG}u + lid;
  if (i < p.n) { dst[i] = 0.0; }
}`;

export function zerosF32(gpu: GpuContext, shape: Shape): Tensor {
  const t = gpu.empty(shape);
  zeroFill(gpu, t);
  return t;
}

/** Zeros into the f32 tensor `t` (all of it), by one dispatch. */
export function zeroFill(gpu: GpuContext, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`zeroFill: ${t.dtype} tensor, expected f32`);
  gpu.dispatch({
    kernel: { name: 'kda_zero_fill', code },
    tensors: [t],
    params: new Params().u32(t.numel, 0, 0, 0),
    workgroups: grid1d(t.numel, WG),
  });
}
