import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { GpuGrads, GpuProblem, KdaInputs, LayerParams } from './gpu.js';
export function dispatchBackward(
  _g: GpuContext,
  _p: GpuProblem,
  _x: KdaInputs,
  _l: LayerParams | undefined,
  _dO: Tensor,
  _o: unknown,
): GpuGrads {
  throw new Error('todo');
}
