import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import { causalConv1d } from '../src/kernels/conv1d/index.js';
import { add, swiglu } from '../src/kernels/elementwise/index.js';
import {
  addRmsnorm,
  addRmsnormLinear,
  convStep,
  gatedRmsnormLinear,
  moeRoutedDecode,
  moeSharedDecode,
  rmsnormCacheWrite,
  rmsnormConcat,
  routeRanked,
  headGemv,
  swigluLinear,
  swigluRows,
} from '../src/kernels/fused/index.js';
import { decodeTuning } from '../src/kernels/fused/sweep.js';
import { l2PrefetchReference, l2PrefetchTuning } from '../src/kernels/fused/l2Prefetch.js';
import { linear } from '../src/kernels/matmul/index.js';
import { cacheWrite } from '../src/kernels/mla/index.js';
import { matmulReference } from '../src/kernels/matmul/reference.js';
import { expertsInference, route } from '../src/kernels/moe/index.js';
import { moeDecodeTuning } from '../src/kernels/moe/decode.wgsl.js';
import { type RouteSelect, routeFoldTuning } from '../src/kernels/fused/routeFold.wgsl.js';
import { normGemvTuning } from '../src/kernels/fused/normGemv.wgsl.js';
import { gatedNormGemvTuning } from '../src/kernels/fused/gatedNormGemv.wgsl.js';
import { routeTailTuning, routeTailWords } from '../src/kernels/fused/routeTail.wgsl.js';
import { routeReference } from '../src/kernels/moe/reference.js';
import {
  addRmsnormReference,
  convStepReference,
  gatedRmsnormLinearReference,
  headGemvReference,
  normConcatReference,
  swigluRowsReference,
} from '../src/kernels/fused/reference.js';
import { rmsnorm } from '../src/kernels/rmsnorm/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { AWKWARD, expectClose, gpuContext, hasGpu, ROUTER_BASE, lcgUniform as rand } from './helpers.js';
import { pagedCacheTarget } from './paged-cache-target.js';

/** Tuning variants other than the defaults: compiled on lavapipe only with KIMI_SLOW_TESTS=1. */
const slowVariants = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';

/**
 * A weight of dtype wd for the GPU (t) and as the kernel reads it (host: rounded to bf16 for 'bf16', what the
 * reference must take): one definition for every fused op's f32 / bf16 weight cases.
 */
async function weightOf(gpu: GpuContext, w: Float32Array, shape: number[], wd: 'f32' | 'bf16') {
  if (wd === 'f32') return { host: w, t: gpu.fromHost(w, shape) };
  const host = (await cpu.fromHost(f32ArrayToBf16(w), shape, 'bf16').toFloat32()) as Float32Array;
  return { host, t: gpu.fromHost(f32ArrayToBf16(w), shape, 'bf16') };
}

/**
 * Weight dtypes of a fused GEMV case. Each (baked shape, weight dtype) is a lavapipe compile, so where a kernel
 * bakes the shape in (row length, heads, rows) the dtypes are covered as variant x shape: every shape in bf16 (the
 * checkpoints' dtype, what decode runs) and f32 on the cases marked `both` (at least one per kernel and option).
 * Fallback cases (other kernels) keep both.
 */
function weightDtypes(both: boolean): ('f32' | 'bf16')[] {
  return both ? ['f32', 'bf16'] : ['bf16'];
}

describe('fused references equal the unfused ops they replace (cpu)', () => {
  it('addRmsnorm = add (+ add) then rmsnorm', () => {
    const [rows, D] = [3, 65];
    const [x, d0, d1, w] = [rand(rows * D, 1), rand(rows * D, 2), rand(rows * D, 3), rand(D, 4)];
    const t = (a: Float32Array, s: number[]) => cpu.fromHost(a, s);
    for (const deltas of [[d0], [d0, d1]]) {
      const r = addRmsnormReference(x, deltas, w, rows, D, 1e-5);
      const moe = deltas.length === 2 ? add(t(d0, [rows, D]), t(d1, [rows, D])) : t(d0, [rows, D]);
      const y = add(t(x, [rows, D]), moe);
      expectClose(r.sum, cpu.view(y) as Float32Array, 0);
      expectClose(r.normed, cpu.view(rmsnorm(y, t(w, [D]), 1e-5)) as Float32Array, 1e-6);
    }
  });

  it('convStep = causalConv1d of one token with state and returnState, q/k/v planes', () => {
    const [B, Cp, planes, W] = [2, 7, 3, 4];
    const C = Cp * planes;
    const ld = C + 5;
    const xOff = 2;
    const x = rand(B * ld, 5);
    const w = rand(C * W, 6);
    const tail = rand(B * (W - 1) * C, 7);
    const xs = new Float32Array(B * C);
    for (let b = 0; b < B; b++) xs.set(x.subarray(b * ld + xOff, b * ld + xOff + C), b * C);
    const ref = causalConv1d(cpu.fromHost(xs, [B, 1, C]), cpu.fromHost(w, [C, 1, W]), {
      state: cpu.fromHost(tail.slice(), [B, W - 1, C]),
      activation: 'silu',
      returnState: true,
    });
    const t2 = tail.slice();
    const y = convStepReference(x, w, t2, { B, C, W, ld, xOff, planes }, 'silu');
    const yRef = cpu.view(ref.y) as Float32Array;
    // y is [planes, B, Cp]; the unfused output is [B, 1, C].
    const planar = new Float32Array(B * C);
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++) planar[(Math.floor(c / Cp) * B + b) * Cp + (c % Cp)] = yRef[b * C + c];
    expectClose(y, planar, 0);
    expectClose(t2, cpu.view(ref.state!) as Float32Array, 0);
  });

  it('swigluRows = swiglu of the two column ranges', () => {
    const [rows, I] = [3, 9];
    const ld = 2 * I + 4;
    const x = rand(rows * ld, 8, 3);
    const g = new Float32Array(rows * I);
    const u = new Float32Array(rows * I);
    for (let b = 0; b < rows; b++) {
      g.set(x.subarray(b * ld + 4, b * ld + 4 + I), b * I);
      u.set(x.subarray(b * ld + 4 + I, b * ld + 4 + 2 * I), b * I);
    }
    const ref = swiglu(cpu.fromHost(g, [rows, I]), cpu.fromHost(u, [rows, I]));
    expectClose(swigluRowsReference(x, rows, ld, 4, 4 + I, I), cpu.view(ref) as Float32Array, 1e-7);
  });
});

