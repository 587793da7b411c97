import { describe, expect, it } from 'vitest';
import { argmax, reduce } from '../src/kernels/reduce/index.js';
import { argmaxReference, reduceReference } from '../src/kernels/reduce/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 tree sums of up to 4099 normal values vs the f64 reference, relative to the largest |sum|:
// the sums are O(sqrt(D)) while rounding is O(ulp * sqrt(D) * max|x|), so 1e-5 is safe; max is exact.
const TOL = 1e-5;

describe('reductions on cpu (hand-computed values)', () => {
  it('sum, mean, max, argmax over the last dim', async () => {
    const x = cpu.fromHost(new Float32Array([1, 5, 2, 5, -1, -3, -2, -7]), [2, 4]);
    expect(Array.from(await reduce(x, 'sum').toFloat32())).toEqual([13, -13]);
    expect(Array.from(await reduce(x, 'mean').toFloat32())).toEqual([3.25, -3.25]);
    expect(Array.from(await reduce(x, 'max').toFloat32())).toEqual([5, -1]);
    const a = argmax(x);
    expect(a.dtype).toBe('i32');
    expect(a.shape).toEqual([2]);
    expect(Array.from(await a.read())).toEqual([1, 0]);
  });

  it('checks ops and dtypes', () => {
    const x = cpu.fromHost(new Float32Array(4), [4]);
    expect(() => reduce(x, 'min' as 'sum')).toThrow(/reduce: op 'min'/);
    expect(() => argmax(cpu.fromHost(new Int32Array(3), [3], 'i32'))).toThrow(/x has dtype i32/);
    expect(() => reduce(cpu.fromHost(new Float32Array(0), [2, 0]), 'max')).toThrow(/last dimension is empty/);
  });
});

describe('reductions on WebGPU vs the reference', () => {
  const cases: [number, number][] = [
    ...AWKWARD.map((n) => [n, 65] as [number, number]),
    ...AWKWARD.map((d) => [7, d] as [number, number]),
    [3, 4099],
  ];
  for (const [rows, D] of cases) {
    it.skipIf(!hasGpu)(`[${rows}, ${D}]`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(rows * 17 + D);
      // Rounded to quarters so ties happen and argmax must pick the first of equal maxima.
      const x = rng.normalArray(rows * D).map((v) => Math.round(v * 4) / 4);
      const xt = gpu.fromHost(x, [rows, D]);
      for (const op of ['sum', 'mean', 'max'] as const) {
        const y = reduce(xt, op);
        expect(y.shape).toEqual([rows]);
        expectClose(await y.toFloat32(), reduceReference(x, rows, D, op), TOL, op);
      }
      expect(Array.from(await argmax(xt).read())).toEqual(Array.from(argmaxReference(x, rows, D)));
      xt.dispose();
    });
  }

  it.skipIf(!hasGpu)('negative rows: max and argmax below zero, all-equal rows give index 0', async () => {
    const gpu = (await gpuContext())!;
    const x = new Float32Array(3 * 300).fill(-2);
    x[300 + 299] = -1;
    const xt = gpu.fromHost(x, [3, 300]);
    expect(Array.from(await reduce(xt, 'max').toFloat32())).toEqual([-2, -1, -2]);
    expect(Array.from(await argmax(xt).read())).toEqual([0, 299, 0]);
  });
});
