/**
 * `castTo(t, dtype)`: a dense copy of `t` in f32 or bf16 (castWgsl; on the cpu backend the same rounding by
 * src/tensor/dtype.ts). Same dtype: a new handle on a dense copy (contiguous). The caller owns the result.
 */
import { Params } from '../../gpu/params.js';
import type { CpuDevice } from '../../tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, grid1d } from '../common.js';
import { CAST_WG, castWgsl } from './cast.wgsl.js';
import { contiguous } from './index.js';

export function castTo(t: Tensor, dtype: 'f32' | 'bf16'): Tensor {
  if (t.dtype !== 'f32' && t.dtype !== 'bf16') {
    throw new Error(`castTo: ${t} is ${t.dtype}, expected f32 or bf16`);
  }
  const c = contiguous(t);
  if (t.dtype === dtype) return c;
  const gpu = asGpu(t.device);
  if (!gpu) {
    const dev = t.device as CpuDevice;
    const host = dev.view(c);
    const data = dtype === 'bf16' ? f32ArrayToBf16(host as Float32Array) : bf16ArrayToF32(host as Uint16Array);
    c.dispose();
    return dev.fromHost(data, t.shape, dtype);
  }
  const out = gpu.empty(t.shape, dtype);
  const items = dtype === 'bf16' ? Math.ceil(t.numel / 2) : t.numel;
  gpu.dispatch({
    kernel: { name: `cast_${dtype}`, code: () => castWgsl(dtype) },
    tensors: [c, out],
    params: new Params().u32(t.numel, 0, 0, 0),
    workgroups: grid1d(items, CAST_WG),
  });
  c.dispose();
  return out;
}
