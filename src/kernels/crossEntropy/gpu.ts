/** WebGPU paths of index.ts (dispatch recording only; shapes are checked by the caller). */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { CrossEntropyOutput, LinearCrossEntropyOutput } from './index.js';

export function crossEntropyGpu(
  _gpu: GpuContext,
  _logits: Tensor,
  _targets: Tensor,
  _d: { N: number; V: number; ignoreIndex: number },
): CrossEntropyOutput {
  throw new Error('crossEntropy: the WebGPU kernel is not written yet (cpu backend only)');
}

export function linearCrossEntropyGpu(
  _gpu: GpuContext,
  _h: Tensor,
  _weight: Tensor,
  _targets: Tensor,
  _d: { N: number; D: number; V: number; ignoreIndex: number; chunkRows: number },
): LinearCrossEntropyOutput {
  throw new Error('linearCrossEntropy: the WebGPU kernel is not written yet (cpu backend only)');
}
