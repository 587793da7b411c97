/**
 * embeddingBackward(ids i32 [...], dy [..., D], V) -> dTable f32 [V, D]: the gradient of
 * embedding(table, ids) with respect to the table (rows never looked up get zero). The cost of the
 * atomics-free kernel is in backward.wgsl.ts.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { embeddingBackwardReference } from './backwardReference.js';
import { embeddingBackwardWgsl } from './backward.wgsl.js';

export function embeddingBackward(ids: Tensor, dy: Tensor, V: number): Tensor {
  const device = deviceOf('embeddingBackward', ids, dy);
  expectDType('embeddingBackward', 'ids', ids, ['i32']);
  expectDType('embeddingBackward', 'dy', dy, ['f32']);
  const N = ids.numel;
  const D = dy.shape[dy.rank - 1];
  if (dy.numel !== N * D || dy.rank !== ids.rank + 1) {
    throw new ShapeError(`embeddingBackward: dy ${formatShape(dy.shape)} is not [...ids ${formatShape(ids.shape)}, D]`);
  }
  if (!(Number.isInteger(V) && V > 0)) throw new Error(`embeddingBackward: vocabulary size ${V}, expected > 0`);
  const gpu = asGpu(device);
  if (!gpu) return cpu.fromHost(embeddingBackwardReference(hostI32(ids), hostF32(dy), V, D), [V, D]);
  const ic = contiguous(ids);
  const dc = contiguous(dy);
  const out = gpu.empty([V, D]);
  gpu.dispatch({
    kernel: { name: 'embedding_backward', code: embeddingBackwardWgsl },
    tensors: [ic, dc, out],
    params: new Params().u32(N, V, D, 0),
    workgroups: grid1d(V, 1),
  });
  ic.dispose();
  dc.dispose();
  return out;
}
