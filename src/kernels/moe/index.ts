/**
 * Sparse mixture of experts on the device, without a host round-trip per expert:
 *   route      logits [N, E] (+ correction bias) -> idx [N, k] i32, weights [N, k]
 *   experts    plan (group pairs by expert) -> grouped gate/up (SwiGLU) -> grouped down -> combine
 * Expert weights are stacked per layer: w1, w3 [E, I, D] and w2 [E, D, I], f32 or bf16.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { GROUPED_BM, GROUPED_BN, combineWgsl, groupedKey, groupedWgsl } from './grouped.wgsl.js';
import { decodeSubgroupSize } from '../fused/sweep.js';
import { countsWgsl, moeDecodeKey, moeDecodeRows, moeDecodeTuning, moeDecodeWgsl } from './decode.wgsl.js';
import { planExperts } from './plan.js';
import { expertsReference, type RouterConfig, routeReference } from './reference.js';
import { routeKey, routeWgsl } from './route.wgsl.js';
import { ROWS_TILED_BM, ROWS_TILED_BN, rowsTiledFits, rowsTiledKey, rowsTiledWgsl } from './rowsTiled.wgsl.js';

export type { RouterConfig } from './reference.js';

export interface RoutesT {
  idx: Tensor;
  weights: Tensor;
}

export function route(logits: Tensor, bias: Tensor | undefined, cfg: RouterConfig): RoutesT {
  const device = deviceOf('moe.route', logits, ...(bias ? [bias] : []));
  const E = cfg.numExperts;
  expectShape('moe.route', 'router logits', logits, [null, E]);
  if (bias) expectShape('moe.route', 'e_score_correction_bias', bias, [E]);
  if (E % cfg.numGroups !== 0) throw new Error(`moe: ${E} experts do not split into ${cfg.numGroups} groups`);
  if (cfg.topK > E || cfg.topkGroup > cfg.numGroups) {
    throw new Error(`moe: top_k ${cfg.topK} of ${E} experts / topk_group ${cfg.topkGroup} of ${cfg.numGroups}`);
  }
  const N = logits.shape[0];
  const gpu = asGpu(device);
  if (!gpu) {
    const r = routeReference(hostF32(logits), bias ? hostF32(bias) : undefined, N, cfg);
    return { idx: cpu.fromHost(r.idx, [N, cfg.topK], 'i32'), weights: cpu.fromHost(r.weights, [N, cfg.topK]) };
  }
  const idx = gpu.empty([N, cfg.topK], 'i32');
  const weights = gpu.empty([N, cfg.topK]);
  const v = {
    E,
    k: cfg.topK,
    activation: cfg.activation,
    grouped: cfg.numGroups > 1 && cfg.topkGroup < cfg.numGroups,
    hasBias: !!bias,
  };
  const lc = contiguous(logits);
  gpu.dispatch({
    kernel: { name: 'moe_route', key: routeKey(v), code: () => routeWgsl(v) },
    tensors: bias ? [lc, bias, idx, weights] : [lc, idx, weights],
    params: new Params()
      .u32(N, cfg.numGroups, cfg.topkGroup, cfg.renormalize ? 1 : 0)
      .f32(cfg.scaling)
      .u32(0, 0, 0),
    // One workgroup per token.
    workgroups: [Math.min(N, 65535), Math.ceil(N / 65535)],
  });
  lc.dispose();
  return { idx, weights };
}

export interface ExpertWeights {
  /** [E, I, D] */
  w1: Tensor;
  /** [E, I, D] */
  w3: Tensor;
  /** [E, D, I] */
  w2: Tensor;
}

export interface ExpertsResult {
  y: Tensor;
  /** Tokens routed to each expert, [E] i32 (the expert load). */
  counts: Tensor;
}