describe.skipIf(!hasGpu)('fused kernels on WebGPU match their references (awkward shapes)', () => {
  it('addRmsnorm, one and two deltas, f32 and bf16 weight', async () => {
    const gpu = (await gpuContext())!;
    for (const D of AWKWARD) {
      for (const rows of [1, 3]) {
        const [x, d0, d1, w] = [rand(rows * D, D), rand(rows * D, D + 1), rand(rows * D, D + 2), rand(D, D + 3)];
        for (const deltas of [[d0], [d0, d1]]) {
          for (const wd of ['f32', 'bf16'] as const) {
            const { host: wHost, t: wt } = await weightOf(gpu, w, [D], wd);
            const ref = addRmsnormReference(x, deltas, wHost, rows, D, 1e-5);
            const r = addRmsnorm(
              gpu.fromHost(x, [rows, D]),
              deltas.map((d) => gpu.fromHost(d, [rows, D])),
              wt,
              1e-5,
            );
            expectClose(await r.sum.toFloat32(), ref.sum, 1e-6, `sum D=${D}`);
            expectClose(await r.normed.toFloat32(), ref.normed, 1e-5, `normed D=${D} ${wd}`);
          }
        }
      }
    }
  });

  it('convStep: output planes and the tail shifted in place, over two steps', async () => {
    const gpu = (await gpuContext())!;
    for (const [B, Cp, planes, W] of [
      [1, 1, 1, 2],
      [1, 7, 3, 4],
      [3, 63, 3, 4],
      [2, 65, 1, 3],
      [1, 1000, 3, 4],
    ]) {
      const C = Cp * planes;
      const ld = C + 3;
      const xOff = 1;
      const w = rand(C * W, C);
      const tailHost = rand(B * (W - 1) * C, C + 1);
      const tail = gpu.fromHost(tailHost.slice(), [B, W - 1, C]);
      const { host: wHost, t: wt } = await weightOf(gpu, w, [C, 1, W], 'bf16');
      for (let step = 0; step < 2; step++) {
        const x = rand(B * ld, C + 2 + step);
        const ref = convStepReference(x, wHost, tailHost, { B, C, W, ld, xOff, planes }, 'silu');
        const y = convStep(gpu.fromHost(x, [B, ld]), wt, tail, { xOff, planes });
        expect(y.shape).toEqual([planes, B, Cp]);
        expectClose(await y.toFloat32(), ref, 1e-5, `y B=${B} C=${C} step ${step}`);
        expectClose(await tail.toFloat32(), tailHost, 0, `tail B=${B} C=${C} step ${step}`);
      }
    }
  });

  it('swigluRows', async () => {
    const gpu = (await gpuContext())!;
    for (const I of AWKWARD) {
      const rows = 2;
      const ld = 2 * I + 5;
      const x = rand(rows * ld, I, 4);
      const y = swigluRows(gpu.fromHost(x, [rows, ld]), 5 + I, 5, I);
      expectClose(await y.toFloat32(), swigluRowsReference(x, rows, ld, 5 + I, 5, I), 1e-5, `I=${I}`);
    }
  });

  it('swigluLinear: the one-GEMV path (<= 8 rows, aligned) and the fallback, f32 and bf16 weights', async () => {
    const gpu = (await gpuContext())!;
    // The last column: f32 weights too (the 3-row GEMV in bf16 only; one row in both).
    for (const [rows, I, N, gate, up, both] of [
      [1, 8, 1, 0, 8, 1],
      [1, 64, 63, 8, 72, 1],
      [3, 1000, 65, 1000, 0, 0],
      [9, 16, 7, 4, 20, 1],
      [3, 63, 7, 1, 64, 1],
    ]) {
      const ld = Math.max(gate, up) + I + 4;
      const x = rand(rows * ld, I + N, 2);
      const w = rand(N * I, I * N + 1, 0.2);
      for (const wd of weightDtypes(!!both)) {
        const { host: wHost, t: wt } = await weightOf(gpu, w, [N, I], wd);
        const h = swigluRowsReference(x, rows, ld, gate, up, I);
        const ref = matmulReference(h, wHost, {
          batch: 1,
          M: rows,
          N,
          K: I,
          transA: false,
          transB: true,
          batchStrideB: 0,
        });
        const y = swigluLinear(gpu.fromHost(x, [rows, ld]), gate, up, wt);
        expect(y.shape).toEqual([rows, N]);
        expectClose(await y.toFloat32(), ref, 1e-5, `rows ${rows} I ${I} N ${N} ${wd}`);
      }
    }
  });

  it('headGemv: per-head GEMV with pass-through columns, the one-dispatch path and the fallback', async () => {
    const gpu = (await gpuContext())!;
    // [B, H, N, K, xs, xOff, P, ptOff, both]; the last two need the fallback (K % 8, B > 8). f32 weights on the
    // one-row kernel with pass-through columns and the fallbacks.
    for (const [B, H, N, K, xs, xOff, P, ptOff, both] of [
      [1, 1, 1, 8, 8, 0, 0, 0, 0],
      [1, 4, 65, 16, 24, 0, 8, 16, 1],
      [3, 7, 63, 64, 72, 4, 1, 1, 0],
      [1, 3, 7, 63, 65, 1, 2, 63, 1],
      [9, 2, 5, 8, 8, 0, 0, 0, 1],
    ]) {
      const x = rand(B * H * xs, B + H + N);
      const w = rand(H * N * K, K + N, 0.3);
      for (const wd of weightDtypes(!!both)) {
        const { host: wHost, t: wt } = await weightOf(gpu, w, [H, N, K], wd);
        const xt = gpu.fromHost(x, [B, H, xs]);
        const ref = headGemvReference(x, wHost, x, { B, H, N, K, xs, xOff, P, ps: xs, ptOff });
        const y = headGemv(xt, wt, { xOff, pass: P ? { t: xt, offset: ptOff, count: P } : undefined });
        expect(y.shape).toEqual([B, H, N + P]);
        expectClose(await y.toFloat32(), ref, 1e-5, `B ${B} H ${H} N ${N} K ${K} ${wd}`);
      }
    }
  });

  it('addRmsnormLinear: one dispatch for a row (one and two deltas), the fallback for more rows or odd widths', async () => {
    const gpu = (await gpuContext())!;
    // [rows, D, N, deltas, both]: f32 weights too at D = 8 (one delta) and 64 (two), and on the fallbacks.
    for (const [rows, D, N, nd, both] of [
      [1, 8, 1, 1, 1],
      [1, 64, 65, 2, 1],
      [1, 1000, 63, 1, 0],
      [2, 64, 7, 2, 1],
      [1, 63, 7, 1, 1],
    ]) {
      const [x, d0, d1, g] = [rand(rows * D, D), rand(rows * D, D + 1), rand(rows * D, D + 2), rand(D, D + 3)];
      const deltas = nd === 2 ? [d0, d1] : [d0];
      const w = rand(N * D, N + D, 0.3);
      for (const wd of weightDtypes(!!both)) {
        const { host: wHost, t: wt } = await weightOf(gpu, w, [N, D], wd);
        const ref = addRmsnormReference(x, deltas, g, rows, D, 1e-5);
        const yRef = matmulReference(ref.normed, wHost, {
          batch: 1,
          M: rows,
          N,
          K: D,
          transA: false,
          transB: true,
          batchStrideB: 0,
        });
        const keepNormed = wd === 'bf16';
        const r = addRmsnormLinear(
          gpu.fromHost(x, [rows, D]),
          deltas.map((d) => gpu.fromHost(d, [rows, D])),
          gpu.fromHost(g, [D]),
          1e-5,
          wt,
          { keepNormed },
        );
        expectClose(await r.sum.toFloat32(), ref.sum, 1e-6, `sum rows ${rows} D ${D}`);
        expect(!!r.normed).toBe(keepNormed);
        if (r.normed) expectClose(await r.normed.toFloat32(), ref.normed, 1e-5, `normed rows ${rows} D ${D}`);
        expectClose(await r.y.toFloat32(), yRef, 1e-5, `y rows ${rows} D ${D} N ${N} ${wd}`);
      }
    }
  });

  it('addRmsnormLinear with the KDA conv: y, the conv of outputs 0..C-1 and the shifted tail equal the reference', async () => {
    const gpu = (await gpuContext())!;
    // [rows, D, N, planes, Cp, W]: fused (one row) with C < N, C = N, odd plane widths, W 2 and 4; the
    // fallback for two rows (separate GEMV + convStep).
    for (const [rows, D, N, planes, Cp, W] of [
      [1, 64, 65, 3, 7, 4],
      [1, 64, 21, 3, 7, 4],
      [1, 64, 63, 1, 63, 2],
      [1, 64, 1, 1, 1, 4],
      [2, 64, 22, 3, 7, 4],
    ]) {
      const C = planes * Cp;
      const [x, d0, g] = [rand(rows * D, D), rand(rows * D, D + 1), rand(D, D + 3)];
      const w = rand(N * D, N + D, 0.3);
      const cw = rand(C * W, C + W, 0.5);
      const tail0 = rand(rows * (W - 1) * C, C + 7);
      for (const wd of ['f32', 'bf16'] as const) {
        const { host: wHost, t: wt } = await weightOf(gpu, w, [N, D], wd);
        const { host: cwHost, t: cwt } = await weightOf(gpu, cw, [C, 1, W], wd);
        const ref = addRmsnormReference(x, [d0], g, rows, D, 1e-5);
        const yRef = matmulReference(ref.normed, wHost, {
          batch: 1,
          M: rows,
          N,
          K: D,
          transA: false,
          transB: true,
          batchStrideB: 0,
        });
        const tailRef = tail0.slice();
        const convRef = convStepReference(yRef, cwHost, tailRef, { B: rows, C, W, ld: N, xOff: 0, planes }, 'silu');
        const tail = gpu.fromHost(tail0, [rows, W - 1, C]);
        const r = addRmsnormLinear(
          gpu.fromHost(x, [rows, D]),
          [gpu.fromHost(d0, [rows, D])],
          gpu.fromHost(g, [D]),
          1e-5,
          wt,
          { conv: { weight: cwt, tail, planes } },
        );
        const what = `rows ${rows} D ${D} N ${N} C ${planes}x${Cp} W ${W} ${wd}`;
        expectClose(await r.y.toFloat32(), yRef, 1e-5, `y ${what}`);
        expect(r.conv!.shape).toEqual([planes, rows, Cp]);
        expectClose(await r.conv!.toFloat32(), convRef, 1e-5, `conv ${what}`);
        expectClose(await tail.toFloat32(), tailRef, 1e-5, `tail ${what}`);
      }
    }
  });

  // Not the default (8 rows): with KIMI_SLOW_TESTS=1 only, to keep the suite's lavapipe compiles down.
  it.skipIf(slowVariants)(
    'addRmsnormLinear (with and without the KDA conv) at 16 and 32 rows a workgroup = the cpu ops',
    async () => {
      const gpu = (await gpuContext())!;
      const [D, N, planes, Cp, W] = [64, 65, 3, 7, 4];
      const C = planes * Cp;
      // The same inputs on a device (against the cpu ops, not the 8-row kernels: fewer lavapipe compiles).
      const run = async (d: Device, conv: boolean) => {
        const bf = (a: Float32Array, shape: number[]) => d.fromHost(f32ArrayToBf16(a), shape, 'bf16');
        const tail = d.fromHost(rand((W - 1) * C, 6), [1, W - 1, C]);
        const cv = { weight: bf(rand(C * W, 5, 0.5), [C, 1, W]), tail, planes };
        const r = addRmsnormLinear(
          d.fromHost(rand(D, 1), [1, D]),
          [d.fromHost(rand(D, 2), [1, D])],
          d.fromHost(rand(D, 3), [D]),
          1e-5,
          bf(rand(N * D, 4, 0.3), [N, D]),
          conv ? { conv: cv } : {},
        );
        const outs = [r.y, r.sum, ...(conv ? [r.conv!, tail] : [])];
        return Promise.all(outs.map((t) => t.toFloat32() as Promise<Float32Array>));
      };
      for (const conv of [false, true]) {
        const want = await run(cpu, conv);
        // 16 rows without the conv, 32 (1024 invocations) with it.
        normGemvTuning.rows = conv ? 32 : 16;
        let got: Float32Array[];
        try {
          got = await run(gpu, conv);
        } finally {
          normGemvTuning.rows = undefined;
        }
        for (let i = 0; i < got.length; i++) expectClose(got[i], want[i], 1e-5, `conv ${conv} output ${i}`);
      }
    },
  );

  it('gatedRmsnormLinear: one dispatch for a row (per-head norm, sigmoid gate, GEMV), the fallback otherwise', async () => {
    const gpu = (await gpuContext())!;
    // [rows, H, d, N, both]: the fused path (rows 1, d % 4 == 0, H | 256) and fallbacks (2 rows; d = 6; H = 3);
    // f32 weights too at 4 heads of 16 and on the fallbacks.
    for (const [rows, H, d, N, both] of [
      [1, 4, 16, 1, 1],
      [1, 4, 16, 65, 1],
      [1, 1, 8, 7, 0],
      [1, 2, 64, 63, 0],
      [2, 4, 16, 7, 1],
      [1, 4, 6, 7, 1],
      [1, 3, 8, 1000, 1],
    ]) {
      const K = H * d;
      const [o, gate, nw] = [rand(rows * K, K, 2), rand(rows * K, K + 1, 3), rand(d, K + 2)];
      const w = rand(N * K, N + K, 0.3);
      for (const wd of weightDtypes(!!both)) {
        if (wd === 'bf16' && K % 2) continue;
        const { host: wHost, t: wt } = await weightOf(gpu, w, [N, K], wd);
        const ref = gatedRmsnormLinearReference(o, gate, nw, wHost, { rows, H, d, N, eps: 1e-5 });
        const [oG, gG, nG] = [gpu.fromHost(o, [rows, K]), gpu.fromHost(gate, [rows, K]), gpu.fromHost(nw, [d])];
        const before = gpu.bindGroups.hits + gpu.bindGroups.misses;
        const y = gatedRmsnormLinear(oG, gG, nG, 1e-5, wt, H);
        const fused = rows === 1 && d % 4 === 0 && 256 % H === 0;
        if (fused) expect(gpu.bindGroups.hits + gpu.bindGroups.misses - before, 'one dispatch').toBe(1);
        expect(y.shape).toEqual([rows, N]);
        expectClose(await y.toFloat32(), ref, 1e-5, `rows ${rows} H ${H} d ${d} N ${N} ${wd}`);
        // The cpu backend (the unfused ops) agrees with the reference too.
        const yc = gatedRmsnormLinear(
          cpu.fromHost(o, [rows, K]),
          cpu.fromHost(gate, [rows, K]),
          cpu.fromHost(nw, [d]),
          1e-5,
          cpu.fromHost(wHost, [N, K]),
          H,
        );
        expectClose(await yc.toFloat32(), ref, 1e-5, `cpu rows ${rows} H ${H} d ${d} N ${N} ${wd}`);
      }
    }
  });

  it('rmsnormConcat: normed column range with pass-through columns appended, read at any offset', async () => {
    const gpu = (await gpuContext())!;
    // [B, ld, off, r, pass]
    for (const [B, ld, off, r, pass] of [
      [1, 1, 0, 1, 0],
      [1, 80, 7, 65, 8],
      [2, 200, 63, 63, 7],
      [3, 1000, 1, 512, 64],
    ]) {
      const x = rand(B * ld, ld + off, 2);
      const w = rand(r, r + 1);
      const ref = normConcatReference(x, w, { B, ld, off, r, pass, eps: 1e-6 });
      for (const wd of ['f32', 'bf16'] as const) {
        const { host: wHost, t: wt } = await weightOf(gpu, w, [r], wd);
        const want = wd === 'bf16' ? normConcatReference(x, wHost, { B, ld, off, r, pass, eps: 1e-6 }) : ref;
        const y = rmsnormConcat(gpu.fromHost(x, [B, ld]), off, r, pass, wt, 1e-6);
        expect(y.shape).toEqual([B, r + pass]);
        expectClose(await y.toFloat32(), want, 1e-6, `B ${B} ld ${ld} off ${off} r ${r} pass ${pass} ${wd}`);
      }
      // The reference is the unfused ops: rmsnorm of the copied range, then the concat.
      const xt = cpu.fromHost(x, [B, ld]);
      const normed = await rmsnorm(xt.narrow(1, off, r), cpu.fromHost(w, [r]), 1e-6).toFloat32();
      for (let b = 0; b < B; b++)
        expectClose(ref.subarray(b * (r + pass), b * (r + pass) + r), normed.subarray(b * r, (b + 1) * r), 1e-6, 'cpu');
    }
  });
});

