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
  /** Every dispatch in step order: kernel name and GPU ms (which layer's GEMV costs what). */
  spans: { name: string; ms: number }[];
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
    spans: spans.map((d) => ({ name: d.name, ms: Number(d.ms.toFixed(4)) })),
  };
}

/** Host time of one WebGPU entry point over the profiled steps, per step. */
export interface HostApiShare {
  api: string;
  callsPerStep: number;
  usPerStep: number;
}

/**
 * Where a step's host time goes between our code and Dawn: every WebGPU method a step calls (pass
 * encoding, encoder, queue, device) is wrapped with a timer while `steps` runs `count` steps, then
 * restored. The rest of the step's host time is JavaScript (the model code, tensors, the context's
 * bookkeeping). Timers add ~0.1 us per call, so the Dawn share is a slight overestimate.
 */
export async function profileHostApis(
  gpu: GpuContext,
  count: number,
  steps: () => Promise<number>,
): Promise<{ recordMsPerStep: number; dawnUsPerStep: number; apis: HostApiShare[] }> {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  const targets: [string, object][] = [
    ['pass', Object.getPrototypeOf(pass)],
    ['encoder', Object.getPrototypeOf(enc)],
    ['queue', Object.getPrototypeOf(gpu.device.queue)],
    ['device', Object.getPrototypeOf(gpu.device)],
  ];
  pass.end();
  enc.finish();
  const stats = new Map<string, { calls: number; ms: number }>();
  const restore: (() => void)[] = [];
  for (const [label, proto] of targets) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (!d || typeof d.value !== 'function' || name === 'constructor') continue;
      const orig = d.value as (...a: unknown[]) => unknown;
      const st = { calls: 0, ms: 0 };
      stats.set(`${label}.${name}`, st);
      Object.defineProperty(proto, name, {
        ...d,
        value(this: unknown, ...a: unknown[]) {
          const t = performance.now();
          try {
            return orig.apply(this, a);
          } finally {
            st.ms += performance.now() - t;
            st.calls++;
          }
        },
      });
      restore.push(() => Object.defineProperty(proto, name, d));
    }
  }
  let recordMs = 0;
  try {
    recordMs = await steps();
  } finally {
    for (const r of restore) r();
  }
  const apis = [...stats.entries()]
    .filter(([, s]) => s.calls > 0)
    .map(([api, s]) => ({
      api,
      callsPerStep: Number((s.calls / count).toFixed(2)),
      usPerStep: Number(((1000 * s.ms) / count).toFixed(1)),
    }))
    .sort((a, b) => b.usPerStep - a.usPerStep);
  return {
    recordMsPerStep: Number((recordMs / count).toFixed(3)),
    dawnUsPerStep: Number(apis.reduce((a, x) => a + x.usPerStep, 0).toFixed(1)),
    apis,
  };
}