/** The checks experts() and expertsInference() share; returns the device. */
function checkExperts(x: Tensor, routes: RoutesT, w: ExpertWeights) {
  const device = deviceOf('moe.experts', x, routes.idx, routes.weights, w.w1, w.w2, w.w3);
  const [E, I, D] = w.w1.shape;
  expectShape('moe.experts', 'x', x, [null, D]);
  expectShape('moe.experts', 'w3', w.w3, [E, I, D]);
  expectShape('moe.experts', 'w2', w.w2, [E, D, I]);
  expectDType('moe.experts', 'idx', routes.idx, ['i32']);
  if (w.w1.dtype !== w.w3.dtype || w.w1.dtype !== w.w2.dtype)
    throw new Error('moe.experts: w1, w2, w3 differ in dtype');
  return device;
}

export function experts(x: Tensor, routes: RoutesT, w: ExpertWeights): ExpertsResult {
  const device = checkExperts(x, routes, w);
  const [E, I, D] = w.w1.shape;
  const N = x.shape[0];
  const k = routes.idx.shape[1];
  const gpu = asGpu(device);
  if (!gpu) {
    const idx = hostI32(routes.idx);
    const y = expertsReference(
      hostF32(x),
      { idx, weights: hostF32(routes.weights) },
      hostF32(w.w1),
      hostF32(w.w3),
      hostF32(w.w2),
      { N, D, I, topK: k },
    );
    const counts = new Int32Array(E);
    for (const e of idx) counts[e]++;
    return { y: cpu.fromHost(y, [N, D]), counts: cpu.fromHost(counts, [E], 'i32') };
  }
  if (N <= moeDecodeTuning.maxTokens) {
    const r = expertsDecode(gpu, x, routes, w);
    return { y: r.y, counts: r.counts! };
  }
  const NK = N * k;
  const xc = contiguous(x);
  if (ROWS_TILED_BM !== GROUPED_BM) throw new Error('moe: the tiled row kernels must share the plan tile height');
  const { maxTiles, counts, perm, slotPos, tiles, tileCount } = planExperts(gpu, routes.idx, E, k, NK, GROUPED_BM);
  const wDtype = w.w1.dtype as 'f32' | 'bf16';
  const h = gpu.empty([NK, I]);
  const yp = gpu.empty([NK, D]);
  if (rowsTiledFits(D, I, wDtype) && rowsTiledFits(I, D, wDtype)) {
    // Register-tiled kernels (rowsTiled.wgsl.ts) over the same plan tiles.
    gpu.dispatch({
      kernel: { name: 'moe_grouped_gate_up', key: rowsTiledKey('fwdGateUp'), code: () => rowsTiledWgsl('fwdGateUp') },
      tensors: [xc, perm, tiles, tileCount, w.w1, w.w3, h],
      params: new Params().u32(D, I, 0, 0),
      workgroups: [maxTiles, Math.ceil(I / ROWS_TILED_BN)],
    });
    gpu.dispatch({
      kernel: { name: 'moe_grouped_down', key: rowsTiledKey('fwdDown'), code: () => rowsTiledWgsl('fwdDown') },
      tensors: [h, tiles, tileCount, w.w2, yp],
      params: new Params().u32(I, D, 0, 0),
      workgroups: [maxTiles, Math.ceil(D / ROWS_TILED_BN)],
    });
  } else {
    const gu = { mode: 'gateUp' as const, wDtype };
    gpu.dispatch({
      kernel: { name: 'moe_grouped_gate_up', key: groupedKey(gu), code: () => groupedWgsl(gu) },
      tensors: [xc, perm, tiles, tileCount, w.w1, w.w3, h],
      params: new Params().u32(D, I, 0, 0),
      workgroups: [maxTiles, Math.ceil(I / GROUPED_BN)],
    });
    const dn = { mode: 'down' as const, wDtype };
    gpu.dispatch({
      kernel: { name: 'moe_grouped_down', key: groupedKey(dn), code: () => groupedWgsl(dn) },
      tensors: [h, tiles, tileCount, w.w2, yp],
      params: new Params().u32(I, D, 0, 0),
      workgroups: [maxTiles, Math.ceil(D / GROUPED_BN)],
    });
  }
  const y = gpu.empty([N, D]);
  gpu.dispatch({
    kernel: { name: 'moe_combine', key: `moe_combine_k${k}`, code: () => combineWgsl(k, true) },
    tensors: [yp, routes.weights, slotPos, y],
    params: new Params().u32(N, D, 0, 0),
    workgroups: [Math.min(N, 65535), Math.ceil(N / 65535)],
  });
  for (const t of [perm, slotPos, tiles, tileCount, xc, h, yp]) t.dispose();
  return { y, counts };
}

