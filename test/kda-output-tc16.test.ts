/**
 * The output pass on f16 tensor cores (outputTc16.wgsl.ts): its plain-TS reference (outputTc16Reference.ts)
 * against the exact sums (outputChunkReference) within the stated bound, with large-magnitude operands too;
 * the kernel's work layout emulated (every fragment written once, the causal steps) against that reference;
 * the generated WGSL compiling on lavapipe through the subgroup-matrix stand-ins; the plan choosing it only where
 * asked for, tc16Applies and it fits. The kernel itself is checked on the H200 (bench kda --check --dtype bf16
 * --unsafe-apis --fwd-tc16-output on).
 */
import { describe, expect, it } from 'vitest';
import { type ForwardDevice, planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { type OutputChunk, outputChunkReference } from '../src/kernels/kda/outputReference.js';
import {
  type OutputTc16Variant,
  outputTc16Fits,
  outputTc16Fragments,
  outputTc16SharedBytes,
  outputTc16Wgsl,
} from '../src/kernels/kda/outputTc16.wgsl.js';
import {
  outputTc16Bound,
  outputTc16Emulate,
  outputTc16Reference,
  tc16ScaleExp,
} from '../src/kernels/kda/outputTc16Reference.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';

/** A deterministic generator in [-1, 1). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/**
 * A chunk of L rows: q, S, V' uniform times their magnitudes, gc a decreasing cumulative log decay (<= 0), A_qk
 * lower triangular (zero above the diagonal, as the intra pass stores it), garbage rows past L in A_qk.
 */
function chunk(L: number, K: number, V: number, seed: number, mag = { q: 1, S: 1, A: 1, V: 1 }): OutputChunk {
  const r = rng(seed);
  const q = Array.from({ length: L * K }, () => r() * mag.q);
  const gc = new Array<number>(L * K);
  for (let k = 0; k < K; k++) {
    let acc = 0;
    for (let i = 0; i < L; i++) {
      acc -= 0.05 * (r() + 1);
      gc[i * K + k] = acc;
    }
  }
  const S = Array.from({ length: K * V }, () => r() * mag.S);
  const Aqk = new Array<number>(64 * 64).fill(0);
  for (let i = 0; i < 64; i++) for (let j = 0; j < 64; j++) Aqk[i * 64 + j] = j <= i || i >= L ? r() * mag.A : 0;
  const Vp = Array.from({ length: L * V }, () => r() * mag.V);
  return { L, K, V, q, gc, GK: K, S, Aqk, Vp, scale: K ** -0.5 };
}

/** Every element of `got` within the bound of `want`; returns the largest |got - want| / bound. */
function withinBound(got: Float64Array, want: Float64Array, bound: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    expect(Number.isFinite(got[i])).toBe(true);
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / bound[i]);
  }
  expect(worst).toBeLessThanOrEqual(1);
  return worst;
}

