/**
 * Gradients of the MoE layer: expertsBackward (the SwiGLU experts and their mixing weights) and
 * routeBackward (router logits from the mixing-weight gradient). Formulas in backwardReference.ts.
 * On WebGPU the experts reuse the forward's plan (pairs grouped by expert), so every per-expert weight
 * gradient is a matmul over that expert's rows, with no host round trip and no float atomics.
 */
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32, hostI32 } from '../common.js';
import { expertsBackwardReference, routeBackwardReference } from './backwardReference.js';
import { expertsBackwardGpu, routeBackwardGpu } from './backwardGpu.js';
import type { ExpertWeights, RouterConfig, RoutesT } from './index.js';

export interface ExpertsGradients {
  /** [N, D] */
  dx: Tensor;
  /** [N, k] gradient of the mixing weights (feed to routeBackward). */
  dWeights: Tensor;
  /** [E, I, D] */
  dw1: Tensor;
  /** [E, I, D] */
  dw3: Tensor;
  /** [E, D, I] */
  dw2: Tensor;
}

function checkIdx(op: string, idx: Int32Array, E: number): void {
  for (let i = 0; i < idx.length; i++) {
    if (!(idx[i] >= 0 && idx[i] < E)) throw new RangeError(`${op}: routes.idx[${i}] = ${idx[i]}, expected 0..${E - 1}`);
  }
}

export function expertsBackward(x: Tensor, routes: RoutesT, w: ExpertWeights, dy: Tensor): ExpertsGradients {
  const op = 'moe.expertsBackward';
  const device = deviceOf(op, x, routes.idx, routes.weights, w.w1, w.w2, w.w3, dy);
  if (w.w1.rank !== 3) expectShape(op, 'w1', w.w1, [null, null, null]);
  const [E, I, D] = w.w1.shape;
  expectShape(op, 'x', x, [null, D]);
  const N = x.shape[0];
  expectShape(op, 'w3', w.w3, [E, I, D]);
  expectShape(op, 'w2', w.w2, [E, D, I]);
  expectShape(op, 'dy', dy, [N, D]);
  if (routes.idx.rank !== 2) expectShape(op, 'routes.idx', routes.idx, [N, null]);
  const k = routes.idx.shape[1];
  expectShape(op, 'routes.idx', routes.idx, [N, k]);
  expectShape(op, 'routes.weights', routes.weights, [N, k]);
  expectDType(op, 'routes.idx', routes.idx, ['i32']);
  for (const [n, t] of [
    ['x', x],
    ['routes.weights', routes.weights],
    ['w1', w.w1],
    ['w3', w.w3],
    ['w2', w.w2],
    ['dy', dy],
  ] as const)
    expectDType(op, n, t, ['f32']);
  const gpu = asGpu(device);
  if (gpu) return expertsBackwardGpu(gpu, x, routes, w, dy, { N, D, I, E, k });
  const idx = hostI32(routes.idx);
  checkIdx(op, idx, E);
  const r = expertsBackwardReference(
    hostF32(x),
    { idx, weights: hostF32(routes.weights) },
    hostF32(w.w1),
    hostF32(w.w3),
    hostF32(w.w2),
    hostF32(dy),
    { N, D, I, E, topK: k },
  );
  return {
    dx: cpu.fromHost(r.dx, [N, D]),
    dWeights: cpu.fromHost(r.dWeights, [N, k]),
    dw1: cpu.fromHost(r.dw1, [E, I, D]),
    dw3: cpu.fromHost(r.dw3, [E, I, D]),
    dw2: cpu.fromHost(r.dw2, [E, D, I]),
  };
}

/**
 * dLogits [N, E] from dWeights [N, k]. The bias only steers the selection (already in routes.idx), so it
 * gets no gradient and is accepted only to keep the forward's signature; its shape is still checked.
 */
export function routeBackward(
  logits: Tensor,
  bias: Tensor | undefined,
  routes: RoutesT,
  dWeights: Tensor,
  cfg: RouterConfig,
): Tensor {
  const op = 'moe.routeBackward';
  const device = deviceOf(op, logits, routes.idx, dWeights, ...(bias ? [bias] : []));
  const E = cfg.numExperts;
  const k = cfg.topK;
  expectShape(op, 'router logits', logits, [null, E]);
  const N = logits.shape[0];
  if (bias) expectShape(op, 'e_score_correction_bias', bias, [E]);
  expectShape(op, 'routes.idx', routes.idx, [N, k]);
  expectShape(op, 'dWeights', dWeights, [N, k]);
  expectDType(op, 'routes.idx', routes.idx, ['i32']);
  expectDType(op, 'router logits', logits, ['f32']);
  expectDType(op, 'dWeights', dWeights, ['f32']);
  const gpu = asGpu(device);
  if (gpu) return routeBackwardGpu(gpu, logits, routes.idx, dWeights, cfg, N);
  const idx = hostI32(routes.idx);
  checkIdx(op, idx, E);
  return cpu.fromHost(routeBackwardReference(hostF32(logits), idx, hostF32(dWeights), N, cfg), [N, E]);
}
