/**
 * What every GPU benchmark shares: opening the device with timer precision, timing a region on the GPU
 * (median over trials, several repetitions per trial so launch gaps and timer granularity vanish), and
 * describing the machine in the result so numbers can be compared across runs; and the per-kernel split
 * of a profiled recording.
 */
import { GpuContext } from '../gpu/context.js';
import type { GpuFlagOptions } from '../cli/shared.js';
import { acquireOptions } from '../cli/shared.js';

export async function openBenchDevice(opts: GpuFlagOptions): Promise<GpuContext> {
  const base = acquireOptions(opts);
  // Full-resolution timestamps: Dawn quantizes them by default (a browser anti-fingerprinting measure).
  return GpuContext.create({ ...base, dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
}

export interface Timing {
  /** Median GPU milliseconds per repetition. */
  ms: number;
  /** All trials, ms per repetition. */
  trials: number[];
  source: 'timestamp' | 'host';
}

/**
 * The GPU's clocks follow its load: on the H200 the SM clock falls to 345-435 MHz within ~0.1-0.2 s of low
 * utilisation and climbs back to 1980 MHz only ~0.2-0.4 s after sustained work resumes (nvidia-smi every 100 ms,
 * bench/results/2026-12-02-h200-s13-attn-s{1,2}-smi.csv). Rows timed right after a long host-side step (the
 * reference checks, a large fill) read ~5x slow for every kernel (1980 / 345 = 5.7): bench mla's "first 1M row" of
 * the twelfth session (4-7 ms against 0.70), its 128K rows after the 4K checks (0.59 against 0.113). Small kernels
 * timed a few calls a submission (4K: 0.03 ms) never raise the utilisation enough to lift the clock: the 4K rows of
 * a process whose start left the clock low read 0.113 against 0.0325 (s2). So a timing that starts more than
 * IDLE_MS after the last one first keeps the GPU busy for WARM_MS with submissions of ~WARM_BATCH_MS each.
 */
export const BENCH_IDLE_MS = 50;
export const BENCH_WARM_MS = 500;
export const BENCH_WARM_BATCH_MS = 10;
let lastTimedAt = Number.NEGATIVE_INFINITY;

/** Warm-up: compiles pipelines and touches every buffer once; after an idle gap, keeps the GPU busy WARM_MS. */
async function warmUp(gpu: GpuContext, body: () => void): Promise<void> {
  const t0 = performance.now();
  const idle = t0 - lastTimedAt > BENCH_IDLE_MS;
  await gpu.time(body);
  // Submissions of n calls, n doubled until one takes WARM_BATCH_MS of wall time (so a slow device, lavapipe, never
  // queues more than about twice that at once).
  for (let n = 1; idle && performance.now() - t0 < BENCH_WARM_MS; ) {
    const b0 = performance.now();
    await gpu.time(() => {
      for (let i = 0; i < n; i++) body();
    });
    if (performance.now() - b0 < BENCH_WARM_BATCH_MS && n < 4096) n *= 2;
  }
}

/** Time `body` (which records one repetition of the work) `reps` times per trial, `trials` trials. */
export async function timeGpu(gpu: GpuContext, body: () => void, reps: number, trials = 5): Promise<Timing> {
  await warmUp(gpu, body);
  const per: number[] = [];
  let source: Timing['source'] = 'timestamp';
  for (let t = 0; t < trials; t++) {
    const r = await gpu.time(() => {
      for (let i = 0; i < reps; i++) body();
    });
    source = r.source;
    per.push(r.gpuMs / reps);
  }
  lastTimedAt = performance.now();
  return { ms: median(per), trials: per, source };
}

/** Host-timed variant for work that cannot sit in one compute pass (buffer-to-buffer copies). */
export async function timeHost(gpu: GpuContext, body: () => void, reps: number, trials = 5): Promise<Timing> {
  body();
  await gpu.sync();
  const per: number[] = [];
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) body();
    await gpu.sync();
    per.push((performance.now() - t0) / reps);
  }
  return { ms: median(per), trials: per, source: 'host' };
}

export interface KernelShare {
  name: string;
  /** GPU ms of all this kernel's dispatches together. */
  ms: number;
  dispatches: number;
}

/** The spans of one profiled recording (GpuContext.profile) summed by kernel name, in first-seen order. */
export function sumByKernel(spans: readonly { name: string; ms: number }[]): KernelShare[] {
  const byName = new Map<string, KernelShare>();
  for (const d of spans) {
    const k = byName.get(d.name) ?? { name: d.name, ms: 0, dispatches: 0 };
    k.ms += d.ms;
    k.dispatches++;
    byName.set(d.name, k);
  }
  return [...byName.values()];
}

/**
 * Per-kernel GPU ms of one recording of `body`, summed by kernel name, median of `trials` profiled runs.
 * `warmUp` runs `body` once untimed first (pipeline compilation would land in the first trial otherwise);
 * a caller that has just timed the same body can skip it.
 */
export async function profileKernels(
  gpu: GpuContext,
  body: () => void,
  trials: number,
  opts: { warmUp: boolean },
): Promise<Record<string, number>> {
  if (opts.warmUp) await warmUp(gpu, body);
  const runs: Record<string, number>[] = [];
  for (let t = 0; t < trials; t++) {
    const byName: Record<string, number> = {};
    for (const k of sumByKernel(await gpu.profile(body))) byName[k.name] = k.ms;
    runs.push(byName);
  }
  lastTimedAt = performance.now();
  const out: Record<string, number> = {};
  for (const name of Object.keys(runs[0])) out[name] = Number(median(runs.map((r) => r[name])).toFixed(4));
  return out;
}

/** The upper middle value (the bench's median: one of the values, never an average of two). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export function machine(gpu: GpuContext): Record<string, unknown> {
  return {
    adapter: gpu.adapterInfo.description || gpu.adapterInfo.device || gpu.adapterInfo.vendor,
    vendor: gpu.adapterInfo.vendor,
    architecture: gpu.adapterInfo.architecture,
    date: new Date().toISOString(),
    toggles: gpu.acquired.toggles,
    ...(gpu.acquired.disabledToggles.length ? { togglesOff: gpu.acquired.disabledToggles } : {}),
  };
}

export function parseList(value: string): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n <= 0))
    throw new Error(`expected a list of positive integers, got '${value}'`);
  return out;
}
