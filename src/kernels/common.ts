/**
 * What every op shares: finding the device of its inputs, host views for the cpu references, and
 * helpers for WGSL dispatch geometry. Each op lives in its own folder with `reference.ts` (plain TS,
 * the definition), `*.wgsl.ts` (the kernel source) and `index.ts` (the op users call, which checks
 * shapes once and runs the reference on the cpu backend or the kernel on webgpu).
 */
import { GpuContext } from '../gpu/context.js';
import { CpuDevice } from '../tensor/cpuDevice.js';
import { type DType, toF32 } from '../tensor/dtype.js';
import { formatShape, ShapeError } from '../tensor/shape.js';
import type { Device, Tensor } from '../tensor/tensor.js';

export function deviceOf(op: string, ...tensors: Tensor[]): Device {
  const d = tensors[0].device;
  for (const t of tensors) {
    t.assertAlive(`${op}: input`);
    if (t.device !== d) throw new Error(`${op}: inputs live on different devices (${d.backend} and ${t.backend})`);
  }
  return d;
}

export function asGpu(d: Device): GpuContext | undefined {
  return d instanceof GpuContext ? d : undefined;
}

export function asCpu(d: Device): CpuDevice | undefined {
  return d instanceof CpuDevice ? d : undefined;
}

/** A tensor's values as f32 for the reference implementations (copies only when it must). */
export function hostF32(t: Tensor): Float32Array {
  const dev = t.device as CpuDevice;
  const v = dev.view(t);
  return t.dtype === 'f32' ? (v as Float32Array) : toF32(t.dtype, v);
}

export function hostI32(t: Tensor): Int32Array {
  if (t.dtype !== 'i32') throw new Error(`expected an i32 tensor, got ${t.dtype}`);
  return (t.device as CpuDevice).view(t) as Int32Array;
}

export function expectDType(op: string, name: string, t: Tensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new TypeError(`${op}: ${name} has dtype ${t.dtype}, expected ${allowed.join(' or ')}`);
  }
}

export function expectShape(op: string, name: string, t: Tensor, shape: readonly (number | null)[]): void {
  const ok = t.rank === shape.length && shape.every((d, i) => d === null || d === t.shape[i]);
  if (!ok) {
    const want = `[${shape.map((d) => (d === null ? '*' : d)).join(', ')}]`;
    throw new ShapeError(`${op}: ${name} has shape ${formatShape(t.shape)}, expected ${want}`);
  }
}

/**
 * Workgroup counts for `n` independent items of `perGroup` each, folded into 2-D when one dimension
 * would pass the 65535 limit. Kernels recover the linear group index with `linearGroup` below.
 */
export function grid1d(n: number, perGroup: number, maxPerDim = 65535): [number, number] {
  const groups = Math.max(1, Math.ceil(n / perGroup));
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}

/** WGSL: the linear workgroup index for a grid made by grid1d (uses `wid` and `nwg` builtins). */
export const linearGroup = '(wid.x + wid.y * nwg.x)';
