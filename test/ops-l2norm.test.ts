import { describe, expect, it } from 'vitest';
import { l2norm } from '../src/kernels/l2norm/index.js';
import { l2normReference } from '../src/kernels/l2norm/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 tree sum of squares vs the f64 reference.
const TOL = 2e-6;

describe('l2norm on cpu (hand-computed values)', () => {
  it('divides by the euclidean norm (eps 1e-6 by default)', async () => {
    const x = cpu.fromHost(new Float32Array([3, 4, 0, 0, 1, 0]), [3, 2]);
    const y = Array.from(await l2norm(x, 0).toFloat32());
    expect(y.slice(0, 2)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(y.slice(4)).toEqual([1, 0]);
    const d = Array.from(await l2norm(x).toFloat32());
    expect(d[0]).toBeCloseTo(3 / Math.sqrt(25 + 1e-6), 7);
    expect(d.slice(2, 4)).toEqual([0, 0]);
  });

  it('checks dtypes', () => {
    expect(() => l2norm(cpu.fromHost(new Int32Array(3), [3], 'i32'))).toThrow(/l2norm: x has dtype i32/);
  });
});

describe('l2norm on WebGPU vs the reference', () => {
  const cases: [number, number][] = [
    ...AWKWARD.map((n) => [n, 128] as [number, number]),
    ...AWKWARD.map((d) => [7, d] as [number, number]),
  ];
  for (const [rows, D] of cases) {
    it.skipIf(!hasGpu)(`[${rows}, ${D}]`, async () => {
      const gpu = (await gpuContext())!;
      const x = new Rng(rows * 11 + D).normalArray(rows * D);
      const xt = gpu.fromHost(x, [rows, D]);
      expectClose(await l2norm(xt).toFloat32(), l2normReference(x, rows, D, 1e-6), TOL);
      // A strided view (columns 1..D of a wider tensor) goes through contiguous().
      const wide = new Rng(D).normalArray(rows * (D + 3));
      const wt = gpu.fromHost(wide, [rows, D + 3]);
      const view = await cpu
        .fromHost(wide, [rows, D + 3])
        .narrow(1, 1, D)
        .toFloat32();
      expectClose(await l2norm(wt.narrow(1, 1, D)).toFloat32(), l2normReference(view, rows, D, 1e-6), TOL, 'view');
      wt.dispose();
      xt.dispose();
    });
  }
});
