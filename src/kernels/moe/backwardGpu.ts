/** WebGPU paths of backward.ts (dispatch recording only; shapes are checked by the caller). */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { grid1d } from '../common.js';
import { contiguous } from '../copy/index.js';
import type { ExpertsGradients } from './backward.js';
import {
  OUTER_TILE,
  type OuterVariant,
  outerKey,
  outerWgsl,
  PAIRS_WG,
  pairsWgsl,
  pointwiseWgsl,
  ROWS_BM,
  ROWS_BN_OUT,
  type RowsMode,
  rowsWgsl,
} from './backward.wgsl.js';
import { ROUTE_BWD_WG, routeBackwardKey, routeBackwardWgsl } from './backwardRoute.wgsl.js';
import { SPLITK_SUM_WG, splitKSumWgsl } from '../matmul/splitK.js';
import { OUTER_CHUNKS, OUTER_SPLIT_TILE, outerSplitKey, outerSplitWgsl } from './outerSplit.wgsl.js';
import { OUTER_TILED_BM, OUTER_TILED_BN, outerTiledFits, outerTiledKey, outerTiledWgsl } from './outerTiled.wgsl.js';
import {
  moeRowsTiledEnabled,
  ROWS_TILED_BM,
  ROWS_TILED_BN,
  rowsTiledFits,
  rowsTiledKey,
  rowsTiledWgsl,
} from './rowsTiled.wgsl.js';
import { combineWgsl, GROUPED_BM } from './grouped.wgsl.js';
import type { ExpertWeights, RouterConfig, RoutesT } from './index.js';
import { planExperts } from './plan.js';

export interface ExpertsBackwardDims {
  N: number;
  D: number;
  I: number;
  E: number;
  k: number;
}

if (ROWS_BM !== GROUPED_BM || ROWS_TILED_BM !== GROUPED_BM) {
  throw new Error('moe backward: row tiles must match the plan tile height');
}

