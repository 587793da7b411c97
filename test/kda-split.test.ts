/**
 * The chunked KDA on the GPU splits its per-chunk state buffers ([slots, heads, K, V]: 2 GiB at H=64,
 * T=32768, d=128) into head groups that each fit one storage binding. Here the binding limit is lowered
 * (kdaSplitLimit) so that 5 heads run as groups of 2 + 2 + 1 at a small shape: forward and gradients must match
 * the reference exactly as the unsplit run does (chunked tolerances: 2e-3 forward, 3e-3 gradients).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { headGroups, kdaSplitLimit } from '../src/kernels/kda/chunk.js';
import { kdaBackwardReference, kdaCore, kdaCoreBackward, kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { uploadBatched } from './kda-forward-run.js';
import { expectCoreGrads, randomCase } from './kda-random.js';

const [T, H, K, V] = [70, 5, 16, 16];
// 70 tokens in one sequence: 2 chunk slots, so one head's states take 2 * 16 * 16 * 4 = 2048 bytes.
const PER_HEAD = 2 * K * V * 4;

afterEach(() => {
  kdaSplitLimit.maxBindingBytes = undefined;
});

describe('kda: head-group split of the chunk states', () => {
  it.skipIf(!hasGpu)(
    'groups of 2 + 2 + 1 heads = the reference (forward and gradients)',
    async () => {
      const gpu = (await gpuContext())!;
      kdaSplitLimit.maxBindingBytes = 2 * PER_HEAD + 100;
      const p = { Ttot: T, N: 1, H, K, V, GK: K, B: 1, T };
      // As few groups as fit, of near-equal size.
      kdaSplitLimit.maxBindingBytes = 3 * PER_HEAD;
      expect(headGroups(gpu, p)).toEqual([
        { h0: 0, HB: 3 },
        { h0: 3, HB: 2 },
      ]);
      kdaSplitLimit.maxBindingBytes = 2 * PER_HEAD + 100;
      expect(headGroups(gpu, p)).toEqual([
        { h0: 0, HB: 2 },
        { h0: 2, HB: 2 },
        { h0: 4, HB: 1 },
      ]);
      const c = randomCase(41, T, H, K, V);
      const S0 = new Rng(7).normalArray(H * K * V, 0.5);
      const dS = new Rng(8).normalArray(H * K * V);
      const dims = { H, K, V, GK: K, cu: [0, T] };
      const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, dims, K ** -0.5, S0);
      const gr = kdaBackwardReference(c.q, c.k, c.v, c.g, c.beta, c.dO, dims, K ** -0.5, S0, dS);
      const x = uploadBatched(gpu, c, c);
      const initialState = gpu.fromHost(S0, [1, H, K, V]);
      const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, { mode: 'chunk', initialState });
      expectClose(await r.o.toFloat32(), ref.o, 2e-3, 'o');
      expectClose(await r.finalState!.toFloat32(), ref.S, 2e-3, 'S');
      const b = kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, gpu.fromHost(c.dO, [1, T, H, V]), {
        initialState,
        dS: gpu.fromHost(dS, [1, H, K, V]),
      });
      await expectCoreGrads(b, gr, 3e-3);
    },
    300_000,
  );

  it.skipIf(!hasGpu)("one head's states over the limit: a clear error", async () => {
    const gpu = (await gpuContext())!;
    kdaSplitLimit.maxBindingBytes = PER_HEAD - 1;
    expect(() => headGroups(gpu, { Ttot: T, N: 1, H, K, V, GK: K, B: 1, T })).toThrow(
      /one head's per-chunk states take 2048 bytes .* over the 2047-byte binding limit/,
    );
  });
});
