import { describe, expect, it } from 'vitest';
import { contiguous } from '../src/kernels/copy/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, gpuContext, hasGpu } from './helpers.js';

describe('contiguous (strided copy)', () => {
  for (const n of AWKWARD) {
    it.skipIf(!hasGpu)(`transpose + narrow views match the reference, n=${n}`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(n);
      const data = rng.normalArray(n * 3 * 5);
      for (const dtype of ['f32', 'bf16'] as const) {
        const host = dtype === 'f32' ? data : f32ArrayToBf16(data);
        const g = gpu.fromHost(host, [n, 3, 5], dtype);
        const c = cpu.fromHost(host, [n, 3, 5], dtype);
        const gv = contiguous(g.transpose(0, 2).narrow(1, 1, 2));
        const cv = contiguous(c.transpose(0, 2).narrow(1, 1, 2));
        expect(gv.shape).toEqual([5, 2, n]);
        expect(Array.from(await gv.read())).toEqual(Array.from(await cv.read()));
        for (const t of [g, c, gv, cv]) t.dispose();
      }
    });
  }

  it('reads strided views directly on cpu', async () => {
    const t = cpu.fromHost(new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3]);
    expect(Array.from(await t.transpose().read())).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(await t.select(1, 2).read())).toEqual([2, 5]);
  });
});

describe('copyInto (dense copy)', () => {
  for (const n of [...AWKWARD, 4099]) {
    it.skipIf(!hasGpu)(`copies every element, n=${n}`, async () => {
      const { copyInto } = await import('../src/kernels/copy/index.js');
      const gpu = (await gpuContext())!;
      const data = new Rng(n).normalArray(n);
      const src = gpu.fromHost(data, [n]);
      const dst = gpu.fromHost(new Float32Array(n).fill(Number.NaN), [n]);
      copyInto(src, dst, { workgroups: 2 });
      expect(Array.from(await dst.read())).toEqual(Array.from(data));
    });
  }
});

describe('castTo (f32 <-> bf16)', () => {
  it.skipIf(!hasGpu)('rounds to nearest even like the host and widens exactly, awkward sizes', async () => {
    const { castTo } = await import('../src/kernels/copy/cast.js');
    const gpu = (await gpuContext())!;
    for (const n of AWKWARD) {
      const data = new Rng(n + 5).normalArray(n);
      // Ties (the low 16 bits exactly 0x8000, both parities), a NaN and infinities where there is room.
      const special = [1 + 2 ** -8, 1 + 3 * 2 ** -8, Number.NaN, Number.POSITIVE_INFINITY, -0, 3.4e38];
      for (let i = 0; i < Math.min(n, special.length); i++) data[i] = special[i];
      const g = gpu.fromHost(data, [n]);
      const b = castTo(g, 'bf16');
      expect(b.dtype).toBe('bf16');
      expect(Array.from(await b.read())).toEqual(Array.from(f32ArrayToBf16(data)));
      const back = castTo(b, 'f32');
      const c = cpu.fromHost(data, [n]);
      const cb = castTo(c, 'bf16');
      const cf = castTo(cb, 'f32');
      expect(Array.from(await back.read())).toEqual(Array.from(await cf.read()));
      for (const t of [g, b, back, c, cb, cf]) t.dispose();
    }
  });
});
