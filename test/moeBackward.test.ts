import { describe, expect, it } from 'vitest';
import { setMoeOuterTiled } from '../src/kernels/moe/outerTiled.wgsl.js';
import { setMoePlanLocal } from '../src/kernels/moe/plan.wgsl.js';
import { setMoeRowsThreadRows, setMoeRowsTiled } from '../src/kernels/moe/rowsTiled.wgsl.js';
import { expertsBackward, routeBackward } from '../src/kernels/moe/backward.js';
import { expertsBackwardReference, routeBackwardReference } from '../src/kernels/moe/backwardReference.js';
import type { RouterConfig } from '../src/kernels/moe/index.js';
import { expertsReference, routeReference } from '../src/kernels/moe/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { centralDiff, dot, expectClose, gpuContext, hasGpu, ROUTER_BASE } from './helpers.js';

function expertsCase(N: number, D: number, I: number, E: number, k: number, seed: number) {
  const rng = new Rng(seed);
  const idx = new Int32Array(N * k);
  for (let n = 0; n < N; n++) {
    // k distinct experts per token, as the router gives.
    const pool = Array.from({ length: E }, (_, e) => e);
    for (let j = 0; j < k; j++) idx[n * k + j] = pool.splice(rng.int(pool.length), 1)[0];
  }
  return {
    x: rng.normalArray(N * D),
    routes: { idx, weights: rng.uniformArray(N * k, 0.1, 1) },
    w1: rng.normalArray(E * I * D, 0.4),
    w3: rng.normalArray(E * I * D, 0.4),
    w2: rng.normalArray(E * D * I, 0.4),
    dy: rng.normalArray(N * D),
  };
}

/** expertsBackward on `dev`, the case's arrays uploaded there. */
function expertsBackwardOn(
  dev: Device,
  c: ReturnType<typeof expertsCase>,
  N: number,
  D: number,
  I: number,
  E: number,
  k: number,
) {
  return expertsBackward(
    dev.fromHost(c.x, [N, D]),
    { idx: dev.fromHost(c.routes.idx, [N, k], 'i32'), weights: dev.fromHost(c.routes.weights, [N, k]) },
    { w1: dev.fromHost(c.w1, [E, I, D]), w3: dev.fromHost(c.w3, [E, I, D]), w2: dev.fromHost(c.w2, [E, D, I]) },
    dev.fromHost(c.dy, [N, D]),
  );
}

describe('MoE backward reference', () => {
  it('experts: matches central differences of sum(y * dy) in x, weights, w1, w3, w2', () => {
    const [N, D, I, E, k] = [4, 5, 6, 3, 2];
    const c = expertsCase(N, D, I, E, k, 1);
    const dims = { N, D, I, E, topK: k };
    const g = expertsBackwardReference(c.x, c.routes, c.w1, c.w3, c.w2, c.dy, dims);
    const loss = () => dot(expertsReference(c.x, c.routes, c.w1, c.w3, c.w2, dims), c.dy);
    // eps 1e-2 in f32: truncation and rounding both well under 2e-3 of the gradient scale here.
    for (const [name, a, grad] of [
      ['x', c.x, g.dx],
      ['weights', c.routes.weights, g.dWeights],
      ['w1', c.w1, g.dw1],
      ['w3', c.w3, g.dw3],
      ['w2', c.w2, g.dw2],
    ] as const) {
      const fd = Float32Array.from(a, (_, i) => centralDiff(loss, a, i, 1e-2));
      expectClose(grad, fd, 2e-3, `d${name}`);
    }
  });

  const routeCfgs: [string, RouterConfig][] = [
    ['sigmoid, renormalised top-2', ROUTER_BASE],
    ['sigmoid, top-3 no renormalisation', { ...ROUTER_BASE, topK: 3, renormalize: false }],
    [
      'softmax top-3 of 16, 4 groups keep 2',
      { ...ROUTER_BASE, numExperts: 16, topK: 3, activation: 'softmax', numGroups: 4, topkGroup: 2 },
    ],
    ['top-1 (renormalisation skipped for k = 1)', { ...ROUTER_BASE, topK: 1 }],
  ];
  for (const [name, cfg] of routeCfgs) {
    it(`router (${name}): matches central differences of sum(weights * g) in the logits`, () => {
      const N = 5;
      const E = cfg.numExperts;
      const rng = new Rng(E + cfg.topK);
      const logits = rng.normalArray(N * E, 2);
      const bias = rng.normalArray(E, 0.3);
      const g = rng.normalArray(N * cfg.topK);
      const r0 = routeReference(logits, bias, N, cfg);
      const dl = routeBackwardReference(logits, r0.idx, g, N, cfg);
      const loss = () => {
        const r = routeReference(logits, bias, N, cfg);
        // The selection must not flip inside the difference, or the check is meaningless.
        expect(Array.from(r.idx)).toEqual(Array.from(r0.idx));
        return dot(r.weights, g);
      };
      const fd = Float32Array.from(logits, (_, i) => centralDiff(loss, logits, i, 1e-3));
      expectClose(dl, fd, 3e-3, 'dLogits');
      // Experts never chosen get no gradient under sigmoid.
      if (cfg.activation === 'sigmoid') {
        for (let n = 0; n < N; n++)
          for (let e = 0; e < E; e++) {
            const chosen = Array.from(r0.idx.subarray(n * cfg.topK, (n + 1) * cfg.topK)).includes(e);
            if (!chosen) expect(dl[n * E + e]).toBe(0);
          }
      }
    });
  }

  it('cpu backend runs the references; bad idx is named', async () => {
    const [N, D, I, E, k] = [3, 4, 5, 3, 2];
    const c = expertsCase(N, D, I, E, k, 2);
    const out = expertsBackwardOn(cpu, c, N, D, I, E, k);
    const ref = expertsBackwardReference(c.x, c.routes, c.w1, c.w3, c.w2, c.dy, { N, D, I, E, topK: k });
    expect(Array.from(await out.dw2.read())).toEqual(Array.from(ref.dw2));
    expect(Array.from(await out.dWeights.read())).toEqual(Array.from(ref.dWeights));
    const bad = Int32Array.from(c.routes.idx);
    bad[3] = 7;
    expect(() =>
      routeBackward(
        cpu.zeros([N, E]),
        undefined,
        { idx: cpu.fromHost(bad, [N, k], 'i32'), weights: cpu.zeros([N, k]) },
        cpu.zeros([N, k]),
        {
          ...ROUTER_BASE,
          numExperts: E,
        },
      ),
    ).toThrow(/routes.idx\[3\] = 7, expected 0..2/);
  });
});

