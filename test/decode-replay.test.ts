/**
 * Replayed decode steps (GpuContext.capture / replay, BatchSession's replay option): a replay records the
 * captured commands again over new buffer contents; a session that replays gives the logits and tokens of
 * one that records every step from the model code, through length-bound changes (new recordings), page
 * table changes (rewritten in place), and sequences joining and leaving; a steady replayed step creates
 * no buffer and no bind group.
 */
// Before anything opens the GPU: this file's MLA decode needs 8-lane subgroups (lanes-default.ts).
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import { copyInto } from '../src/kernels/copy/index.js';
import { linear } from '../src/kernels/matmul/index.js';
import { randomUniform } from '../src/kernels/random/index.js';
import { argmax } from '../src/kernels/reduce/index.js';
import { BatchSession, replayBound } from '../src/model/batchSession.js';
import { KimiLinearModel } from '../src/model/forward.js';
import { randomModelWeights } from '../src/model/randomWeights.js';
import { scope } from '../src/tensor/scope.js';
import { expectClose, gpuContext, hasGpu, tiny48Config } from './helpers.js';

describe('replayBound', () => {
  it('rounds up to 1/32 of the power of two (at least 64) and never below the length', () => {
    expect([1, 64, 65, 128, 2047, 2048, 2049, 4096, 4097].map(replayBound)).toEqual([
      64, 64, 128, 128, 2048, 2048, 2112, 4096, 4224,
    ]);
    for (const n of [1, 63, 1000, 65537, 1048577]) {
      expect(replayBound(n)).toBeGreaterThanOrEqual(n);
      expect(replayBound(n)).toBeLessThanOrEqual(Math.max(64, n * (1 + 1 / 32)));
    }
  });
});

describe.skipIf(!hasGpu)('GpuContext capture and replay', () => {
  it('a replay runs the captured dispatches, copies and clears over the buffers as they are now', async () => {
    const gpu = (await gpuContext())!;
    const [M, K, N] = [1, 65, 7];
    const x = randomUniform(gpu, [M, K], { seed: 1, lo: -1, hi: 1 });
    const W = randomUniform(gpu, [N, K], { seed: 2, lo: -1, hi: 1, dtype: 'bf16' });
    const out = gpu.empty([M, N]);
    const live = gpu.pool.stats().live;
    const { result, recording } = gpu.capture(() =>
      scope(() => {
        const y = linear(x, W);
        const z = gpu.zeros([M, N]);
        gpu.copyBytes(y, 0, z, 0, 3);
        copyInto(y, out);
        return z;
      }),
    );
    expect(recording.outsideWrites).toBe(0);
    expect(recording.dispatches).toBeGreaterThanOrEqual(2);
    // The capture keeps every buffer it made (y, z and any temporaries) out of the pool.
    expect(gpu.pool.stats().live).toBeGreaterThan(live);
    const check = async (xs: Float32Array) => {
      const xt = gpu.fromHost(xs, [M, K]);
      const yt = linear(xt, W);
      const want = await yt.toFloat32();
      xt.dispose();
      yt.dispose();
      expectClose(await out.toFloat32(), want, 1e-6, 'replayed linear');
      const zs = await result.toFloat32();
      expectClose(zs.subarray(0, 3), want.subarray(0, 3), 1e-6, 'copied part');
      expect(Array.from(zs.subarray(3))).toEqual(new Array(N - 3).fill(0));
    };
    await check(await x.toFloat32());
    for (const seed of [3, 4]) {
      const r = randomUniform(gpu, [M, K], { seed, lo: -1, hi: 1 });
      const xs = await r.toFloat32();
      r.dispose();
      gpu.write(x, xs);
      gpu.write(result, new Float32Array(N).fill(5));
      gpu.replay(recording);
      await check(xs);
    }
    const n = recording.dispatches;
    const before = gpu.dispatchCount;
    gpu.replay(recording);
    expect(gpu.dispatchCount - before).toBe(n);
    await gpu.sync();
    result.dispose();
    recording.dispose();
    await gpu.sync();
    expect(gpu.pool.stats().live).toBe(live);
    expect(() => gpu.replay(recording)).toThrow(/after dispose/);
    for (const t of [x, W, out]) t.dispose();
  });

  it('counts host writes into buffers the capture did not make, and refuses readbacks and nesting', async () => {
    const gpu = (await gpuContext())!;
    const outside = gpu.empty([4]);
    const { result, recording } = gpu.capture(() => {
      const inside = gpu.fromHost(new Float32Array([1, 2, 3, 4]), [4]);
      gpu.write(outside, new Float32Array(4));
      return inside;
    });
    expect(recording.outsideWrites).toBe(1);
    expect(() => gpu.capture(() => gpu.capture(() => 0))).toThrow(/already in progress/);
    await expect(gpu.capture(() => result.toFloat32()).result).rejects.toThrow(/readback inside a capture/);
    result.dispose();
    recording.dispose();
    outside.dispose();
  });
});

