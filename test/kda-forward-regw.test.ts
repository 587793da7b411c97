/**
 * The chunked forward with the regw state pass (stateRegW.wgsl.ts: W in registers, the row's (W S) summed over
 * 4 lanes by subgroup shuffles, two barriers a chunk; kdaForwardTuning.state = 'regw') against the tiled state
 * pass it replaces (o and the final state within 1e-5 relative: only the order of V''s channel sum differs) and
 * against the f64 recurrent reference; the dispatch checked to be the regw kernel. K16/V8 with a gate per channel
 * (the geometry of the other KDA tests): T = 65 (two chunks, the second partial: the clamped W rows and the
 * short chunk's gc_last) by default; with KIMI_SLOW_TESTS=1 also T = 1, 7, 63, 130, 200, a varlen batch with an
 * empty sequence, Kd from the gc pass (kdInState off), and the regw pass in the shared pipeline with intra
 * (statePipeline.ts; the default on GPUs, not on lavapipe; needs horizontalFusion's `enable` hoisting).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { type ForwardTuning, runChunkForward, withDispatchKeys, withForwardTuning } from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

async function run(c: KdaCase, cu: number[], S0: Float32Array, tuning: ForwardTuning) {
  const gpu = (await gpuContext())!;
  return withForwardTuning({ sharedPipeline: false, ...tuning }, () =>
    withDispatchKeys(gpu, () => runChunkForward(gpu, c, cu, S0)),
  );
}

async function expectRegW(c: KdaCase, cu: number[], S0: Float32Array, extra: ForwardTuning = {}) {
  const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { ...c, cu }, c.K ** -0.5, S0);
  // The tiled pass in its own pipeline (one fused compilation less on lavapipe; the shared one is the same WGSL).
  const tiled = await run(c, cu, S0, { ...extra, sharedPipeline: false, state: 'tiled' });
  const got = await run(c, cu, S0, { ...extra, state: 'regw' });
  expect(tiled.keys.some((k) => k.startsWith('kda_chunk_state_tiled'))).toBe(true);
  const shared = extra.sharedPipeline === true;
  const regw = got.keys.filter((k) =>
    shared ? k.startsWith('fuse_kda_chunk_intra_state|kda_chunk_state_regw') : k.startsWith('kda_chunk_state_regw'),
  );
  expect(regw.length).toBe(shared ? 2 : 1);
  expect(regw[0].split('|')[shared ? 1 : 0].endsWith('_kdk')).toBe(extra.kdInState !== false);
  for (const n of ['o', 'S'] as const) {
    expectClose(got.got[n], tiled.got[n], 1e-5, `${n} (regw = tiled state pass)`);
    expectClose(got.got[n], ref[n], 2e-3, `${n} (reference)`);
  }
}

const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';
const [H, K, V] = [2, 16, 8];
const S0 = (seed: number, N = 1) => new Rng(seed).normalArray(N * H * K * V, 0.5);

describe('kda chunked forward: regw state pass', () => {
  it.skipIf(!hasGpu)('= tiled state pass: T=65', { timeout: 300_000 }, async () => {
    await expectRegW(randomCase(41, 65, H, K, V), [0, 65], S0(42));
  });

  for (const T of [1, 7, 63, 130, 200]) {
    it.skipIf(slow)(`= tiled state pass: T=${T}`, { timeout: 300_000 }, async () => {
      await expectRegW(randomCase(43 + T, T, H, K, V), [0, T], S0(44 + T));
    });
  }

  it.skipIf(slow)('= tiled state pass: varlen (5, 70, 0, 130 tokens)', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 205];
    await expectRegW(randomCase(45, cu[4], H, K, V), cu, S0(46, 4));
  });

  it.skipIf(slow)('= tiled state pass: Kd from the gc pass, T=130', { timeout: 300_000 }, async () => {
    await expectRegW(randomCase(47, 130, H, K, V), [0, 130], S0(48), { kdInState: false });
  });

  it.skipIf(slow)('= tiled state pass: in the shared pipeline with intra, T=130', { timeout: 300_000 }, async () => {
    await expectRegW(randomCase(49, 130, H, K, V), [0, 130], S0(50), { sharedPipeline: true });
  });
});
