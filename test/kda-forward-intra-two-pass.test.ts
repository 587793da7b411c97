/**
 * The vec4 intra pass as two kernels (kdaForwardTuning.intraTwoPass: intraGram.wgsl.ts, then intraWU.wgsl.ts)
 * against its plain-TS reference (intraReference.ts, f64: A_qk, T, W, U per chunk) and against the one-pass
 * kernel (intraVec.wgsl.ts): o, the final state and every kept intermediate within 1e-6 (the same expressions
 * in the same order), with keep (the first kernel also stores the backward's row-major T) and without (what
 * inference runs). K16/V8, the geometry the other KDA tests compile; T = 1, 7, 63, 65, 130 (partial chunks,
 * rows past the end), a varlen batch with an empty sequence; with KIMI_SLOW_TESTS=1 also a per-head gate (GK = 1)
 * and the non-default load variants of both kernels. The dispatches are checked to be the two kernels.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { intraChunkReference } from '../src/kernels/kda/intraReference.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { runChunkForward, withDispatchKeys, withForwardTuning } from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

/** A_qk and T ([used slots, H, 64, 64], the order runChunkForward picks them in), W and U ([T, H, .]). */
function reference(c: KdaCase, cu: readonly number[]) {
  const { H, K, V, GK } = c;
  const Aqk: number[] = [];
  const T: number[] = [];
  const W = new Float64Array(c.T * H * K);
  const U = new Float64Array(c.T * H * V);
  for (let s = 0; s + 1 < cu.length; s++) {
    for (let t0 = cu[s]; t0 < cu[s + 1]; t0 += 64) {
      const L = Math.min(64, cu[s + 1] - t0);
      for (let h = 0; h < H; h++) {
        const rows = (a: Float32Array, w: number) =>
          Float64Array.from({ length: L * w }, (_, e) => a[((t0 + Math.floor(e / w)) * H + h) * w + (e % w)]);
        const g = rows(c.g, GK);
        for (let i = 1; i < L; i++) for (let ch = 0; ch < GK; ch++) g[i * GK + ch] += g[(i - 1) * GK + ch];
        const r = intraChunkReference({
          L,
          K,
          V,
          GK,
          q: rows(c.q, K),
          k: rows(c.k, K),
          v: rows(c.v, V),
          gc: g,
          beta: rows(c.beta, 1),
          scale: K ** -0.5,
        });
        Aqk.push(...r.Aqk);
        T.push(...r.T);
        for (let i = 0; i < L; i++) {
          for (let ch = 0; ch < K; ch++) W[((t0 + i) * H + h) * K + ch] = r.W[i * K + ch];
          for (let ch = 0; ch < V; ch++) U[((t0 + i) * H + h) * V + ch] = r.U[i * V + ch];
        }
      }
    }
  }
  return { Aqk, T, W, U };
}

async function run(c: KdaCase, cu: number[], S0: Float32Array, keep: boolean, tuning: typeof kdaForwardTuning) {
  const gpu = (await gpuContext())!;
  return withForwardTuning(tuning, () => withDispatchKeys(gpu, () => runChunkForward(gpu, c, cu, S0, keep)));
}

/** Two-pass = one-pass (and = reference with keep: the first kernel also stores T row-major), for each of `keeps`. */
async function expectTwoPass(
  c: KdaCase,
  cu: number[],
  prefetch = true,
  keeps = [true],
  loads: 'all' | 'uniform' = 'all',
) {
  const S0 = new Rng(c.T + 1).normalArray((cu.length - 1) * c.H * c.K * c.V, 0.5);
  for (const keep of keeps) {
    const one = await run(c, cu, S0, keep, { intraTwoPass: false });
    const two = await run(c, cu, S0, keep, { intraTwoPass: true, intraGramPrefetch: prefetch, intraWULoads: loads });
    expect(one.keys.some((k) => k.startsWith('kda_chunk_intra_gram') || k.startsWith('kda_chunk_intra_wu'))).toBe(
      false,
    );
    expect(two.keys.filter((k) => k.startsWith('kda_chunk_intra_gram')).length).toBe(1);
    expect(two.keys.filter((k) => k.startsWith('kda_chunk_intra_wu')).length).toBe(1);
    expect(Object.keys(two.got).sort()).toEqual(Object.keys(one.got).sort());
    for (const n of Object.keys(one.got)) expectClose(two.got[n], one.got[n], 1e-6, `${n} (two-pass = one-pass)`);
    if (keep) {
      const ref = reference(c, cu);
      for (const n of ['Aqk', 'T', 'W', 'U'] as const) expectClose(two.got[n], ref[n], 1e-4, `${n} (reference)`);
    }
  }
}

const [H, K, V] = [2, 16, 8];
// Each kernel variant costs a lavapipe compilation (tens of seconds with an empty shader cache): the default
// pass compiles the GPU default's two (the first kernel's loads a tile ahead, one kernel with and without keep;
// the second's 'all' loads), KIMI_SLOW_TESTS=1 the others (loads not a tile ahead, 'uniform' loads, a per-head
// gate).
const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';

describe('kda chunked forward: the intra pass as two kernels', () => {
  for (const T of [1, 7, 63, 65, 130]) {
    it.skipIf(!hasGpu)(`= one-pass kernel and reference, keep: T=${T}, K=16, V=8`, { timeout: 300_000 }, async () => {
      await expectTwoPass(randomCase(T * 5 + 3, T, H, K, V), [0, T]);
    });
  }

  it.skipIf(!hasGpu)('= one-pass kernel, no keep: T=130', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(35, 130, H, K, V), [0, 130], true, [false]);
  });

  it.skipIf(!hasGpu)('varlen batch (5, 70, 0, 58 tokens), keep and not', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 133];
    await expectTwoPass(randomCase(33, cu[4], H, K, V), cu, true, [true, false]);
  });

  it.skipIf(slow)('loads not a tile ahead: T=130, keep and not', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(37, 130, H, K, V), [0, 130], false, [true, false]);
  });

  // The 'uniform' loads of the second kernel: at K16/V8 its one column tile holds K and V columns (the mixed
  // branch); the whole-K and whole-V branches run at d = 128 (bench kda --check on the device).
  it.skipIf(slow)('uniform loads of the second kernel: T=130, keep', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(39, 130, H, K, V), [0, 130], true, [true], 'uniform');
  });

  it.skipIf(slow)('one gate per head (GK = 1): T=130, keep and not', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(31, 130, H, K, V, 1), [0, 130], true, [true, false]);
  });
});
