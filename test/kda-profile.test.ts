/**
 * What the chunked KDA records on the GPU, as `bench kda --profile` sees it (GpuContext.profile: one
 * timestamped pass per dispatch): the forward is gc -> intra -> state -> output (gc: the vec4 intra's
 * cumulative decays, K % 16 == 0 here), or with the fused pass (kdaForwardTuning.fused = true)
 * zero fill -> gc -> intra -> state-and-output (the separate tiled state pass starts from zeros itself, the fused
 * one from a zero-filled state: kdaForwardTuning.stateStart); the backward does not run the output pass, and with
 * the per-chunk states split into head groups the separate state and output passes run once per group (the fused
 * pass, which stores no per-chunk state, still runs once).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning, kdaSplitLimit } from '../src/kernels/kda/chunk.js';
import { kdaCore, kdaCoreBackward } from '../src/kernels/kda/index.js';
import { gpuContext, hasGpu } from './helpers.js';
import { uploadBatched } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

const [T, H, K, V] = [70, 2, 16, 16];

afterEach(() => {
  kdaSplitLimit.maxBindingBytes = undefined;
  kdaForwardTuning.fused = undefined;
});

async function setup() {
  const gpu = (await gpuContext())!;
  const c = randomCase(3, T, H, K, V);
  const x = { ...uploadBatched(gpu, c, c), dO: gpu.fromHost(c.dO, [1, T, H, V]) };
  return { gpu, x };
}

const kdaKernels = (names: { name: string }[]) => names.map((d) => d.name).filter((n) => n.startsWith('kda_'));

describe('kda: dispatch sequence (per-kernel profile)', () => {
  it.skipIf(!hasGpu)(
    'forward, backward, and the forward with one head per group',
    async () => {
      const { gpu, x } = await setup();
      if (!gpu.features.timestampQuery) return expect(() => gpu.profile(() => {})).rejects.toThrow(/timestamp/);
      const fwd = () => {
        const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, { mode: 'chunk' });
        r.o.dispose();
        r.finalState?.dispose();
      };
      const f = await gpu.profile(fwd);
      // No zero fill of the state: the tiled state pass starts from zeros itself (kdaForwardTuning.stateStart).
      expect(kdaKernels(f)).toEqual(['kda_chunk_gc', 'kda_chunk_intra', 'kda_chunk_state', 'kda_chunk_output']);
      for (const d of f) expect(d.ms).toBeGreaterThanOrEqual(0);
      kdaForwardTuning.fused = true;
      expect(kdaKernels(await gpu.profile(fwd))).toEqual([
        'kda_zero_fill',
        'kda_chunk_gc',
        'kda_chunk_intra',
        'kda_chunk_state_output',
      ]);
      kdaForwardTuning.fused = undefined;

      const b = await gpu.profile(() => {
        const g = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, x.dO);
        for (const t of [g.dq, g.dk, g.dv, g.dg, g.dbeta]) t.dispose();
      });
      expect(kdaKernels(b)).not.toContain('kda_chunk_output');
      expect(kdaKernels(b)).toEqual(
        expect.arrayContaining([
          'kda_bwd_dstate_pre',
          'kda_bwd_dstate_seq',
          'kda_bwd_dqkw',
          'kda_bwd_ut',
          'kda_bwd_pairs',
        ]),
      );

      kdaSplitLimit.maxBindingBytes = 2 * K * V * 4; // one head's states (2 chunk slots) per binding
      kdaForwardTuning.fused = true;
      expect(kdaKernels(await gpu.profile(fwd))).toEqual([
        'kda_zero_fill',
        'kda_chunk_gc',
        'kda_chunk_intra',
        'kda_chunk_state_output',
      ]);
      kdaForwardTuning.fused = undefined;
      const s = await gpu.profile(fwd);
      expect(kdaKernels(s)).toEqual([
        'kda_chunk_gc',
        'kda_chunk_intra',
        'kda_chunk_state',
        'kda_chunk_state',
        'kda_chunk_output',
        'kda_chunk_output',
      ]);
    },
    120_000,
  );
});
