/** WebGPU paths of backward.ts (dispatch recording only; shapes are checked by the caller). */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { AttentionGradients, AttentionWithStats } from './backward.js';
import type { AttentionDims } from './reference.js';

export function attentionWithStatsGpu(
  _gpu: GpuContext,
  _q: Tensor,
  _k: Tensor,
  _v: Tensor,
  _d: AttentionDims,
): AttentionWithStats {
  throw new Error('attentionWithStats: the WebGPU kernel is not written yet (cpu backend only)');
}

export function attentionBackwardGpu(
  _gpu: GpuContext,
  _q: Tensor,
  _k: Tensor,
  _v: Tensor,
  _o: Tensor,
  _lse: Tensor,
  _dO: Tensor,
  _d: AttentionDims,
): AttentionGradients {
  throw new Error('attentionBackward: the WebGPU kernel is not written yet (cpu backend only)');
}
