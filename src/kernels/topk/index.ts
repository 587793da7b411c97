/**
 * topk(x [..., E], k) -> { values f32 [..., k], indices i32 [..., k] }: the k largest of each row,
 * largest first, ties to the lower index (k <= 64; MoE routing uses E up to 256, k up to 8).
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { rowsOf } from '../wgslLib.js';
import { TOPK_MAX_K, topkReference } from './reference.js';
import { topkWgsl } from './topk.wgsl.js';

export { TOPK_MAX_K } from './reference.js';

export interface TopK {
  values: Tensor;
  indices: Tensor;
}

export function topk(x: Tensor, k: number): TopK {
  const device = deviceOf('topk', x);
  expectDType('topk', 'x', x, ['f32']);
  if (x.rank < 1) throw new Error('topk: x is a scalar, expected [..., E]');
  const { rows, D: E } = rowsOf(x.shape);
  if (!Number.isInteger(k) || k < 1 || k > TOPK_MAX_K || k > E) {
    throw new RangeError(`topk: k = ${k}, expected an integer in [1, min(${TOPK_MAX_K}, E = ${E})]`);
  }
  const outShape = [...x.shape.slice(0, -1), k];
  const gpu = asGpu(device);
  if (!gpu) {
    const r = topkReference(hostF32(x), rows, E, k);
    return { values: cpu.fromHost(r.values, outShape), indices: cpu.fromHost(r.indices, outShape, 'i32') };
  }
  const xc = contiguous(x);
  const values = gpu.empty(outShape);
  const indices = gpu.empty(outShape, 'i32');
  if (rows > 0) {
    gpu.dispatch({
      kernel: { name: 'topk', code: topkWgsl },
      tensors: [xc, values, indices],
      params: new Params().u32(rows, E, k).f32(Number.NEGATIVE_INFINITY),
      workgroups: grid1d(rows, 1),
    });
  }
  xc.dispose();
  return { values, indices };
}
