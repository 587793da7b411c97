/** WebGPU paths of index.ts (dispatch recording only; shapes are checked by the caller). */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { grid1d } from '../common.js';
import { contiguous } from '../copy/index.js';
import { matmul } from '../matmul/index.js';
import { ACC_WG, accumulateWgsl, countWgsl, finishWgsl, rowsKey, rowsWgsl } from './crossEntropy.wgsl.js';
import type { CrossEntropyOutput, LinearCrossEntropyOutput } from './index.js';

/** Row chunks start at multiples of this, so the chunk views of h, dh and targets stay bindable. */
const CHUNK_ALIGN = 64;

function count(gpu: GpuContext, targets: Tensor, N: number, V: number, ignoreIndex: number): Tensor {
  const stats = gpu.empty([2]);
  gpu.dispatch({
    kernel: { name: 'cross_entropy_count', key: 'cross_entropy_count', code: countWgsl },
    tensors: [targets, stats],
    params: new Params().u32(N, V).i32(ignoreIndex).u32(0),
    workgroups: [1],
  });
  return stats;
}

function rows(
  gpu: GpuContext,
  z: Tensor,
  targets: Tensor,
  stats: Tensor,
  rowLoss: Tensor,
  out: Tensor | undefined,
  d: { rows: number; V: number; ignoreIndex: number; rowOff: number },
): void {
  const inPlace = !out;
  gpu.dispatch({
    kernel: { name: 'cross_entropy_rows', key: rowsKey(inPlace), code: () => rowsWgsl(inPlace) },
    tensors: out ? [z, targets, stats, rowLoss, out] : [z, targets, stats, rowLoss],
    params: new Params().u32(d.rows, d.V).i32(d.ignoreIndex).u32(d.rowOff),
    workgroups: grid1d(d.rows, 1),
  });
}

function finish(gpu: GpuContext, rowLoss: Tensor, stats: Tensor, N: number): Tensor {
  const loss = gpu.empty([1]);
  gpu.dispatch({
    kernel: { name: 'cross_entropy_finish', key: 'cross_entropy_finish', code: finishWgsl },
    tensors: [rowLoss, stats, loss],
    params: new Params().u32(N, 0, 0, 0),
    workgroups: [1],
  });
  return loss;
}

export function crossEntropyGpu(
  gpu: GpuContext,
  logits: Tensor,
  targets: Tensor,
  d: { N: number; V: number; ignoreIndex: number },
): CrossEntropyOutput {
  const { N, V, ignoreIndex } = d;
  const [zc, tc] = [contiguous(logits), contiguous(targets)];
  const stats = count(gpu, tc, N, V, ignoreIndex);
  const rowLoss = gpu.empty([N]);
  const dLogits = gpu.empty([N, V]);
  rows(gpu, zc, tc, stats, rowLoss, dLogits, { rows: N, V, ignoreIndex, rowOff: 0 });
  const loss = finish(gpu, rowLoss, stats, N);
  for (const t of [zc, tc, stats, rowLoss]) t.dispose();
  return { loss, dLogits };
}

export function linearCrossEntropyGpu(
  gpu: GpuContext,
  h: Tensor,
  weight: Tensor,
  targets: Tensor,
  d: { N: number; D: number; V: number; ignoreIndex: number; chunkRows: number },
): LinearCrossEntropyOutput {
  const { N, D, V, ignoreIndex } = d;
  const chunk = Math.ceil(d.chunkRows / CHUNK_ALIGN) * CHUNK_ALIGN;
  const [hc, wc, tc] = [contiguous(h), contiguous(weight), contiguous(targets)];
  const stats = count(gpu, tc, N, V, ignoreIndex);
  const rowLoss = gpu.empty([N]);
  const dh = gpu.empty([N, D]);
  const dWeight = gpu.empty([V, D]);
  const partial = N > chunk ? gpu.empty([V, D]) : undefined;
  for (let r0 = 0; r0 < N; r0 += chunk) {
    const c = Math.min(chunk, N - r0);
    const hChunk = hc.narrow(0, r0, c);
    const dhChunk = dh.narrow(0, r0, c);
    // logits chunk = h_c W^T, turned into dL/dlogits in place: (softmax - onehot) / C.
    const z = matmul(hChunk, wc, { transB: true });
    rows(gpu, z, tc, stats, rowLoss, undefined, { rows: c, V, ignoreIndex, rowOff: r0 });
    matmul(z, wc, { out: dhChunk }).dispose();
    const first = r0 === 0;
    matmul(z, hChunk, { transA: true, out: first ? dWeight : partial }).dispose();
    if (!first && partial) {
      gpu.dispatch({
        kernel: { name: 'cross_entropy_accumulate', key: 'cross_entropy_accumulate', code: accumulateWgsl },
        tensors: [partial, dWeight],
        params: new Params().u32(V * D, 0, 0, 0),
        workgroups: grid1d(V * D, ACC_WG),
      });
    }
    for (const t of [hChunk, dhChunk, z]) t.dispose();
  }
  const loss = finish(gpu, rowLoss, stats, N);
  for (const t of [hc, wc, tc, stats, rowLoss]) t.dispose();
  partial?.dispose();
  return { loss, dh, dWeight };
}
