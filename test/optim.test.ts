/**
 * Optimizer math: each WGSL kernel against its plain-TS reference on awkward sizes, Muon's
 * Newton-Schulz against an f64 reference (and its defining property: singular values pushed into a band
 * around 1), the whole AdamW/Muon steps against a hand-written AdamW, and both optimizers minimising a
 * least-squares problem.
 */
import { describe, expect, it } from 'vitest';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { adamwStep, axpby, clipFactorInto, scaleRows, sumsqInto, sumsqRows } from '../src/train/optim/ops.js';
import { matrixDims, muonStep, muonStepBatched, newtonSchulz, setNewtonSchulzMode } from '../src/train/optim/muon.js';
import {
  adamwReference,
  clipReference,
  muonReference,
  newtonSchulzReference,
  sumsqReference,
  sumsqRowsReference,
} from '../src/train/optim/reference.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

const gpu = await gpuContext();
const devices: [string, () => Device][] = [['cpu', () => cpu]];
if (hasGpu) devices.push(['webgpu', () => gpu!]);

const rand = (n: number, seed: number, s = 1) => new Rng(seed).normalArray(n, s);
const f32 = async (t: Tensor) => (await t.read()) as Float32Array;

describe.each(devices)('optimizer kernels on %s', (_name, dev) => {
  it.each(AWKWARD)('AdamW step matches the reference (n=%i), three steps with a clip factor', async (n) => {
    const d = dev();
    const g0 = rand(n, 1);
    const w0 = rand(n, 2);
    const wRef = w0.slice();
    const mRef = new Float32Array(n);
    const vRef = new Float32Array(n);
    const uRef = new Float32Array(n);
    const w = d.fromHost(w0, [n]);
    const m = d.zeros([n]);
    const v = d.zeros([n]);
    const upd = d.zeros([n]);
    const scalars = d.fromHost(Float32Array.of(0, 0.5), [2]);
    for (let t = 1; t <= 3; t++) {
      const gh = g0.map((x) => x * t);
      const g = d.fromHost(gh, [n]);
      const h = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, wd: 0.1, t };
      adamwStep(g, w, m, v, upd, h, scalars, 1);
      adamwReference(gh, wRef, mRef, vRef, uRef, h, 0.5);
      g.dispose();
    }
    expectClose(await f32(w), wRef, 1e-6, 'w');
    expectClose(await f32(m), mRef, 1e-6, 'm');
    expectClose(await f32(v), vRef, 1e-5, 'v');
    expectClose(await f32(upd), uRef, 1e-5, 'update');
  });

  it.each(AWKWARD)('sum of squares and clip factor (n=%i)', async (n) => {
    const d = dev();
    const a = rand(n, 3);
    const b = rand(n + 5, 4, 3);
    const scalars = d.zeros([6]);
    const ta = d.fromHost(a, [n]);
    const tb = d.fromHost(b, [n + 5]);
    sumsqInto(ta, scalars, 0);
    sumsqInto(tb, scalars, 1);
    clipFactorInto(scalars, 0, 2, 2, 0.25, 1.0);
    clipFactorInto(scalars, 0, 2, 4, 0.5, 0);
    const s = await f32(scalars);
    expect(s[0]).toBeCloseTo(sumsqReference(a), 2);
    expectClose([s[0], s[1]], [sumsqReference(a), sumsqReference(b)], 1e-5, 'sumsq');
    const c = clipReference([sumsqReference(a), sumsqReference(b)], 0.25, 1.0);
    expectClose([s[2], s[3]], [c.norm, c.factor], 1e-5, 'clip');
    expect(s[5]).toBe(0.5);
  });

  it.each([
    [1, 1, 1],
    [1, 7, 3],
    [1, 5, 63],
    [2, 65, 7],
    [3, 8, 8],
    // Gram matrices of several 64 x 64 tiles: the symmetric products mirror tiles (checked and aligned).
    [2, 130, 70],
    [1, 128, 192],
  ])('Newton-Schulz of [%i, %i, %i] matches the f64 reference', async (E, r, c) => {
    const d = dev();
    const g = rand(E * r * c, 5 + r);
    const out = await f32(newtonSchulz(d.fromHost(g, [E, r, c]), E, r, c));
    for (let e = 0; e < E; e++) {
      const want = newtonSchulzReference(g.subarray(e * r * c, (e + 1) * r * c), r, c);
      expectClose(out.subarray(e * r * c, (e + 1) * r * c), want, 2e-4, `matrix ${e}`);
    }
  });

  it.each([
    [1, 1],
    [7, 3],
    [3, 65],
    [2, 70000],
  ])('squared norm per matrix, %i matrices of %i (sumsqRows)', async (R, L) => {
    const d = dev();
    const x = rand(R * L, 40 + R);
    expectClose(await f32(sumsqRows(d.fromHost(x, [R, L]), R)), sumsqRowsReference(x, R), 1e-5, 'sumsq');
  });

  it.each([
    [7, 3],
    [63, 65],
    [1, 1000],
  ])('scaleRows and axpby (%i x %i)', async (R, L) => {
    const d = dev();
    const w0 = rand(R * L, 9);
    const f = rand(R, 10);
    const w = d.fromHost(w0, [R, L]);
    scaleRows(w, d.fromHost(f, [R]));
    const want = w0.map((x, i) => x * f[Math.floor(i / L)]);
    expectClose(await f32(w), want, 1e-6, 'scaleRows');
    const y = rand(R * L, 11);
    const z = await f32(axpby(d.fromHost(w0, [R * L]), d.fromHost(y, [R * L]), 2, -3));
    expectClose(
      z,
      w0.map((x, i) => 2 * x - 3 * y[i]),
      1e-6,
      'axpby',
    );
  });

  it('Muon step on stacked experts [3, 7, 5] and a tall [65, 7] matrix matches the reference', async () => {
    const d = dev();
    for (const shape of [
      [3, 7, 5],
      [65, 7],
    ]) {
      const n = shape.reduce((a, b) => a * b);
      const w0 = rand(n, 12);
      const wRef = w0.slice();
      const mRef = new Float32Array(n);
      const w = d.fromHost(w0, shape);
      const m = d.zeros(shape);
      const upd = d.zeros(shape);
      const scalars = d.fromHost(Float32Array.of(0.7), [1]);
      const [E, r, c] = matrixDims(w);
      const h = { lr: 0.02, momentum: 0.95, wd: 0.1 };
      for (let t = 1; t <= 2; t++) {
        const gh = rand(n, 20 + t);
        muonStep(d.fromHost(gh, shape), w, m, upd, h, scalars, 0);
        muonReference(gh, wRef, mRef, E, r, c, h, 0.7);
      }
      expectClose(await f32(w), wRef, 2e-4, `w ${shape}`);
      expectClose(await f32(m), mRef, 1e-6, `m ${shape}`);
    }
  });
});

