import { describe, expect, it } from 'vitest';
import { concatLast } from '../src/kernels/concat/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, gpuContext, hasGpu } from './helpers.js';

describe('concatLast', () => {
  it('joins rows and broadcasts an expanded operand', async () => {
    const a = cpu.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const b = cpu.fromHost(new Float32Array([9]), [1, 1]).expand([2, 1]);
    expect(Array.from(await concatLast(a, b).read())).toEqual([1, 2, 9, 3, 4, 9]);
    expect(() => concatLast(a, cpu.fromHost(new Float32Array(3), [3, 1]))).toThrow(/leading dimensions differ/);
  });

  for (const n of AWKWARD) {
    it.skipIf(!hasGpu)(`WebGPU equals the reference, ${n} rows, with a head-broadcast operand`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(n);
      const a = rng.normalArray(n * 3 * 5);
      const b = rng.normalArray(n * 2);
      const ga = gpu.fromHost(a, [n, 3, 5]);
      const gb = gpu.fromHost(b, [n, 1, 2]).expand([n, 3, 2]);
      const ca = cpu.fromHost(a, [n, 3, 5]);
      const cb = cpu.fromHost(b, [n, 1, 2]).expand([n, 3, 2]);
      expect(Array.from(await concatLast(ga, gb).read())).toEqual(Array.from(await concatLast(ca, cb).read()));
    });
  }
});
