/**
 * The vec4 intra pass (intraVec.wgsl.ts) and the tiled state pass (stateTiled.wgsl.ts) compiled as ONE
 * pipeline (horizontal fusion, src/gpu/horizontalFusion.ts), each of the forward's dispatches giving
 * workgroups to one part only: first the intra part over every chunk, then the state part (per head group).
 * Nothing runs side by side; the same arithmetic as the two kernels, in the same order. The default where
 * both kernels apply on a GPU (chunk.ts sharedPipelineByDefault: not on a software adapter such as lavapipe,
 * where the joined module only costs compile time); kdaForwardTuning.sharedPipeline / bench kda
 * --fwd-shared-pipeline on|off choose.
 *
 * Why: one pipeline has one register allocation, the larger of its parts'. The state pass has one workgroup
 * per SM (128 at H=16, d=128), so a larger allocation costs it no occupancy. On the H200 (H=16, d=128,
 * T=32768; bench/results/2026-12-01-h200-kovl-probe{1,2}.json, the probe's kda_probe_state_alone and
 * kda_probe_intra_alone dispatches, whose module is this one: same WGSL, see test/kda-forward-shared.test.ts):
 *   state pass  2.585 / 2.603 ms here against 2.789 / 2.833 in its own pipeline, and 2.853 through the fusion
 *               rewriting alone (a one-part module): the rewriting is not the gain, intra's allocation is;
 *   intra pass  2.403 / 2.424 against 2.365 / 2.383.
 * Measured end to end (sixth session, lead's sitting 1, bench/results/2026-12-01-h200-s6-lead1-*.json):
 * forward 6.175 ms against 6.363 with two pipelines in the same sitting, intra + state 5.03 ms together;
 * `bench kda --check` sharedVsSeparate 0 (o and final state), so it became the default.
 *
 * With the two-pass intra (the default on GPUs since the seventh session, kdaForwardTuning.intraTwoPass) the
 * intra part of this pipeline is dispatched by nobody: it stays in the module as the register donor, so the
 * state pass keeps the allocation measured above (H200, same sitting: state 2.728 / 2.728 ms with the two-pass
 * intra against 2.740 / 2.730 with the one-pass kernel in this pipeline, bench/results/2026-12-01-h200-kintra-s2).
 *
 * Tenth session (kbind, bench/results/2026-12-02-h200-kbind-*): what the state part gained here was the binding
 * kind, not the allocation: merged with the intra part's writes, its W and U are bound read_write; in its own
 * pipeline with them declared read_write (StateTiledVariant.rwOperands, the default on GPUs since) the state pass
 * took 2.686 ms, read-only 2.941, here 2.696. The pipeline stays the default (no loss).
 *
 * Running the two side by side instead (overlapProbe.ts) gains nothing for the same reason: at intra's
 * allocation a 256-thread workgroup takes more than half an SM's registers, so no intra workgroup fits beside
 * a state workgroup and only the 4 SMs without one (132 - 128) run intra meanwhile: 4.92 ms fused against
 * 2.60 + 2.42 (4.92 = 2.60 + 2.42 x (1 - 4/132 x 2.60/2.42) within noise).
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
 * Tensors for the intra part (intraVec.wgsl.ts without fuseGc; its bindings cu, q, k, v, gc, beta, W, U, A_qk, T)
 * where it is never dispatched, beside a bf16 state part (StateTiledVariant.bf16), whose W, U, k, hB and V' the
 * intra part cannot share: its bindings read them as f32. Bound to tensors of their own, the two parts would take
 * 18 storage buffers (cu shared), over the 16 a stage may have (WebGPU's default and lavapipe's; the H200's Dawn
 * adapter's too, bench/results/2026-12-01-h200-info.json); so every vec4<f32> binding gets one scratch tensor and
 * every f32 binding (beta, and gc where GK = 1) another: 2 buffers beside cu (the fusion binds a tensor once per
 * element type, read_write if any part writes it), 11 in all with the state part's 9. The part never runs, so
 * nothing reads or writes them; they are the caller's to dispose (`scratch`). Not free: the state part's W and U
 * are then bound read-only rather than merged with the intra part's read_write W and U, and the H200 ran the f32
 * state pass 0.24 ms slower so (chunk.ts kdaForwardTuning.sharedIdleScratch); the forward uses them only in the bf16
 * storage mode, or when asked.
 */
export function idleIntraTensors(gpu: GpuContext, cu: Tensor, GK: number): { tensors: Tensor[]; scratch: Tensor[] } {
  const v4 = gpu.empty([4]);
  const f = gpu.empty([4]);
  return { tensors: [cu, v4, v4, v4, GK === 1 ? f : v4, f, v4, v4, v4, v4], scratch: [v4, f] };
}

/**
 * Record one dispatch of the shared pipeline running only the `active` part. Every part's bindings are given
 * (the pipeline's layout has them all; the idle parts' are bound, not touched). With `output` given, the
 * output pass (outputPipelined.wgsl.ts) is a third part of the same pipeline (kdaForwardTuning.sharedOutput:
 * the output pass at intra's allocation too; not the default: 1.178 ms against 0.826 on the H200, presumably
 * as that allocation leaves room for one of its workgroups per SM).
 */
export function dispatchStateIntra(
  gpu: GpuContext,
  k: { intra: PartKernel; state: PartKernel; output?: PartKernel },
  d: { intra: PartDispatch; state: PartDispatch; output?: PartDispatch },
  active: 'intra' | 'state' | 'output',
): void {
  const idle = [0, 1, 1] as const;
  const part = (name: 'intra' | 'state' | 'output', kk: PartKernel, dd: PartDispatch): FusionPart => ({
    ...kk,
    ...dd,
    workgroups: active === name ? dd.workgroups : idle,
  });
  // State part first, as in the probe that measured this module (overlapProbe.ts: the same WGSL).
  const parts: FusionPart[] = [part('state', k.state, d.state), part('intra', k.intra, d.intra)];
  if (k.output && d.output) parts.push(part('output', k.output, d.output));
  else if (active === 'output') throw new Error('kda shared pipeline: output part asked for, none given');
  // One pipeline (one compilation, keyed by the parts' WGSL); each dispatch named after its active part, so
  // profiles time the passes apart under the separate kernels' names.
  const fused = fuseHorizontally('kda_chunk_intra_state', parts, gpu.limits.maxComputeWorkgroupsPerDimension);
  gpu.dispatch({ ...fused, kernel: { ...fused.kernel, name: `kda_chunk_${active}` } });
}
