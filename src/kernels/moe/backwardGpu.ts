/** WebGPU paths of backward.ts (dispatch recording only; shapes are checked by the caller). */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ExpertsGradients } from './backward.js';
import type { ExpertWeights, RouterConfig, RoutesT } from './index.js';

export interface ExpertsBackwardDims {
  N: number;
  D: number;
  I: number;
  E: number;
  k: number;
}

export function expertsBackwardGpu(
  _gpu: GpuContext,
  _x: Tensor,
  _routes: RoutesT,
  _w: ExpertWeights,
  _dy: Tensor,
  _d: ExpertsBackwardDims,
): ExpertsGradients {
  throw new Error('moe.expertsBackward: the WebGPU kernels are not written yet (cpu backend only)');
}

export function routeBackwardGpu(
  _gpu: GpuContext,
  _logits: Tensor,
  _idx: Tensor,
  _dWeights: Tensor,
  _cfg: RouterConfig,
  _N: number,
): Tensor {
  throw new Error('moe.routeBackward: the WebGPU kernel is not written yet (cpu backend only)');
}
