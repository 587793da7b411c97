import { describe, expect, it } from 'vitest';
import { topk } from '../src/kernels/topk/index.js';
import { topkReference } from '../src/kernels/topk/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// Selection only: values and indices must match the reference exactly (tolerance 0).

describe('topk on cpu (hand-computed values)', () => {
  it('k largest, descending, ties to the lower index', async () => {
    const x = cpu.fromHost(new Float32Array([1, 9, 3, 9, 7, -1, -2, -1, -5, -1]), [2, 5]);
    const { values, indices } = topk(x, 3);
    expect(values.shape).toEqual([2, 3]);
    expect(indices.dtype).toBe('i32');
    expect(Array.from(await values.read())).toEqual([9, 9, 7, -1, -1, -1]);
    expect(Array.from(await indices.read())).toEqual([1, 3, 4, 0, 2, 4]);
  });

  it('checks k', () => {
    const x = cpu.fromHost(new Float32Array(6), [2, 3]);
    expect(() => topk(x, 4)).toThrow(/topk: k = 4, expected an integer in \[1, min\(64, E = 3\)\]/);
    expect(() => topk(x, 0)).toThrow(/k = 0/);
    expect(() => topk(cpu.fromHost(new Float32Array(100), [100]), 65)).toThrow(/k = 65/);
  });
});

describe('topk on WebGPU vs the reference', () => {
  const cases: [number, number, number][] = [
    ...AWKWARD.map((n) => [n, 256, 8] as [number, number, number]),
    ...AWKWARD.map((e) => [7, e, Math.min(e, 8)] as [number, number, number]),
    [5, 1000, 64],
    [3, 65, 64],
  ];
  for (const [rows, E, k] of cases) {
    it.skipIf(!hasGpu)(`[${rows}, ${E}] k=${k}`, async () => {
      const gpu = (await gpuContext())!;
      // Rounded values so ties are common and the tie order is tested.
      const x = new Rng(rows * 31 + E + k).normalArray(rows * E).map((v) => Math.round(v * 8) / 8);
      const xt = gpu.fromHost(x, [rows, E]);
      const got = topk(xt, k);
      const ref = topkReference(x, rows, E, k);
      expectClose(await got.values.toFloat32(), ref.values, 0, 'values');
      expectClose(Float32Array.from(await got.indices.read()), Float32Array.from(ref.indices), 0, 'indices');
      for (const t of [xt, got.values, got.indices]) t.dispose();
    });
  }

  it.skipIf(!hasGpu)('all-equal rows and -inf entries keep index order', async () => {
    const gpu = (await gpuContext())!;
    const x = new Float32Array(2 * 70).fill(0.5);
    for (let i = 70; i < 140; i++) x[i] = i % 3 === 0 ? 2 : Number.NEGATIVE_INFINITY;
    const { values, indices } = topk(gpu.fromHost(x, [2, 70]), 30);
    const ref = topkReference(x, 2, 70, 30);
    expect(Array.from(await indices.read())).toEqual(Array.from(ref.indices));
    expect(Array.from(await values.read())).toEqual(Array.from(ref.values));
  });

  it.skipIf(!hasGpu)('more than 65535 rows fold into a 2-D grid of workgroups', async () => {
    const gpu = (await gpuContext())!;
    const rows = 65537;
    const x = Float32Array.from({ length: rows * 2 }, (_, i) => (i % 2 === 0 ? i % 7 : 3));
    const { values, indices } = topk(gpu.fromHost(x, [rows, 2]), 1);
    const ref = topkReference(x, rows, 2, 1);
    expectClose(await values.toFloat32(), ref.values, 0, 'values');
    expectClose(Float32Array.from(await indices.read()), Float32Array.from(ref.indices), 0, 'indices');
  });
});
