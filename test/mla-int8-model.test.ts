// Before anything opens the GPU: this file's MLA decode needs 8-lane subgroups (lanes-default.ts).
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import { cpu } from '../src/tensor/cpuDevice.js';
import { gpuContext, hasGpu } from './helpers.js';
import { compareLatentCache } from './mla-latent-cache.js';

describe('tiny-kimi with an int8 latent cache', () => {
  // The int8 cache only changes decode steps (prefill attends over the f32 latents it has in hand).
  it('cpu backend (the int8 reference): logits within 1e-2 of the f32 cache, greedy tokens agree', async () => {
    const { worst, agree } = await compareLatentCache(cpu, 'int8', 40, 16);
    // Measured 3.8e-3 (the GPU kernel the same); > 0: the int8 path ran.
    expect(worst).toBeLessThan(1e-2);
    expect(worst).toBeGreaterThan(0);
    expect(agree).toBe(16);
  });
  it.skipIf(!hasGpu)(
    'WebGPU (the dp4a kernel): logits within 1e-2 of the f32 cache, greedy tokens agree',
    async (ctx) => {
      const gpu = (await gpuContext())!;
      if (!gpu.features.subgroups || gpu.adapterInfo.subgroupMinSize !== gpu.adapterInfo.subgroupMaxSize) ctx.skip();
      const { worst, agree } = await compareLatentCache(gpu, 'int8', 40, 16);
      console.log(
        `int8 vs f32 latent cache, tiny-kimi, 16 greedy steps: max relative logit error ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThan(1e-2);
      expect(worst).toBeGreaterThan(0);
      expect(agree).toBe(16);
    },
  );
});
