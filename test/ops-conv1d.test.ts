import { describe, expect, it } from 'vitest';
import { causalConv1d } from '../src/kernels/conv1d/index.js';
import { conv1dReference, conv1dTailReference } from '../src/kernels/conv1d/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16, toF32 } from '../src/tensor/dtype.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// W <= 4 f32 products per output against the f64 reference: a few ulp.
const TOL = 1e-6;

const vals = async (t: Tensor | undefined) => Array.from(await t!.toFloat32());

describe('causalConv1d on cpu (hand-computed values)', () => {
  // T = 4, C = 2, W = 3; channel 0 has taps [1, 2, 3], channel 1 passes the current row through.
  const x = cpu.fromHost(new Float32Array([1, 5, 2, 6, 3, 7, 4, 8]), [4, 2]);
  const w = cpu.fromHost(new Float32Array([1, 2, 3, 0, 0, 1]), [2, 1, 3]);

  it('zero-padded start', async () => {
    const { y, state } = causalConv1d(x, w);
    expect(state).toBeUndefined();
    expect(await vals(y)).toEqual([3, 5, 8, 6, 14, 7, 20, 8]);
  });

  it('continues from a carried state and returns the new tail', async () => {
    const s = cpu.fromHost(new Float32Array([10, 0, 20, 0]), [2, 2]);
    const { y, state } = causalConv1d(x, w, { state: s, returnState: true });
    expect((await vals(y)).slice(0, 4)).toEqual([53, 5, 28, 6]);
    expect(state!.shape).toEqual([2, 2]);
    expect(await vals(state)).toEqual([3, 7, 4, 8]);
    // One decode step (T = 1 < W - 1): the tail is the old state's last row then x.
    const one = cpu.fromHost(new Float32Array([1, 5]), [1, 1, 2]);
    const r = causalConv1d(one, w, { state: s.reshape([1, 2, 2]), returnState: true });
    expect(await vals(r.y)).toEqual([53, 5]);
    expect(r.state!.shape).toEqual([1, 2, 2]);
    expect(await vals(r.state)).toEqual([20, 0, 1, 5]);
  });

  it('fused silu and bf16 weights', async () => {
    const wb = cpu.fromHost(f32ArrayToBf16([1, 2, 3, 0, 0, 1]), [2, 1, 3], 'bf16');
    const y = await vals(causalConv1d(x, wb, { activation: 'silu' }).y);
    expect(y[0]).toBeCloseTo(3 / (1 + Math.exp(-3)), 6);
    expect(y[1]).toBeCloseTo(5 / (1 + Math.exp(-5)), 6);
  });

  it('checks shapes', () => {
    expect(() => causalConv1d(x, cpu.fromHost(new Float32Array(6), [3, 1, 2]))).toThrow(
      /weight has shape \[3, 1, 2\], expected \[2, 1, \*\]/,
    );
    expect(() => causalConv1d(x, w, { state: cpu.fromHost(new Float32Array(2), [1, 2]) })).toThrow(
      /state has shape \[1, 2\], expected \[2, 2\]/,
    );
    expect(() => causalConv1d(cpu.fromHost(new Float32Array(2), [2]), w)).toThrow(/expected \[T, C\] or \[B, T, C\]/);
  });
});

describe('causalConv1d on WebGPU vs the reference', () => {
  const cases: { B: number; T: number; C: number; W: number }[] = [
    ...AWKWARD.map((T) => ({ B: 2, T, C: 65, W: 4 })),
    ...AWKWARD.map((C) => ({ B: 1, T: 7, C, W: 4 })),
    { B: 3, T: 2, C: 7, W: 1 },
    { B: 1, T: 63, C: 65, W: 3 },
  ];
  for (const { B, T, C, W } of cases) {
    it.skipIf(!hasGpu)(`B=${B} T=${T} C=${C} W=${W}: zero/state start, silu, bf16, tail`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(B * 1000 + T * 10 + C + W);
      const x = rng.normalArray(B * T * C);
      const w = rng.normalArray(C * W);
      const s = rng.normalArray(B * (W - 1) * C);
      const wbBits = f32ArrayToBf16(w);
      const d = { B, T, C, W };
      const xt = gpu.fromHost(x, [B, T, C]);
      const wt = gpu.fromHost(w, [C, 1, W]);
      const wb = gpu.fromHost(wbBits, [C, 1, W], 'bf16');
      const st = gpu.fromHost(s, [B, W - 1, C]);
      const plain = causalConv1d(xt, wt);
      expectClose(await plain.y.toFloat32(), conv1dReference(x, w, undefined, d), TOL, 'zero start');
      const full = causalConv1d(xt, wb, { state: st, activation: 'silu', returnState: true });
      expectClose(await full.y.toFloat32(), conv1dReference(x, toF32('bf16', wbBits), s, d, true), TOL, 'state + silu');
      expectClose(await full.state!.toFloat32(), conv1dTailReference(x, s, d), 0, 'tail');
      const z = causalConv1d(xt, wt, { returnState: true });
      expectClose(await z.state!.toFloat32(), conv1dTailReference(x, undefined, d), 0, 'tail from zeros');
      for (const t of [xt, wt, wb, st, plain.y, full.y, full.state!, z.y, z.state!]) t.dispose();
    });
  }

  it.skipIf(!hasGpu)('prefill then token-by-token decode equals one pass over the whole sequence', async () => {
    const gpu = (await gpuContext())!;
    const [T, C, W, P] = [9, 33, 4, 5];
    const rng = new Rng(42);
    const x = rng.normalArray(T * C);
    const w = gpu.fromHost(rng.normalArray(C * W), [C, 1, W]);
    const whole = await causalConv1d(gpu.fromHost(x, [T, C]), w).y.toFloat32();
    const pre = causalConv1d(gpu.fromHost(x.slice(0, P * C), [P, C]), w, { returnState: true });
    const out = Array.from(await pre.y.toFloat32());
    let state = pre.state!;
    for (let t = P; t < T; t++) {
      const step = causalConv1d(gpu.fromHost(x.slice(t * C, (t + 1) * C), [1, C]), w, { state, returnState: true });
      out.push(...(await step.y.toFloat32()));
      state.dispose();
      state = step.state!;
    }
    expectClose(out, whole, TOL);
  });
});
