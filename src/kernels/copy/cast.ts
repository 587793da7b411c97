/**
 * `castTo(t, dtype)`: a dense copy of `t` in f32 or bf16 (castWgsl; on the cpu backend the same rounding by
 * src/tensor/dtype.ts). Same dtype: a new handle on a dense copy (contiguous). The caller owns the result.
 * With `out` (webgpu only: a dense tensor of that dtype and t's size) the copy is written there and `out` returned.
 */
import { Params } from '../../gpu/params.js';
import type { CpuDevice } from '../../tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, grid1d } from '../common.js';
import { CAST_WG, castWgsl } from './cast.wgsl.js';
import { contiguous, copyInto } from './index.js';

export function castTo(t: Tensor, dtype: 'f32' | 'bf16', out?: Tensor): Tensor {
  if (t.dtype !== 'f32' && t.dtype !== 'bf16') {
    throw new Error(`castTo: ${t} is ${t.dtype}, expected f32 or bf16`);
  }
  if (out && (out.dtype !== dtype || out.numel !== t.numel)) {
    throw new Error(`castTo: out ${out} must be ${dtype} with ${t.numel} elements`);
  }
  const gpu = asGpu(t.device);
  if (out && !gpu) throw new Error('castTo: out is for the webgpu backend');
  const c = contiguous(t);
  if (t.dtype === dtype && !out) return c;
  if (!gpu) {
    const dev = t.device as CpuDevice;
    const host = dev.view(c);
    const data = dtype === 'bf16' ? f32ArrayToBf16(host as Float32Array) : bf16ArrayToF32(host as Uint16Array);
    c.dispose();
    return dev.fromHost(data, t.shape, dtype);
  }
  const dst = out ?? gpu.empty(t.shape, dtype);
  if (t.dtype === dtype) copyInto(c, dst);
  else {
    const items = dtype === 'bf16' ? Math.ceil(t.numel / 2) : t.numel;
    gpu.dispatch({
      kernel: { name: `cast_${dtype}`, code: () => castWgsl(dtype) },
      tensors: [c, dst],
      params: new Params().u32(t.numel, 0, 0, 0),
      workgroups: grid1d(items, CAST_WG),
    });
  }
  c.dispose();
  return dst;
}
