/** Dispatch of the layer-level transforms (prep.wgsl.ts) for the chunked and backward paths. */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { grid1d } from '../common.js';
import { contiguous } from '../copy/index.js';
import type { GpuProblem, KdaInputs, LayerParams } from './gpu.js';
import {
  PARAM_SLICE_ROWS,
  paramReduceFinishWgsl,
  paramReducePartialWgsl,
  paramReduceWgsl,
  prepBackwardWgsl,
  prepWgsl,
} from './prep.wgsl.js';

/** 'split' (default): two-pass parallel parameter-gradient sum; 'single': one workgroup per head (A/B). */
export type ParamReduceMode = 'split' | 'single';
let paramReduceMode: ParamReduceMode = 'split';
export function setKdaParamReduce(mode: ParamReduceMode): void {
  paramReduceMode = mode;
}

/** q, k -> unit vectors; g_raw -> log decay; beta_raw -> beta. v passes through (aliased). */
export function dispatchPrep(gpu: GpuContext, p: GpuProblem, x: KdaInputs, layer: LayerParams): KdaInputs {
  const rows = p.Ttot * p.H;
  const out: KdaInputs = {
    q: gpu.empty(x.q.shape),
    k: gpu.empty(x.k.shape),
    v: x.v.alias(),
    g: gpu.empty(x.g.shape),
    beta: gpu.empty(x.beta.shape),
  };
  const ins = [x.q, x.k, x.g, x.beta, layer.A_log, layer.dt_bias].map(contiguous);
  gpu.dispatch({
    kernel: { name: 'kda_prep', key: `kda_prep_k${p.K}_gk${p.GK}`, code: () => prepWgsl(p.K, p.GK) },
    tensors: [...ins, out.q, out.k, out.g, out.beta],
    params: new Params().u32(p.H, rows, 0, 0),
    workgroups: grid1d(rows, 1),
  });
  for (const t of ins) t.dispose();
  return out;
}

/**
 * Turns core gradients (dq, dk, dg, dbeta, modified in place) into gradients of the raw inputs, and
 * returns dA_log [H] and ddt_bias [H*GK].
 */
export function dispatchPrepBackward(
  gpu: GpuContext,
  p: GpuProblem,
  x: KdaInputs,
  layer: LayerParams,
  grads: { dq: Tensor; dk: Tensor; dg: Tensor; dbeta: Tensor },
): { dA_log: Tensor; ddt_bias: Tensor } {
  const rows = p.Ttot * p.H;
  const ins = [x.q, x.k, x.g, x.beta, layer.A_log, layer.dt_bias].map(contiguous);
  const dA_log = gpu.empty(layer.A_log.shape);
  const ddt_bias = gpu.empty(layer.dt_bias.shape);
  // The parameter sums read the core dg, so they run before the row kernel rewrites it.
  dispatchParamReduce(gpu, p, grads.dg, ins[2], ins[4], ins[5], dA_log, ddt_bias);
  gpu.dispatch({
    kernel: { name: 'kda_prep_bwd', key: `kda_prep_bwd_k${p.K}_gk${p.GK}`, code: () => prepBackwardWgsl(p.K, p.GK) },
    tensors: [...ins, grads.dq, grads.dk, grads.dg, grads.dbeta],
    params: new Params().u32(p.H, rows, 0, 0),
    workgroups: grid1d(rows, 1),
  });
  for (const t of ins) t.dispose();
  return { dA_log, ddt_bias };
}

/**
 * dA_log[h] = sum_{t,c} dg * g and ddt_bias[h, c] = sum_t dg * -exp(A_log) sigmoid(z) from the core dg and the
 * raw gate input g (prep.wgsl.ts). Split: ceil(Ttot / R) x H (R = PARAM_SLICE_ROWS or more) workgroups of partial sums,
 * then H workgroups add the slices.
 */
export function dispatchParamReduce(
  gpu: GpuContext,
  p: Pick<GpuProblem, 'H' | 'GK' | 'Ttot'>,
  dg: Tensor,
  gRaw: Tensor,
  A_log: Tensor,
  dt_bias: Tensor,
  dA_log: Tensor,
  ddt_bias: Tensor,
): void {
  if (paramReduceMode === 'single') {
    gpu.dispatch({
      kernel: { name: 'kda_param_reduce', key: `kda_param_reduce_gk${p.GK}`, code: () => paramReduceWgsl(p.GK) },
      tensors: [dg, gRaw, A_log, dt_bias, dA_log, ddt_bias],
      params: new Params().u32(p.H, p.Ttot, 0, 0),
      workgroups: [p.H],
    });
    return;
  }
  const sliceRows = Math.max(PARAM_SLICE_ROWS, Math.ceil(p.Ttot / 65535));
  const slices = Math.max(1, Math.ceil(p.Ttot / sliceRows));
  const partD = gpu.empty([slices, p.H, p.GK]);
  const partA = gpu.empty([slices, p.H, p.GK]);
  gpu.dispatch({
    kernel: {
      name: 'kda_param_reduce_partial',
      key: `kda_param_reduce_partial_gk${p.GK}`,
      code: () => paramReducePartialWgsl(p.GK),
    },
    tensors: [dg, gRaw, A_log, dt_bias, partD, partA],
    params: new Params().u32(p.H, p.Ttot, sliceRows, 0),
    workgroups: [slices, p.H],
  });
  gpu.dispatch({
    kernel: {
      name: 'kda_param_reduce_finish',
      key: `kda_param_reduce_finish_gk${p.GK}`,
      code: () => paramReduceFinishWgsl(p.GK),
    },
    tensors: [partD, partA, dA_log, ddt_bias],
    params: new Params().u32(p.H, slices, 0, 0),
    workgroups: [p.H],
  });
  partD.dispose();
  partA.dispose();
}
