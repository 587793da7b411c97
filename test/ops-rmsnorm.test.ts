import { describe, expect, it } from 'vitest';
import { rmsnorm } from '../src/kernels/rmsnorm/index.js';
import { rmsnormReference } from '../src/kernels/rmsnorm/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16, toF32 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 sum of squares over up to 1000 elements in a tree (error ~ log2(D) ulp) vs the f64 reference.
const TOL = 2e-6;

describe('rmsnorm on cpu (hand-computed values)', () => {
  it('normalises by the root mean square and applies the weight', async () => {
    // Row [3, 4]: mean(x^2) = 12.5; with eps 0 the scale is 1/sqrt(12.5).
    const x = cpu.fromHost(new Float32Array([3, 4, 0, 0]), [2, 2]);
    const w = cpu.fromHost(new Float32Array([1, 2]), [2]);
    const y = Array.from(await rmsnorm(x, w, 0).toFloat32());
    expect(y[0]).toBeCloseTo(3 / Math.sqrt(12.5), 6);
    expect(y[1]).toBeCloseTo((2 * 4) / Math.sqrt(12.5), 6);
    // An all-zero row stays zero thanks to eps.
    const z = Array.from(await rmsnorm(x, w, 1e-6).toFloat32());
    expect(z.slice(2)).toEqual([0, 0]);
    const wb = cpu.fromHost(f32ArrayToBf16([1, 2]), [2], 'bf16');
    expect(Array.from(await rmsnorm(x, wb, 0).toFloat32())).toEqual(y);
  });

  it('fuses the sigmoid output gate', async () => {
    const x = cpu.fromHost(new Float32Array([3, 4]), [1, 2]);
    const w = cpu.fromHost(new Float32Array([1, 1]), [2]);
    const g = cpu.fromHost(new Float32Array([0, 100]), [1, 2]);
    const y = Array.from(await rmsnorm(x, w, 0, { gate: g }).toFloat32());
    expect(y[0]).toBeCloseTo((0.5 * 3) / Math.sqrt(12.5), 6);
    expect(y[1]).toBeCloseTo(4 / Math.sqrt(12.5), 6);
    expect(() => rmsnorm(x, w, 0, { gate: w })).toThrow(/rmsnorm: gate has shape \[2\], expected \[1, 2\]/);
  });

  it('checks shapes and dtypes', () => {
    const x = cpu.fromHost(new Float32Array(6), [2, 3]);
    expect(() => rmsnorm(x, cpu.fromHost(new Float32Array(2), [2]), 1e-6)).toThrow(
      /rmsnorm: weight has shape \[2\], expected \[3\]/,
    );
    expect(() => rmsnorm(cpu.fromHost(new Int32Array(3), [3], 'i32'), x, 1e-6)).toThrow(/x has dtype i32/);
  });
});

describe('rmsnorm on WebGPU vs the reference', () => {
  const cases: [number, number][] = [
    ...AWKWARD.map((n) => [n, 65] as [number, number]),
    ...AWKWARD.map((d) => [7, d] as [number, number]),
    [3, 2304],
  ];
  for (const [rows, D] of cases) {
    it.skipIf(!hasGpu)(`[${rows}, ${D}] with f32 and bf16 weights`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(rows * 7 + D);
      const x = rng.normalArray(rows * D).map((v) => v * 3 + 0.5);
      const w = rng.normalArray(D);
      const xt = gpu.fromHost(x, [rows, D]);
      const wt = gpu.fromHost(w, [D]);
      expectClose(await rmsnorm(xt, wt, 1e-5).toFloat32(), rmsnormReference(x, w, rows, D, 1e-5), TOL, 'f32 weight');
      const wb = f32ArrayToBf16(w);
      const wbt = gpu.fromHost(wb, [D], 'bf16');
      const ref = rmsnormReference(x, toF32('bf16', wb), rows, D, 1e-5);
      expectClose(await rmsnorm(xt, wbt, 1e-5).toFloat32(), ref, TOL, 'bf16 weight');
      // Leading dims fold into rows: [rows, 1, D] gives the same values.
      expectClose(
        await rmsnorm(xt.reshape([rows, 1, D]), wt, 1e-5).toFloat32(),
        rmsnormReference(x, w, rows, D, 1e-5),
        TOL,
      );
      // Gated (KDA output norm): rmsnorm(x) * sigmoid(gate) in the same kernel.
      const g = rng.normalArray(rows * D).map((v) => v * 4);
      const gt = gpu.fromHost(g, [rows, D]);
      const gref = rmsnormReference(x, toF32('bf16', wb), rows, D, 1e-5, g);
      expectClose(await rmsnorm(xt, wbt, 1e-5, { gate: gt }).toFloat32(), gref, TOL, 'gated');
      for (const t of [xt, wt, wbt, gt]) t.dispose();
    });
  }
});