describe.skipIf(!hasGpu)('batched Muon on webgpu', () => {
  it('one Newton-Schulz chain for same-shape (or transposed) parameters equals each stepped alone (reference)', async () => {
    const d = gpu!;
    // Tall [7, 5] matrices and wide [5, 7] ones share one chain (the tall ones transposed in and out).
    const shapes = [
      [2, 7, 5],
      [7, 5],
      [5, 7],
      [1, 7, 5],
      [2, 5, 7],
    ];
    const wds = [0.1, 0, 0.1, 0.05, 0];
    const h = { lr: 0.03, momentum: 0.95 };
    const scalars = d.fromHost(Float32Array.of(0.5), [1]);
    const items = shapes.map((shape, k) => {
      const n = shape.reduce((a, b) => a * b);
      const w0 = rand(n, 50 + k);
      const g0 = rand(n, 60 + k);
      const wRef = w0.slice();
      const mRef = new Float32Array(n);
      const [E, r, c] = shape.length === 3 ? shape : [1, ...shape];
      muonReference(g0, wRef, mRef, E, r, c, { ...h, wd: wds[k] }, 0.5);
      return {
        wRef,
        mRef,
        item: {
          g: d.fromHost(g0, shape),
          w: d.fromHost(w0, shape),
          m: d.zeros(shape),
          upd: d.zeros(shape),
          wd: wds[k],
        },
      };
    });
    muonStepBatched(
      items.map((x) => x.item),
      h,
      scalars,
      0,
    );
    for (const [k, x] of items.entries()) {
      expectClose(await f32(x.item.w), x.wRef, 2e-4, `w of item ${k}`);
      expectClose(await f32(x.item.m), x.mRef, 1e-6, `m of item ${k}`);
    }
  });
});

