import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { benchDecode, cachePerSequence, largestBatch } from '../src/bench/decode.js';
import { checkDecode } from '../src/bench/decodeCheck.js';
import { loadModel } from '../src/model/load.js';
import { parseKimiConfig } from '../src/model/config.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { FIXTURES, gpuContext, hasGpu } from './helpers.js';

describe('bench decode', () => {
  it('times hybrid and all-MLA at each context and reports their ratio (tiny config, random weights, cpu)', async () => {
    const json = JSON.parse(readFileSync(`${FIXTURES}/tiny-kimi/config.json`, 'utf8'));
    const r = await benchDecode(cpu, json, { contexts: [8, 200], steps: 2, cacheDtype: 'bf16', weightsDtype: 'f32' });
    expect(r.rows.map((x) => `${x.model}@${x.context}`)).toEqual([
      'hybrid@8',
      'hybrid@200',
      'all-MLA@8',
      'all-MLA@200',
    ]);
    for (const x of r.rows) expect(x.tpotMs as number).toBeGreaterThan(0);
    // The latent cache grows with the context; the KDA state does not.
    const cache = (m: string, c: number) => r.rows.find((x) => x.model === m && x.context === c)!.cacheGB as number;
    expect(cache('all-MLA', 200)).toBeGreaterThan(cache('all-MLA', 8));
    expect(cache('all-MLA', 200) - cache('all-MLA', 8)).toBeGreaterThan(cache('hybrid', 200) - cache('hybrid', 8));
    expect(r.ratios).toHaveLength(2);
  });
});

describe('bench decode --batch / --max-batch', () => {
  const json = JSON.parse(readFileSync(`${FIXTURES}/tiny-kimi/config.json`, 'utf8'));

  it('decodes B sequences per step and finds the largest batch each variant cache allows', async () => {
    const r = await benchDecode(cpu, json, {
      contexts: [300],
      steps: 1,
      cacheDtype: 'bf16',
      weightsDtype: 'f32',
      batches: [1, 3],
      maxBatch: true,
      // Weights + packed decode projections: hybrid 1.60 MB, all-MLA 1.37 MB.
      memoryGB: 0.0024,
    });
    const row = (m: string, B: number) => r.rows.find((x) => x.model === m && x.batch === B)!;
    // A batch of 3 holds three sequences' caches and makes 3 tokens per step.
    expect(row('all-MLA', 3).cacheGB as number).toBeCloseTo(3 * (row('all-MLA', 1).cacheGB as number), 9);
    expect(row('hybrid', 3).tokensPerS as number).toBeCloseTo((3 * 1000) / (row('hybrid', 3).tpotMs as number), 6);
    const fitOf = (m: string) => r.fits.find((x) => x.model === m)!;
    // The hybrid cache per sequence is smaller, so more sequences fit beside its weights.
    expect(fitOf('hybrid').perSequenceCacheGB as number).toBeLessThan(fitOf('all-MLA').perSequenceCacheGB as number);
    expect(fitOf('hybrid').maxBatch as number).toBeGreaterThan(fitOf('all-MLA').maxBatch as number);
    for (const m of ['hybrid', 'all-MLA']) {
      const f = fitOf(m);
      // The budget holds the weights, the decode step's packed copies of projections and the caches.
      const weights = r.weightsGB[m] + (row(m, 1).decodeWeightsGB as number);
      const per = f.perSequenceCacheGB as number;
      const B = f.maxBatch as number;
      expect(weights + B * per).toBeLessThanOrEqual(0.0024);
      expect(weights + (B + 1) * per).toBeGreaterThan(0.0024);
      expect(r.rows.some((x) => x.model === m && x.batch === B && x.maxBatch)).toBe(true);
    }
    expect(r.batchLimited).toHaveLength(1);
    expect(r.batchLimited[0].hybridBatch).toBe(fitOf('hybrid').maxBatch);
  });

  it('largestBatch: bounded by memory, by the cap, and by one sequence per binding', () => {
    const cfg = parseKimiConfig(json, 'tiny');
    const per = cachePerSequence(cfg, 1000, 'bf16');
    const base = { cacheDtype: 'bf16' as const, weightBytes: 1e6, maxBinding: Number.POSITIVE_INFINITY, cap: 1000 };
    expect(largestBatch(cfg, 1000, { ...base, memoryBytes: 1e6 + 5.5 * per.bytes })).toMatchObject({
      batch: 5,
      limitedBy: 'memory',
    });
    // Pools shard past the binding limit: only one sequence's share of a layer must fit a binding.
    const bound = (maxBinding: number) =>
      largestBatch(cfg, 1000, { ...base, memoryBytes: 1e6 + 20 * per.bytes, maxBinding });
    expect(bound(2.5 * per.mlaPoolPerLayer)).toMatchObject({ batch: 20, limitedBy: 'memory' });
    expect(bound(0.5 * per.mlaPoolPerLayer)).toMatchObject({ batch: 0, limitedBy: 'buffer binding' });
    expect(largestBatch(cfg, 1000, { ...base, memoryBytes: 1e12, cap: 9 })).toMatchObject({
      batch: 9,
      limitedBy: 'cap',
    });
    expect(largestBatch(cfg, 1000, { ...base, memoryBytes: 1e5 }).batch).toBe(0);
  });
});

describe('bench decode --check (the decode step against its earlier forms, on the device)', () => {
  it.skipIf(!hasGpu)(
    'tiny-kimi, WebGPU: the fused step agrees with the unfused one, replay and every earlier default',
    async () => {
      const model = await loadModel(`${FIXTURES}/tiny-kimi`, (await gpuContext())!);
      const c = await checkDecode(model, { context: 32, steps: 8, cacheDtype: 'bf16' });
      model.weights.dispose();
      expect(c.tokensEqual).toBe(true);
      expect(c.replayTokensEqual).toBe(true);
      expect(c.replayLogitsMaxRelDiff).toBe(0);
      // Changes that reorder sums (fused GEMVs, folded gates) stay within f32 rounding of the logits' scale ...
      for (const k of [
        'logitsMaxRelDiff',
        'beforeLogitsMaxRelDiff',
        'session6LogitsMaxRelDiff',
        'session7LogitsMaxRelDiff',
      ] as const)
        expect(c[k], k).toBeLessThan(1e-5);
      // ... and those meant to be bit-equal (the route tail, the eager prologues) are.
      expect(c.session9LogitsMaxRelDiff).toBe(0);
      expect(c.session10LogitsMaxRelDiff).toBe(0);
      // The MLA query fold (bf16 cache here: declined, the f16 kernel is int8-cache and H200-only) changes no bits.
      expect(c.mlaFoldQueryLogitsMaxRelDiff).toBe(0);
    },
  );
});
