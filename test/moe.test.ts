import { describe, expect, it } from 'vitest';
import { experts, type RouterConfig, route } from '../src/kernels/moe/index.js';
import { expertsReference, routeReference } from '../src/kernels/moe/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu, ROUTER_BASE } from './helpers.js';

describe('MoE routing reference', () => {
  it('picks the largest biased scores but weights by the unbiased ones', () => {
    const logits = new Float32Array([0, 1, 2, 3]);
    const bias = new Float32Array([10, 0, 0, 0]);
    const r = routeReference(logits, bias, 1, { ...ROUTER_BASE, numExperts: 4, topK: 2, scaling: 1 });
    expect(Array.from(r.idx)).toEqual([0, 3]);
    const s0 = 0.5;
    const s3 = 1 / (1 + Math.exp(-3));
    expectClose(r.weights, [s0 / (s0 + s3), s3 / (s0 + s3)], 1e-6);
  });

  it('keeps only the best groups (sum of their top-2)', () => {
    // Group 0 = {0,1}, group 1 = {2,3}. Expert 0 is best alone, but group 1 has the larger top-2 sum.
    const logits = new Float32Array([5, -5, 3, 3]);
    const r = routeReference(logits, undefined, 1, {
      ...ROUTER_BASE,
      numExperts: 4,
      topK: 1,
      numGroups: 2,
      topkGroup: 1,
    });
    expect(Array.from(r.idx)).toEqual([2]);
  });
});

describe.skipIf(!hasGpu)('MoE on WebGPU vs reference', () => {
  // N <= 4 takes the decode kernels (GEMV-shaped, vector loads when D and I are multiples of 8), larger N
  // the grouped tiles.
  const configs: [string, RouterConfig, number, number, number][] = [
    ['sigmoid top-2 of 8', ROUTER_BASE, 1, 24, 40],
    ['sigmoid top-2 of 8', ROUTER_BASE, 7, 24, 40],
    ['sigmoid top-2 of 8', ROUTER_BASE, 65, 24, 40],
    [
      'softmax top-3 of 16, 4 groups keep 2',
      { ...ROUTER_BASE, numExperts: 16, topK: 3, activation: 'softmax', numGroups: 4, topkGroup: 2 },
      63,
      24,
      40,
    ],
    ['top-1 no renormalisation', { ...ROUTER_BASE, topK: 1, renormalize: false }, 33, 24, 40],
    ['decode, odd widths (scalar loads)', ROUTER_BASE, 3, 27, 37],
    ['decode, top-8 of 256 (the released router)', { ...ROUTER_BASE, numExperts: 256, topK: 8 }, 4, 64, 48],
  ];
  for (const [name, cfg, N, D, I] of configs) {
    it(`${name}, N=${N}: same experts, weights and mixed output (f32 and bf16 experts)`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(N + cfg.numExperts);
      const E = cfg.numExperts;
      const logits = rng.normalArray(N * E, 2);
      const bias = rng.normalArray(E, 0.1);
      const x = rng.normalArray(N * D);
      const w1 = rng.normalArray(E * I * D, 0.2);
      const w3 = rng.normalArray(E * I * D, 0.2);
      const w2 = rng.normalArray(E * D * I, 0.2);
      const ref = routeReference(logits, bias, N, cfg);
      const r = route(gpu.fromHost(logits, [N, E]), gpu.fromHost(bias, [E]), cfg);
      expect(Array.from(await r.idx.read())).toEqual(Array.from(ref.idx));
      expectClose(await r.weights.read(), ref.weights, 1e-6, 'weights');
      for (const dtype of ['f32', 'bf16'] as const) {
        const up = (a: Float32Array, shape: number[]) =>
          dtype === 'bf16' ? gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16') : gpu.fromHost(a, shape);
        const vals = (a: Float32Array) => (dtype === 'bf16' ? bf16ArrayToF32(f32ArrayToBf16(a)) : a);
        const out = experts(gpu.fromHost(x, [N, D]), r, {
          w1: up(w1, [E, I, D]),
          w3: up(w3, [E, I, D]),
          w2: up(w2, [E, D, I]),
        });
        const yRef = expertsReference(x, ref, vals(w1), vals(w3), vals(w2), { N, D, I, topK: cfg.topK });
        expectClose(await out.y.read(), yRef, 1e-5, `y (${dtype})`);
        const counts = new Array(E).fill(0);
        for (const e of ref.idx) counts[e]++;
        expect(Array.from(await out.counts.read())).toEqual(counts);
      }
      // The cpu backend runs the same references through the same API.
      const rc = route(cpu.fromHost(logits, [N, E]), cpu.fromHost(bias, [E]), cfg);
      expect(Array.from(await rc.idx.read())).toEqual(Array.from(ref.idx));
    });
  }
});