describe.skipIf(!hasGpu)('BatchSession replayed steps (48B structure, tiny dims)', () => {
  // The first step of the 48B structure compiles its decode kernels at lavapipe's default width (lanes-default.ts),
  // sharing no shader cache with the suite's narrow-lane files: 120 s and more with an empty cache on a loaded VM.
  it('give the logits of steps recorded from the model code, through bound, page and batch changes', {
    timeout: 300_000,
  }, async () => {
    const gpu = (await gpuContext())!;
    const cfg = tiny48Config();
    const weights = randomModelWeights(cfg, gpu, 'bf16');
    const run = async (replay: boolean) => {
      const s = new BatchSession(new KimiLinearModel(cfg, weights), {
        maxSequences: 2,
        maxLength: 160,
        cacheDtype: 'int8',
        pageSize: 16,
        replay,
      });
      // Length 62: the bound is 64 for two steps, then 128 (a new recording); the page of 16 at 64 is new.
      const [a] = s.addSyntheticMany(62, 1);
      const out: Float32Array[] = [];
      for (let i = 0; i < 5; i++) out.push(await s.step([3 + i]));
      // A second sequence joins (new carries, batch 2), then the first leaves (batch 1 again).
      s.addSynthetic(20);
      for (let i = 0; i < 2; i++) out.push(await s.step([5 + i, 9 + i]));
      s.remove(a);
      for (let i = 0; i < 2; i++) out.push(await s.step([7 + i]));
      const counts = { ...s.stepCounts };
      s.dispose();
      return { out, counts };
    };
    const plain = await run(false);
    const replayed = await run(true);
    expect(plain.counts).toEqual({ recorded: 9, captured: 0, replayed: 0 });
    // The first step from the model code; recordings at the start, at the bound change and at each batch
    // change; the other four steps replayed.
    expect(replayed.counts).toEqual({ recorded: 1, captured: 4, replayed: 4 });
    // The attention's chunks are planned for the bound instead of the length: the same sums in another
    // order, so not bit-equal.
    for (let i = 0; i < plain.out.length; i++) expectClose(replayed.out[i], plain.out[i], 1e-5, `step ${i}`);
    weights.dispose();
  });

  it('a steady replayed step (pipelined) creates no buffer and no bind group, and records as many dispatches', async () => {
    const gpu = (await gpuContext())!;
    const cfg = tiny48Config();
    const weights = randomModelWeights(cfg, gpu, 'bf16');
    const measure = async (replay: boolean) => {
      const s = new BatchSession(new KimiLinearModel(cfg, weights), {
        maxSequences: 1,
        maxLength: 256,
        cacheDtype: 'bf16',
        replay,
      });
      s.addSynthetic(40);
      let flight = s.stepOnDevice([3], argmax);
      const tokens: number[] = [];
      const advance = async () => {
        const next = s.stepOnDevice(flight.next, argmax);
        flight.next.dispose();
        tokens.push((await flight.tokens)[0]);
        flight = next;
      };
      for (let i = 0; i < 3; i++) await advance();
      const created = gpu.pool.stats().created;
      const misses = gpu.bindGroups.misses;
      const d0 = gpu.dispatchCount;
      for (let i = 0; i < 4; i++) await advance();
      const perStep = (gpu.dispatchCount - d0) / 4;
      expect(gpu.pool.stats().created - created).toBe(0);
      expect(gpu.bindGroups.misses - misses).toBe(0);
      flight.next.dispose();
      tokens.push((await flight.tokens)[0]);
      s.dispose();
      return { perStep, tokens };
    };
    const plain = await measure(false);
    const replayed = await measure(true);
    expect(replayed.perStep).toBe(plain.perStep);
    expect(replayed.tokens).toEqual(plain.tokens);
    weights.dispose();
  });
});
