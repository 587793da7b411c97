import { describe, expect, it } from 'vitest';
import { rope, ropeBackward } from '../src/kernels/rope/index.js';
import { ropeReference } from '../src/kernels/rope/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 angle reduced mod 2 pi and WGSL cos/sin vs f64 cos/sin of the same f32 angle, positions < 2000.
const TOL = 2e-4;

describe('rope on cpu (hand-computed values)', () => {
  it('rotates the pair (x[2i], x[2i+1]) by p theta^(-2i/dr) into (y[i], y[i+dr/2]) (HF DeepSeek-V3 order)', async () => {
    // dr = 4: pairs (1, 2) with f_0 = 1 and (3, 4) with f_1 = 100^(-1/2) = 0.1, at position 2.
    const x = cpu.fromHost(new Float32Array([1, 2, 3, 4]), [1, 1, 1, 4]);
    const y = Array.from(await rope(x, cpu.fromHost(Int32Array.of(2), [1], 'i32'), 100).toFloat32());
    const [c0, s0] = [Math.cos(2), Math.sin(2)];
    const a1 = Math.fround(2 * Math.fround(0.1));
    const [c1, s1] = [Math.cos(a1), Math.sin(a1)];
    const want = [1 * c0 - 2 * s0, 3 * c1 - 4 * s1, 2 * c0 + 1 * s0, 4 * c1 + 3 * s1];
    for (let i = 0; i < 4; i++) expect(y[i]).toBeCloseTo(want[i], 5);
  });

  it('position 0 only de-interleaves; an offset equals explicit positions; backward undoes it', async () => {
    const x = cpu.fromHost(new Float32Array([1, 2, 3, 4, 5, 6]), [1, 1, 1, 6]);
    expect(Array.from(await rope(x, 0, 10000).toFloat32())).toEqual([1, 3, 5, 2, 4, 6]);
    const r = new Rng(3).normalArray(2 * 5 * 3 * 8);
    const xt = cpu.fromHost(r, [2, 5, 3, 8]);
    const pos = cpu.fromHost(
      Int32Array.from({ length: 10 }, (_, n) => 7 + (n % 5)),
      [10],
      'i32',
    );
    expect(await rope(xt, 7, 50).toFloat32()).toEqual(await rope(xt, pos, 50).toFloat32());
    expectClose(await ropeBackward(rope(xt, pos, 50), pos, 50).toFloat32(), r, 1e-6, 'inverse');
  });

  it('rotation preserves q.k only up to the relative position (the point of RoPE)', async () => {
    const rng = new Rng(9);
    const q = cpu.fromHost(rng.normalArray(16), [1, 1, 1, 16]);
    const k = cpu.fromHost(rng.normalArray(16), [1, 1, 1, 16]);
    const dot = async (pq: number, pk: number) => {
      const a = await rope(q, pq, 10000).toFloat32();
      const b = await rope(k, pk, 10000).toFloat32();
      return a.reduce((s, v, i) => s + v * b[i], 0);
    };
    expect(await dot(10, 3)).toBeCloseTo(await dot(17, 10), 4);
    expect(Math.abs((await dot(10, 3)) - (await dot(10, 10)))).toBeGreaterThan(1e-3);
  });

  it('rejects bad input, naming it', () => {
    const x = cpu.fromHost(new Float32Array(6), [1, 1, 2, 3]);
    expect(() => rope(x, 0, 10000)).toThrow(/rope: rope dim dr = 3/);
    const y = cpu.fromHost(new Float32Array(8), [1, 2, 1, 4]);
    expect(() => rope(y, cpu.fromHost(Int32Array.of(1), [1], 'i32'), 10000)).toThrow(/positions has shape \[1\]/);
    expect(() => rope(y, -1, 10000)).toThrow(/position offset -1/);
    expect(() => rope(y, 0, 0)).toThrow(/theta = 0/);
  });
});

describe('rope on WebGPU vs the reference', () => {
  const cases: [number, number, number, number][] = [
    ...AWKWARD.map((T) => [1, T, 2, 8] as [number, number, number, number]),
    [3, 7, 5, 64],
    [2, 65, 1, 2],
    [1, 1, 63, 6],
  ];
  for (const [B, T, H, dr] of cases) {
    it.skipIf(!hasGpu)(`[${B}, ${T}, ${H}, ${dr}]`, async () => {
      const gpu = (await gpuContext())!;
      const N = B * T;
      const x = new Rng(N * 7 + H * dr).normalArray(N * H * dr);
      const positions = Int32Array.from({ length: N }, (_, n) => (n * 37) % 1999);
      const xt = gpu.fromHost(x, [B, T, H, dr]);
      const pt = gpu.fromHost(positions, [N], 'i32');
      const want = ropeReference(x, positions, { N, H, dr, theta: 10000 });
      expectClose(await rope(xt, pt, 10000).toFloat32(), want, TOL);
      expectClose(await ropeBackward(gpu.fromHost(want, [B, T, H, dr]), pt, 10000).toFloat32(), x, TOL, 'inverse');
      // A strided view (the rope half of a wider q) goes through contiguous(); an offset as positions.
      const wide = new Rng(dr).normalArray(N * H * (dr + 4));
      const view = gpu.fromHost(wide, [B, T, H, dr + 4]).narrow(3, 4, dr);
      const viewHost = await cpu
        .fromHost(wide, [B, T, H, dr + 4])
        .narrow(3, 4, dr)
        .toFloat32();
      const off = Int32Array.from({ length: N }, (_, n) => 5 + (n % T));
      expectClose(await rope(view, 5, 500).toFloat32(), ropeReference(viewHost, off, { N, H, dr, theta: 500 }), TOL);
    });
  }
});