export function expertsBackwardGpu(
  gpu: GpuContext,
  x: Tensor,
  routes: RoutesT,
  w: ExpertWeights,
  dy: Tensor,
  d: ExpertsBackwardDims,
): ExpertsGradients {
  const { N, D, I, E, k } = d;
  const NK = N * k;
  const inputs = [x, routes.idx, routes.weights, w.w1, w.w3, w.w2, dy].map((t) => contiguous(t));
  const [xc, idx, weights, w1, w3, w2, dyc] = inputs;
  // The forward's plan: pairs grouped by expert, cut into row tiles of one expert each.
  const { maxTiles, counts, perm, slotPos, tiles, tileCount } = planExperts(gpu, idx, E, k, NK, ROWS_BM);
  const pairOf = gpu.empty([NK], 'i32');
  gpu.dispatch({
    kernel: { name: 'moe_bwd_pairs', key: 'moe_bwd_pairs', code: pairsWgsl },
    tensors: [slotPos, pairOf],
    params: new Params().u32(NK, 0, 0, 0),
    workgroups: grid1d(NK, PAIRS_WG),
  });
  // The register-tiled kernels (rowsTiled.wgsl.ts) where the weight's dims allow, else the scalar ones.
  const tiled = rowsTiledFits(D, I, w1.dtype) && rowsTiledFits(I, D, w1.dtype);
  const rows = (mode: RowsMode, tensors: Tensor[], Kin: number, Nout: number) =>
    gpu.dispatch({
      kernel: {
        name: `moe_bwd_rows_${mode}`,
        key: tiled ? rowsTiledKey(mode) : `moe_bwd_rows_${mode}`,
        code: () => (tiled ? rowsTiledWgsl(mode) : rowsWgsl(mode)),
      },
      tensors,
      params: new Params().u32(Kin, Nout, 0, 0),
      workgroups: [maxTiles, Math.ceil(Nout / (tiled ? ROWS_TILED_BN : ROWS_BN_OUT))],
    });
  // Recompute the pre-activations a, b rather than keep them from the forward (it stores only h).
  const a = gpu.empty([NK, I]);
  const b = gpu.empty([NK, I]);
  rows('gateUp', [xc, perm, tiles, tileCount, w1, w3, a, b], D, I);
  const g = gpu.empty([NK, I]);
  rows('dh', [dyc, perm, tiles, tileCount, w2, g], D, I);
  const dWeights = gpu.empty([N, k]);
  gpu.dispatch({
    kernel: { name: 'moe_bwd_pointwise', key: 'moe_bwd_pointwise', code: pointwiseWgsl },
    tensors: [pairOf, weights, a, b, g, dWeights],
    params: new Params().u32(NK, I, 0, 0),
    workgroups: grid1d(NK, 1),
  });
  // Now a = da, b = db, g = w h.
  const dw1 = gpu.empty([E, I, D]);
  const dw3 = gpu.empty([E, I, D]);
  const dw2 = gpu.empty([E, D, I]);
  const outer = (v: OuterVariant, tensors: Tensor[], M: number, Nn: number) => {
    if (!moeRowsTiledEnabled()) {
      gpu.dispatch({
        kernel: { name: 'moe_bwd_outer', key: outerKey(v), code: () => outerWgsl(v) },
        tensors,
        params: new Params().u32(M, Nn, 0, 0),
        workgroups: [Math.ceil(M / OUTER_TILE), Math.ceil(Nn / OUTER_TILE), E],
      });
      return;
    }
    // Each expert's rows in OUTER_CHUNKS chunks (outerSplit.wgsl.ts), the partials summed per output.
    const S = OUTER_CHUNKS;
    const outs = tensors.slice(v.dual ? -2 : -1);
    const partials = outs.map(() => gpu.empty([S, E, M, Nn]));
    // The register-tiled kernel (outerTiled.wgsl.ts) where M and N are whole vec4s; same chunks and partials.
    const tiled = outerTiledFits(M, Nn);
    gpu.dispatch({
      kernel: tiled
        ? { name: 'moe_bwd_outer', key: outerTiledKey(v, S), code: () => outerTiledWgsl(v, S) }
        : { name: 'moe_bwd_outer', key: outerSplitKey(v, S), code: () => outerSplitWgsl(v, S) },
      tensors: [...tensors.slice(0, tensors.length - outs.length), ...partials],
      params: new Params().u32(M, Nn, E, 0),
      workgroups: tiled
        ? [Math.ceil(M / OUTER_TILED_BM), Math.ceil(Nn / OUTER_TILED_BN), E * S]
        : [Math.ceil(M / OUTER_SPLIT_TILE), Math.ceil(Nn / OUTER_SPLIT_TILE), E * S],
    });
    for (const [i, part] of partials.entries()) {
      gpu.dispatch({
        kernel: { name: 'matmul_splitk_sum', key: `matmul_splitk_sum_${S}`, code: () => splitKSumWgsl(S) },
        tensors: [part, outs[i]],
        params: new Params().u32(E * M * Nn, 0, 0, 0),
        workgroups: grid1d(E * M * Nn, SPLITK_SUM_WG),
      });
      part.dispose();
    }
  };
  outer({ gatherA: true, gatherB: false, dual: false }, [dyc, g, perm, counts, dw2], D, I);
  outer({ gatherA: false, gatherB: true, dual: true }, [a, b, xc, perm, counts, dw1, dw3], I, D);
  const dxp = gpu.empty([NK, D]);
  rows('dx', [a, b, tiles, tileCount, w1, w3, dxp], I, D);
  const dx = gpu.empty([N, D]);
  gpu.dispatch({
    kernel: { name: 'moe_bwd_combine', key: `moe_bwd_combine_k${k}`, code: () => combineWgsl(k, false) },
    tensors: [dxp, slotPos, dx],
    params: new Params().u32(N, D, 0, 0),
    workgroups: [Math.min(N, 65535), Math.ceil(N / 65535)],
  });
  for (const t of [...inputs, counts, perm, slotPos, tiles, tileCount, pairOf, a, b, g, dxp]) t.dispose();
  return { dx, dWeights, dw1, dw3, dw2 };
}

export function routeBackwardGpu(
  gpu: GpuContext,
  logits: Tensor,
  idx: Tensor,
  dWeights: Tensor,
  cfg: RouterConfig,
  N: number,
): Tensor {
  const v = { E: cfg.numExperts, k: cfg.topK, activation: cfg.activation, renormalize: cfg.renormalize };
  const inputs = [logits, idx, dWeights].map((t) => contiguous(t));
  const dLogits = gpu.empty([N, cfg.numExperts]);
  gpu.dispatch({
    kernel: { name: 'moe_route_bwd', key: routeBackwardKey(v), code: () => routeBackwardWgsl(v) },
    tensors: [...inputs, dLogits],
    params: new Params().u32(N).f32(cfg.scaling).u32(0, 0),
    workgroups: grid1d(N, ROUTE_BWD_WG),
  });
  for (const t of inputs) t.dispose();
  return dLogits;
}
