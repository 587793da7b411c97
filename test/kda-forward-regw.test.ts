/**
 * The chunked forward with the regw state pass (stateRegW.wgsl.ts: W in registers, the row's (W S) summed over
 * 4 lanes by subgroup shuffles, two barriers a chunk; kdaForwardTuning.state = 'regw') against the tiled state
 * pass it replaces (o and the final state within 1e-5 relative: only the order of V''s channel sum differs) and
 * against the f64 recurrent reference; the dispatch checked to be the regw kernel. K16/V8 with a gate per channel
 * (the geometry of the other KDA tests): T = 65 (two chunks, the second partial: the clamped W rows and the
 * short chunk's gc_last) by default; with KIMI_SLOW_TESTS=1 also T = 1, 7, 63, 130, 200, a varlen batch with an
 * empty sequence, Kd from the gc pass (kdInState off), and the regw pass in the shared pipeline with intra
 * (statePipeline.ts; the default on GPUs, not on lavapipe; needs horizontalFusion's `enable` hoisting).
 *
 * Also the tiled pass's V' summed as fma chains (StateTiledVariant.fma, kdaForwardTuning.stateFma: the default on
 * GPUs, not on lavapipe) and the overlap pass (stateOverlap.wgsl.ts: the W and Kd tiles staged as half tiles into
 * two buffers), in this file for the pipelines they share with the regw cases (one lavapipe process compiles the
 * tiled pass, gc, intra and output once), against the tiled pass: fma within 1e-5 (V' summed in another order), at
 * T = 1, 7, 63, 65, 130 (one compilation: T is not in the kernel's key) and a varlen batch; overlap equal to it
 * (the same sums in the same order), with KIMI_SLOW_TESTS=1; both against the f64 recurrent reference. Their
 * shared-pipeline forms (the defaults on the H200) were checked there (bench kda --check: vsDefault), not here: a
 * cold lavapipe compilation of the joined module takes minutes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { stateOverlapKey } from '../src/kernels/kda/stateOverlap.wgsl.js';
import { stateTiledKey } from '../src/kernels/kda/stateTiled.wgsl.js';
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

/**
 * A variant of the tiled pass (fma, stateOverlap.wgsl.ts) against the tiled pass in its own pipeline (equal where
 * tol is 0, else within tol relative) and the f64 reference, at each T; the dispatch checked to be the variant's
 * kernel.
 */
async function expectVariant(
  seed: number,
  Ts: number[],
  tuning: ForwardTuning,
  tol: number,
  cuOf: (T: number) => number[] = (T) => [0, T],
) {
  for (const T of Ts) {
    const cu = cuOf(T);
    const N = cu.length - 1;
    const c = randomCase(seed + T, cu[N], H, K, V);
    const s0 = S0(seed + 1 + T, N);
    const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { ...c, cu }, c.K ** -0.5, s0);
    const tiled = await run(c, cu, s0, { state: 'tiled', stateFma: false, kdInState: tuning.kdInState });
    const got = await run(c, cu, s0, tuning);
    const tv = { K, V, GK: K, BV: 8, RA: 2 as const, wg: 256, kdFromK: tuning.kdInState !== false };
    const fma = tuning.stateFma === true;
    const [kind, want] =
      tuning.state === 'overlap'
        ? ['overlap', stateOverlapKey({ ...tv, fma })]
        : ['tiled', stateTiledKey({ ...tv, fma })];
    expect(tiled.keys, 'the plain tiled pass').toContain(stateTiledKey({ ...tv, fma: false }));
    expect(got.keys.filter((k) => k === want).length, `T=${T}: ${want} among ${got.keys.join(', ')}`).toBe(1);
    for (const n of ['o', 'S'] as const) {
      if (tol === 0) expect(Array.from(got.got[n]), `${n} (T=${T}: ${kind} = tiled)`).toEqual(Array.from(tiled.got[n]));
      else expectClose(got.got[n], tiled.got[n], tol, `${n} (T=${T}: ${kind} ~ tiled)`);
      expectClose(got.got[n], ref[n], 2e-3, `${n} (T=${T}: reference)`);
    }
  }
}

const AWKWARD_T = [1, 7, 63, 65, 130];
const VARLEN = () => [0, 5, 75, 75, 205];

describe('kda chunked forward: the tiled state pass with fma, the overlap state pass', () => {
  it.skipIf(!hasGpu)('tiled with fma, ~ tiled: T = 1, 7, 63, 65, 130', { timeout: 300_000 }, async () => {
    await expectVariant(51, AWKWARD_T, { state: 'tiled', stateFma: true }, 1e-5);
  });

  it.skipIf(slow)('tiled with fma, ~ tiled: varlen (5, 70, 0, 130 tokens)', { timeout: 300_000 }, async () => {
    await expectVariant(55, [205], { state: 'tiled', stateFma: true }, 1e-5, VARLEN);
  });

  it.skipIf(slow)('overlap, = tiled: T = 1, 7, 63, 65, 130', { timeout: 300_000 }, async () => {
    await expectVariant(101, AWKWARD_T, { state: 'overlap' }, 0);
  });

  it.skipIf(slow)('overlap, = tiled: varlen (5, 70, 0, 130 tokens)', { timeout: 300_000 }, async () => {
    await expectVariant(115, [205], { state: 'overlap' }, 0, VARLEN);
  });

  it.skipIf(slow)('overlap with Kd from the gc pass, = tiled: T = 130', { timeout: 300_000 }, async () => {
    await expectVariant(117, [130], { state: 'overlap', kdInState: false }, 0);
  });
});
