/**
 * The backward kernels added for training, WebGPU against their plain-TS references (the cpu backend
 * runs the references) on awkward shapes, plus hand-checked values and input errors. Tolerances are
 * relative to the max |reference|: 1e-5 where the GPU sums a row in f32 in another order than the f64
 * reference (rmsnorm's two row sums, the conv weight sum over B*T, the embedding scatter-add, matmul).
 */
import { describe, expect, it } from 'vitest';
import { concatLastBackward } from '../src/kernels/concat/backward.js';
import { causalConv1dBackward } from '../src/kernels/conv1d/backward.js';
import { expandBackward, narrowBackward } from '../src/kernels/copy/backward.js';
import {
  sigmoidMulBackward,
  siluBackward,
  sumToTrailing,
  swigluBackward,
} from '../src/kernels/elementwise/backward.js';
import { embeddingBackward } from '../src/kernels/embedding/backward.js';
import { linearBackward } from '../src/kernels/matmul/backward.js';
import { rmsnormBackward } from '../src/kernels/rmsnorm/backward.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

type HostIn = { data: Float32Array | Int32Array | Uint16Array; shape: number[]; dtype?: 'f32' | 'i32' | 'bf16' };

/** Run fn on cpu and on the GPU with the same inputs; every output must agree within tol. */
async function agree(
  inputs: HostIn[],
  fn: (xs: Tensor[], d: Device) => Record<string, Tensor | undefined>,
  tol: number,
) {
  const gpu = (await gpuContext())!;
  const run = async (d: Device) => {
    const xs = inputs.map((i) => d.fromHost(i.data, i.shape, i.dtype ?? 'f32'));
    const out = fn(xs, d);
    const host: Record<string, { shape: readonly number[]; v: Float32Array }> = {};
    for (const [k, t] of Object.entries(out)) if (t) host[k] = { shape: t.shape, v: await t.toFloat32() };
    return host;
  };
  const want = await run(cpu);
  const got = await run(gpu);
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const k of Object.keys(want)) {
    expect(got[k].shape, k).toEqual(want[k].shape);
    expectClose(got[k].v, want[k].v, tol, k);
  }
}

const f32 = (rng: Rng, shape: number[], s = 1): HostIn => ({
  data: rng.normalArray(
    shape.reduce((a, b) => a * b, 1),
    s,
  ),
  shape,
});

describe('backward kernels by hand', () => {
  it('embedding: rows of repeated ids add up, unused rows are zero', async () => {
    const ids = cpu.fromHost(new Int32Array([2, 0, 2]), [3], 'i32');
    const dy = cpu.fromHost(new Float32Array([1, 2, 10, 20, 100, 200]), [3, 2]);
    expect(Array.from(await embeddingBackward(ids, dy, 4).toFloat32())).toEqual([10, 20, 0, 0, 101, 202, 0, 0]);
    expect(() => embeddingBackward(cpu.fromHost(new Int32Array([5]), [1], 'i32'), dy.narrow(0, 0, 1), 4)).toThrow(
      /ids\[0\] = 5 is outside \[0, 4\)/,
    );
    expect(() => embeddingBackward(ids, cpu.fromHost(new Float32Array(4), [2, 2]), 4)).toThrow(
      /dy \[2, 2\] is not \[\.\.\.ids \[3\], D\]/,
    );
  });
  it('narrow pads with zeros; expand sums the repeated dimension; sumToTrailing sums leading dims', async () => {
    const dy = cpu.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2]);
    expect(Array.from(await narrowBackward(dy, [2, 4], 1, 1).toFloat32())).toEqual([0, 1, 2, 0, 0, 3, 4, 0]);
    expect(Array.from(await expandBackward(dy, [1, 2]).toFloat32())).toEqual([4, 6]);
    expect(Array.from(await expandBackward(dy, [2, 1]).toFloat32())).toEqual([3, 7]);
    expect(Array.from(await sumToTrailing(dy, [2]).toFloat32())).toEqual([4, 6]);
    expect(() => narrowBackward(dy, [2, 4], 1, 3)).toThrow(/is not a narrow\(1, 3, \.\.\.\) of \[2, 4\]/);
    expect(() => expandBackward(dy, [3, 2])).toThrow(/is not an expansion of \[3, 2\]/);
  });
  it('conv1d: a one-tap identity filter passes dy through and its weight gradient is sum(dy * x)', async () => {
    const x = cpu.fromHost(new Float32Array([1, 2, 3]), [3, 1]);
    const w = cpu.fromHost(new Float32Array([0, 1]), [1, 1, 2]);
    const dy = cpu.fromHost(new Float32Array([1, 1, 1]), [3, 1]);
    const r = causalConv1dBackward(x, w, dy);
    expect(Array.from(await r.dx.toFloat32())).toEqual([1, 1, 1]);
    // dw[0] pairs dy[t] with x[t-1]: 1 + 2; dw[1] with x[t]: 1 + 2 + 3.
    expect(Array.from(await r.dw.toFloat32())).toEqual([3, 6]);
    expect(() => causalConv1dBackward(x, w, dy.reshape([1, 3]))).toThrow(/dy has shape \[1, 3\], expected \[3, 1\]/);
  });
});

