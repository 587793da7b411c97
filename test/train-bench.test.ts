/**
 * bench train on a micro config: both variants run whole training steps (finite loss), the FLOP count
 * follows the stated formula, activated parameters exclude the embedding and count routed experts at
 * top_k/E, and the all-MLA variant really has no KDA layer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allMlaConfig } from '../src/bench/modelConfig.js';
import { benchTrain, parameterCounts, trainStepFlops } from '../src/bench/train.js';
import { layerMap, parseKimiConfig } from '../src/model/config.js';
import { KimiLinearModel } from '../src/model/forward.js';
import { randomModelWeights } from '../src/model/randomWeights.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { FIXTURES, gpuContext, hasGpu } from './helpers.js';

const json = JSON.parse(readFileSync(join(FIXTURES, 'train/micro-model.json'), 'utf8')) as Record<string, unknown>;
const gpu = await gpuContext();

describe('bench train', () => {
  it('counts activated parameters and FLOPs by the stated formula', () => {
    const cfg = parseKimiConfig(json);
    const model = new KimiLinearModel(cfg, randomModelWeights(cfg, cpu, 'f32'));
    const { activated, total } = parameterCounts(model);
    const [E, k, I, D, V] = [4, 2, 16, 32, 256];
    const experts = cfg.num_hidden_layers * 3 * E * I * D; // both layers are MoE (first_k_dense_replace 0)
    expect(activated).toBe(total - V * D - experts + (experts * k) / E);
    const [B, T] = [2, 8];
    const f = trainStepFlops(model, B, T);
    expect(f.matmul).toBe(6 * activated * B * T);
    // layer 0 KDA (H 2, d 16), layer 1 MLA (H 2, d_qk 16, d_v 8)
    const kda = 3 * B * 2 * (6 * T * 16 * 16 + 3 * T * 64 * 16 + T * 64 * 64);
    const mla = 3 * B * 2 * T * T * (16 + 8);
    expect(f.mixer).toBe(kda + mla);
    expect(layerMap(parseKimiConfig(allMlaConfig(json))).every((l) => l.mixer === 'mla')).toBe(true);
  });

  it.skipIf(!hasGpu)('runs forward+backward+optimizer steps of both variants on WebGPU', async () => {
    const r = await benchTrain(gpu!, json, {
      seqLen: 16,
      batch: 2,
      steps: 1,
      warmup: 1,
      variants: ['hybrid', 'all-MLA'],
      optimizer: 'muon',
    });
    expect(r.rows.map((x) => x.model)).toEqual(['hybrid', 'all-MLA']);
    for (const x of r.rows) {
      expect(Number.isFinite(x.loss as number)).toBe(true);
      // Random weights on bytes: the loss starts near ln(256).
      expect(x.loss as number).toBeGreaterThan(4);
      expect(x.loss as number).toBeLessThan(7);
      expect(x.tokensPerS as number).toBeGreaterThan(0);
      expect(x.tflops as number).toBeCloseTo((x.flopsPerStep as number) / ((x.stepMs as number) / 1000) / 1e12, 12);
    }
    expect(r.hybridOverAllMlaTokensPerS).toBeGreaterThan(0);
  });
});
