/**
 * The step's scalar buffer: every number the trainer wants from a step (loss, squared norms, the clip
 * factor, the model's statistics, A_log) is written or copied into slots of one f32 device tensor, so a
 * step costs exactly one readback. i32 statistics (expert counts) are copied bit for bit and
 * reinterpreted on the host.
 */
import { asGpu } from '../kernels/common.js';
import type { CpuDevice } from '../tensor/cpuDevice.js';
import type { Device, Tensor } from '../tensor/tensor.js';

interface Entry {
  offset: number;
  length: number;
  kind: 'f32' | 'i32';
}

export class ScalarBuffer {
  readonly tensor: Tensor;
  private used = 0;
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly device: Device,
    readonly capacity: number,
  ) {
    this.tensor = device.zeros([capacity]);
  }

  /** Reserve `length` slots under `name`; returns the first slot. */
  slot(name: string, length = 1, kind: 'f32' | 'i32' = 'f32'): number {
    if (this.entries.has(name)) throw new Error(`scalar buffer: '${name}' reserved twice`);
    if (this.used + length > this.capacity) {
      throw new Error(`scalar buffer: '${name}' needs ${length} slots, only ${this.capacity - this.used} left`);
    }
    const offset = this.used;
    this.entries.set(name, { offset, length, kind });
    this.used += length;
    return offset;
  }

  /** Record a copy of a dense f32/i32 tensor's elements into new slots named `name`. */
  copyFrom(name: string, t: Tensor): void {
    if (t.dtype !== 'f32' && t.dtype !== 'i32')
      throw new Error(`scalar buffer: '${name}' is ${t.dtype}, expected f32 or i32`);
    const offset = this.slot(name, t.numel, t.dtype);
    const gpu = asGpu(this.device);
    if (gpu) {
      gpu.copyBytes(t, 0, this.tensor, offset, t.numel);
      return;
    }
    const src = (t.device as CpuDevice).view(t);
    const dst = (this.device as CpuDevice).view(this.tensor) as Float32Array;
    if (t.dtype === 'i32') new Int32Array(dst.buffer, dst.byteOffset, dst.length).set(src as Int32Array, offset);
    else dst.set(src as Float32Array, offset);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The one readback: every named entry as numbers. */
  async read(): Promise<Map<string, number[]>> {
    const data = (await this.tensor.read()) as Float32Array;
    const ints = new Int32Array(data.buffer, data.byteOffset, data.length);
    const out = new Map<string, number[]>();
    for (const [name, e] of this.entries) {
      const src = e.kind === 'i32' ? ints : data;
      out.set(name, Array.from(src.subarray(e.offset, e.offset + e.length)));
    }
    return out;
  }

  dispose(): void {
    this.tensor.dispose();
  }
}