describe.skipIf(!hasGpu)('decode GEMV sweeps unrolled (sweep.ts) equal the plain loops', () => {
  it('linear, addRmsnormLinear, gatedRmsnormLinear, swigluLinear and the MoE decode kernels at unroll 4 and 1', async () => {
    const gpu = (await gpuContext())!;
    // Rows long enough that the unrolled body runs (8 bf16 per chunk, 32 lanes: 2104 = 263 chunks, two
    // bodies of 4 x 32 chunks and a remainder of 7) and awkward row counts.
    const [K, N, H, d, E, I] = [2104, 7, 4, 528, 5, 1032];
    const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
    const x = gpu.fromHost(rand(K, 1), [1, K]);
    const d0 = gpu.fromHost(rand(K, 2), [1, K]);
    const nw = gpu.fromHost(rand(K, 3), [K]);
    const w = bf(rand(N * K, 4, 0.3), [N, K]);
    const o = gpu.fromHost(rand(H * d, 5), [1, H * d]);
    const gate = gpu.fromHost(rand(H * d, 6), [1, H * d]);
    const onw = gpu.fromHost(rand(d, 7), [d]);
    const wo = bf(rand(N * H * d, 8, 0.3), [N, H * d]);
    const gu = gpu.fromHost(rand(2 * K + 8, 9), [1, 2 * K + 8]);
    const experts = {
      w1: bf(rand(E * I * K, 10, 0.2), [E, I, K]),
      w3: bf(rand(E * I * K, 11, 0.2), [E, I, K]),
      w2: bf(rand(E * K * I, 12, 0.2), [E, K, I]),
    };
    const routes = {
      idx: gpu.fromHost(Int32Array.from([3, 0, 4]), [1, 3], 'i32'),
      weights: gpu.fromHost(Float32Array.from([0.5, 0.3, 0.2]), [1, 3]),
    };
    const run = async (unroll: number) => {
      const saved = decodeTuning.unroll;
      decodeTuning.unroll = unroll;
      try {
        return [
          await linear(x, w).toFloat32(),
          await addRmsnormLinear(x, [d0], nw, 1e-5, w).y.toFloat32(),
          await gatedRmsnormLinear(o, gate, onw, 1e-5, wo, H).toFloat32(),
          await swigluLinear(gu, 0, K + 8, w).toFloat32(),
          await expertsInference(x, routes as never, experts).toFloat32(),
        ];
      } finally {
        decodeTuning.unroll = saved;
      }
    };
    const plain = await run(1);
    for (const u of [4]) {
      const got = await run(u);
      const names = ['linear', 'addRmsnormLinear', 'gatedRmsnormLinear', 'swigluLinear', 'expertsInference'];
      for (let i = 0; i < names.length; i++) expectClose(got[i], plain[i], 1e-5, `${names[i]} unroll ${u}`);
    }
  });
});

