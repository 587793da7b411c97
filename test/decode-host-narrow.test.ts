/**
 * The parts of the decode host path that need no subgroups, at the suite's 4 lanes (lavapipe compiles ~1.7x
 * faster there than at the 8 lanes decode-host.test.ts runs at for the tiled and int8 MLA kernels): the inference
 * MoE path equals experts(), and the unfused norms (fuseNormGemv false) give the fused step's logits on the 48B
 * preset's layer structure (tiny dims; the MLA layers take the split kernel here).
 */
import { describe, expect, it } from 'vitest';
import { experts, expertsInference, route } from '../src/kernels/moe/index.js';
import { moeDecodeTuning } from '../src/kernels/moe/decode.wgsl.js';
import { randomUniform } from '../src/kernels/random/index.js';
import { BatchSession } from '../src/model/batchSession.js';
import { KimiLinearModel } from '../src/model/forward.js';
import { randomModelWeights } from '../src/model/randomWeights.js';
import { expectClose, gpuContext, hasGpu, tiny48Config, ROUTER_BASE } from './helpers.js';

describe.skipIf(!hasGpu)('decode host path on WebGPU (4 lanes)', () => {
  it('expertsInference equals experts().y (decode kernels and the grouped path)', async () => {
    const gpu = (await gpuContext())!;
    const [E, I, D] = [8, 32, 64];
    const w = {
      w1: randomUniform(gpu, [E, I, D], { seed: 1, lo: -0.2, hi: 0.2, dtype: 'bf16' }),
      w3: randomUniform(gpu, [E, I, D], { seed: 2, lo: -0.2, hi: 0.2, dtype: 'bf16' }),
      w2: randomUniform(gpu, [E, D, I], { seed: 3, lo: -0.2, hi: 0.2, dtype: 'bf16' }),
    };
    for (const N of [1, 7, 65]) {
      const x = randomUniform(gpu, [N, D], { seed: 4 + N, lo: -1, hi: 1 });
      const logits = randomUniform(gpu, [N, E], { seed: 5 + N, lo: -1, hi: 1 });
      const r = route(logits, undefined, { ...ROUTER_BASE, numExperts: E, topK: 2, scaling: 1 });
      const full = experts(x, r, w);
      expectClose(await expertsInference(x, r, w).toFloat32(), await full.y.toFloat32(), 0, `N=${N}`);
    }
  });

  it('the MoE decode kernels up to 8 tokens (moeDecodeTuning.maxTokens) equal the grouped path they replace', async () => {
    const gpu = (await gpuContext())!;
    const [E, I, D, k] = [16, 40, 64, 8];
    const w = {
      w1: randomUniform(gpu, [E, I, D], { seed: 11, lo: -0.2, hi: 0.2, dtype: 'bf16' }),
      w3: randomUniform(gpu, [E, I, D], { seed: 12, lo: -0.2, hi: 0.2, dtype: 'bf16' }),
      w2: randomUniform(gpu, [E, D, I], { seed: 13, lo: -0.2, hi: 0.2, dtype: 'bf16' }),
    };
    for (const N of [5, 7, 8]) {
      const x = randomUniform(gpu, [N, D], { seed: 14 + N, lo: -1, hi: 1 });
      const logits = randomUniform(gpu, [N, E], { seed: 15 + N, lo: -1, hi: 1 });
      const cfg = { numExperts: E, topK: k, activation: 'sigmoid' as const, renormalize: true, scaling: 1 };
      const r = route(logits, undefined, { ...cfg, numGroups: 1, topkGroup: 1 });
      const saved = moeDecodeTuning.maxTokens;
      try {
        moeDecodeTuning.maxTokens = 4;
        const grouped = await expertsInference(x, r, w).toFloat32();
        moeDecodeTuning.maxTokens = 8;
        const before = gpu.dispatchCount;
        const decoded = expertsInference(x, r, w);
        // gate_up and down: no plan, no grouping.
        expect(gpu.dispatchCount - before, `N=${N}`).toBe(2);
        expectClose(await decoded.toFloat32(), grouped, 1e-5, `N=${N}`);
      } finally {
        moeDecodeTuning.maxTokens = saved;
      }
    }
  });

  it('fuseNormGemv false (every norm apart from the projection after it: the unfused ops) gives the same logits', async () => {
    const gpu = (await gpuContext())!;
    const cfg = tiny48Config();
    const weights = randomModelWeights(cfg, gpu, 'bf16');
    const run = async (fuseNormGemv: boolean) => {
      const s = new BatchSession(new KimiLinearModel(cfg, weights), {
        maxSequences: 1,
        maxLength: 64,
        cacheDtype: 'f32',
        fuseNormGemv,
      });
      s.addSynthetic(5);
      const out: Float32Array[] = [];
      for (let i = 0; i < 3; i++) out.push(await s.step([10 + i]));
      s.dispose();
      return out;
    };
    const [fused, apart] = [await run(true), await run(false)];
    for (let i = 0; i < 3; i++) expectClose(fused[i], apart[i], 1e-4, `step ${i}`);
    weights.dispose();
  });
});
