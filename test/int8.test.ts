import { describe, expect, it } from 'vitest';
import { int8Matmul, int8MatmulReference, packInt8, prepareSubgroupMatrix } from '../src/kernels/int8/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu } from './helpers.js';

/** Random int8 values over the whole range, the extremes -128 and 127 included. */
function randomInt8(rng: Rng, n: number): Int8Array {
  const x = new Int8Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.int(256) - 128;
  x[0] = -128;
  if (n > 1) x[n - 1] = 127;
  return x;
}

describe('int8 matmul', () => {
  it('reference: A . B^T in exact integers, including the extremes', () => {
    const a = Int8Array.from([-128, 127, 1, -1]);
    const b = Int8Array.from([-128, -128, 127, 127, 2, 3, 4, 5]);
    // C[0][0] = (-128)(-128) + 127(-128) + 1(127) + (-1)(127) = 16384 - 16256 + 0 = 128
    expect([...int8MatmulReference(a, b, 1, 2, 4)]).toEqual([128, -256 + 381 + 4 - 5]);
  });

  it('cpu device: unpacks the words and gives the reference', async () => {
    const rng = new Rng(5);
    const [M, N, K] = [3, 5, 8];
    const a = randomInt8(rng, M * K);
    const b = randomInt8(rng, N * K);
    const c = int8Matmul(cpu.fromHost(packInt8(a), [M, K / 4], 'i32'), cpu.fromHost(packInt8(b), [N, K / 4], 'i32'));
    expect([...(await c.read())]).toEqual([...int8MatmulReference(a, b, M, N, K)]);
  });

  it('rejects mismatched K and wrong dtypes, naming the tensor', () => {
    const a = cpu.fromHost(new Int32Array(6), [2, 3], 'i32');
    const b = cpu.fromHost(new Int32Array(8), [2, 4], 'i32');
    expect(() => int8Matmul(a, b)).toThrow(/K\/4 = 3 words per row, b has 4/);
    expect(() => int8Matmul(cpu.fromHost(new Float32Array(6), [2, 3]), a)).toThrow(/'?a'?.*f32/);
  });

  const shapes: [number, number, number][] = [
    [1, 1, 4],
    [7, 63, 36],
    [65, 7, 260],
    [63, 65, 132],
    [130, 129, 64],
  ];
  for (const [M, N, K] of shapes) {
    it.skipIf(!hasGpu)(`webgpu dp4a = reference at M=${M}, N=${N}, K=${K}`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(M * 1000 + N * 10 + K);
      const a = randomInt8(rng, M * K);
      const b = randomInt8(rng, N * K);
      const c = int8Matmul(gpu.fromHost(packInt8(a), [M, K / 4], 'i32'), gpu.fromHost(packInt8(b), [N, K / 4], 'i32'), {
        kernel: 'dp4a',
      });
      expect([...(await c.read())]).toEqual([...int8MatmulReference(a, b, M, N, K)]);
    });
  }

  it.skipIf(!hasGpu)('subgroup-matrix kernel: refused where the device lacks it, else = reference', async () => {
    const gpu = (await gpuContext())!;
    const prep = await prepareSubgroupMatrix(gpu);
    const [M, N, K] = [64, 128, 96];
    const rng = new Rng(9);
    const a = randomInt8(rng, M * K);
    const b = randomInt8(rng, N * K);
    const run = () =>
      int8Matmul(gpu.fromHost(packInt8(a), [M, K / 4], 'i32'), gpu.fromHost(packInt8(b), [N, K / 4], 'i32'), {
        kernel: 'subgroup-matrix',
      });
    if (prep.variant === null) {
      expect(() => run()).toThrow(/not available on this device/);
      return;
    }
    expect([...(await run().read())]).toEqual([...int8MatmulReference(a, b, M, N, K)]);
  });
});
