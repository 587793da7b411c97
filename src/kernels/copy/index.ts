/**
 * `contiguous(t)`: a dense copy of any view, or a new handle on `t` when it already is dense (and, on
 * webgpu, aligned for binding). Ops call it on inputs they need dense; the result is always a tensor
 * the caller owns and disposes.
 */
import { Params } from '../../gpu/params.js';
import type { CpuDevice } from '../../tensor/cpuDevice.js';
import type { CpuStorage } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';
import { asGpu, grid1d } from '../common.js';
import { COPY_MAX_RANK, COPY_WG, copyWgsl } from './copy.wgsl.js';
import { contiguousReference } from './reference.js';

export function contiguous(t: Tensor): Tensor {
  t.assertAlive('contiguous: input');
  const gpu = asGpu(t.device);
  if (!gpu) {
    if (t.isContiguous) return t.alias();
    const data = (t.storage as CpuStorage).data;
    const dense = contiguousReference(data, t.dtype, t.shape, t.strides, t.offset);
    return (t.device as CpuDevice).fromHost(dense, t.shape, t.dtype);
  }
  if (gpu.isBindable(t)) return t.alias();
  if (t.rank > COPY_MAX_RANK) throw new Error(`contiguous: rank ${t.rank} > ${COPY_MAX_RANK}`);
  const out = gpu.empty(t.shape, t.dtype);
  // Bind the whole storage from element 0; the kernel applies the view's offset and strides itself.
  const whole = new Tensor(t.device, t.storage, [t.storage.capacity]);
  try {
    const pad = 8 - t.rank;
    const params = new Params()
      .u32(t.numel, t.offset, t.rank, 0)
      .u32(...t.shape, ...new Array<number>(pad).fill(1))
      .u32(...t.strides, ...new Array<number>(pad).fill(0));
    const items = t.dtype === 'bf16' ? Math.ceil(t.numel / 2) : t.numel;
    gpu.dispatch({
      kernel: { name: `copy_strided_${t.dtype}`, code: () => copyWgsl(t.dtype) },
      tensors: [whole, out],
      params,
      workgroups: grid1d(items, COPY_WG),
    });
  } finally {
    whole.dispose();
  }
  return out;
}
