/**
 * The chunked forward with the vec4 intra pass and the tiled state pass compiled as one pipeline
 * (kdaForwardTuning.sharedPipeline, statePipeline.ts, through src/gpu/horizontalFusion.ts) against the same
 * forward with the two kernels as they are: o, the final state and every intermediate it keeps, within 1e-6
 * (the same arithmetic in the same order; only the compiler's context differs). T = 1, 63, 65, 130 (B = 1), a
 * varlen batch with an empty sequence, and the head-group split (two state dispatches, both parts' bindings
 * per group). K16/V8, the geometry the other KDA tests compile; the fused dispatches are checked to be the
 * ones that ran. The shared pipeline is the default on GPUs but not on a software adapter (lavapipe: the
 * joined module only costs compile time there, chunk.ts sharedPipelineByDefault), so the default pass on
 * lavapipe runs the two kernels against the f64 references (kda-golden, kda-consistency, kda-saved); these
 * cases compile the joined module too (~100 s of lavapipe with an empty shader cache) and run with
 * KIMI_SLOW_TESTS=1. In the default pass: the fusion itself (horizontalFusion.test.ts, a toy pair on the
 * GPU) and this module's identity with the one the H200 probe timed (below); on the H200 `bench kda --check`
 * compares the two paths (sharedVsSeparate, 0 in the sixth session).
 * Also (no GPU): its module at the H200 geometry is the one the overlap probe timed (overlapProbe.ts), so the
 * probe's numbers are this pipeline's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DispatchArgs, GpuContext } from '../src/gpu/context.js';
import { Params } from '../src/gpu/params.js';
import { intraVecKey, intraVecWgsl } from '../src/kernels/kda/intraVec.wgsl.js';
import { dispatchOverlapProbe } from '../src/kernels/kda/overlapProbe.js';
import { dispatchStateIntra } from '../src/kernels/kda/statePipeline.js';
import { stateTiledKey, stateTiledWgsl } from '../src/kernels/kda/stateTiled.wgsl.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { kdaForwardTuning, kdaSplitLimit } from '../src/kernels/kda/chunk.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { runChunkForwardKept, withDispatchKeys, withForwardTuning } from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

afterEach(() => {
  delete kdaForwardTuning.sharedPipeline;
  delete kdaSplitLimit.maxBindingBytes;
});

/** o, the final state, the kept intermediates, and the kernel keys dispatched. */
async function run(c: KdaCase, cu: number[], S0: Float32Array, shared: boolean) {
  const gpu = (await gpuContext())!;
  return withForwardTuning({ sharedPipeline: shared, intraTwoPass: false }, () =>
    withDispatchKeys(gpu, () => runChunkForwardKept(gpu, c, cu, S0)),
  );
}

async function expectSame(c: KdaCase, cu: number[], S0: Float32Array, groups = 1) {
  const sep = await run(c, cu, S0, false);
  const fused = await run(c, cu, S0, true);
  expect(sep.keys.some((k) => k.startsWith('fuse_'))).toBe(false);
  // One fused intra dispatch, then one fused state dispatch per head group, instead of the two kernels.
  expect(fused.keys.filter((k) => k.startsWith('fuse_kda_chunk_intra_state|')).length).toBe(1 + groups);
  expect(fused.keys.filter((k) => k.startsWith('kda_chunk_intra_vec') || k.startsWith('kda_chunk_state')).length).toBe(
    0,
  );
  expect(sep.keys.filter((k) => k.startsWith('kda_chunk_intra_vec') || k.startsWith('kda_chunk_state')).length).toBe(
    1 + groups,
  );
  expect(fused.groups).toBe(groups);
  for (const n of Object.keys(sep.got)) {
    expect(fused.got[n].length, n).toBe(sep.got[n].length);
    expectClose(fused.got[n], sep.got[n], 1e-6, `${n} (shared pipeline = separate kernels)`);
  }
}

const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';

describe('kda chunked forward: intra and tiled state passes in one pipeline', () => {
  it('its WGSL at H=16, d=128 is the module of the probe that timed it', () => {
    const [Ttot, H, d] = [32768, 16, 128];
    const p = { Ttot, N: 1, H, K: d, V: d, GK: d, B: 1, T: Ttot };
    const fake = () => ({ storage: {}, offset: 0, numel: 1, dispose() {} }) as unknown as Tensor;
    const captured: DispatchArgs[] = [];
    const gpu = {
      limits: { maxComputeWorkgroupsPerDimension: 65535 },
      dispatch: (a: DispatchArgs) => captured.push(a),
      empty: fake,
    } as unknown as GpuContext;
    const tv = { K: d, V: d, GK: d, BV: 16, RA: 2 as const, wg: 256 };
    const iv = { K: d, V: d, GK: d, splitProducts: false };
    const kernels = {
      state: { key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) },
      intra: { key: intraVecKey(iv), code: () => intraVecWgsl(iv) },
    };
    const [cu, q, k, v, beta, gc, W, U, Kd, Aqk, T, h, Vp, state] = Array.from({ length: 14 }, fake);
    const saved = { gc, W, U, Kd, Aqk, T, h: [h], groups: [{ h0: 0, HB: H }] };
    dispatchOverlapProbe(gpu, p, 0.1, {
      state: { ...kernels.state, BV: 16 },
      intra: kernels.intra,
      x: { cu, q, k, v, beta },
      saved,
      Vp,
    });
    const probe = captured.find((a) => a.kernel.name === 'kda_probe_state_alone');
    const intra = { tensors: [cu, q, k, v, gc, beta, W, U, Aqk, T], params: new Params(), workgroups: [1] as const };
    const st = { tensors: [cu, W, U, Kd, gc, state, h, Vp], params: new Params(), workgroups: [1] as const };
    dispatchStateIntra(gpu, kernels, { intra, state: st }, 'state');
    const shared = captured[captured.length - 1];
    expect(shared.kernel.name).toBe('kda_chunk_state');
    expect(shared.kernel.key).toMatch(/^fuse_kda_chunk_intra_state\|/);
    expect(probe?.kernel.code()).toBe(shared.kernel.code());
  });

  for (const T of [1, 63, 65, 130]) {
    it.skipIf(slow)(`= separate kernels: T=${T}, K=16, V=8`, { timeout: 300_000 }, async () => {
      const [H, K, V] = [2, 16, 8];
      await expectSame(randomCase(T * 5 + 2, T, H, K, V), [0, T], new Rng(T + 1).normalArray(H * K * V, 0.5));
    });
  }

  it.skipIf(slow)('= separate kernels: varlen batch (5, 70, 0, 58 tokens)', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 133];
    const [H, K, V] = [2, 16, 8];
    await expectSame(randomCase(61, cu[4], H, K, V), cu, new Rng(12).normalArray(4 * H * K * V, 0.5));
  });

  it.skipIf(slow)('= separate kernels: two head groups (split state buffers)', { timeout: 300_000 }, async () => {
    const [T, H, K, V] = [130, 2, 16, 8];
    // One head's per-chunk states: 3 slots x K x V f32 (chunkSlots = floor(130 / 64) + 1).
    kdaSplitLimit.maxBindingBytes = 3 * K * V * 4;
    await expectSame(randomCase(67, T, H, K, V), [0, T], new Rng(13).normalArray(H * K * V, 0.5), 2);
  });
});
