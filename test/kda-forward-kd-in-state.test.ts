/**
 * The chunked forward without keep whose tiled state pass computes Kd = k exp(gc_last - gc) while staging its
 * tile (kdaForwardTuning.kdInState, StateTiledVariant.kdFromK) and whose gc pass then writes gc only, against
 * the forward as before (kdInState false: the gc pass writes Kd, the state pass reads it): o and the final state
 * within 1e-6 (the same expression on the same f32 values; only where exp runs differs) and against the f64
 * recurrent reference; the dispatches checked to be the gc-only pass and the kdFromK state pass (the default). K16/V8 with a gate per
 * channel (GK = K, which the option needs), the geometry the other KDA tests compile: T = 65 (two chunks, the
 * second partial, so gc_last is a short chunk's last row) in the default pass; with KIMI_SLOW_TESTS=1 also
 * T = 1, a varlen batch with an empty sequence, the state pass in its own pipeline, and keep (where the
 * option does not apply: the backward reads Kd).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning, sharedPipelineByDefault } from '../src/kernels/kda/chunk.js';
import { kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import {
  type ForwardTuning,
  runChunkForward,
  runChunkForwardKept,
  withDispatchKeys,
  withForwardTuning,
} from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

type Tuning = ForwardTuning;

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

/** The forward without keep (o, final state) with `tuning`, and the kernel keys it dispatched. */
async function run(c: KdaCase, cu: number[], S0: Float32Array, tuning: Tuning) {
  const gpu = (await gpuContext())!;
  return withForwardTuning(tuning, () => withDispatchKeys(gpu, () => runChunkForward(gpu, c, cu, S0)));
}

async function expectKdInState(c: KdaCase, cu: number[], S0: Float32Array, extra: Tuning = {}) {
  const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { ...c, cu }, c.K ** -0.5, S0);
  const base = await run(c, cu, S0, { ...extra, kdInState: false });
  // The default (kdInState unset) is the new path.
  const got = await run(c, cu, S0, extra);
  const fused = extra.sharedPipeline ?? sharedPipelineByDefault((await gpuContext())!);
  const state = (keys: string[]) =>
    keys.filter((k) => (fused ? k.startsWith('fuse_kda_chunk_intra_state|') : k.startsWith('kda_chunk_state_tiled')));
  expect(base.keys.some((k) => k.endsWith('_nokd'))).toBe(false);
  expect(base.keys.some((k) => k.includes('_kdk'))).toBe(false);
  expect(got.keys.filter((k) => k.startsWith('kda_chunk_gc_') && k.endsWith('_nokd')).length).toBe(1);
  expect(state(got.keys).length).toBe(fused ? 2 : 1);
  for (const k of state(got.keys)) expect(k).toContain('_kdk');
  for (const n of ['o', 'S'] as const) {
    expectClose(got.got[n], base.got[n], 1e-6, `${n} (Kd in the state pass = from the gc pass)`);
    expectClose(got.got[n], ref[n], 2e-3, `${n} (reference)`);
  }
}

const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';
const [H, K, V] = [2, 16, 8];

describe('kda chunked forward: Kd computed in the tiled state pass', () => {
  it.skipIf(!hasGpu)('= Kd from the gc pass: T=65', { timeout: 300_000 }, async () => {
    await expectKdInState(randomCase(21, 65, H, K, V), [0, 65], new Rng(22).normalArray(H * K * V, 0.5));
  });

  it.skipIf(slow)('= Kd from the gc pass: T=1', { timeout: 300_000 }, async () => {
    await expectKdInState(randomCase(23, 1, H, K, V), [0, 1], new Rng(24).normalArray(H * K * V, 0.5));
  });

  it.skipIf(slow)('= Kd from the gc pass: varlen (5, 70, 0, 58 tokens)', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 133];
    await expectKdInState(randomCase(25, cu[4], H, K, V), cu, new Rng(26).normalArray(4 * H * K * V, 0.5));
  });

  it.skipIf(slow)('= Kd from the gc pass: state pass in its own pipeline, T=130', { timeout: 300_000 }, async () => {
    const S0 = new Rng(28).normalArray(H * K * V, 0.5);
    await expectKdInState(randomCase(27, 130, H, K, V), [0, 130], S0, { sharedPipeline: false });
  });

  it.skipIf(slow)('keep: the option does not apply (the gc pass writes Kd)', { timeout: 300_000 }, async () => {
    const gpu = (await gpuContext())!;
    const c = randomCase(29, 65, H, K, V);
    const { keys } = await withDispatchKeys(gpu, () =>
      runChunkForwardKept(gpu, c, [0, 65], new Rng(30).normalArray(H * K * V, 0.5)),
    );
    expect(keys.some((k) => k.endsWith('_nokd') || k.includes('_kdk'))).toBe(false);
  });
});
