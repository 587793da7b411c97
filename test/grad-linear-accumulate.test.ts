/**
 * linear's backward with a gradient already held for x: dX = prev + dY W through the matmul epilogue (or a
 * separate add when prev is not a dense f32 of dX's shape) against the host reference, on awkward shapes;
 * and the tape's fused accumulation (on by default) against the unfused one on a small two-projection graph.
 */
import { afterAll, describe, it } from 'vitest';
import { add, linear } from '../src/autograd/ops.js';
import { Tape, withTape } from '../src/autograd/tape.js';
import { linearBackward, setLinearFusedAccumulate } from '../src/kernels/matmul/backward.js';
import { matmulReference } from '../src/kernels/matmul/reference.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';

const TOL = 1e-5;

describe('linearBackward with an accumulated dX on WebGPU', () => {
  for (const [rows, N, K] of [
    [7, 5, 13],
    [65, 64, 63],
    [130, 128, 64],
  ]) {
    it.skipIf(!hasGpu)(`rows ${rows}, W [${N}, ${K}]: epilogue and transposed-prev fallback`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(rows + N + K);
      const x = rng.normalArray(rows * K);
      const w = rng.normalArray(N * K);
      const dy = rng.normalArray(rows * N);
      const prev = rng.normalArray(rows * K);
      const dxRef = matmulReference(dy, w, {
        batch: 1,
        M: rows,
        N: K,
        K: N,
        transA: false,
        transB: false,
        batchStrideB: 0,
      });
      const want = dxRef.map((v, i) => v + prev[i]);
      const [xt, wt, dyt] = [gpu.fromHost(x, [rows, K]), gpu.fromHost(w, [N, K]), gpu.fromHost(dy, [rows, N])];
      const dense = gpu.fromHost(prev, [rows, K]);
      const fused = linearBackward(xt, wt, dyt, { dx: true }, dense);
      expectClose(await fused.dx!.toFloat32(), want, TOL, 'epilogue dX');
      // The same values stored transposed: a non-contiguous view, added separately.
      const tHost = new Float32Array(rows * K);
      for (let r = 0; r < rows; r++) for (let c = 0; c < K; c++) tHost[c * rows + r] = prev[r * K + c];
      const stored = gpu.fromHost(tHost, [K, rows]);
      const view = stored.transpose(0, 1);
      const viaAdd = linearBackward(xt, wt, dyt, { dx: true }, view);
      expectClose(await viaAdd.dx!.toFloat32(), want, TOL, 'fallback dX');
      for (const t of [xt, wt, dyt, dense, stored, view, fused.dx!, viaAdd.dx!]) t.dispose();
    });
  }
});

describe('tape: fused dX accumulation matches the tape add', () => {
  afterAll(() => setLinearFusedAccumulate(true));
  it.skipIf(!hasGpu)('x read by three projections', async () => {
    const gpu = (await gpuContext())!;
    const rng = new Rng(3);
    const [rows, K, N] = [65, 24, 16];
    const xh = rng.normalArray(rows * K);
    const wh = [0, 1, 2].map(() => rng.normalArray(N * K));
    const seed = rng.normalArray(rows * N);
    // dX = seed (W0 + W1 + W2).
    const wSum = wh[0].map((v, i) => v + wh[1][i] + wh[2][i]);
    const want = matmulReference(seed, wSum, {
      batch: 1,
      M: rows,
      N: K,
      K: N,
      transA: false,
      transB: false,
      batchStrideB: 0,
    });
    const got: Float32Array[] = [];
    for (const on of [false, true]) {
      setLinearFusedAccumulate(on);
      const x = gpu.fromHost(xh, [rows, K]);
      const ws = wh.map((w) => gpu.fromHost(w, [N, K]));
      const tape = new Tape();
      const y = withTape(tape, () => add(add(linear(x, ws[0]), linear(x, ws[1])), linear(x, ws[2])));
      const s = gpu.fromHost(seed, [rows, N]);
      const leaves = tape.backward(y, s);
      got.push(await leaves.get(x.id)!.toFloat32());
      for (const g of leaves.values()) g.dispose();
      for (const t of [x, ...ws, y, s]) t.dispose();
    }
    expectClose(got[1], want, TOL, 'fused dX');
    expectClose(got[1], got[0], 1e-6, 'fused vs tape add');
  });
});
