/**
 * embedding(table [V, D] f32|bf16, ids i32 [...]) -> f32 [..., D]. On webgpu an out-of-range id is
 * clamped into [0, V) (no out-of-bounds read, no host round-trip to check); on cpu it throws, naming
 * the id and V.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import type { FloatDType } from '../wgslLib.js';
import { embeddingWgsl } from './embedding.wgsl.js';
import { embeddingReference } from './reference.js';

export function embedding(table: Tensor, ids: Tensor): Tensor {
  const device = deviceOf('embedding', table, ids);
  expectDType('embedding', 'table', table, ['f32', 'bf16']);
  expectDType('embedding', 'ids', ids, ['i32']);
  expectShape('embedding', 'table', table, [null, null]);
  const [V, D] = table.shape;
  if (V === 0) throw new Error('embedding: the table has no rows');
  const N = ids.numel;
  const outShape = [...ids.shape, D];
  const gpu = asGpu(device);
  if (!gpu) return cpu.fromHost(embeddingReference(hostF32(table), hostI32(ids), V, D), outShape);
  const tc = contiguous(table);
  const ic = contiguous(ids);
  const out = gpu.empty(outShape);
  const dtype = table.dtype as FloatDType;
  if (N > 0 && D > 0) {
    gpu.dispatch({
      kernel: { name: `embedding_${dtype}`, code: () => embeddingWgsl(dtype) },
      tensors: [tc, ic, out],
      params: new Params().u32(N, V, D, 0),
      workgroups: grid1d(N, 1),
    });
  }
  tc.dispose();
  ic.dispose();
  return out;
}
