/**
 * Where a decode step's GPU time goes: one step recorded with a timestamped pass per dispatch
 * (GpuContext.profile), summed by kernel name, with the dispatch count. Pass boundaries add a little
 * per dispatch, so the total is somewhat above the step's real GPU time; the split is what matters.
 */
import type { GpuContext } from '../gpu/context.js';
import type { BatchSession } from '../model/batchSession.js';
import { type KernelShare, sumByKernel } from './harness.js';

export interface StepProfile {
  /** Sum of every dispatch's GPU time. */
  gpuMs: number;
  dispatches: number;
  /** Host time to record the step (profiling adds a pass per dispatch, so this is an upper bound). */
  recordMs: number;
  kernels: KernelShare[];
}

export async function profileDecodeStep(gpu: GpuContext, s: BatchSession, tokens: number[]): Promise<StepProfile> {
  let recordMs = 0;
  const spans = await gpu.profile(() => {
    const t0 = performance.now();
    s.recordStep(tokens).dispose();
    recordMs = performance.now() - t0;
  });
  const kernels = sumByKernel(spans)
    .sort((a, b) => b.ms - a.ms)
    .map((k) => ({ ...k, ms: Number(k.ms.toFixed(4)) }));
  return {
    gpuMs: Number(spans.reduce((a, d) => a + d.ms, 0).toFixed(4)),
    dispatches: spans.length,
    recordMs: Number(recordMs.toFixed(3)),
    kernels,
  };
}
