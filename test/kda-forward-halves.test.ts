/**
 * The chunked forward's fifth-session kernels against the f64 recurrent reference and against the kernels of
 * the session's start (OLD: tiled state pass, gc pass, output.wgsl.ts), with every intermediate the backward
 * reads (dispatchChunkForward with keep):
 *  - the pipelined output pass (outputPipelined.wgsl.ts, the default; 128 value columns in a slow test);
 *  - the 'halves' state pass (stateHalves.wgsl.ts): both halves of the threads computing (halves = 2) and its
 *    one-half form in named registers (halves = 1), against the tiled state pass (stateTiled.wgsl.ts);
 *  - gc and Kd computed in the vec4 intra pass (intraVec.wgsl.ts fuseGc) instead of the gc pass: the same sums
 *    in the same order, so gc and Kd must equal the separate pass's exactly; step A's products split over all
 *    threads (splitProducts); the output pass's named accumulators (output.wgsl.ts named).
 * T not a multiple of the chunk (1, 7, 63, 65, 130), a varlen batch with an empty sequence, a per-head gate
 * (GK = 1, slow), K16/V8 (the geometry the other KDA tests compile).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { runChunkForwardKept, withForwardTuning } from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

type Tuning = Partial<typeof kdaForwardTuning>;

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) {
    delete kdaForwardTuning[key];
  }
});

const OLD: Tuning = { state: 'tiled', gcInIntra: false, outputPipelined: false };
const NEW: Tuning = { state: 'halves', stateHalves: 2, gcInIntra: true, outputPipelined: true, intraSplit: true };
const ONE_HALF: Tuning = { state: 'halves', stateHalves: 1, gcInIntra: false, outputNamed: true };

/** o, the final state and every kept intermediate (per-chunk buffers: the slots in use only), with `tuning`. */
async function run(c: KdaCase, cu: number[], S0: Float32Array, tuning: Tuning): Promise<Record<string, Float32Array>> {
  const gpu = (await gpuContext())!;
  return (await withForwardTuning(tuning, () => runChunkForwardKept(gpu, c, cu, S0))).got;
}

/**
 * `tuning` against the reference (o, S) and against the old kernels (everything kept): gc and Kd exactly
 * where gc is computed in the intra pass; the rest within `tol` (the two-half sums round differently).
 */
async function expectMatches(c: KdaCase, cu: number[], S0: Float32Array, tuning: Tuning, tol: number) {
  const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { ...c, cu }, c.K ** -0.5, S0);
  const old = await run(c, cu, S0, OLD);
  const got = await run(c, cu, S0, tuning);
  expectClose(got.o, ref.o, 2e-3, 'o (reference)');
  expectClose(got.S, ref.S, 2e-3, 'S (reference)');
  for (const n of Object.keys(old)) {
    expect(got[n].length, n).toBe(old[n].length);
    if (tuning.gcInIntra && (n === 'gc' || n === 'Kd')) expect(got[n], `${n} (fused = gc pass)`).toEqual(old[n]);
    else expectClose(got[n], old[n], tol, `${n} (= old kernels)`);
  }
}

describe('kda chunked forward: halves state pass, gc in intra, split intra products, pipelined output', () => {
  // The opt-in kernels together (halves state pass, gc in intra, split intra products; none is a default: they
  // measured no faster on the H200). The first case compiles all of them (~50-100 s on lavapipe with an empty
  // shader cache), so they run with KIMI_SLOW_TESTS=1; the default pass keeps the one-half case below, and the
  // default kernels (pipelined output included) run in kda-golden, kda-consistency and kda-saved.
  for (const T of [1, 7, 63, 65, 130]) {
    it.skipIf(!hasGpu || process.env.KIMI_SLOW_TESTS !== '1')(
      `new kernels = reference and old kernels: T=${T}, K=16, V=8`,
      { timeout: 300_000 },
      async () => {
        const [H, K, V] = [2, 16, 8];
        const c = randomCase(T * 7 + 1, T, H, K, V);
        await expectMatches(c, [0, T], new Rng(T + 3).normalArray(H * K * V, 0.5), NEW, 1e-5);
      },
    );
  }

  it.skipIf(!hasGpu)('one half in named registers = tiled pass: T=130, K=16, V=8', { timeout: 300_000 }, async () => {
    const [T, H, K, V] = [130, 2, 16, 8];
    const c = randomCase(41, T, H, K, V);
    await expectMatches(c, [0, T], new Rng(8).normalArray(H * K * V, 0.5), ONE_HALF, 1e-6);
  });

  // GK = 1 compiles a further geometry of every kernel here, old and new (~100 s of lavapipe compilation with an
  // empty shader cache): slow tests. The default kernels at GK = 1 are checked by kda-consistency.test.ts.
  it.skipIf(!hasGpu || process.env.KIMI_SLOW_TESTS !== '1')(
    'one gate per head (GK = 1): T=130, K=16, V=8',
    {
      timeout: 600_000,
    },
    async () => {
      const [T, H, K, V] = [130, 2, 16, 8];
      const c = randomCase(43, T, H, K, V, 1);
      await expectMatches(c, [0, T], new Rng(9).normalArray(H * K * V, 0.5), NEW, 1e-5);
    },
  );

  it.skipIf(!hasGpu || process.env.KIMI_SLOW_TESTS !== '1')(
    'varlen batch (5, 70, 0, 58 tokens)',
    { timeout: 300_000 },
    async () => {
      const cu = [0, 5, 75, 75, 133];
      const [H, K, V] = [2, 16, 8];
      const c = randomCase(47, cu[4], H, K, V);
      await expectMatches(c, cu, new Rng(10).normalArray(4 * H * K * V, 0.5), NEW, 1e-5);
    },
  );
});

// The pipelined output pass with one workgroup per chunk and head (outputBV = 128: 8 rows x 4 columns per
// thread) against the session-start output pass. V = 128 costs about a minute of lavapipe compilation: slow tests.
describe('kda chunked forward: pipelined output, 128 value columns per workgroup', () => {
  it.skipIf(!hasGpu || process.env.KIMI_SLOW_TESTS !== '1')('T=70, K=16, V=128', { timeout: 600_000 }, async () => {
    const [T, H, K, V] = [70, 1, 16, 128];
    const c = randomCase(53, T, H, K, V);
    await expectMatches(
      c,
      [0, T],
      new Rng(14).normalArray(H * K * V, 0.5),
      { outputPipelined: true, outputBV: 128 },
      1e-6,
    );
  });
});