describe.skipIf(!hasGpu)('routeRanked (one-pass router) equals route()', () => {
  it('the same experts in the same order and the same weights, with ties, bias, awkward E; grouped falls back', async () => {
    const gpu = (await gpuContext())!;
    for (const [N, E, k, withBias, groups] of [
      [1, 256, 8, true, 1],
      [3, 65, 2, false, 1],
      [2, 64, 4, true, 4],
    ] as const) {
      // Logits on a coarse grid, so equal choices (ties) occur and must go to the lower index.
      const logits = Float32Array.from(rand(N * E, E + k), (v) => Math.round(v * 4) / 4);
      const bias = withBias ? Float32Array.from(rand(E, E), (v) => Math.round(v * 2) / 8) : undefined;
      const cfg = {
        numExperts: E,
        topK: k,
        activation: 'sigmoid' as const,
        renormalize: true,
        scaling: 2.5,
        numGroups: groups,
        topkGroup: groups > 1 ? 2 : 1,
      };
      const lt = gpu.fromHost(logits, [N, E]);
      const bt = bias ? gpu.fromHost(bias, [E]) : undefined;
      const want = route(lt, bt, cfg);
      const got = routeRanked(lt, bt, cfg);
      const what = `N ${N} E ${E} k ${k}${withBias ? ' bias' : ''} groups ${groups}`;
      expect(Array.from((await got.idx.read()) as Int32Array), what).toEqual(
        Array.from((await want.idx.read()) as Int32Array),
      );
      expect(Array.from(await got.weights.toFloat32()), what).toEqual(Array.from(await want.weights.toFloat32()));
      const ref = routeReference(logits, bias, N, cfg);
      expect(Array.from((await got.idx.read()) as Int32Array), `${what} vs reference`).toEqual(Array.from(ref.idx));
    }
  });
});

describe.skipIf(!hasGpu)('addRmsnormLinear with the route (routeTail.wgsl.ts: the last router workgroup ranks)', () => {
  it('the same y as without it and the routes of routeRanked on its logits, exactly; the scratch left zero', async () => {
    const gpu = (await gpuContext())!;
    const saved = routeTailTuning.select;
    // [E, k, bias, col, D, extra rows, select]: the 48B's E and k at column 0 (32 router workgroups of 8 rows);
    // an E that is no power of two at an unaligned column (rows 7..71: 9 router workgroups, the first and last
    // shared with other rows), k = 3; k = E = 7 inside one workgroup; the opt-in selections (counted ranks,
    // merged lists) on the 48B case with KIMI_SLOW_TESTS=1.
    const cases = [
      [256, 8, true, 0, 64, 29, 'sort'],
      [65, 3, false, 7, 40, 63, 'sort'],
      [7, 7, true, 1, 8, 1, 'sort'],
      ...(slowVariants
        ? []
        : ([
            [256, 8, true, 0, 64, 29, 'count'],
            [256, 8, true, 0, 64, 29, 'merge'],
          ] as const)),
    ] as const;
    try {
      const scratch = gpu.zeros([routeTailWords(256)], 'i32');
      for (const [E, k, withBias, col, D, extra, select] of cases) {
        routeTailTuning.select = select;
        const N = col + E + extra;
        const w = rand(N * D, N + D, 0.3);
        // Router rows 2j + 1 copy rows 2j for j < 4: equal logits, so ties (the lower index first) are ranked too.
        for (let j = 0; j < Math.min(4, E >> 1); j++)
          w.copyWithin((col + 2 * j + 1) * D, (col + 2 * j) * D, (col + 2 * j + 1) * D);
        const wt = gpu.fromHost(f32ArrayToBf16(w), [N, D], 'bf16');
        const [x, d0, g] = [rand(D, D), rand(D, D + 1), rand(D, D + 3)];
        const bias = withBias
          ? gpu.fromHost(
              Float32Array.from(rand(E, E), (v) => Math.round(v * 2) / 64),
              [E],
            )
          : undefined;
        const cfg = { ...ROUTER_BASE, numExperts: E, topK: k, scaling: 2.5 };
        const what = `E ${E} k ${k}${withBias ? ' bias' : ''} col ${col} D ${D} N ${N} ${select}`;
        const run = (route: boolean) =>
          addRmsnormLinear(gpu.fromHost(x, [1, D]), [gpu.fromHost(d0, [1, D])], gpu.fromHost(g, [D]), 1e-5, wt, {
            keepNormed: true,
            route: route ? { col, bias, cfg, scratch } : undefined,
          });
        const plain = run(false);
        const yPlain = await plain.y.toFloat32();
        const want = routeRanked(plain.y.narrow(1, col, E), bias, cfg);
        const wantIdx = Array.from((await want.idx.read()) as Int32Array);
        const wantW = Array.from(await want.weights.toFloat32());
        const ref = routeReference(
          yPlain.slice(col, col + E),
          withBias ? ((await bias!.toFloat32()) as Float32Array) : undefined,
          1,
          cfg,
        );
        expect(wantIdx, `${what}: routeRanked vs reference`).toEqual(Array.from(ref.idx));
        // Twice with the same scratch: the first dispatch must leave it as it found it (zero).
        for (let rep = 0; rep < 2; rep++) {
          const r = run(true);
          expect(r.routes, what).toBeDefined();
          expectClose(await r.y.toFloat32(), yPlain, 0, `${what}: y`);
          expectClose(await r.normed!.toFloat32(), await plain.normed!.toFloat32(), 0, `${what}: normed`);
          expect(Array.from((await r.routes!.idx.read()) as Int32Array), `${what} rep ${rep}`).toEqual(wantIdx);
          expect(Array.from(await r.routes!.weights.toFloat32()), `${what} rep ${rep}`).toEqual(wantW);
          expect(
            Array.from((await scratch.read()) as Int32Array).every((v) => v === 0),
            `${what}: scratch zero`,
          ).toBe(true);
        }
      }
      // Where the route does not apply (grouped routing) the projection runs alone and no routes come back.
      const wt = gpu.fromHost(rand(16 * 8, 3), [16, 8]);
      const r = addRmsnormLinear(
        gpu.fromHost(rand(8, 1), [1, 8]),
        [gpu.fromHost(rand(8, 2), [1, 8])],
        gpu.fromHost(rand(8, 4), [8]),
        1e-5,
        wt,
        {
          route: { col: 0, cfg: { ...ROUTER_BASE, numExperts: 8, topK: 2, numGroups: 4, topkGroup: 2 }, scratch },
        },
      );
      expect(r.routes).toBeUndefined();
    } finally {
      routeTailTuning.select = saved;
    }
  });
});

/**
 * normGemvTuning.lanes / gatedNormGemvTuning.lanes: the norm GEMVs with 64 or 16 lanes a row (the workgroups keep
 * their invocations: 4 or 16 rows, 8 or 32 with the conv) against the cpu ops and references; rows of K longer than
 * a round of lanes with a partial round, N not a multiple of the rows; the route tail's router workgroups (rows of 4)
 * rank exactly the logits the kernel wrote.
 */
