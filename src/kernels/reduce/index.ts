/**
 * reduce(x [..., D], 'sum' | 'mean' | 'max') -> f32 [...] and argmax(x [..., D]) -> i32 [...] (first
 * index of the maximum), over the last dimension.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { rowsOf } from '../wgslLib.js';
import { type ReduceKind, reduceWgsl } from './reduce.wgsl.js';
import { argmaxReference, type ReduceOp, reduceReference } from './reference.js';

export type { ReduceOp } from './reference.js';

const OPS: readonly ReduceKind[] = ['sum', 'mean', 'max', 'argmax'];

function run(x: Tensor, kind: ReduceKind): Tensor {
  const where = `reduce(${kind})`;
  if (!OPS.includes(kind)) throw new Error(`reduce: op '${kind}', expected one of ${OPS.join(', ')}`);
  const device = deviceOf(where, x);
  expectDType(where, 'x', x, ['f32']);
  if (x.rank < 1) throw new Error(`${where}: x is a scalar, expected [..., D]`);
  const { rows, D } = rowsOf(x.shape);
  if (D === 0 && kind !== 'sum') throw new Error(`${where}: the last dimension is empty`);
  const outShape = x.shape.slice(0, -1);
  const outDtype = kind === 'argmax' ? 'i32' : 'f32';
  const gpu = asGpu(device);
  if (!gpu) {
    const h = hostF32(x);
    const r = kind === 'argmax' ? argmaxReference(h, rows, D) : reduceReference(h, rows, D, kind);
    return cpu.fromHost(r, outShape, outDtype);
  }
  const xc = contiguous(x);
  const out = gpu.empty(outShape, outDtype);
  if (rows > 0) {
    gpu.dispatch({
      kernel: { name: `reduce_${kind}`, code: () => reduceWgsl(kind) },
      tensors: [xc, out],
      params: new Params().u32(rows, D).f32(Number.NEGATIVE_INFINITY).u32(0),
      workgroups: grid1d(rows, 1),
    });
  }
  xc.dispose();
  return out;
}

/** sum / mean / max over the last dimension: [..., D] -> [...], f32. */
export function reduce(x: Tensor, op: ReduceOp): Tensor {
  return run(x, op);
}

/** Index of the first maximum over the last dimension: [..., D] -> [...], i32. */
export function argmax(x: Tensor): Tensor {
  return run(x, 'argmax');
}
