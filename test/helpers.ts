/**
 * Shared test helpers. GPU tests run on whatever WebGPU adapter exists (lavapipe in CI). When
 * KIMI_REQUIRE_GPU=1 (set by .ci/run) a missing adapter fails the run instead of skipping, so CI can
 * never pass by testing only the cpu backend.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { GpuContext } from '../src/gpu/context.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = join(ROOT, 'fixtures');

let ctxPromise: Promise<GpuContext | undefined> | undefined;

/** One GpuContext per test process, or undefined when there is no adapter (and it is not required). */
export function gpuContext(): Promise<GpuContext | undefined> {
  ctxPromise ??= GpuContext.create().catch((e: unknown) => {
    if (process.env.KIMI_REQUIRE_GPU === '1') throw e;
    console.warn(`no WebGPU adapter, GPU tests skipped: ${(e as Error).message}`);
    return undefined;
  });
  return ctxPromise;
}

export const hasGpu = await gpuContext().then((c) => !!c);

/** Max |a-b| over max |b|, the relative error every numeric test states its tolerance in. */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'values') {
  const err = relErr(actual, expected);
  expect(err, `${what}: relative error ${err.toExponential(3)} > ${tol}`).toBeLessThanOrEqual(tol);
}

/** Awkward sizes every kernel test sweeps: 1, primes near powers of two, just past tile edges. */
export const AWKWARD = [1, 7, 63, 65, 1000] as const;

/** The CLI, run from source with tsx (no build step); killed after a minute so a hang fails the test. */
export function cli(
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, KIMI_DEBUG: '' },
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, stdout, stderr, signal }));
  });
}