describe.skipIf(!hasGpu)('norm GEMVs at other lane counts a row', () => {
  const bfOn = (d: Device) => (a: Float32Array, shape: number[]) => d.fromHost(f32ArrayToBf16(a), shape, 'bf16');
  async function withLanes<T>(
    lanes: { plain?: number; conv?: number; route?: number; gated?: number },
    body: () => Promise<T>,
  ) {
    const saved = { n: normGemvTuning.lanes, g: gatedNormGemvTuning.lanes };
    normGemvTuning.lanes = { plain: lanes.plain, conv: lanes.conv, route: lanes.route };
    gatedNormGemvTuning.lanes = lanes.gated;
    try {
      return await body();
    } finally {
      normGemvTuning.lanes = saved.n;
      gatedNormGemvTuning.lanes = saved.g;
    }
  }

  it('addRmsnormLinear (plain and with the KDA conv) at 64 and 16 lanes = the cpu ops', async () => {
    const gpu = (await gpuContext())!;
    const [planes, Cp, W] = [3, 7, 4];
    const C = planes * Cp;
    // [D, N, conv]: D = 1032 is 129 bf16 chunks (64 lanes: two rounds and one chunk), N = 65 rows.
    const run = async (d: Device, D: number, N: number, conv: boolean) => {
      const bf = bfOn(d);
      const tail = d.fromHost(rand((W - 1) * C, 6), [1, W - 1, C]);
      const cv = { weight: bf(rand(C * W, 5, 0.5), [C, 1, W]), tail, planes };
      const r = addRmsnormLinear(
        d.fromHost(rand(D, 1), [1, D]),
        [d.fromHost(rand(D, 2), [1, D])],
        d.fromHost(rand(D, 3), [D]),
        1e-5,
        bf(rand(N * D, 4, 0.3), [N, D]),
        conv ? { conv: cv } : {},
      );
      const outs = [r.y, r.sum, ...(conv ? [r.conv!, tail] : [])];
      return Promise.all(outs.map((t) => t.toFloat32() as Promise<Float32Array>));
    };
    for (const [D, N, conv, lanes] of [
      [1032, 65, false, 64],
      [1032, 65, false, 16],
      [64, 65, true, 64],
    ] as const) {
      const want = await run(cpu, D, N, conv);
      const got = await withLanes({ plain: lanes, conv: lanes }, () => run(gpu, D, N, conv));
      for (let i = 0; i < got.length; i++)
        expectClose(got[i], want[i], 1e-5, `D ${D} N ${N} conv ${conv} lanes ${lanes} output ${i}`);
    }
    // The kernels ran at those lanes (the key's _l suffix), the conv one with 8 rows of 64 (no _r: the default 8).
    const keys = gpu.pipelines.keys().filter((key) => key.startsWith('norm_gemv'));
    for (const tag of ['_l64', '_l16', '_conv4bf16'])
      expect(
        keys.some((key) => key.includes(tag)),
        tag,
      ).toBe(true);
    expect(keys.some((key) => key.includes('_conv4bf16') && !key.includes('_r') && key.endsWith('_l64'))).toBe(true);
  });

  it('addRmsnormLinear with the route at 64 lanes: y as without the route, the routes of routeRanked on it', async () => {
    const gpu = (await gpuContext())!;
    const scratch = gpu.zeros([routeTailWords(256)], 'i32');
    // [E, k, col, D, extra rows]: the 48B's E and k at column 0 (64 router workgroups of 4 rows), an E that is no
    // power of two at an unaligned column.
    for (const [E, k, col, D, extra] of [
      [256, 8, 0, 64, 29],
      [65, 3, 7, 1032, 63],
    ] as const) {
      const N = col + E + extra;
      const wt = bfOn(gpu)(rand(N * D, N + D, 0.3), [N, D]);
      const [x, d0, g] = [rand(D, D), rand(D, D + 1), rand(D, D + 3)];
      const cfg = { ...ROUTER_BASE, numExperts: E, topK: k, scaling: 2.5 };
      const run = (route: boolean) =>
        addRmsnormLinear(gpu.fromHost(x, [1, D]), [gpu.fromHost(d0, [1, D])], gpu.fromHost(g, [D]), 1e-5, wt, {
          route: route ? { col, cfg, scratch } : undefined,
        });
      const what = `E ${E} k ${k} col ${col} D ${D} N ${N}`;
      await withLanes({ plain: 64, route: 64 }, async () => {
        const plain = run(false);
        const yPlain = await plain.y.toFloat32();
        const want = routeRanked(plain.y.narrow(1, col, E), undefined, cfg);
        const r = run(true);
        expect(r.routes, what).toBeDefined();
        expectClose(await r.y.toFloat32(), yPlain, 0, `${what}: y`);
        expect(Array.from((await r.routes!.idx.read()) as Int32Array), what).toEqual(
          Array.from((await want.idx.read()) as Int32Array),
        );
        expect(Array.from(await r.routes!.weights.toFloat32()), what).toEqual(
          Array.from(await want.weights.toFloat32()),
        );
        expect(
          Array.from((await scratch.read()) as Int32Array).every((v) => v === 0),
          `${what}: scratch zero`,
        ).toBe(true);
      });
      // And the 64-lane projection agrees with the 32-lane one within rounding.
      expectClose(
        await withLanes({ plain: 64 }, () => run(false).y.toFloat32()),
        await run(false).y.toFloat32(),
        1e-5,
        `${what}: 64 vs 32 lanes`,
      );
    }
  });

  it('gatedRmsnormLinear at 64 and 16 lanes = the reference', async () => {
    const gpu = (await gpuContext())!;
    // [H, d, N, lanes]: K = 1040 (130 bf16 chunks: two rounds of 64 and two chunks), K = 256 in 32 heads.
    for (const [H, d, N, lanes] of [
      [2, 520, 7, 64],
      [32, 8, 63, 64],
      [4, 16, 65, 16],
    ] as const) {
      const K = H * d;
      const [o, gate, nw] = [rand(K, K, 2), rand(K, K + 1, 3), rand(d, K + 2)];
      const { host: wHost, t: wt } = await weightOf(gpu, rand(N * K, N + K, 0.3), [N, K], 'bf16');
      const ref = gatedRmsnormLinearReference(o, gate, nw, wHost, { rows: 1, H, d, N, eps: 1e-5 });
      const y = await withLanes({ gated: lanes }, () =>
        gatedRmsnormLinear(
          gpu.fromHost(o, [1, K]),
          gpu.fromHost(gate, [1, K]),
          gpu.fromHost(nw, [d]),
          1e-5,
          wt,
          H,
        ).toFloat32(),
      );
      expectClose(y, ref, 1e-5, `H ${H} d ${d} N ${N} lanes ${lanes}`);
    }
    expect(
      gpu.pipelines.keys().filter((key) => key.startsWith('gated_norm_gemv') && /_l(64|16)$/.test(key)).length,
    ).toBe(3);
  });
});

describe.skipIf(!hasGpu)('moeSharedDecode (shared expert folded into the MoE down kernel)', () => {
  it('equals expertsInference + swigluLinear; the two separate terms where it does not apply', async () => {
    const gpu = (await gpuContext())!;
    // [rows, D, I, Is, E, k]: long rows (the unrolled sweeps' bodies run), short rows, and two rows (fallback).
    for (const [rows, D, I, Is, E, k] of [
      [1, 1032, 1032, 1032, 3, 2],
      [1, 64, 32, 40, 8, 2],
      [2, 64, 32, 40, 8, 2],
    ]) {
      const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
      const h = gpu.fromHost(rand(rows * D, D), [rows, D]);
      const w = {
        w1: bf(rand(E * I * D, 1, 0.2), [E, I, D]),
        w3: bf(rand(E * I * D, 2, 0.2), [E, I, D]),
        w2: bf(rand(E * D * I, 3, 0.2), [E, D, I]),
      };
      const idx = Int32Array.from({ length: rows * k }, (_, j) => (3 * j + 1) % E);
      const routes = {
        idx: gpu.fromHost(idx, [rows, k], 'i32'),
        weights: gpu.fromHost(
          Float32Array.from({ length: rows * k }, (_, j) => 0.1 + 0.2 * (j % 3)),
          [rows, k],
        ),
      };
      // The packed output: [router logits (E) | shared gate (Is) | shared up (Is)], gate and up 4-aligned.
      const gate = 8;
      const ld = gate + 2 * Is;
      const x = gpu.fromHost(rand(rows * ld, 7), [rows, ld]);
      const down = bf(rand(D * Is, 8, 0.3), [D, Is]);
      const terms = moeSharedDecode(h, routes, w, { x, gate, up: gate + Is, down });
      const routed = await expertsInference(h, routes, w).toFloat32();
      const shared = await swigluLinear(x, gate, gate + Is, down).toFloat32();
      const what = `rows ${rows} D ${D} I ${I} Is ${Is}`;
      if (rows === 1) {
        expect(terms.length, what).toBe(1);
        expectClose(
          await terms[0].toFloat32(),
          Float32Array.from(routed, (v, i) => v + shared[i]),
          1e-5,
          what,
        );
      } else {
        expect(terms.length, what).toBe(2);
        expectClose(await terms[0].toFloat32(), routed, 0, `${what} routed`);
        expectClose(await terms[1].toFloat32(), shared, 0, `${what} shared`);
      }
    }
  });
});

