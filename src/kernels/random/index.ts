/** randomUniform: a tensor of uniform values in [lo, hi) from a seed, generated where it lives. */
import { Params } from '../../gpu/params.js';
import type { DType } from '../../tensor/dtype.js';
import { f32ArrayToBf16 } from '../../tensor/dtype.js';
import { numel, type Shape } from '../../tensor/shape.js';
import type { Device, Tensor } from '../../tensor/tensor.js';
import { asGpu, grid1d } from '../common.js';
import { RANDOM_WG, randomWgsl } from './random.wgsl.js';
import { randomUniformReference } from './reference.js';

export function randomUniform(
  device: Device,
  shape: Shape,
  opts: { seed?: number; lo?: number; hi?: number; dtype?: Extract<DType, 'f32' | 'bf16'> } = {},
): Tensor {
  const { seed = 0, lo = -1, hi = 1, dtype = 'f32' } = opts;
  const n = numel(shape);
  const gpu = asGpu(device);
  if (!gpu) {
    const values = randomUniformReference(n, seed, lo, hi);
    return device.fromHost(dtype === 'bf16' ? f32ArrayToBf16(values) : values, shape, dtype);
  }
  const out = gpu.empty(shape, dtype);
  gpu.dispatch({
    kernel: { name: `random_uniform_${dtype}`, code: () => randomWgsl(dtype) },
    tensors: [out],
    params: new Params().u32(n, seed).f32(lo, hi),
    workgroups: grid1d(dtype === 'bf16' ? Math.ceil(n / 2) : n, RANDOM_WG),
  });
  return out;
}
