/**
 * The backward kernels that run by default on the GPU, against the plain-TS chunked backward
 * (kdaChunkBackwardReference): the split state pass (dstateSplit.wgsl.ts: a parallel pass for A_qk^T dO and
 * Qg^T dO, then the sequential recurrence with register tiles, dstateSeqTiled.wgsl.ts; its 2 (default) and 4
 * dV' rows per thread), the register-tiled dqkw pass (dqkw.wgsl.ts; K = 16
 * and 32 here give its 64- and 128-thread forms, kda-consistency's K = 64 and 128 the 256-thread one the
 * H200 runs), the UT-transform backward with row-quad scatter and triangular dA map (utRows.wgsl.ts; also
 * with the square map) and the one it replaces (ut.wgsl.ts, forced; column tiles inside K, inside V and partly
 * past K + V; the dB sum over 16 constant row groups, so lens < 64 check that rows past the chunk add nothing) and
 * the pair pass with the decay factored by 16-row blocks and vec4 tiles (pairsVec.wgsl.ts; K = 16 and 32 give
 * the H200's 4 blocks, lens 1 / 7 / 65 / 130 leave blocks empty, partial and whole; its 16-row loops run past
 * the chunk's end there; dg's reverse cumsum as the in-loop scan, or the walk at the end with the scalar gate
 * and in the `prev` cases). The forms they replace (pairs.wgsl.ts, the UT loop to L) are compared with them
 * on the H200 by `bench kda --bwd-check` (pairsVecVsFactored, utFixedVsVarRows).
 * Lengths: a single token, a partial only chunk, one token short of and one past a whole chunk, three chunks
 * with a short last one; both branches of the sequential kernel (one G row per thread at K = 16, value tile
 * 8; vec4 groups of 4 rows at K = 32, tile 32, as on the H200 at K = 128, tile 16); the scalar gate; a varlen
 * batch with an empty sequence. The old dstate, dqkw, ut and pairs kernels, forced, must agree too. Gradients within
 * 3e-3 relative to max |value| (the chunked tolerance of the other KDA tests). The H200's own geometry
 * (K = 128 with 48 KiB of workgroup memory) does not fit lavapipe: `bench kda --bwd-check` compares new and
 * old kernels there.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaBackwardTuning } from '../src/kernels/kda/backwardGpu.js';
import { dstateSeqTiledFits } from '../src/kernels/kda/dstateSeqTiled.wgsl.js';
import { seqBV, dstateSplitFits } from '../src/kernels/kda/dstateSplit.wgsl.js';
import { utRowsFits } from '../src/kernels/kda/utRows.wgsl.js';
import { kdaChunkBackwardReference, kdaCoreBackward } from '../src/kernels/kda/index.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu } from './helpers.js';
import { expectCoreGrads, randomCase } from './kda-random.js';

afterEach(() => {
  kdaBackwardTuning.legacyDstate = undefined;
  kdaBackwardTuning.seqBV = undefined;
  kdaBackwardTuning.legacyDqkw = undefined;
  kdaBackwardTuning.legacyUt = undefined;
  kdaBackwardTuning.prevPairs = undefined;
  kdaBackwardTuning.prevDqkw = undefined;
  kdaBackwardTuning.prevUt = undefined;
  kdaBackwardTuning.prevDstateSeq = undefined;
  kdaBackwardTuning.prevUtRows = undefined;
  kdaBackwardTuning.pairsTailDg = undefined;
  kdaBackwardTuning.seqRows = undefined;
  kdaBackwardTuning.utSquare = undefined;
});

interface Case {
  lens: number[];
  H: number;
  K: number;
  V: number;
  GK: number;
  bv?: number;
  legacy?: boolean;
  /** The kernels this round replaced (one-column sequential pass, ut.wgsl.ts, the pair pass's dg walk), forced. */
  prev?: boolean;
  seqRows?: 4;
  utSquare?: boolean;
  /**
   * Only with KIMI_SLOW_TESTS=1: each compiles a whole set of kernels no other default case uses (lavapipe
   * spends 15-110 s on each), for paths the default pass covers otherwise: K > 16 tiling runs in
   * kda-consistency (K=64, forward and gradients); the replaced kernels and the opt-in variants are not
   * defaults (kept for comparisons on the device: bench kda --bwd-check).
   */
  slow?: boolean;
}

