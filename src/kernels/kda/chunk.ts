import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { GpuProblem, KdaInputs } from './gpu.js';
export function dispatchChunkForward(
  _g: GpuContext,
  _p: GpuProblem,
  _cu: Tensor,
  _x: KdaInputs,
  _s: Tensor,
  _o: Tensor,
  _scale: number,
): void {
  throw new Error('todo');
}
