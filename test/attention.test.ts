import { describe, expect, it } from 'vitest';
import { attention } from '../src/kernels/attention/index.js';
import { attentionReference } from '../src/kernels/attention/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';

describe('attention reference', () => {
  it('one key gives its value; equal scores average the values', () => {
    const one = attentionReference(new Float32Array([1]), new Float32Array([1]), new Float32Array([3, 4]), {
      B: 1,
      T: 1,
      H: 1,
      Dk: 1,
      Dv: 2,
      scale: 1,
      causal: true,
    });
    expect(Array.from(one)).toEqual([3, 4]);
    const two = attentionReference(new Float32Array([0, 0]), new Float32Array([0, 0]), new Float32Array([2, 4]), {
      B: 1,
      T: 2,
      H: 1,
      Dk: 1,
      Dv: 1,
      scale: 1,
      causal: true,
    });
    expect(Array.from(two)).toEqual([2, 3]);
  });

  it('stays finite with logits of 1e4', () => {
    const o = attentionReference(
      new Float32Array([100, 100]),
      new Float32Array([100, -100]),
      new Float32Array([1, 2]),
      {
        B: 1,
        T: 2,
        H: 1,
        Dk: 1,
        Dv: 1,
        scale: 1,
        causal: true,
      },
    );
    expect(Array.from(o)).toEqual([1, 1]);
  });
});

describe.skipIf(!hasGpu)('flash attention on WebGPU vs reference', () => {
  // f32 with exp and running rescales: 1e-5 of max |o| covers rounding at these lengths.
  const TOL = 2e-5;
  const cases: [number, number, number, number, number, boolean][] = [
    [1, 1, 1, 8, 8, true],
    [1, 7, 2, 24, 16, true],
    [2, 63, 3, 24, 16, true],
    [1, 65, 2, 192, 128, true],
    [1, 33, 2, 16, 20, false],
    // Three 64-row blocks with odd heads: scalar loads (not multiples of 4), partial accumulation columns.
    [1, 130, 1, 17, 33, true],
  ];
  for (const [B, T, H, Dk, Dv, causal] of cases) {
    it(`B=${B} T=${T} H=${H} Dk=${Dk} Dv=${Dv} causal=${causal}`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(T * 13 + Dk);
      const q = rng.normalArray(B * T * H * Dk, 2);
      const k = rng.normalArray(B * T * H * Dk);
      const v = rng.normalArray(B * T * H * Dv);
      const o = attention(
        gpu.fromHost(q, [B, T, H, Dk]),
        gpu.fromHost(k, [B, T, H, Dk]),
        gpu.fromHost(v, [B, T, H, Dv]),
        {
          causal,
        },
      );
      const ref = attentionReference(q, k, v, { B, T, H, Dk, Dv, scale: Dk ** -0.5, causal });
      expectClose(await o.read(), ref, TOL, 'o');
      const oc = attention(
        cpu.fromHost(q, [B, T, H, Dk]),
        cpu.fromHost(k, [B, T, H, Dk]),
        cpu.fromHost(v, [B, T, H, Dv]),
        {
          causal,
        },
      );
      expectClose(await oc.read(), ref, 0, 'cpu o');
    });
  }
});