describe.skipIf(!hasGpu)('backward kernels on WebGPU vs the references', () => {
  for (const [rows, D] of [...AWKWARD.map((n) => [n, 65]), ...AWKWARD.map((d) => [7, d])] as [number, number][]) {
    it(`rmsnorm [${rows}, ${D}]: plain, gated, bf16 weight`, async () => {
      const rng = new Rng(rows * 31 + D);
      const x = f32(rng, [rows, D], 2);
      const w = f32(rng, [D]);
      const dy = f32(rng, [rows, D]);
      const g = f32(rng, [rows, D], 3);
      const wb: HostIn = { data: f32ArrayToBf16(w.data as Float32Array), shape: [D], dtype: 'bf16' };
      // With D = 1, dx = r w dy (1 - xhat^2) and 1 - xhat^2 = eps / (x^2 + eps): a small eps leaves only
      // f32 cancellation noise to compare, so that case uses a large eps.
      const eps = D === 1 ? 0.5 : 1e-5;
      const plain = ([a, b, c]: Tensor[]) => {
        const r = rmsnormBackward(a, b, eps, c);
        return { dx: r.dx, dw: r.dw };
      };
      await agree([x, w, dy], plain, 1e-5);
      await agree([x, wb, dy], plain, 1e-5);
      await agree([x, w, dy, g], ([a, b, c, e]) => ({ ...rmsnormBackward(a, b, eps, c, { gate: e }) }), 1e-5);
    });
  }

  for (const [V, N, D] of [
    [1, 7, 65],
    [7, 1, 1],
    [65, 63, 7],
    [63, 1000, 3],
    [2, 600, 300],
  ]) {
    it(`embedding scatter-add: V=${V}, N=${N}, D=${D}`, async () => {
      const rng = new Rng(V + N + D);
      const ids: HostIn = { data: Int32Array.from({ length: N }, () => rng.int(V)), shape: [N], dtype: 'i32' };
      await agree([ids, f32(rng, [N, D])], ([i, dy]) => ({ dTable: embeddingBackward(i, dy, V) }), 1e-5);
    });
  }

  for (const [B, T, C, W] of [
    [1, 1, 7, 4],
    [2, 7, 65, 4],
    [1, 65, 7, 3],
    [2, 63, 1, 1],
    [1, 1000, 7, 4],
  ]) {
    it(`causal conv1d [${B}, ${T}, ${C}] width ${W}: silu and none, f32 and bf16 weight`, async () => {
      const rng = new Rng(B * T * C * W);
      const x = f32(rng, [B, T, C]);
      const w = f32(rng, [C, 1, W], 0.5);
      const dy = f32(rng, [B, T, C]);
      const wb: HostIn = { data: f32ArrayToBf16(w.data as Float32Array), shape: [C, 1, W], dtype: 'bf16' };
      for (const activation of ['silu', 'none'] as const) {
        for (const ww of [w, wb]) {
          await agree([x, ww, dy], ([a, b, c]) => ({ ...causalConv1dBackward(a, b, c, { activation }) }), 1e-5);
        }
      }
    });
  }

  for (const [rows, N, K] of [
    [1, 7, 65],
    [63, 65, 7],
    [65, 1, 63],
  ]) {
    it(`linear backward: ${rows} rows, W [${N}, ${K}]`, async () => {
      const rng = new Rng(rows + N * K);
      await agree(
        [f32(rng, [rows, K]), f32(rng, [N, K]), f32(rng, [rows, N])],
        ([x, w, dy]) => ({ ...linearBackward(x, w, dy) }),
        1e-5,
      );
    });
  }

  it('views and elementwise backward on awkward shapes', async () => {
    const rng = new Rng(9);
    const dy = f32(rng, [3, 7, 65]);
    await agree(
      [dy],
      ([g]) => ({
        pad0: narrowBackward(g, [5, 7, 65], 0, 2),
        pad2: narrowBackward(g, [3, 7, 1000], 2, 63),
        ex1: expandBackward(g, [3, 1, 65]),
        ex02: expandBackward(g, [1, 7, 1]),
        sum: sumToTrailing(g, [65]),
        ...concatLastBackward(g, 63),
      }),
      1e-5,
    );
    const a = f32(rng, [7, 63], 3);
    const b = f32(rng, [7, 63], 3);
    await agree(
      [a, b, f32(rng, [7, 63])],
      ([x, y, d]) => ({ silu: siluBackward(x, d), ...swigluBackward(x, y, d), ...sigmoidMulBackward(x, y, d) }),
      1e-5,
    );
  });
});
