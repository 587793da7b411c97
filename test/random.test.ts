import { describe, expect, it } from 'vitest';
import { randomUniform } from '../src/kernels/random/index.js';
import { randomUniformReference } from '../src/kernels/random/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { AWKWARD, gpuContext, hasGpu } from './helpers.js';

describe('randomUniform', () => {
  it('reference values lie in [lo, hi) with mean near the middle', () => {
    const v = randomUniformReference(10000, 3, -2, 2);
    let s = 0;
    for (const x of v) {
      expect(x).toBeGreaterThanOrEqual(-2);
      expect(x).toBeLessThan(2);
      s += x;
    }
    expect(Math.abs(s / v.length)).toBeLessThan(0.05);
    expect(randomUniformReference(5, 4, 0, 1)).not.toEqual(randomUniformReference(5, 3, 0, 1));
  });

  for (const n of AWKWARD) {
    it.skipIf(!hasGpu)(`WebGPU equals the reference bit for bit, n=${n}, f32 and bf16`, async () => {
      const gpu = (await gpuContext())!;
      for (const dtype of ['f32', 'bf16'] as const) {
        const g = randomUniform(gpu, [n], { seed: 11, lo: -0.5, hi: 0.25, dtype });
        const c = randomUniform(cpu, [n], { seed: 11, lo: -0.5, hi: 0.25, dtype });
        expect(Array.from(await g.read())).toEqual(Array.from(await c.read()));
      }
    });
  }
});
