/**
 * headGemv's f16Query (headGemv.wgsl.ts f16q): the W_uk absorption writing the int8 f16 MLA kernel's query
 * directly must give the very words that headGemv's f32 y followed by that kernel's query dispatch
 * (int8F16QueryWgsl, int8F16Decode's `query()`) gives: bit for bit, tree and subgroup sums, pass-through columns,
 * padding heads, and the fallbacks (odd N, B > 8). The decode kernel that reads it needs f16 subgroup matrices
 * (the H200's bench decode --check covers the whole step); mlaDecode's ready-query guard is checked here.
 */
import { describe, expect, it } from 'vitest';
import { f16QueryReference, headGemv, headGemvCacheWrite, rmsnormCacheWrite } from '../src/kernels/fused/index.js';
import { headGemvWgsl } from '../src/kernels/fused/headGemv.wgsl.js';
import { normCacheWriteWgsl } from '../src/kernels/fused/normCacheWrite.wgsl.js';
import { int8RowLayout } from '../src/kernels/mla/int8Layout.js';
import { headGemvReference } from '../src/kernels/fused/reference.js';
import { decodeTuning } from '../src/kernels/fused/sweep.js';
import { int8F16QueryDispatch } from '../src/kernels/mla/int8F16Decode.js';
import { mlaDecode, mlaReadyQueryLayout } from '../src/kernels/mla/index.js';
import { contiguous } from '../src/kernels/copy/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { f16BitsToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { gpuContext, hasGpu, lcgUniform as rand } from './helpers.js';
import { pagedCacheTarget } from './paged-cache-target.js';

