/**
 * The `cpu` backend: tensors in host memory, ops run by their plain-TS references. It is the oracle the
 * WebGPU kernels are tested against and the fallback where no adapter exists.
 */
import { type DType, type HostArray, hostArrayFor } from './dtype.js';
import { numel, type Shape } from './shape.js';
import { CpuStorage } from './storage.js';
import { gatherStrided } from './strided.js';
import { type Device, Tensor } from './tensor.js';

export class CpuDevice implements Device {
  readonly backend = 'cpu' as const;

  empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    return new Tensor(this, new CpuStorage(dtype, hostArrayFor(dtype, numel(shape))), shape);
  }

  zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
    return this.empty(shape, dtype);
  }

  write(t: Tensor, data: HostArray): void {
    if (!t.isContiguous) throw new Error('write() needs a contiguous tensor');
    if (data.length !== t.numel) throw new Error(`write: ${data.length} values into ${t}`);
    (t.storage as CpuStorage).data.set(data as ArrayLike<number>, t.offset);
  }

  fromHost(data: HostArray, shape: Shape, dtype: DType = 'f32'): Tensor {
    const n = numel(shape);
    if (data.length !== n) throw new Error(`fromHost: ${data.length} values for shape [${shape.join(', ')}] (${n})`);
    const copy = hostArrayFor(dtype, n);
    copy.set(data as ArrayLike<number>);
    return new Tensor(this, new CpuStorage(dtype, copy), shape);
  }

  /** The host array behind a tensor without copying when it is contiguous (for references). */
  view(t: Tensor): HostArray {
    t.assertAlive();
    const data = (t.storage as CpuStorage).data;
    if (t.isContiguous) return data.subarray(t.offset, t.offset + t.numel);
    return gatherStrided(data, t.dtype, t.shape, t.strides, t.offset);
  }

  async read(t: Tensor): Promise<HostArray> {
    return this.view(t).slice();
  }

  async sync(): Promise<void> {}
}

export const cpu = new CpuDevice();
