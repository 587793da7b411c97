/**
 * Column sums (reduce/columns.ts) on WebGPU against the f64 reference on awkward shapes, including ones
 * that cut the rows into several slices with a short last one, and sumToTrailing's column path against
 * its earlier transposed-copy path.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { expandBackward } from '../src/kernels/copy/backward.js';
import { setSumToTrailingColumns, sumToTrailing } from '../src/kernels/elementwise/backward.js';
import { columnSlices, sumColumns } from '../src/kernels/reduce/columns.js';
import { sumColumnsReference } from '../src/kernels/reduce/reference.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 sums of up to 1000 normal values against f64, relative to the largest |sum| (as ops-reduce).
const TOL = 1e-5;

describe('column slices', () => {
  it('cover every row once, in at most 65535 slices', () => {
    for (const [rows, n] of [
      [1, 1],
      [7, 65],
      [1000, 7],
      [4096, 768],
      [4096, 64],
      [17, 100000],
      [10 ** 7, 1],
    ]) {
      const { slices, sliceRows } = columnSlices(rows, n);
      expect(slices * sliceRows).toBeGreaterThanOrEqual(rows);
      expect((slices - 1) * sliceRows).toBeLessThan(rows);
      expect(slices).toBeLessThanOrEqual(65535);
    }
  });
});

describe('sumColumns on WebGPU vs the reference', () => {
  afterAll(() => setSumToTrailingColumns(true));
  const cases: [number, number][] = [
    ...AWKWARD.map((r) => [r, 65] as [number, number]),
    ...AWKWARD.map((n) => [63, n] as [number, number]),
    [1000, 1],
  ];
  for (const [rows, n] of cases) {
    it.skipIf(!hasGpu)(`[${rows}, ${n}] (${columnSlices(rows, n).slices} slices)`, async () => {
      const gpu = (await gpuContext())!;
      const x = new Rng(rows * 13 + n).normalArray(rows * n);
      const xt = gpu.fromHost(x, [rows, n]);
      const s = sumColumns(xt);
      expect(s.shape).toEqual([n]);
      expectClose(await s.toFloat32(), sumColumnsReference(x, rows, n), TOL, 'column sums');
      for (const t of [xt, s]) t.dispose();
    });
  }

  for (const [batch, rows, n] of [
    [3, 7, 5],
    [65, 12, 32],
    [2, 1000, 65],
  ]) {
    it.skipIf(!hasGpu)(`batched [${batch}, ${rows}, ${n}]`, async () => {
      const gpu = (await gpuContext())!;
      const x = new Rng(batch + rows + n).normalArray(batch * rows * n);
      const xt = gpu.fromHost(x, [batch, rows, n]);
      const s = sumColumns(xt);
      expect(s.shape).toEqual([batch, n]);
      const want = new Float32Array(batch * n);
      for (let z = 0; z < batch; z++)
        want.set(sumColumnsReference(x.subarray(z * rows * n, (z + 1) * rows * n), rows, n), z * n);
      expectClose(await s.toFloat32(), want, TOL, 'batched column sums');
      for (const t of [xt, s]) t.dispose();
    });
  }

  it.skipIf(!hasGpu)('expandBackward: the column path matches the transposed-copy path', async () => {
    const gpu = (await gpuContext())!;
    const x = new Rng(9).normalArray(5 * 7 * 3 * 65);
    const xt = gpu.fromHost(x, [5, 7, 3, 65]);
    for (const shape of [
      [5, 7, 1, 65],
      [1, 7, 3, 65],
      [5, 1, 1, 65],
      [5, 7, 3, 1],
    ]) {
      setSumToTrailingColumns(false);
      const old = expandBackward(xt, shape);
      setSumToTrailingColumns(true);
      const now = expandBackward(xt, shape);
      expect(now.shape).toEqual(shape);
      expectClose(await now.toFloat32(), await old.toFloat32(), TOL, `expand from ${shape}`);
      for (const t of [old, now]) t.dispose();
    }
    xt.dispose();
  });

  it.skipIf(!hasGpu)('sumToTrailing: the column path matches the transposed-copy path', async () => {
    const gpu = (await gpuContext())!;
    const x = new Rng(5).normalArray(3 * 65 * 7 * 5);
    const xt = gpu.fromHost(x, [3, 65, 7, 5]);
    for (const shape of [[5], [7, 5], [65, 7, 5]]) {
      setSumToTrailingColumns(false);
      const old = sumToTrailing(xt, shape);
      setSumToTrailingColumns(true);
      const now = sumToTrailing(xt, shape);
      expect(now.shape).toEqual(shape);
      expectClose(await now.toFloat32(), await old.toFloat32(), TOL, `sum to ${shape}`);
      for (const t of [old, now]) t.dispose();
    }
    xt.dispose();
  });
});
