/**
 * The absorbed MLA decode's reference, its split kernel (no subgroups) against it on awkward lengths and pages,
 * and the decode plans. The split kernel runs at the suite's 4 lanes (LP_NATIVE_VECTOR_WIDTH=128, where lavapipe
 * compiles ~1.7x faster); the tiled kernel, which needs 8-lane subgroups, in mla-decode.test.ts. The cases:
 * mla-decode-cases.ts.
 */
import { describe, expect, it } from 'vitest';
import { attentionReference } from '../src/kernels/attention/reference.js';
import { mlaDecode } from '../src/kernels/mla/index.js';
import { defaultChunks, planMlaDecode } from '../src/kernels/mla/plan.js';
import { mlaDecodeReference } from '../src/kernels/mla/reference.js';
import { defaultTiledChunks, planMlaTiled, tiledSubgroupSize } from '../src/kernels/mla/tiledPlan.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { defineMlaDecodeCases, SPLIT_CASES } from './mla-decode-cases.js';

describe('absorbed MLA decode', () => {
  it('reference equals plain attention with one shared key/value head', () => {
    const rng = new Rng(1);
    const [T, H, R, Rv] = [9, 3, 6, 4];
    const q = rng.normalArray(H * R);
    const rows = rng.normalArray(T * R);
    const ref = mlaDecodeReference(q, rows, new Int32Array([0]), new Int32Array([T]), {
      B: 1,
      H,
      R,
      Rv,
      pageSize: T,
      maxPages: 1,
      scale: 0.3,
    });
    // The same as the last query row of causal attention over the rows, per head.
    for (let h = 0; h < H; h++) {
      const qs = new Float32Array(T * R);
      qs.set(q.subarray(h * R, (h + 1) * R), (T - 1) * R);
      const v = new Float32Array(T * Rv);
      for (let t = 0; t < T; t++) v.set(rows.subarray(t * R, t * R + Rv), t * Rv);
      const o = attentionReference(qs, rows, v, { B: 1, T, H: 1, Dk: R, Dv: Rv, scale: 0.3, causal: true });
      expectClose(ref.subarray(h * Rv, (h + 1) * Rv), o.subarray((T - 1) * Rv), 1e-6, `head ${h}`);
    }
  });

  defineMlaDecodeCases(SPLIT_CASES);
});

