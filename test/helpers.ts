/**
 * Shared test helpers. GPU tests run on whatever WebGPU adapter exists (lavapipe in CI). When
 * KIMI_REQUIRE_GPU=1 (set by .ci/run) a missing adapter fails the run instead of skipping, so CI can
 * never pass by testing only the cpu backend.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { GpuContext } from '../src/gpu/context.js';
import type { RouterConfig } from '../src/kernels/moe/index.js';
import { type KimiLinearConfig, parseKimiConfig } from '../src/model/config.js';

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

/** n values uniform in [-scale, scale) from a 32-bit LCG seeded with `seed` (the same values on every run). */
export function lcgUniform(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * scale;
  });
}

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

/**
 * Central difference of f at a[i], using the perturbation f32 storage really applied (a[i] +- eps rounds,
 * so the step is xp - xm, not 2 eps). a[i] is restored afterwards.
 */
export function centralDiff(f: () => number, a: Float32Array, i: number, eps: number): number {
  const x = a[i];
  a[i] = x + eps;
  const xp = a[i];
  const fp = f();
  a[i] = x - eps;
  const xm = a[i];
  const fm = f();
  a[i] = x;
  return (fp - fm) / (xp - xm);
}

/** sum_i a[i] * b[i] in f64: the scalar loss whose gradient w.r.t. a is b, for gradient checks. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** The router the MoE tests start from: the released model's sigmoid, renormalisation and scaling, at 8 experts, top-2. */
export const ROUTER_BASE: RouterConfig = {
  numExperts: 8,
  topK: 2,
  activation: 'sigmoid',
  renormalize: true,
  scaling: 2.446,
  numGroups: 1,
  topkGroup: 1,
};

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

/**
 * The 48B preset's structure (27 layers, KDA/MLA map, first layer dense, MoE with a shared expert), tiny dims:
 * the model the decode-host and decode-replay tests step, one definition so they test the same structure.
 */
export function tiny48Config(): KimiLinearConfig {
  const c = JSON.parse(readFileSync(`${FIXTURES}/configs/kimi-linear-48b-a3b.json`, 'utf8'));
  Object.assign(c, {
    hidden_size: 64,
    intermediate_size: 128,
    kv_lora_rank: 32,
    qk_nope_head_dim: 16,
    qk_rope_head_dim: 8,
    v_head_dim: 16,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    moe_intermediate_size: 32,
    num_experts: 8,
    num_experts_per_token: 2,
    vocab_size: 512,
    head_dim: 16,
  });
  Object.assign(c.linear_attn_config, { num_heads: 4, head_dim: 16 });
  return parseKimiConfig(c, 'tiny 48B structure');
}