describe.skipIf(!hasGpu)('MoE backward on WebGPU vs reference', () => {
  // [N, D, I, E, k]: one token (most experts empty: zero weight gradients), odd sizes, experts with more
  // rows than one 32-row tile, k = 3 of 5.
  // The last: ~133 rows per expert, so the split outer products sum uneven chunks and an empty one.
  // 'new': the defaults: tiled row kernels (8 rows per thread for one weight, 4 for two), the tiled outer
  // products (outerTiled.wgsl.ts) where D and I are multiples of 4 (24 x 40: a 128 x 64 tile's edges; with 200
  // tokens chunks of several 16-row steps), the atomic expert plan.
  // 'rows 8, local plan': 8 rows per thread in every form, the plan without atomics (plan.wgsl.ts).
  // 'split outer': 4 rows per thread (the first tiled form) and the outer products of outerSplit.wgsl.ts.
  // 'scalar': the earlier kernels (setMoeRowsTiled(false)), kept for comparison on the device.
  type Kernels = 'new' | 'rows 8, local plan' | 'split outer' | 'scalar';
  const cases: [number, number, number, number, number, Kernels][] = [
    [1, 8, 12, 8, 2, 'new'],
    [7, 13, 37, 8, 2, 'new'],
    [65, 24, 40, 3, 2, 'new'],
    [63, 17, 70, 5, 3, 'new'],
    [200, 24, 40, 3, 2, 'new'],
    [200, 24, 40, 3, 2, 'rows 8, local plan'],
    [63, 17, 70, 5, 3, 'rows 8, local plan'],
    [200, 24, 40, 3, 2, 'split outer'],
    [65, 24, 40, 3, 2, 'scalar'],
    [63, 17, 70, 5, 3, 'scalar'],
  ];
  for (const [N, D, I, E, k, kernels] of cases) {
    it(`experts N=${N} D=${D} I=${I} E=${E} k=${k} (${kernels} kernels)`, async () => {
      const gpu = (await gpuContext())!;
      const c = expertsCase(N, D, I, E, k, N * 3 + I);
      setMoeRowsTiled(kernels !== 'scalar');
      setMoeOuterTiled(kernels !== 'split outer');
      setMoeRowsThreadRows(kernels === 'new' ? 'mode' : kernels === 'rows 8, local plan' ? 8 : 4);
      setMoePlanLocal(kernels === 'rows 8, local plan');
      let out: ReturnType<typeof expertsBackwardOn>;
      try {
        out = expertsBackwardOn(gpu, c, N, D, I, E, k);
      } finally {
        setMoeRowsTiled(true);
        setMoeOuterTiled(true);
        setMoeRowsThreadRows('mode');
        setMoePlanLocal(false);
      }
      const ref = expertsBackwardReference(c.x, c.routes, c.w1, c.w3, c.w2, c.dy, { N, D, I, E, topK: k });
      // f32 sums over at most D, I or one expert's rows; relative to max |value|.
      const TOL = 2e-5;
      expectClose(await out.dx.read(), ref.dx, TOL, 'dx');
      expectClose(await out.dWeights.read(), ref.dWeights, TOL, 'dWeights');
      expectClose(await out.dw1.read(), ref.dw1, TOL, 'dw1');
      expectClose(await out.dw3.read(), ref.dw3, TOL, 'dw3');
      expectClose(await out.dw2.read(), ref.dw2, TOL, 'dw2');
    });
  }

  for (const [name, cfg] of [
    ['sigmoid, renormalised top-2 of 8', ROUTER_BASE],
    [
      'softmax top-3 of 16, 4 groups keep 2, no renormalisation',
      {
        ...ROUTER_BASE,
        numExperts: 16,
        topK: 3,
        activation: 'softmax',
        numGroups: 4,
        topkGroup: 2,
        renormalize: false,
      },
    ],
    ['top-1 sigmoid', { ...ROUTER_BASE, topK: 1 }],
  ] as [string, RouterConfig][]) {
    it(`router (${name}), N=65`, async () => {
      const gpu = (await gpuContext())!;
      const N = 65;
      const E = cfg.numExperts;
      const rng = new Rng(E * 3 + cfg.topK);
      const logits = rng.normalArray(N * E, 2);
      const bias = rng.normalArray(E, 0.3);
      const g = rng.normalArray(N * cfg.topK);
      const r = routeReference(logits, bias, N, cfg);
      const dl = routeBackward(
        gpu.fromHost(logits, [N, E]),
        gpu.fromHost(bias, [E]),
        { idx: gpu.fromHost(r.idx, [N, cfg.topK], 'i32'), weights: gpu.fromHost(r.weights, [N, cfg.topK]) },
        gpu.fromHost(g, [N, cfg.topK]),
        cfg,
      );
      expectClose(await dl.read(), routeBackwardReference(logits, r.idx, g, N, cfg), 1e-5, 'dLogits');
    });
  }
});
