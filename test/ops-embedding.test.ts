import { describe, expect, it } from 'vitest';
import { embedding } from '../src/kernels/embedding/index.js';
import { embeddingReference } from '../src/kernels/embedding/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16, toF32 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// A gather (and exact bf16 widening): the GPU must match the reference bit for bit, tolerance 0.

describe('embedding on cpu (hand-computed values)', () => {
  it('gathers rows, keeps the ids shape, widens bf16', async () => {
    const table = cpu.fromHost(new Float32Array([0, 1, 10, 11, 20, 21]), [3, 2]);
    const ids = cpu.fromHost(new Int32Array([2, 0, 2, 1]), [2, 2], 'i32');
    const y = embedding(table, ids);
    expect(y.shape).toEqual([2, 2, 2]);
    expect(Array.from(await y.read())).toEqual([20, 21, 0, 1, 20, 21, 10, 11]);
    const tb = cpu.fromHost(f32ArrayToBf16([0, 1, 10, 11, 20, 21]), [3, 2], 'bf16');
    expect(Array.from(await embedding(tb, ids).read())).toEqual([20, 21, 0, 1, 20, 21, 10, 11]);
  });

  it('rejects out-of-range ids naming the id and V, and bad dtypes', () => {
    const table = cpu.fromHost(new Float32Array(6), [3, 2]);
    expect(() => embedding(table, cpu.fromHost(new Int32Array([0, 3]), [2], 'i32'))).toThrow(
      /token id 3 at position 1 is outside \[0, 3\)/,
    );
    expect(() => embedding(table, cpu.fromHost(new Int32Array([-1]), [1], 'i32'))).toThrow(/token id -1/);
    expect(() => embedding(table, cpu.fromHost(new Float32Array([0]), [1]))).toThrow(/ids has dtype f32, expected i32/);
    expect(() =>
      embedding(cpu.fromHost(new Float32Array(6), [6]), cpu.fromHost(new Int32Array([0]), [1], 'i32')),
    ).toThrow(/table has shape \[6\]/);
  });
});

describe('embedding on WebGPU vs the reference', () => {
  for (const n of AWKWARD) {
    it.skipIf(!hasGpu)(`${n} ids into [1000, 65] and [37, ${n}] tables, f32 and bf16`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(n + 5);
      for (const [V, D] of [
        [1000, 65],
        [37, n],
      ]) {
        const data = rng.normalArray(V * D);
        const ids = Int32Array.from({ length: n }, () => rng.nextU32() % V);
        const idt = gpu.fromHost(ids, [n], 'i32');
        const tf = gpu.fromHost(data, [V, D]);
        expectClose(await embedding(tf, idt).toFloat32(), embeddingReference(data, ids, V, D), 0, 'f32');
        const bits = f32ArrayToBf16(data);
        const tb = gpu.fromHost(bits, [V, D], 'bf16');
        const ref = embeddingReference(toF32('bf16', bits), ids, V, D);
        expectClose(await embedding(tb, idt).toFloat32(), ref, 0, 'bf16');
        for (const t of [idt, tf, tb]) t.dispose();
      }
    });
  }

  it.skipIf(!hasGpu)('clamps out-of-range ids on the GPU instead of reading out of bounds', async () => {
    const gpu = (await gpuContext())!;
    const table = gpu.fromHost(new Float32Array([0, 1, 10, 11, 20, 21]), [3, 2]);
    const ids = gpu.fromHost(new Int32Array([-5, 3, 1000000, 1]), [4], 'i32');
    expect(Array.from(await embedding(table, ids).read())).toEqual([0, 1, 20, 21, 20, 21, 10, 11]);
  });
});