describe('kda output pass on f16 tensor cores', () => {
  it('scales each tile by the power of two that puts its maximum in [2^14, 2^15)', () => {
    expect(tc16ScaleExp(1)).toBe(14);
    expect(tc16ScaleExp(1.5)).toBe(14);
    expect(tc16ScaleExp(1e6)).toBe(14 - 19);
    expect(tc16ScaleExp(0)).toBe(126);
    expect(tc16ScaleExp(3e38)).toBe(-113);
  });

  it('its reference is the exact sums within the stated bound, T = 1, 7, 63, 64, 65 (chunks of 64 and 1)', () => {
    const K = 128;
    const V = 128;
    for (const T of [1, 7, 63, 64, 65]) {
      for (let t0 = 0, n = 0; t0 < T; t0 += 64, n++) {
        const c = chunk(Math.min(64, T - t0), K, V, 1000 * T + n);
        const worst = withinBound(outputTc16Reference(c), outputChunkReference(c), outputTc16Bound(c));
        // The bound is not loose by orders of magnitude: f16 operands really are rounded.
        if (c.L > 1) expect(worst).toBeGreaterThan(1e-3);
      }
    }
  });

  it('stays finite and within the bound with large-magnitude operands (v, S times 1e4 .. 1e6; q, A_qk large)', () => {
    for (const [n, mag] of [
      { q: 1, S: 1e4, A: 1, V: 1e4 },
      { q: 1, S: 1e6, A: 1, V: 1e6 },
      { q: 300, S: 1e6, A: 2e3, V: 1e5 },
      { q: 1e-4, S: 1e-6, A: 1e-5, V: 1e6 },
    ].entries()) {
      const c = chunk(63, 64, 64, 77 + n, mag);
      withinBound(outputTc16Reference(c), outputChunkReference(c), outputTc16Bound(c));
    }
  });

  it("the kernel's work layout (fragments per subgroup, causal steps) computes the reference's sums", () => {
    // Every fragment of the 4 x 4 once, and 5 causal steps a subgroup.
    const seen = new Set<string>();
    for (let sg = 0; sg < 8; sg++) {
      const { rows, cb } = outputTc16Fragments(sg);
      for (const rb of rows) seen.add(`${rb},${cb}`);
      expect(rows[0] + 1 + rows[1] + 1).toBe(5);
    }
    expect(seen.size).toBe(16);
    for (const [L, K, V] of [
      [64, 128, 128],
      [37, 64, 64],
      [1, 16, 64],
    ]) {
      const c = chunk(L, K, V, L + K);
      const ref = outputTc16Reference(c);
      // The emulation sums in f32 per 16-step fragment: within f32 rounding of the f64 sums (2^-20 of the bound's sums).
      const bound = outputTc16Bound(c).map((b) => b * 2 ** -9);
      for (const subgroups of [8, 16] as const) withinBound(outputTc16Emulate(c, subgroups), ref, bound);
    }
    const seen16 = new Set(
      Array.from({ length: 16 }, (_, sg) => outputTc16Fragments(sg, 16)).map((f) => `${f.rows},${f.cb}`),
    );
    expect(seen16.size).toBe(16);
  });

  it('fits K a multiple of 16 up to 128, V of 64, in 48 KiB', () => {
    expect(outputTc16Fits({ K: 128, V: 128, GK: 128 })).toBe(true);
    expect(outputTc16SharedBytes({ K: 128, V: 128, GK: 128 })).toBe(49152);
    expect(outputTc16Fits({ K: 96, V: 64, GK: 96 })).toBe(true);
    expect(outputTc16Fits({ K: 128, V: 96, GK: 128 })).toBe(false);
    expect(outputTc16Fits({ K: 192, V: 128, GK: 192 })).toBe(false);
    expect(outputTc16Fits({ K: 128, V: 128, GK: 1 })).toBe(false);
    expect(outputTc16Fits({ K: 48, V: 64, GK: 48, wg: 512 })).toBe(false);
    expect(outputTc16SharedBytes({ K: 128, V: 128, GK: 128, wg: 512, split: true })).toBe(49152);
    expect(outputTc16SharedBytes({ K: 128, V: 128, GK: 128, pad: true, split: true })).toBe(
      2 * (9216 + 32) + 64 * 68 * 4,
    );
  });

  it.skipIf(!hasGpu)('its WGSL compiles (subgroup matrices stood in) for each variant', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
    for (const v of [
      { K: 128, V: 128, GK: 128 },
      { K: 128, V: 128, GK: 128, rw: true },
      { K: 64, V: 64, GK: 64 },
      { K: 16, V: 192, GK: 16 },
      { K: 96, V: 64, GK: 96 },
      { K: 128, V: 128, GK: 128, split: true },
      { K: 64, V: 64, GK: 64, split: true, rw: true },
      { K: 16, V: 64, GK: 16, split: true },
      { K: 128, V: 128, GK: 128, wg: 512 },
      { K: 32, V: 64, GK: 32, wg: 512, split: true, rw: true },
      { K: 128, V: 128, GK: 128, probe: 'products' },
      { K: 128, V: 128, GK: 128, probe: 'loads', split: true },
      { K: 128, V: 128, GK: 128, probe: 'stage' },
      { K: 128, V: 128, GK: 128, pad: true },
      { K: 128, V: 128, GK: 128, pad: true, wg: 512, split: true },
      { K: 32, V: 64, GK: 32, pad: true },
    ] as OutputTc16Variant[]) {
      const code = sgmStubWgsl(outputTc16Wgsl(v));
      expect(code).not.toMatch(/subgroupMatrix|subgroup_matrix/);
      const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });

  it('is planned where it applies unless turned off: tc16Applies (bf16, f16 subgroup matrices), the mixed mode and it fits', () => {
    const dev = (f16: boolean): ForwardDevice => forwardDeviceFacts({ f16 });
    const d128 = { H: 2, N: 1, K: 128, V: 128, GK: 128 };
    const bf16 = { keep: false, out: true, bf16: true };
    const plan = (d: ForwardDevice, o = bf16, t = {}, p = d128) =>
      planChunkForward(d, p, o, { tc16Output: true, ...t });
    expect(plan(dev(true)).tc16Output).toBe(true);
    expect(plan(dev(true)).bf16Kernels).toBe(true);
    // The default where it applies (tc16OutputByDefault); off when asked.
    expect(planChunkForward(dev(true), d128, bf16, {}).tc16Output).toBe(true);
    expect(planChunkForward(dev(true), d128, bf16, { tc16Output: false }).tc16Output).toBe(false);
    expect(planChunkForward(dev(true), d128, { ...bf16, bf16: false }, {}).tc16Output).toBe(false);
    expect(plan(dev(false)).tc16Output).toBe(false);
    expect(plan(dev(true), { ...bf16, bf16: false }).tc16Output).toBe(false);
    expect(plan(dev(true), bf16, { bf16Intermediates: 'bf16' }).tc16Output).toBe(false);
    expect(plan(dev(true), bf16, {}, { ...d128, V: 96 }).tc16Output).toBe(false);
    expect(plan(dev(true), bf16, { rw: ['output'] }).tc16o.rw).toBe(true);
    expect(plan(dev(true), bf16, { tc16OutputSplit: true }).tc16o.split).toBe(true);
    expect(plan(dev(true), bf16, { tc16OutputWg: 256 }).tc16Output).toBe(true);
    // The pass's own defaults: padded rows, 512 threads (where K is a multiple of 32).
    expect([plan(dev(true)).tc16o.pad, plan(dev(true)).tc16o.wg]).toEqual([true, 512]);
    expect(plan(dev(true), bf16, {}, { ...d128, K: 112, GK: 112 }).tc16o.wg).toBe(undefined);
    expect(plan(dev(true), bf16, { tc16OutputPad: false }).tc16o.pad).toBe(false);
  });
});