const cases: Case[] = [
  ...[1, 7, 63, 65, 130].map((T) => ({ lens: [T], H: 2, K: 16, V: 8, GK: 16 })),
  { lens: [65], H: 1, K: 32, V: 32, GK: 32, bv: 32, slow: true },
  { lens: [130], H: 2, K: 16, V: 8, GK: 1 },
  { lens: [5, 70, 0, 58], H: 2, K: 16, V: 8, GK: 16 },
  { lens: [5, 70, 0, 58], H: 2, K: 16, V: 8, GK: 16, legacy: true, slow: true },
  { lens: [65], H: 2, K: 16, V: 8, GK: 16, prev: true, slow: true },
  { lens: [130], H: 2, K: 16, V: 8, GK: 16, seqRows: 4, utSquare: true, slow: true },
];

describe('kda backward kernels (split state pass, tiled dqkw and ut, pairs) = chunked reference', () => {
  for (const c of cases) {
    const name = `lens ${c.lens.join('+')}, H=${c.H}, K=${c.K}, V=${c.V}, gate ${c.GK}${c.bv ? `, seq BV ${c.bv}` : ''}${c.legacy ? ', old dstate, dqkw, ut and pairs kernels (forced)' : ''}${c.prev ? ', one-column seq, ut.wgsl.ts, dg walk (forced)' : ''}${c.seqRows ? `, ${c.seqRows} dV' rows per thread` : ''}${c.utSquare ? ', square dA map' : ''}`;
    it.skipIf(!hasGpu || (c.slow && process.env.KIMI_SLOW_TESTS !== '1'))(
      name,
      async () => {
        const gpu = (await gpuContext())!;
        const { H, K, V, GK } = c;
        const N = c.lens.length;
        const cu = [0];
        for (const l of c.lens) cu.push(cu[cu.length - 1] + l);
        const T = cu[N];
        const smem = gpu.limits.maxComputeWorkgroupStorageSize;
        const bv = c.bv ?? seqBV(V, N, H, K, smem);
        // The case must exercise the kernels it names (not fall back silently).
        expect(dstateSplitFits({ K, V, GK }, bv, smem)).toBe(true);
        expect(dstateSeqTiledFits({ K, V, GK, BV: bv, RA: c.seqRows ?? 2 }, smem)).toBe(true);
        expect(utRowsFits({ K, V, GK })).toBe(true);
        kdaBackwardTuning.seqBV = c.bv;
        kdaBackwardTuning.legacyDstate = c.legacy;
        kdaBackwardTuning.legacyDqkw = c.legacy;
        kdaBackwardTuning.legacyUt = c.legacy;
        kdaBackwardTuning.prevPairs = c.legacy;
        kdaBackwardTuning.prevDstateSeq = c.prev;
        kdaBackwardTuning.prevUtRows = c.prev;
        kdaBackwardTuning.pairsTailDg = c.prev;
        kdaBackwardTuning.seqRows = c.seqRows;
        kdaBackwardTuning.utSquare = c.utSquare;
        const r = randomCase(T * 13 + K + V + N, T, H, K, V, GK);
        const S0 = new Rng(T + 3).normalArray(N * H * K * V, 0.5);
        const dS = new Rng(T + 4).normalArray(N * H * K * V);
        const dims = { H, K, V, GK, cu };
        const want = kdaChunkBackwardReference(r.q, r.k, r.v, r.g, r.beta, r.dO, dims, K ** -0.5, S0, dS);
        const gShape = GK === 1 ? [1, T, H] : [1, T, H, K];
        const got = kdaCoreBackward(
          gpu.fromHost(r.q, [1, T, H, K]),
          gpu.fromHost(r.k, [1, T, H, K]),
          gpu.fromHost(r.v, [1, T, H, V]),
          gpu.fromHost(r.g, gShape),
          gpu.fromHost(r.beta, [1, T, H]),
          gpu.fromHost(r.dO, [1, T, H, V]),
          {
            mode: 'chunk',
            cuSeqlens: N > 1 ? gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32') : undefined,
            initialState: gpu.fromHost(S0, [N, H, K, V]),
            dS: gpu.fromHost(dS, [N, H, K, V]),
          },
        );
        await expectCoreGrads(got, want, 3e-3);
      },
      300_000,
    );
  }
});
