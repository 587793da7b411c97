import { describe, expect, it } from 'vitest';
import { softmax } from '../src/kernels/softmax/index.js';
import { softmaxReference } from '../src/kernels/softmax/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 exp and a tree sum against the f64 reference: a few ulp of the largest probability.
const TOL = 3e-6;

describe('softmax on cpu (hand-computed values)', () => {
  it('is stable for large logits and sums to one', async () => {
    const x = cpu.fromHost(new Float32Array([0, Math.LN2, 1000, 1000, 1000, -1000]), [3, 2]);
    const y = Array.from(await softmax(x).toFloat32());
    expect(y[0]).toBeCloseTo(1 / 3, 7);
    expect(y[1]).toBeCloseTo(2 / 3, 7);
    expect(y.slice(2, 4)).toEqual([0.5, 0.5]);
    expect(y.slice(4)).toEqual([1, 0]);
    expect(Array.from(await softmax(cpu.fromHost(new Float32Array([5]), [1])).toFloat32())).toEqual([1]);
  });

  it('checks dtypes', () => {
    expect(() => softmax(cpu.fromHost(new Int32Array(3), [3], 'i32'))).toThrow(/softmax: x has dtype i32/);
  });
});

describe('softmax on WebGPU vs the reference', () => {
  const cases: [number, number][] = [
    ...AWKWARD.map((n) => [n, 65] as [number, number]),
    ...AWKWARD.map((d) => [7, d] as [number, number]),
    [2, 4099],
  ];
  for (const [rows, D] of cases) {
    it.skipIf(!hasGpu)(`[${rows}, ${D}]`, async () => {
      const gpu = (await gpuContext())!;
      // Logits in the hundreds: the max must be subtracted or exp overflows.
      const x = new Rng(rows * 13 + D).normalArray(rows * D).map((v) => v * 8 + 300);
      const xt = gpu.fromHost(x, [rows, D]);
      expectClose(await softmax(xt).toFloat32(), softmaxReference(x, rows, D), TOL);
      xt.dispose();
    });
  }
});