describe('MLA decode plan', () => {
  it.skipIf(!hasGpu)('more chunks than one dispatch dimension holds is an error naming the count', async () => {
    const gpu = (await gpuContext())!;
    const [H, R] = [4, 24];
    const pool = gpu.zeros([2, 4, R]);
    const table = gpu.fromHost(new Int32Array([0, 1]), [1, 2], 'i32');
    const lens = gpu.fromHost(new Int32Array([8]), [1], 'i32');
    const q = gpu.zeros([1, H, R]);
    const opts = { Rv: 16, scale: 1, maxLength: 32 * 70000, chunks: 70000, blockTokens: 32 };
    expect(() => mlaDecode(q, pool, table, lens, opts)).toThrow(/70000 chunks per sequence exceed/);
  });

  it('fits the 48B shapes (H=32, R=576, Rv=512, bf16) in 48 KiB with every head and value dim covered', () => {
    const p = planMlaDecode({ H: 32, R: 576, Rv: 512, cacheDtype: 'bf16' }, 49152);
    expect(p.sharedBytes).toBeLessThanOrEqual(49152);
    expect(p.TT % 4).toBe(0);
    expect(p.TT).toBeGreaterThanOrEqual(16);
    expect(p.NHT * 4).toBeGreaterThanOrEqual(32);
    // S tasks cover every (head quad, token quad, R slice); slices cover R.
    expect(p.KS * p.SL).toBeGreaterThanOrEqual(p.W);
    expect((p.KS - 1) * p.SL).toBeLessThan(p.W);
    expect(p.NSS * p.WG).toBeGreaterThanOrEqual(p.NHT * p.NTT * p.KS);
    // O tiles cover all value dims.
    expect(p.NVT * p.NWT * p.DPW).toBeGreaterThanOrEqual(512);
    expect(p.NOS * p.WG).toBeGreaterThanOrEqual(p.NHO * p.NVT);
    // A 32 KiB device gets a smaller block, not an error.
    expect(planMlaDecode({ H: 32, R: 576, Rv: 512, cacheDtype: 'bf16' }, 32768).TT).toBeLessThan(p.TT);
  });

  it('rejects bad shapes and blocks, naming the value', () => {
    expect(() => planMlaDecode({ H: 4, R: 17, Rv: 8, cacheDtype: 'bf16' }, 49152)).toThrow(/even row size R, got 17/);
    expect(() => planMlaDecode({ H: 4, R: 16, Rv: 20, cacheDtype: 'f32' }, 49152)).toThrow(/Rv=20/);
    expect(() => planMlaDecode({ H: 4, R: 16, Rv: 8, cacheDtype: 'f32' }, 49152, 6)).toThrow(/multiple of 4, got 6/);
    expect(() => planMlaDecode({ H: 32, R: 576, Rv: 512, cacheDtype: 'f32' }, 49152, 32)).toThrow(/49152/);
  });

  it('tiles the 48B shapes on an H200 (subgroups of 32, 48 KiB): 256 threads, f32 row buffers', () => {
    const p = planMlaTiled({ H: 32, R: 576, Rv: 512, cacheDtype: 'bf16', SG: 32 }, 49152);
    expect([p.WG, p.TT, p.NG, p.JS, p.NDG, p.NV2, p.RS2, p.UV]).toEqual([256, 8, 1, 9, 64, 4, 288, 4]);
    expect([p.doubleBuffer, p.sTokens, p.lateFetch, p.pipelined]).toEqual([false, 4, true, false]);
    const pipe = planMlaTiled({ H: 32, R: 576, Rv: 512, cacheDtype: 'bf16', SG: 32 }, 49152, { pipelined: true });
    expect([pipe.doubleBuffer, pipe.lateFetch]).toEqual([true, false]);
    expect(pipe.sharedBytes).toBeLessThanOrEqual(49152);
    expect(p.sharedBytes).toBeLessThanOrEqual(49152);
    // S slices cover R exactly; O columns cover Rv.
    expect(2 * p.SG * p.JS).toBe(576);
    expect(2 * p.NDG * p.NV2).toBeGreaterThanOrEqual(512);
    // 32 KiB (lavapipe) holds one buffer only; H = 64 is two head groups.
    expect(() =>
      planMlaTiled({ H: 32, R: 576, Rv: 512, cacheDtype: 'bf16', SG: 32 }, 32768, { doubleBuffer: true }),
    ).toThrow(/32768/);
    expect(planMlaTiled({ H: 64, R: 576, Rv: 512, cacheDtype: 'bf16', SG: 32 }, 49152).HP).toBe(64);
    expect(() => planMlaTiled({ H: 32, R: 576, Rv: 512, cacheDtype: 'bf16', SG: 64 }, 49152)).toThrow(/64/);
    expect(tiledSubgroupSize(true, 32, 32)).toBe(32);
    expect(tiledSubgroupSize(true, 32, 64)).toBeUndefined();
    expect(tiledSubgroupSize(false, 32, 32)).toBeUndefined();
    expect(defaultTiledChunks(1 << 20, 1, 1)).toBe(132);
    expect(defaultTiledChunks(100, 1, 1)).toBe(7);
  });

  it('chunks fill the GPU at long context and stay few at short context', () => {
    expect(defaultChunks(1 << 20, 1, 24)).toBe(264);
    expect(defaultChunks(100, 1, 24)).toBe(3);
    expect(defaultChunks(1 << 20, 8, 24)).toBe(33);
  });
});