/**
 * moeRoutedDecode, with the router's selection and gate_up's loops as `tuning` sets them, against routeRanked +
 * moeSharedDecode with gate_up's two loops (pairGateUp false): the same picks, weights and sums, bit-equal.
 */
async function routedDecodeCase(
  gpu: GpuContext,
  [rows, E, k, withBias, col, groups]: readonly [number, number, number, boolean, number, number],
  tuning: { select: RouteSelect; pair: boolean },
) {
  const saved = { select: routeFoldTuning.select, pair: moeDecodeTuning.pairGateUp };
  try {
    {
      // D: 41 chunks of 8 (lanes with one and with two chunks in gate_up's sweeps).
      const [D, I, Is] = [328, 40, 24];
      const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
      const h = gpu.fromHost(rand(rows * D, D + E), [rows, D]);
      const w = {
        w1: bf(rand(E * I * D, 1, 0.2), [E, I, D]),
        w3: bf(rand(E * I * D, 2, 0.2), [E, I, D]),
        w2: bf(rand(E * D * I, 3, 0.2), [E, D, I]),
      };
      // The packed output [pad (col) | router logits (E) | shared gate (Is) | shared up (Is)], logits on a
      // coarse grid so that equal choices occur (ties go to the lower index).
      const gate = Math.ceil((col + E) / 4) * 4;
      const ld = gate + 2 * Is;
      const xs = rand(rows * ld, 7);
      for (let n = 0; n < rows; n++)
        for (let e = 0; e < E; e++) xs[n * ld + col + e] = Math.round(xs[n * ld + col + e] * 4) / 4;
      const x = gpu.fromHost(xs, [rows, ld]);
      const bias = withBias
        ? gpu.fromHost(
            Float32Array.from(rand(E, E), (v) => Math.round(v * 2) / 8),
            [E],
          )
        : undefined;
      const down = bf(rand(D * Is, 8, 0.3), [D, Is]);
      const cfg = {
        numExperts: E,
        topK: k,
        activation: 'sigmoid' as const,
        renormalize: true,
        scaling: 2.5,
        numGroups: groups,
        topkGroup: groups > 1 ? 2 : 1,
      };
      const shared = { x, gate, up: gate + Is, down };
      const before = gpu.dispatchCount;
      routeFoldTuning.select = tuning.select;
      moeDecodeTuning.pairGateUp = tuning.pair;
      const got = moeRoutedDecode(h, { x, col, bias, cfg }, w, shared);
      const dispatches = gpu.dispatchCount - before;
      moeDecodeTuning.pairGateUp = false;
      const logits = x.narrow(1, col, E);
      const routes = routeRanked(logits, bias, cfg);
      const want = moeSharedDecode(h, routes, w, shared);
      const what = `rows ${rows} E ${E} k ${k}${withBias ? ' bias' : ''} col ${col} groups ${groups} ${JSON.stringify(tuning)}`;
      // gate_up with the router, then down (with the shared expert at one row; else the shared GEMV after it).
      expect(dispatches, what).toBe(rows === 1 ? 2 : 3);
      expect(Array.from((await got.routes.idx.read()) as Int32Array), what).toEqual(
        Array.from((await routes.idx.read()) as Int32Array),
      );
      expect(Array.from(await got.routes.weights.toFloat32()), what).toEqual(
        Array.from(await routes.weights.toFloat32()),
      );
      expect(got.terms.length, what).toBe(want.length);
      for (let t = 0; t < want.length; t++)
        expectClose(await got.terms[t].toFloat32(), await want[t].toFloat32(), 0, what);
    }
  } finally {
    routeFoldTuning.select = saved.select;
    moeDecodeTuning.pairGateUp = saved.pair;
  }
}

describe.skipIf(!hasGpu)('moeRoutedDecode (router inside the MoE gate_up dispatch)', () => {
  // [rows, E, k, bias, col, groups]: the 48B's E and k, an E that is no power of two nor a multiple of the
  // workgroup (padded sort, two experts per thread; merge: lists of 4 for k = 3, 128 of them) without bias,
  // and two rows (decode down kernel, shared expert apart).
  const cases = [
    [1, 256, 8, true, 0, 1],
    [1, 257, 3, false, 4, 1],
    [2, 64, 4, true, 0, 1],
  ] as const;
  it('equals routeRanked + moeSharedDecode exactly (picks, weights, output), ties and padding, one and two rows; merged lists and gate_up paired at the 48B E and k', async () => {
    const gpu = (await gpuContext())!;
    // The defaults (bitonic sort, two gate_up loops), then the opt-in selection and loop on the first case.
    for (const c of cases) await routedDecodeCase(gpu, c, { select: 'sort', pair: false });
    await routedDecodeCase(gpu, cases[0], { select: 'merge', pair: true });
  });
  it.skipIf(slowVariants)(
    'merged lists and gate_up paired: the other cases (k = 3: lists of 4, 128 of them)',
    async () => {
      const gpu = (await gpuContext())!;
      for (const c of cases.slice(1)) await routedDecodeCase(gpu, c, { select: 'merge', pair: true });
    },
  );
});

// Other lane counts than the defaults (gate_up 32, down 64, which every default MoE decode test runs): with
// KIMI_SLOW_TESTS=1 only.
describe.skipIf(slowVariants)(
  'MoE decode kernels at other lane counts a row (moeDecodeTuning.lanesGateUp / lanesDown)',
  () => {
    it('16, 64, 128 and 256 lanes (gate_up also in one loop unrolled by 3) = the cpu ops: routed + shared at one row, routed at two', async () => {
      const gpu = (await gpuContext())!;
      const [E, k, D, I, Is] = [64, 4, 72, 40, 24];
      const cfg = { ...ROUTER_BASE, numExperts: E, topK: k, scaling: 2.5 };
      // The same inputs on a device (against the cpu ops, not the 32-lane kernels: fewer lavapipe compiles).
      const inputs = (d: Device, rows: number) => {
        const bf = (a: Float32Array, shape: number[]) => d.fromHost(f32ArrayToBf16(a), shape, 'bf16');
        const w = {
          w1: bf(rand(E * I * D, 1, 0.2), [E, I, D]),
          w3: bf(rand(E * I * D, 2, 0.2), [E, I, D]),
          w2: bf(rand(E * D * I, 3, 0.2), [E, D, I]),
        };
        const h = d.fromHost(rand(rows * D, 5), [rows, D]);
        const x = d.fromHost(rand(rows * (2 * Is), 7), [rows, 2 * Is]);
        // Routes given (the folded router's sort is a slow compile on lavapipe; its lanes are the same code).
        const routes = route(d.fromHost(rand(rows * E, 9), [rows, E]), undefined, cfg);
        const shared = { x, gate: 0, up: Is, down: bf(rand(D * Is, 8, 0.3), [D, Is]) };
        return rows === 1 ? moeSharedDecode(h, routes, w, shared) : [expertsInference(h, routes, w)];
      };
      // The output summed over its terms (the cpu ops give routed and shared apart, the one-row kernel their sum).
      const f32 = async (ts: Tensor[]) => {
        const arrs = await Promise.all(ts.map((t) => t.toFloat32() as Promise<Float32Array>));
        return arrs[0].map((v, j) => arrs.slice(1).reduce((a, b) => a + b[j], v));
      };
      for (const rows of [1, 2]) {
        const want = await f32(inputs(cpu, rows));
        // One variant per row count: 64 / 128 lanes with gate_up unrolled, 512-invocation workgroups (8 and 4
        // rows) at one row; 16 / 256 lanes at two (16 rows and 1 row: 256 invocations).
        // At one row also gate_up's W1 and W3 in one loop (pairGateUp) unrolled by 3 (a round of 6 loads, a tail).
        const [gu, dn, ug, rg, rd] = rows === 1 ? [64, 128, 3, 8, 4] : [16, 256, undefined, undefined, undefined];
        Object.assign(moeDecodeTuning, {
          lanesGateUp: gu,
          lanesDown: dn,
          unrollGateUp: ug,
          rowsGateUp: rg,
          rowsDown: rd,
          pairGateUp: rows === 1 ? true : undefined,
        });
        let got: Float32Array;
        try {
          got = await f32(inputs(gpu, rows));
        } finally {
          for (const key of [
            'lanesGateUp',
            'lanesDown',
            'unrollGateUp',
            'rowsGateUp',
            'rowsDown',
            'pairGateUp',
          ] as const)
            moeDecodeTuning[key] = undefined;
        }
        expectClose(got, want, 1e-5, `rows ${rows}, gate_up ${gu} lanes, down ${dn} lanes`);
      }
    });
  },
);