describe('headGemv f16Query', () => {
  it('on the host: f16 pairs of y * c, padding heads zero (f16QueryReference)', async () => {
    const [B, H, HP, N, K, P] = [2, 3, 32, 6, 8, 2];
    const x = rand(B * H * K, 1);
    const w = rand(H * N * K, 2, 0.3);
    const pt = rand(B * H * 4, 3);
    const c = (1 / Math.sqrt(192)) * Math.LOG2E;
    const qh = headGemv(cpu.fromHost(x, [B, H, K]), cpu.fromHost(w, [H, N, K]), {
      pass: { t: cpu.fromHost(pt, [B, H, 4]), offset: 1, count: P },
      f16Query: { HP, c },
    });
    expect(qh.shape).toEqual([B, HP, (N + P) / 2]);
    const words = new Uint32Array(((await qh.read()) as Int32Array).buffer);
    const y = headGemvReference(x, w, pt, { B, H, N, K, xs: K, xOff: 0, P, ps: 4, ptOff: 1 });
    for (let b = 0; b < B; b++)
      for (let h = 0; h < HP; h++)
        for (let j = 0; j < N + P; j++) {
          const u = words[((b * HP + h) * (N + P) + j) >> 1];
          const got = f16BitsToF32(j & 1 ? u >>> 16 : u & 0xffff);
          const want = h < H ? y[(b * H + h) * (N + P) + j] * c : 0;
          expect(Math.abs(got - want)).toBeLessThanOrEqual(Math.abs(want) * 2 ** -10 + 2 ** -24);
        }
    expect(() => headGemv(cpu.fromHost(x, [B, H, K]), cpu.fromHost(w, [H, N, K]), { f16Query: { HP: 2, c } })).toThrow(
      /HP must be an integer >= H = 3/,
    );
  });

  it.skipIf(!hasGpu)(
    'one dispatch = headGemv then the query dispatch, bit for bit (awkward shapes, tree and subgroup sums, fallbacks)',
    async () => {
      const gpu = (await gpuContext())!;
      const saved = decodeTuning.subgroupSums;
      const c = (1 / Math.sqrt(192)) * Math.LOG2E;
      try {
        // [B, H, HP, N, K, xOff, P, ptOff]: x [B, H, xOff + K + 4] is also the pass-through source (as q is for q_pe).
        // R = N + P: 46 and 138 are odd multiples of 2; N 7 / P 1 and B 9 take the fallback.
        const cases = [
          [1, 1, 32, 8, 8, 0, 0, 0],
          [1, 3, 32, 40, 16, 4, 6, 0],
          [2, 32, 32, 130, 24, 0, 8, 20],
          [1, 3, 64, 24, 64, 8, 22, 2],
          [3, 5, 32, 7, 8, 0, 1, 3],
          [9, 2, 32, 6, 8, 0, 2, 0],
        ];
        for (const sums of [false, true] as const) {
          decodeTuning.subgroupSums = sums;
          for (const [B, H, HP, N, K, xOff, P, ptOff] of cases) {
            const xs = xOff + K + 4 + (P > K + 4 ? P : 0);
            const x = rand(B * H * xs, B * 7 + N, 2);
            const w = rand(H * N * K, K + N, 0.3);
            const xt = gpu.fromHost(x, [B, H, xs]);
            const wt = gpu.fromHost(f32ArrayToBf16(w), [H, N, K], 'bf16');
            const pass = P ? { t: xt, offset: ptOff, count: P } : undefined;
            const y = headGemv(xt, wt, { xOff, pass });
            const want = new Int32Array((await int8F16QueryDispatch(gpu, y, HP, c).read()) as Int32Array);
            const got = headGemv(xt, wt, { xOff, pass, f16Query: { HP, c } });
            expect(got.shape).toEqual([B, HP, (N + P) / 2]);
            expect(got.dtype).toBe('i32');
            const g = (await got.read()) as Int32Array;
            let bad = 0;
            for (let i = 0; i < want.length; i++) if (g[i] !== want[i]) bad++;
            expect(bad, `sums ${sums} B ${B} H ${H} HP ${HP} N ${N} K ${K} P ${P}`).toBe(0);
            // Not vacuous: the heads' words are not all zero, the padding heads' are.
            expect(want.some((v, i) => v !== 0 && Math.floor(i / ((N + P) / 2)) % HP < H)).toBe(true);
            for (let b = 0; b < B; b++)
              for (let h = H; h < HP; h++)
                for (let j = 0; j < (N + P) / 2; j++) expect(g[(b * HP + h) * ((N + P) / 2) + j]).toBe(0);
            // And near f16(y * c) from the f64 reference sums.
            const ref = headGemvReference(x, await wt.toFloat32(), x, { B, H, N, K, xs, xOff, P, ps: xs, ptOff });
            const refWords = new Uint32Array(f16QueryReference(ref, B, H, N + P, HP, c).buffer);
            const gw = new Uint32Array(g.buffer);
            for (let i = 0; i < gw.length; i++)
              for (const sh of [0, 16]) {
                const [a, b] = [f16BitsToF32((gw[i] >>> sh) & 0xffff), f16BitsToF32((refWords[i] >>> sh) & 0xffff)];
                expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.abs(b) * 2 ** -9 + 1e-5);
              }
            for (const t of [xt, wt, y, got]) t.dispose();
          }
        }
      } finally {
        decodeTuning.subgroupSums = saved;
      }
    },
  );

  it.skipIf(!hasGpu)(
    'headGemvCacheWrite: absorption, query and cache write in one dispatch, the same qh and cache bits as the two',
    async () => {
      const gpu = (await gpuContext())!;
      const saved = { ...decodeTuning };
      const c = (1 / Math.sqrt(192)) * Math.LOG2E;
      try {
        // [B, H, N, K, P, r, pass, cache]: the packed projection row holds q (H x (K + P)) then the latent's
        // c_kv (r) and k_pe (pass), as the MLA decode step's norm_gemv leaves it. Three rows to scattered pages.
        // r past 128 and 256: the norm's loops run several rounds (the invocations past 128 must sit out).
        const cases = [
          [1, 3, 8, 8, 4, 32, 8, 'int8'],
          [3, 2, 24, 16, 8, 63, 7, 'int8'],
          [2, 5, 16, 8, 4, 257, 7, 'bf16'],
          [1, 2, 8, 8, 4, 300, 12, 'int8'],
          [1, 1, 8, 8, 0, 65, 3, 'f32'],
        ] as const;
        for (const [sums, rest] of [
          [false, false],
          [true, true],
        ] as const) {
          Object.assign(decodeTuning, { subgroupSums: sums, subgroupSumsRest: rest });
          for (const [B, H, N, K, P, r, pass, dtype] of cases) {
            const off = H * (K + P);
            const ld = off + r + pass + 4;
            const R = r + pass;
            const qkv = gpu.fromHost(rand(B * ld, B + r + N, 3), [B, ld]);
            const q = contiguous(qkv.narrow(1, 0, off)).reshape([B, H, K + P]);
            const w = gpu.fromHost(f32ArrayToBf16(rand(H * N * K, N + K, 0.3)), [H, N, K], 'bf16');
            const nw = gpu.fromHost(f32ArrayToBf16(rand(r, 11, 1.5)), [r], 'bf16');
            const { seq, pos, table, poolOf } = pagedCacheTarget(gpu, B, R, r, dtype, rand);
            const [got, want] = [poolOf(), poolOf()];
            const hopts = { pass: P ? { t: q, offset: K, count: P } : undefined, f16Query: { HP: 32, c } };
            const cw = (pool: Tensor) => ({
              x: qkv,
              off,
              r,
              pass,
              weight: nw,
              eps: 1e-6,
              to: { pool, seq, pos, pageTable: table, Rv: r },
            });
            const before = gpu.dispatchCount;
            const qhGot = headGemvCacheWrite(q, w, hopts, cw(got));
            const what = `sums ${sums} B ${B} H ${H} N ${N} K ${K} P ${P} r ${r} ${dtype}`;
            expect(gpu.dispatchCount - before, what).toBe(1);
            const qhWant = headGemv(q, w, hopts);
            rmsnormCacheWrite(qkv, off, r, pass, nw, 1e-6, cw(want).to);
            expect(Array.from((await qhGot.read()) as Int32Array), what).toEqual(
              Array.from((await qhWant.read()) as Int32Array),
            );
            expect(Array.from(await got.read()), what).toEqual(Array.from(await want.read()));
            // The cache write happened (the pool changed).
            expect(Array.from(await got.read()), what).not.toEqual(Array.from(await poolOf().read()));
          }
        }
      } finally {
        Object.assign(decodeTuning, saved);
      }
    },
  );

  it('the cache write in a 256-invocation workgroup keeps the 128-invocation sums (generated code)', () => {
    const L = int8RowLayout(72, 64);
    const pool = { dtype: 'int8' as const, L };
    const code = headGemvWgsl({ M: 1, wDtype: 'bf16', pass: true, f16q: true, cw: { wDtype: 'bf16', pool } });
    // The norm's loops stride 128 with the invocations past 128 out; the reduction over 256.
    expect(code).toMatch(/for \(var i = lid; lid < 128u && i < p\.c_r; i \+= 128u\)/);
    expect(code).toMatch(/var<workgroup> cred: array<f32, 256>/);
    expect(code).not.toMatch(/\bX\[src/);
    // The standalone kernel is unchanged: 128 invocations, no guard.
    const alone = normCacheWriteWgsl('bf16', pool);
    expect(alone).toMatch(/@workgroup_size\(128\)/);
    expect(alone).toMatch(/for \(var i = lid; i < p\.r; i \+= 128u\)/);
  });

  it.skipIf(!hasGpu)(
    'the one-dispatch kernel at the 48B preset shapes compiles (int8 pool R 576, Rv 512)',
    async () => {
      const gpu = (await gpuContext())!;
      const pool = { dtype: 'int8' as const, L: int8RowLayout(576, 512) };
      for (const sg of [undefined, 32]) {
        if (sg && !gpu.features.subgroups) continue;
        const code = headGemvWgsl({
          M: 1,
          wDtype: 'bf16',
          pass: true,
          f16q: true,
          sg,
          cw: { wDtype: 'bf16', pool, sg },
        });
        const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      }
    },
  );

  it.skipIf(!hasGpu)("mlaDecode takes a ready query only where the int8 cache's f16 kernel runs", async () => {
    const gpu = (await gpuContext())!;
    const o = { H: 3, R: 64, Rv: 48, scale: 0.1 };
    expect(mlaReadyQueryLayout(cpu, { ...o, cacheDtype: 'int8' })).toBeUndefined();
    expect(mlaReadyQueryLayout(gpu, { ...o, cacheDtype: 'bf16' })).toBeUndefined();
    // lavapipe has no f16 subgroup matrices: no ready layout, and a ready query is refused with the reason.
    if (!gpu.features.subgroupMatrixF16) {
      expect(mlaReadyQueryLayout(gpu, { ...o, cacheDtype: 'int8' })).toBeUndefined();
      const qh = gpu.empty([1, 32, 32], 'i32');
      const pool = gpu.empty([1, 16, 64], 'i32');
      const table = gpu.fromHost(Int32Array.of(0), [1, 1], 'i32');
      const len = gpu.fromHost(Int32Array.of(3), [1], 'i32');
      expect(() =>
        mlaDecode({ qh, H: 3 }, pool, table, len, { Rv: 48, scale: 0.1, maxLength: 3, cacheDtype: 'int8' }),
      ).toThrow(/ready query needs the int8 cache's f16 kernel/);
    }
  });
});
