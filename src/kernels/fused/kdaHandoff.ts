/**
 * kdaStepGatedNormLinear: one decode token (batch 1) of a KDA layer from its raw projections to o_proj's output:
 * kdaRecurrentGated (the step with f_b / g_b folded in, state in place), then gatedRmsnormLinear (the gated per-head
 * o_norm and o_proj). With `handoff` (BatchSessionOptions.kdaHandoff; bench decode --kda-handoff on) and where the
 * fused kernel applies, ONE dispatch (kdaHandoff.wgsl.ts: the step's workgroups hand o and the gate to the GEMV's
 * through `scratch`); elsewhere those two ops, whose values it reproduces (the same arithmetic).
 */
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape } from '../common.js';
import { contiguous } from '../copy/index.js';
import { gatedBV, type KdaGatedInputs, kdaRecurrentGated, recurrentGatedTuning } from '../kda/recurrentGated.js';
import { recurrentGatedFits } from '../kda/recurrentGated.wgsl.js';
import { gatedNormFits, type RecurrentGatedPrefetchVariant } from '../kda/recurrentGatedPrefetch.wgsl.js';
import { recurrentVecGeometry } from '../kda/recurrent.wgsl.js';
import { recurrentTuning } from '../kda/slots.js';
import type { FloatDType } from '../wgslLib.js';
import { GNG_WG, type GatedNormGemvVariant, gatedNormGemvRows } from './gatedNormGemv.wgsl.js';
import { handoffWords } from './handoff.js';
import { gatedRmsnormLinear } from './index.js';
import {
  type KdaHandoffVariant,
  kdaHandoffBytes,
  kdaHandoffGeometry,
  kdaHandoffKey,
  kdaHandoffTuning,
  kdaHandoffWgsl,
} from './kdaHandoff.wgsl.js';
import { decodeSubgroupSize } from './sweep.js';

/** i32 words of the scratch buffer the fused form needs for H heads of d values (zero; every dispatch leaves it so). */
export function kdaHandoffScratchWords(H: number, d: number): number {
  return handoffWords(2 * H * d);
}

/**
 * y [1, N] = o_proj(gated_o_norm(kdaRecurrentGated(pool, slots, x))) for one sequence (slots [1]); `norm`: the
 * o_norm's weight [d] and eps; `weight`: o_proj [N, H d]. `scratch`: i32, at least kdaHandoffScratchWords(H, d)
 * words, all zero (needed for the fused form only).
 */
export function kdaStepGatedNormLinear(
  pool: Tensor,
  slots: Tensor,
  x: KdaGatedInputs,
  norm: { weight: Tensor; eps: number },
  weight: Tensor,
  opts: { handoff?: boolean; scratch?: Tensor; scale?: number } = {},
): Tensor {
  const op = 'kdaStepGatedNormLinear';
  const device = deviceOf(op, pool, slots, weight, norm.weight);
  expectShape(op, 'pool', pool, [null, null, null, null]);
  const [, H, K, V] = pool.shape;
  const N = weight.shape[0];
  expectShape(op, 'weight', weight, [null, H * V]);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  const gpu = asGpu(device);
  const v = gpu && (opts.handoff ?? kdaHandoffTuning.on) ? fusedVariant(gpu, pool, slots, x, norm, weight) : undefined;
  const scratch = opts.scratch;
  if (
    !gpu ||
    !v ||
    !scratch ||
    scratch.dtype !== 'i32' ||
    scratch.numel < kdaHandoffScratchWords(H, V) ||
    !gpu.isBindable(scratch)
  ) {
    const r = kdaRecurrentGated(pool, slots, x, { scale: opts.scale });
    const o = r.o.reshape([1, H * V]);
    const y = gatedRmsnormLinear(o, r.gate, norm.weight, norm.eps, weight, H);
    for (const t of [r.o, r.gate, o]) t.dispose();
    return y;
  }
  const { tiles } = kdaHandoffGeometry(v.step);
  const R = tiles * H;
  const G = Math.ceil(N / gatedNormGemvRows(v.gemv));
  const ins = [slots, x.qkv, x.proj, x.fB, x.gB, x.A_log, x.dt_bias, norm.weight].map(contiguous);
  const y = gpu.empty([1, N]);
  gpu.dispatch({
    kernel: { name: 'kda_handoff', key: kdaHandoffKey(v), code: () => kdaHandoffWgsl(v) },
    tensors: [...ins.slice(0, 7), pool, ins[7], weight, y, scratch],
    params: new Params()
      .u32(H, x.proj.shape[1], x.fA, x.gA, x.beta, H * K)
      .f32(opts.scale ?? K ** -0.5)
      .u32(R, N, G)
      .f32(norm.eps)
      .u32(0),
    workgroups: [R + G],
  });
  for (const t of ins) t.dispose();
  return y;
}

/** The fused kernel's variant where it applies (the standalone kernels' choices, so the same arithmetic), else undefined. */
function fusedVariant(
  gpu: NonNullable<ReturnType<typeof asGpu>>,
  pool: Tensor,
  slots: Tensor,
  x: KdaGatedInputs,
  norm: { weight: Tensor; eps: number },
  weight: Tensor,
): KdaHandoffVariant | undefined {
  const [, H, K, V] = pool.shape;
  if (slots.numel !== 1 || K !== V || x.fB.dtype !== x.gB.dtype) return undefined;
  if (!recurrentGatedTuning.fold || recurrentGatedTuning.kernel !== 'prefetch' || recurrentGatedTuning.probe)
    return undefined;
  if (recurrentTuning.vec === false || !gpu.isBindable(pool) || !gpu.isBindable(weight)) return undefined;
  if (x.qkv.dtype !== 'f32' || x.proj.dtype !== 'f32' || !(norm.eps >= 0)) return undefined;
  const rf = x.fB.shape[1];
  const rg = x.gB.shape[1];
  const wDtype = x.fB.dtype as 'f32' | 'bf16';
  const BV = gatedBV({ N: 1, H, V });
  if (!recurrentGatedFits({ K, V, BV, rf, rg, wDtype })) return undefined;
  const { WG } = recurrentVecGeometry(K, BV);
  const step: RecurrentGatedPrefetchVariant = {
    K,
    V,
    BV,
    rf,
    rg,
    wDtype,
    norm: gatedNormFits(recurrentGatedTuning.norm, K, WG) ? recurrentGatedTuning.norm : 'one',
  };
  const wd = weight.dtype as 'f32' | 'bf16';
  if (!(V % 4 === 0 && GNG_WG % H === 0 && (H * V) % (wd === 'bf16' ? 8 : 4) === 0)) return undefined;
  const sg = decodeSubgroupSize(gpu);
  const normSg = decodeSubgroupSize(gpu, 'rest');
  const gemv: GatedNormGemvVariant = {
    H,
    d: V,
    normDtype: norm.weight.dtype as FloatDType,
    wDtype: wd,
    staged: true,
    ...(sg ? { sg } : {}),
    ...(normSg ? { normSg } : {}),
  };
  const v: KdaHandoffVariant = { step, gemv, hold: kdaHandoffTuning.hold, spin: kdaHandoffTuning.spin };
  const R = kdaHandoffGeometry(step).tiles * H;
  const G = Math.ceil(weight.shape[0] / gatedNormGemvRows(gemv));
  if (kdaHandoffBytes(v) > gpu.limits.maxComputeWorkgroupStorageSize) return undefined;
  if (G < 1 || R + G > gpu.limits.maxComputeWorkgroupsPerDimension) return undefined;
  return v;
}