describe.skipIf(!hasGpu)('rmsnormCacheWrite (MLA latent norm and cache append in one dispatch)', () => {
  it('leaves the same cache bits as rmsnormConcat + cacheWrite (int8, bf16, f32 pools; rows to scattered pages)', async () => {
    const gpu = (await gpuContext())!;
    // [B, r, pass, cache]: the tiny 48B structure's latent (32 + 8), an awkward rank (int8: padded words),
    // and rows of three sequences at different positions and pages.
    for (const [B, r, pass, dtype] of [
      [1, 32, 8, 'int8'],
      [3, 63, 7, 'int8'],
      [3, 63, 7, 'bf16'],
      [2, 65, 3, 'f32'],
    ] as const) {
      const off = 5;
      const ld = off + r + pass + 9;
      const R = r + pass;
      const x = gpu.fromHost(rand(B * ld, B + r, 3), [B, ld]);
      const w = gpu.fromHost(f32ArrayToBf16(rand(r, 11, 1.5)), [r], 'bf16');
      // Both pools start from the same garbage, so untouched words must stay equal too.
      const { seq, pos, table, poolOf } = pagedCacheTarget(gpu, B, R, r, dtype, rand);
      const got = poolOf();
      const want = poolOf();
      const before = gpu.dispatchCount;
      rmsnormCacheWrite(x, off, r, pass, w, 1e-6, { pool: got, seq, pos, pageTable: table, Rv: r });
      const what = `B ${B} r ${r} pass ${pass} ${dtype}`;
      expect(gpu.dispatchCount - before, what).toBe(1);
      const latent = rmsnormConcat(x, off, r, pass, w, 1e-6);
      cacheWrite(want, latent, seq, pos, table, { Rv: r });
      expect(Array.from(await got.read()), what).toEqual(Array.from(await want.read()));
    }
  });
});

describe.skipIf(!hasGpu)('decode GEMV prefetch (sweep.ts: first loads before the prologue) is bit-equal', () => {
  it('gatedRmsnormLinear on long rows, addRmsnormLinear on rows shorter than a round, unroll 4 and 1', async () => {
    const gpu = (await gpuContext())!;
    const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
    const N = 9;
    // Whole rounds and a remainder (H * d = 2112 bf16 = 264 chunks: two rounds of 4 x 32 and 8 more), and
    // rows shorter than a round (K = 136: 17 chunks, lanes with one chunk or none). The two kernels share
    // the sweep (sweep.ts), so each covers one of its branches (one compile per variant on lavapipe).
    const [H, d, K] = [4, 528, 136];
    const o = gpu.fromHost(rand(H * d, 5), [1, H * d]);
    const gate = gpu.fromHost(rand(H * d, 6), [1, H * d]);
    const onw = gpu.fromHost(rand(d, 7), [d]);
    const wo = bf(rand(N * H * d, 8, 0.3), [N, H * d]);
    const x = gpu.fromHost(rand(K, 1), [1, K]);
    const d0 = gpu.fromHost(rand(K, 2), [1, K]);
    const nw = gpu.fromHost(rand(K, 3), [K]);
    const w = bf(rand(N * K, 4, 0.3), [N, K]);
    const run = async (unroll: number, prefetch: boolean, long: boolean) => {
      const saved = { ...decodeTuning };
      Object.assign(decodeTuning, { unroll, prefetch });
      try {
        if (long) return await gatedRmsnormLinear(o, gate, onw, 1e-5, wo, H).toFloat32();
        return await addRmsnormLinear(x, [d0], nw, 1e-5, w).y.toFloat32();
      } finally {
        Object.assign(decodeTuning, saved);
      }
    };
    for (const [u, long] of [
      [4, true],
      [4, false],
      [1, false],
    ] as const) {
      const what = `${long ? 'gatedRmsnormLinear, long rows' : 'addRmsnormLinear, short rows'}, unroll ${u}`;
      expectClose(await run(u, true, long), await run(u, false, long), 0, what);
    }
  });

  it('moeSharedDecode: the shared expert loads before the picks are read, long and short rows', async () => {
    const gpu = (await gpuContext())!;
    const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
    // [D, I, Is]: shared rows of whole rounds and a remainder (1032 = 129 chunks), and shorter than a round.
    for (const [D, I, Is] of [
      [64, 32, 1032],
      [64, 32, 40],
    ]) {
      const [E, k] = [4, 2];
      const h = gpu.fromHost(rand(D, D), [1, D]);
      const w = {
        w1: bf(rand(E * I * D, 1, 0.2), [E, I, D]),
        w3: bf(rand(E * I * D, 2, 0.2), [E, I, D]),
        w2: bf(rand(E * D * I, 3, 0.2), [E, D, I]),
      };
      const routes = {
        idx: gpu.fromHost(Int32Array.from([3, 1]), [1, k], 'i32'),
        weights: gpu.fromHost(Float32Array.from([0.7, 0.3]), [1, k]),
      };
      const x = gpu.fromHost(rand(8 + 2 * Is, 7), [1, 8 + 2 * Is]);
      const down = bf(rand(D * Is, 8, 0.3), [D, Is]);
      const run = async (prefetch: boolean) => {
        const saved = decodeTuning.prefetch;
        decodeTuning.prefetch = prefetch;
        try {
          const terms = moeSharedDecode(h, routes, w, { x, gate: 8, up: 8 + Is, down });
          expect(terms.length).toBe(1);
          return await terms[0].toFloat32();
        } finally {
          decodeTuning.prefetch = saved;
        }
      };
      expectClose(await run(true), await run(false), 0, `D ${D} I ${I} Is ${Is}`);
    }
  });
});

/**
 * L2 prefetch workgroups (fused/l2Prefetch.ts) on the decode kernels that host them: the host's outputs are the
 * same bits as without them, and with the sink's guard on (tests only) the sink holds the reference's sum of
 * one word of every 32-byte sector of the range, each once (ranges with a partial last sector, one workgroup
 * running the unrolled loop, several interleaved, the picked experts' rows of W2).
 */
