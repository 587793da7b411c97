/**
 * The two ways `bench decode` times a decode step (BatchSession, synthetic cache):
 *  - dependent (default): real greedy generation, each step fed the tokens the previous step chose, pipelined
 *    as generate runs it (BatchSession.stepOnDevice: the argmax stays on the device and feeds the next
 *    step's embedding, step n + 1 is recorded while step n runs, ids are read back one step late);
 *  - independent (--independent-steps, the measurement before pipelining): `step` with given token ids,
 *    each step recorded, run, and its logits read back before the next starts.
 * Both return wall milliseconds per step and the host milliseconds spent recording a step; `onTimed` is called
 * when the timed steps begin (after the warm-up).
 */
import { argmax } from '../kernels/reduce/index.js';
import type { BatchSession } from '../model/batchSession.js';
import { median } from './harness.js';

export interface StepTiming {
  ms: number;
  recordMs: number;
  /** Dependent steps: host time per step in all (recording, the submit and the readback's copy). */
  hostMs?: number;
  /**
   * Dependent steps: wall ms of each timed step (from one step's ids arriving to the next's), to tell a slow
   * start (a transient) from a uniformly slow row.
   */
  stepMs?: number[];
  /**
   * Dependent steps: of each timed step, the host ms stepOnDevice took (recording, the submit, the readback's copy)
   * and the ms then spent awaiting the oldest step's ids. A stalled step whose host ms are long stalled on the host
   * (a collection, a blocking submit); one whose wait is long waited on the GPU or the map.
   */
  hostStepMs?: number[];
  waitStepMs?: number[];
  /**
   * Dependent steps: the median of stepMs. The mean (ms) counts every host stall: one step of 118.8 ms among 31
   * others read 11.853 at 1M, the median 8.539 (bench/results/2026-12-02-h200-s13-attn-s2-dec-1m.json).
   */
  medianStepMs?: number;
}

export async function timeIndependentSteps(
  s: BatchSession,
  tokens: (i: number) => number[],
  warmup: number,
  steps: number,
  onTimed?: () => void,
): Promise<StepTiming> {
  for (let i = 0; i < warmup; i++) await s.step(tokens(i));
  onTimed?.();
  const t0 = performance.now();
  let recordMs = 0;
  for (let i = 0; i < steps; i++) {
    await s.step(tokens(warmup + i));
    recordMs += s.lastStep.recordMs;
  }
  return { ms: (performance.now() - t0) / steps, recordMs: recordMs / steps };
}

/**
 * Greedy dependent generation from `first` (one id per sequence); uses warmup + steps + ahead steps of cache (and up
 * to warm.maxExtra more). `ahead`: steps recorded and submitted beyond the one whose ids are awaited (1, as generate
 * runs, or more). Why more: a host stall longer than a step (single ~0.1 s stalls in timed 1M runs, cause not found;
 * bench/results/2026-12-02-h200-s13-attn-s2-dec-1m.json) leaves the GPU idle once the one step queued ahead has
 * run; with two queued, a stall up to two steps long is absorbed. The ids, and so the tokens, are the same.
 */
export async function timeDependentSteps(
  s: BatchSession,
  first: number[],
  warmup: number,
  steps: number,
  onTimed?: () => void,
  warm?: { ms: number; maxExtra: number },
  ahead = 1,
): Promise<StepTiming & { tokens: number[][] }> {
  if (!(Number.isInteger(ahead) && ahead >= 1))
    throw new RangeError(`timeDependentSteps: ahead = ${ahead}, expected an integer >= 1`);
  // The steps submitted whose ids are not read yet, oldest first; each one's `next` feeds the step after it and is
  // dropped once that step is recorded.
  const flights = [s.stepOnDevice(first, argmax)];
  for (let i = 1; i < ahead; i++) {
    flights.push(s.stepOnDevice(flights[i - 1].next, argmax));
    flights[i - 1].next.dispose();
  }
  const out: number[][] = [];
  // One step: the next recorded and submitted (its recording ms and host ms in all), then the oldest's ids awaited.
  const advance = async () => {
    const newest = flights[flights.length - 1];
    const next = s.stepOnDevice(newest.next, argmax);
    const { recordMs, totalMs: hostMs } = s.lastStep;
    newest.next.dispose();
    flights.push(next);
    const w0 = performance.now();
    out.push(Array.from(await flights.shift()!.tokens));
    return { recordMs, hostMs, waitMs: performance.now() - w0 };
  };
  // At least `warmup` steps, then more while the warm-up is younger than warm.ms (at most warm.maxExtra more): the
  // GPU's clocks climb back only ~0.4 s after an idle host step (harness.ts BENCH_WARM_MS).
  const w0 = performance.now();
  for (let i = 0; i < warmup + (warm?.maxExtra ?? 0); i++) {
    if (i >= warmup && performance.now() - w0 >= (warm?.ms ?? 0)) break;
    await advance();
  }
  onTimed?.();
  const t0 = performance.now();
  let recordMs = 0;
  let hostMs = 0;
  const stepMs: number[] = [];
  const hostStepMs: number[] = [];
  const waitStepMs: number[] = [];
  for (let i = 0, last = t0; i < steps; i++) {
    const a = await advance();
    recordMs += a.recordMs;
    hostMs += a.hostMs;
    const now = performance.now();
    stepMs.push(Number((now - last).toFixed(3)));
    hostStepMs.push(Number(a.hostMs.toFixed(3)));
    waitStepMs.push(Number(a.waitMs.toFixed(3)));
    last = now;
  }
  const ms = (performance.now() - t0) / steps;
  flights[flights.length - 1].next.dispose();
  for (const f of flights) out.push(Array.from(await f.tokens));
  const medianStepMs = stepMs.length ? median(stepMs) : undefined;
  return {
    ms,
    recordMs: recordMs / steps,
    hostMs: hostMs / steps,
    stepMs,
    hostStepMs,
    waitStepMs,
    medianStepMs,
    tokens: out,
  };
}

/** `count` steps of pipelined greedy generation from `first`, untimed; returns their summed recording ms. */
export async function runDependentSteps(s: BatchSession, first: number[], count: number): Promise<number> {
  let flight = s.stepOnDevice(first, argmax);
  let recordMs = s.lastStep.recordMs;
  for (let i = 1; i < count; i++) {
    const next = s.stepOnDevice(flight.next, argmax);
    recordMs += s.lastStep.recordMs;
    flight.next.dispose();
    await flight.tokens;
    flight = next;
  }
  flight.next.dispose();
  await flight.tokens;
  return recordMs;
}