/**
 * experts() for a few tokens (decode): GEMV-shaped kernels that read each chosen expert's rows once,
 * with the combine fused into the down projection (decode.wgsl.ts), instead of the grouped tiles.
 */
function expertsDecode(gpu: GpuContext, x: Tensor, routes: RoutesT, w: ExpertWeights, withCounts = true) {
  const [E, I, D] = w.w1.shape;
  const N = x.shape[0];
  const k = routes.idx.shape[1];
  const wDtype = w.w1.dtype as 'f32' | 'bf16';
  const xc = contiguous(x);
  const idx = contiguous(routes.idx);
  const rw = contiguous(routes.weights);
  const counts = withCounts ? gpu.empty([E], 'i32') : undefined;
  if (counts) {
    gpu.dispatch({
      kernel: { name: 'moe_counts', key: 'moe_counts', code: countsWgsl },
      tensors: [idx, counts],
      params: new Params().u32(N * k, E, 0, 0),
      workgroups: [Math.ceil(E / 64)],
    });
  }
  const h = gpu.empty([N * k, I]);
  const sg = decodeSubgroupSize(gpu);
  const gu = { mode: 'gateUp' as const, wDtype, vec: D % 8 === 0, k, ...(sg ? { sg } : {}) };
  gpu.dispatch({
    kernel: { name: 'moe_decode_gate_up', key: moeDecodeKey(gu), code: () => moeDecodeWgsl(gu) },
    tensors: [xc, idx, w.w1, w.w3, h],
    params: new Params().u32(D, I, 0, 0),
    workgroups: [Math.ceil(I / moeDecodeRows(gu)), N * k],
  });
  const y = expertsDecodeDown(gpu, h, idx, rw, w);
  for (const t of [xc, idx, rw, h]) t.dispose();
  return { y, counts };
}

/**
 * The decode path's down dispatch: y [N, D] = sum over each token's k experts of weight * w2[e] h, from the
 * gate_up dispatch's hidden rows h [N * k, I] and the routes' idx / weights [N, k] (contiguous).
 */
export function expertsDecodeDown(gpu: GpuContext, h: Tensor, idx: Tensor, rw: Tensor, w: ExpertWeights): Tensor {
  const [, I, D] = w.w1.shape;
  const [N, k] = idx.shape;
  const y = gpu.empty([N, D]);
  const sg = decodeSubgroupSize(gpu);
  const dn = {
    mode: 'down' as const,
    wDtype: w.w1.dtype as 'f32' | 'bf16',
    vec: I % 8 === 0,
    k,
    ...(sg ? { sg } : {}),
  };
  gpu.dispatch({
    kernel: { name: 'moe_decode_down', key: moeDecodeKey(dn), code: () => moeDecodeWgsl(dn) },
    tensors: [h, idx, w.w2, rw, y],
    params: new Params().u32(I, D, 0, 0),
    workgroups: [Math.ceil(D / moeDecodeRows(dn)), N],
  });
  return y;
}

/**
 * experts() for inference, where nothing reads the expert load: the same y, without the counts (on the
 * decode path that is one dispatch fewer per MoE layer).
 */
export function expertsInference(x: Tensor, routes: RoutesT, w: ExpertWeights): Tensor {
  const gpu = asGpu(checkExperts(x, routes, w));
  if (gpu && x.shape[0] <= moeDecodeTuning.maxTokens) {
    return expertsDecode(gpu, x, routes, w, false).y;
  }
  const r = experts(x, routes, w);
  r.counts.dispose();
  return r.y;
}