describe.skipIf(!hasGpu)('L2 prefetch workgroups: outputs unchanged, every sector read once', () => {
  const wordsOf = (a: Float32Array | Uint16Array) =>
    new Uint32Array(a.buffer, a.byteOffset, Math.floor(a.byteLength / 4));
  async function sinkOf(t: Tensor): Promise<number> {
    return ((await t.read()) as Int32Array)[0] >>> 0;
  }
  async function withGuard<T>(body: () => Promise<T>): Promise<T> {
    const saved = l2PrefetchTuning.guard;
    l2PrefetchTuning.guard = 1;
    try {
      return await body();
    } finally {
      l2PrefetchTuning.guard = saved;
    }
  }

  it('gatedRmsnormLinear and addRmsnormLinear with the KDA conv', async () => {
    const gpu = (await gpuContext())!;
    // A range of 20,001 words (2,501 sectors, the last partial): at one workgroup of 256 its unrolled loop runs.
    const range = rand(20001, 11);
    for (const wgs of [1, 3]) {
      // gatedRmsnormLinear: H 4, d 16, N 65 (the shapes of its own test), bf16 W.
      const [H, d, N] = [4, 16, 65];
      const K = H * d;
      const [o, gate, nw] = [rand(K, K, 2), rand(K, K + 1, 3), rand(d, K + 2)];
      const { t: wt } = await weightOf(gpu, rand(N * K, N + K, 0.3), [N, K], 'bf16');
      const args = () =>
        [gpu.fromHost(o, [1, K]), gpu.fromHost(gate, [1, K]), gpu.fromHost(nw, [d]), 1e-5, wt, H] as const;
      const want = await gatedRmsnormLinear(...args()).toFloat32();
      const sink = gpu.zeros([1], 'i32');
      const got = await withGuard(() =>
        gatedRmsnormLinear(...args(), { range: gpu.fromHost(range, [range.length]), sink, wgs }).toFloat32(),
      );
      expectClose(got, want, 0, `gated, ${wgs} prefetch workgroups`);
      expect(await sinkOf(sink), `gated sink, ${wgs} workgroups`).toBe(l2PrefetchReference(wordsOf(range), 0, 1e9));

      // addRmsnormLinear with the conv (16 rows a workgroup, the KDA input projection's kernel), bf16 W and conv weight.
      const [D, M, planes, Cp, W] = [64, 65, 3, 7, 4];
      const C = planes * Cp;
      const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
      const wp = bf(rand(M * D, 4, 0.3), [M, D]);
      const cw = bf(rand(C * W, 5, 0.5), [C, 1, W]);
      const run = async (pf: boolean) => {
        const tail = gpu.fromHost(rand((W - 1) * C, 6), [1, W - 1, C]);
        const psink = gpu.zeros([1], 'i32');
        const r = addRmsnormLinear(
          gpu.fromHost(rand(D, 1), [1, D]),
          [gpu.fromHost(rand(D, 2), [1, D])],
          gpu.fromHost(rand(D, 3), [D]),
          1e-5,
          wp,
          {
            conv: { weight: cw, tail, planes },
            ...(pf ? { prefetch: { range: gpu.fromHost(range, [range.length]), sink: psink, wgs } } : {}),
          },
        );
        const outs = await Promise.all([r.y, r.sum, r.conv!, tail].map((t) => t.toFloat32() as Promise<Float32Array>));
        return { outs, sink: await sinkOf(psink) };
      };
      const base = await run(false);
      const pf = await withGuard(() => run(true));
      for (let i = 0; i < base.outs.length; i++) expectClose(pf.outs[i], base.outs[i], 0, `conv output ${i}, ${wgs}`);
      expect(pf.sink, `conv sink, ${wgs} workgroups`).toBe(l2PrefetchReference(wordsOf(range), 0, 1e9));
      expect(base.sink, 'no prefetch, no sink').toBe(0);
    }
  });

  it("moeSharedDecode: gate_up reads the picked experts' down rows, down a given range", async () => {
    const gpu = (await gpuContext())!;
    // moeSharedDecode's own test shapes (one row): D 64, I 32, Is 40, E 8, k 2.
    const [D, I, Is, E, k] = [64, 32, 40, 8, 2];
    const w2Host = f32ArrayToBf16(rand(E * D * I, 3, 0.2));
    const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
    const h = gpu.fromHost(rand(D, D), [1, D]);
    const w = {
      w1: bf(rand(E * I * D, 1, 0.2), [E, I, D]),
      w3: bf(rand(E * I * D, 2, 0.2), [E, I, D]),
      w2: gpu.fromHost(w2Host, [E, D, I], 'bf16'),
    };
    const picks = [5, 2];
    const routes = {
      idx: gpu.fromHost(Int32Array.from(picks), [1, k], 'i32'),
      weights: gpu.fromHost(Float32Array.from([0.3, 0.5]), [1, k]),
    };
    const gate = 8;
    const x = gpu.fromHost(rand(gate + 2 * Is, 7), [1, gate + 2 * Is]);
    const shared = { x, gate, up: gate + Is, down: bf(rand(D * Is, 8, 0.3), [D, Is]) };
    // 999 bf16 values: 499.5 words bound as 500, the last sector partial.
    const nextHost = f32ArrayToBf16(rand(1000, 9)).subarray(0, 999);
    const next = gpu.fromHost(nextHost, [999], 'bf16');
    const want = await moeSharedDecode(h, routes, w, shared)[0].toFloat32();
    const sink = gpu.zeros([1], 'i32');
    const got = await withGuard(() =>
      moeSharedDecode(h, routes, w, shared, { sink, down: true, next, wgs: 5 })[0].toFloat32(),
    );
    expectClose(got, want, 0, 'routed + shared with the prefetches');
    // Each expert's down rows are D * I bf16 = 128 sectors; `next` is 500 words (padded) = 63 sectors.
    const w2Words = wordsOf(w2Host);
    const per = (D * I * 2) / 32;
    let ref = 0;
    for (const e of picks) ref = l2PrefetchReference(w2Words, e * per, per, ref);
    const nextWords = new Uint32Array(500);
    new Uint16Array(nextWords.buffer).set(nextHost);
    ref = l2PrefetchReference(nextWords, 0, 1e9, ref);
    expect(await sinkOf(sink)).toBe(ref);
  });
});

/**
 * The norm GEMVs' eager prologues (decodeTuning.eager: every prologue load issued before its first use) give the
 * same bits as the loops: gatedRmsnormLinear (staged), addRmsnormLinear with two deltas and the normed row at a
 * width whose second round of chunks is partial (K4 = 258 over 256 invocations), and with the KDA conv.
 */
describe.skipIf(!hasGpu)('eager norm GEMV prologues: bit-equal to the loops', () => {
  it('gatedRmsnormLinear, addRmsnormLinear (two deltas, normed; conv)', async () => {
    const gpu = (await gpuContext())!;
    const run = async (eager: boolean) => {
      const saved = decodeTuning.eager;
      decodeTuning.eager = eager;
      try {
        const [H, d, N] = [4, 16, 65];
        const K = H * d;
        const { t: wo } = await weightOf(gpu, rand(N * K, N + K, 0.3), [N, K], 'bf16');
        const y = gatedRmsnormLinear(
          gpu.fromHost(rand(K, K, 2), [1, K]),
          gpu.fromHost(rand(K, K + 1, 3), [1, K]),
          gpu.fromHost(rand(d, K + 2), [d]),
          1e-5,
          wo,
          H,
        );
        const D = 1032;
        const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
        const r = addRmsnormLinear(
          gpu.fromHost(rand(D, 1), [1, D]),
          [gpu.fromHost(rand(D, 2), [1, D]), gpu.fromHost(rand(D, 3), [1, D])],
          bf(rand(D, 4), [D]),
          1e-5,
          bf(rand(7 * D, 5, 0.3), [7, D]),
          { keepNormed: true },
        );
        const [Dc, M, planes, Cp, W] = [64, 65, 3, 7, 4];
        const C = planes * Cp;
        const tail = gpu.fromHost(rand((W - 1) * C, 6), [1, W - 1, C]);
        const rc = addRmsnormLinear(
          gpu.fromHost(rand(Dc, 7), [1, Dc]),
          [gpu.fromHost(rand(Dc, 8), [1, Dc])],
          gpu.fromHost(rand(Dc, 9), [Dc]),
          1e-5,
          bf(rand(M * Dc, 10, 0.3), [M, Dc]),
          { conv: { weight: bf(rand(C * W, 11, 0.5), [C, 1, W]), tail, planes } },
        );
        const outs = [y, r.y, r.sum, r.normed!, rc.y, rc.sum, rc.conv!, tail];
        return await Promise.all(outs.map((t) => t.toFloat32() as Promise<Float32Array>));
      } finally {
        decodeTuning.eager = saved;
      }
    };
    const loops = await run(false);
    const eager = await run(true);
    for (let i = 0; i < loops.length; i++) expectClose(eager[i], loops[i], 0, `output ${i}`);
  });
});
