/**
 * The vec4 intra pass (intraVec.wgsl.ts) and the tiled state pass (stateTiled.wgsl.ts) compiled as ONE
 * pipeline (horizontal fusion, src/gpu/horizontalFusion.ts), each of the forward's dispatches giving
 * workgroups to one part only: first the intra part over every chunk, then the state part. Nothing runs side by
 * side; the same arithmetic as the two kernels, in the same order.
 *
 * Why: one pipeline has one register allocation, the larger of its parts'. The state pass has one workgroup
 * per SM (128 at H=16, d=128), so a larger allocation costs it no occupancy, and on the H200 (H=16, d=128,
 * T=32768) it ran in 2.59-2.60 ms in the intra pass's pipeline against 2.79-2.85 in its own, or through the
 * fusion rewriting alone (2.85: the rewriting itself is not the gain). That is consistent with the driver giving
 * the state pass's own module fewer registers than it could use (WGSL has no way to ask for more). The intra
 * pass itself: 2.40-2.42 against 2.36-2.38 (bench/results/2026-12-01-h200-kovl-probe{1,2}.json).
 * Running them side by side (the overlap the probe measured, overlapProbe.ts) gains nothing for the same reason:
 * at that allocation a 256-thread workgroup needs more than half an SM's registers, so no intra workgroup fits
 * beside a state workgroup and the fused dispatch takes the sum (4.92 ms against 2.60 + 2.42).
 */
import type { GpuContext } from '../../gpu/context.js';
import { type FusionPart, fuseHorizontally } from '../../gpu/horizontalFusion.js';
import type { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';

interface PartKernel {
  key: string;
  code: () => string;
}

/** One part's dispatch: its bindings, uniforms and grid as its own kernel would take them. */
export interface PartDispatch {
  tensors: readonly Tensor[];
  params: Params;
  workgroups: readonly [number, number?, number?];
}

/**
 * Record one dispatch of the shared pipeline running only the `active` part. Both parts' bindings are given
 * (the pipeline's layout has them all; the idle part's are bound, not touched).
 */
export function dispatchStateIntra(
  gpu: GpuContext,
  k: { intra: PartKernel; state: PartKernel },
  d: { intra: PartDispatch; state: PartDispatch },
  active: 'intra' | 'state',
): void {
  const idle = [0, 1, 1] as const;
  const parts: FusionPart[] = [
    { ...k.intra, ...d.intra, workgroups: active === 'intra' ? d.intra.workgroups : idle },
    { ...k.state, ...d.state, workgroups: active === 'state' ? d.state.workgroups : idle },
  ];
  // The two names give two pipelines of the same WGSL, so that profiles name the passes as the separate kernels.
  gpu.dispatch(fuseHorizontally(`kda_chunk_${active}`, parts, gpu.limits.maxComputeWorkgroupsPerDimension));
}
