/**
 * `contiguous(t)`: a dense copy of any view, or a new handle on `t` when it already is dense (and, on
 * webgpu, aligned for binding). Ops call it on inputs they need dense; the result is always a tensor
 * the caller owns and disposes.
 */
import { Params } from '../../gpu/params.js';
import type { CpuDevice } from '../../tensor/cpuDevice.js';
import type { CpuStorage } from '../../tensor/storage.js';
import { type Device, Tensor } from '../../tensor/tensor.js';
import { asGpu, grid1d } from '../common.js';
import { COPY_MAX_RANK, COPY_WG, copyWgsl } from './copy.wgsl.js';
import { DENSE_COPY_WG, denseCopyWgsl } from './dense.wgsl.js';
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

/**
 * `copyInto(src, dst)`: dst <- src for two dense tensors of the same dtype and size (16-byte words;
 * the tail of a size that is not a multiple of 16 bytes goes through copyBufferToBuffer).
 */
export function copyInto(src: Tensor, dst: Tensor, opts: { workgroups?: number } = {}): void {
  if (src.dtype !== dst.dtype || src.numel !== dst.numel) {
    throw new Error(`copyInto: ${src} and ${dst} differ in dtype or size`);
  }
  const gpu = asGpu(src.device);
  if (!gpu) {
    const s = contiguous(src);
    (dst.storage as CpuStorage).data.set(
      (s.storage as CpuStorage).data.subarray(s.offset, s.offset + s.numel),
      dst.offset,
    );
    s.dispose();
    return;
  }
  const bytes = src.numel * (src.dtype === 'bf16' ? 2 : 4);
  const words = Math.floor(bytes / 16);
  const groups = Math.max(1, Math.min(opts.workgroups ?? 4096, Math.ceil(words / DENSE_COPY_WG)));
  if (words > 0) {
    gpu.dispatch({
      kernel: { name: 'copy_dense', code: denseCopyWgsl },
      tensors: [src, dst],
      params: new Params().u32(words, 0, groups * DENSE_COPY_WG, 0),
      workgroups: [groups],
    });
  }
  const tailBytes = bytes - words * 16;
  if (tailBytes > 0) {
    const bpe = src.dtype === 'bf16' ? 2 : 4;
    const first = (words * 16) / bpe;
    gpu.copyBytes(src, first, dst, first, src.numel - first);
  }
}

/**
 * Rows of several tensors [n_i, ...rest] (one dtype, same trailing shape) stacked into one new
 * [sum n_i, ...rest] tensor by byte copies, so a row may sit at any offset of its storage. On webgpu the
 * copies need every part's bytes to start and end on a 4-byte boundary (always so for f32).
 */
export function stackRows(device: Device, parts: readonly Tensor[]): Tensor {
  const rest = parts.length ? parts[0].shape.slice(1) : [];
  const n = parts.reduce((s, t) => s + t.shape[0], 0);
  const out = device.empty([n, ...rest], parts[0]?.dtype ?? 'f32');
  const gpu = asGpu(device);
  let at = 0;
  for (const part of parts) {
    // Byte copies need the rows dense, not a bindable offset: a dense view is copied from where it is.
    const c = part.isContiguous ? part : contiguous(part);
    if (gpu) {
      if (c.numel) gpu.copyBytes(c, 0, out, at, c.numel);
    } else {
      const src = (c.storage as CpuStorage).data.subarray(c.offset, c.offset + c.numel);
      (out.storage as CpuStorage).data.set(src, out.offset + at);
    }
    at += c.numel;
    if (c !== part) c.dispose();
  }
  return out;
}