describe.skipIf(!hasGpu)('Newton-Schulz chains on webgpu', () => {
  it('the fused chain (symmetric products, epilogues) agrees with the plain one', async () => {
    const d = gpu!;
    const [E, r, c] = [2, 70, 130];
    const u = d.fromHost(rand(E * r * c, 77), [E, r, c]);
    const fused = await f32(newtonSchulz(u, E, r, c));
    setNewtonSchulzMode('plain');
    try {
      const plain = await f32(newtonSchulz(u, E, r, c));
      expectClose(fused, plain, 1e-5, 'fused vs plain');
    } finally {
      setNewtonSchulzMode('fused');
    }
  });
});

describe('optimizer math (references)', () => {
  it('Newton-Schulz pushes singular values into a band around 1 (X X^T ~ I for a wide matrix)', () => {
    const r = 8;
    const c = 32;
    // Badly conditioned input: rows scaled over a decade.
    const g = rand(r * c, 30).map((x, i) => x * 2 ** (-(Math.floor(i / c) % 4) * 1.1));
    const x = newtonSchulzReference(g, r, c);
    for (let i = 0; i < r; i++) {
      let nrm = 0;
      for (let k = 0; k < c; k++) nrm += x[i * c + k] ** 2;
      // The quintic's fixed band is about [0.68, 1.13] for singular values; squared norms of rows follow.
      expect(nrm).toBeGreaterThan(0.3);
      expect(nrm).toBeLessThan(1.4);
    }
  });

  it('AdamW reference is the textbook update (first step moves each weight by ~lr*sign(g))', () => {
    const g = Float32Array.of(3, -0.001, 0.5);
    const w = Float32Array.of(0, 0, 0);
    adamwReference(g, w, new Float32Array(3), new Float32Array(3), new Float32Array(3), {
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-12,
      wd: 0,
      t: 1,
    });
    expectClose(w, [-0.1, 0.1, -0.1], 1e-6, 'w');
  });

  it('both optimizers minimise a least-squares problem ||X W^T - Y||^2 with hand-written gradients', () => {
    const [N, I, O] = [64, 12, 6];
    const X = rand(N * I, 40);
    const Wtrue = rand(O * I, 41);
    const Y = new Float32Array(N * O);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        let s = 0;
        for (let i = 0; i < I; i++) s += X[n * I + i] * Wtrue[o * I + i];
        Y[n * O + o] = s;
      }
    const lossGrad = (W: Float32Array) => {
      const G = new Float32Array(O * I);
      let loss = 0;
      for (let n = 0; n < N; n++)
        for (let o = 0; o < O; o++) {
          let s = 0;
          for (let i = 0; i < I; i++) s += X[n * I + i] * W[o * I + i];
          const e = s - Y[n * O + o];
          loss += (e * e) / N;
          for (let i = 0; i < I; i++) G[o * I + i] += (2 * e * X[n * I + i]) / N;
        }
      return { loss, G };
    };
    for (const kind of ['adamw', 'muon'] as const) {
      const W = new Float32Array(O * I);
      const m = new Float32Array(O * I);
      const v = new Float32Array(O * I);
      const first = lossGrad(W).loss;
      for (let t = 1; t <= 300; t++) {
        const { G } = lossGrad(W);
        const lr = 0.05 * (1 - t / 301);
        if (kind === 'adamw')
          adamwReference(G, W, m, v, new Float32Array(O * I), { lr, beta1: 0.9, beta2: 0.99, eps: 1e-8, wd: 0, t });
        else muonReference(G, W, m, 1, O, I, { lr, momentum: 0.95, wd: 0 });
      }
      const last = lossGrad(W).loss;
      // Muon's steps have a fixed size (orthogonalised), so it settles less tightly than AdamW at this lr.
      expect(last, `${kind}: loss ${first} -> ${last}`).toBeLessThan(first * (kind === 'adamw' ? 1e-3 : 1e-2));
    }
  });
});
