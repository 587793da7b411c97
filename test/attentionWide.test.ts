import { describe, expect, it } from 'vitest';
import { type AttentionKernels, attentionKernels, setAttentionKernels } from '../src/kernels/attention/index.js';
import type { AttentionDims } from '../src/kernels/attention/reference.js';
import { contractMap, STAGE4, sliceRows, WB, WIDE_THREADS } from '../src/kernels/attention/wideTiles.wgsl.js';
import { expectAttentionMatchesReference } from './attentionGpuCheck.js';
import { gpuContext, hasGpu } from './helpers.js';

describe('wide attention tiles: layouts', () => {
  it('every contraction layout covers the 64 x D/4 output once with at most 128 threads', () => {
    for (let D = 4; D <= 256; D += 4) {
      const m = contractMap(D);
      expect(m.RT * m.rowSlots).toBe(WB);
      expect(m.rowSlots * m.cg).toBeLessThanOrEqual(WIDE_THREADS);
      expect(m.cg * m.GT).toBeGreaterThanOrEqual(m.G);
      expect(m.cg * (m.GT - 1)).toBeLessThan(m.G); // no group slot entirely past D
      const R = sliceRows(D);
      expect(WB % R).toBe(0);
      expect(R * m.G).toBeLessThanOrEqual(STAGE4);
    }
    // The 100M preset's heads: 96 as 4 rows x 3 groups on all 128 threads, 64 as 8 rows x 1 group.
    expect(contractMap(96)).toMatchObject({ RT: 4, GT: 3, cg: 8 });
    expect(contractMap(64)).toMatchObject({ RT: 8, GT: 1, cg: 16 });
  });
});

describe.skipIf(!hasGpu)('wide attention kernels on WebGPU vs reference', () => {
  const TOL = 5e-5;
  // [B, T, H, Dk, Dv, causal, kernels]. attentionBackward.test.ts runs the default kernels ('wide-half') on the
  // tiny model's 24/16 heads at T = 1, 7, 63, 65, 130; here: the layouts 24/16 does not reach (80: 4 rows x
  // 3 column groups per thread, the last group slot partly past D; 40: 8 rows x 1 group on 80 of the 128
  // threads), and the kernels the --attention flag can pick instead (one pass or four through pT, the
  // previous tiled kernels). Each case compiles its own shaders (15-45 s each on lavapipe), so only the default
  // kernels' new layouts run by default; opt-in (KIMI_SLOW_TESTS=1): the flag-selected kernels ('wide',
  // 'wide-quarter'; 'tiled' at 24/16: the tiled kernels stay covered by attentionBackward's 17/33 heads, where
  // head sizes not divisible by 4 fall back to them), the 100M preset's 96/64 heads (same layout classes as
  // 80/40) and full attention (the model trains causal).
  const cases: [number, number, number, number, number, boolean, AttentionKernels][] = [
    [1, 65, 1, 80, 40, true, 'wide-half'],
  ];
  if (process.env.KIMI_SLOW_TESTS === '1')
    cases.push(
      [1, 65, 2, 24, 16, true, 'wide'],
      [1, 65, 2, 24, 16, true, 'wide-quarter'],
      [2, 65, 2, 24, 16, true, 'tiled'],
      [1, 130, 1, 96, 64, true, 'wide-half'],
      [1, 70, 2, 24, 16, false, 'wide-half'],
    );
  for (const [B, T, H, Dk, Dv, causal, kernels] of cases) {
    it(`${kernels}: B=${B} T=${T} H=${H} Dk=${Dk} Dv=${Dv} causal=${causal}`, { timeout: 600_000 }, async () => {
      const gpu = (await gpuContext())!;
      const before = attentionKernels();
      setAttentionKernels(kernels);
      try {
        const d: AttentionDims = { B, T, H, Dk, Dv, scale: Dk ** -0.5, causal };
        await expectAttentionMatchesReference(gpu, d, T * 17 + Dk, TOL);
      } finally {
        setAttentionKernels(before);
      }
    });
  }
});
