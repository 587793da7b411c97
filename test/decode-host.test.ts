/**
 * The host side of a decode step: packed projections equal the separate ones, and a steady BatchSession step of
 * the 48B preset's layer structure (tiny dims) creates no bind group, allocates no buffer and keeps its KDA carries
 * in place; the fusions of the sixth, seventh, ninth and seventeenth sessions against the steps before them. The parts that need
 * no subgroups (the inference MoE path, the unfused norms) run at 4 lanes in decode-host-narrow.test.ts.
 */
// Before anything opens the GPU: this file's MLA decode needs 8-lane subgroups (lanes-default.ts).
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import { linear } from '../src/kernels/matmul/index.js';
import { argmax } from '../src/kernels/reduce/index.js';
import { randomUniform } from '../src/kernels/random/index.js';
import { SESSION6_OFF, SESSION7_OFF } from '../src/bench/decodeCheck.js';
import { timeDependentSteps } from '../src/bench/decodeSteps.js';
import { decodeTuning } from '../src/kernels/fused/sweep.js';
import { BatchSession } from '../src/model/batchSession.js';
import type { GpuContext } from '../src/gpu/context.js';
import { isMoeLayer, layerMixer } from '../src/model/config.js';
import { blockDiagonal, DecodeWeights, decodeWeightBytes, packRows } from '../src/model/decodeWeights.js';
import { KimiLinearModel } from '../src/model/forward.js';
import { randomModelWeights } from '../src/model/randomWeights.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { expectClose, gpuContext, hasGpu, tiny48Config } from './helpers.js';

describe('packed decode weights (cpu)', () => {
  it('one GEMV over packed rows gives each projection; the block-diagonal one gives both low-rank outputs', async () => {
    const [D, r] = [65, 7];
    const mats = [9, 1, 63].map((n, i) => randomUniform(cpu, [n, D], { seed: i + 1, lo: -1, hi: 1 }));
    const h = randomUniform(cpu, [3, D], { seed: 9, lo: -1, hi: 1 });
    const packed = packRows(mats)!;
    expect(packed.shape).toEqual([73, D]);
    const all = await linear(h, packed).toFloat32();
    let at = 0;
    for (const m of mats) {
      const y = await linear(h, m).toFloat32();
      const n = m.shape[0];
      for (let b = 0; b < 3; b++)
        expectClose(all.subarray(b * 73 + at, b * 73 + at + n), y.subarray(b * n, (b + 1) * n), 1e-6);
      at += n;
    }
    const [fb, gb] = [11, 5].map((n, i) => randomUniform(cpu, [n, r], { seed: 20 + i, lo: -1, hi: 1 }));
    const lr = randomUniform(cpu, [2, 2 * r], { seed: 30, lo: -1, hi: 1 });
    const both = await linear(lr, blockDiagonal(fb, gb)!).toFloat32();
    const f = await linear(lr.narrow(1, 0, r), fb).toFloat32();
    const g = await linear(lr.narrow(1, r, r), gb).toFloat32();
    for (let b = 0; b < 2; b++) {
      expectClose(both.subarray(b * 16, b * 16 + 11), f.subarray(b * 11, (b + 1) * 11), 1e-6);
      expectClose(both.subarray(b * 16 + 11, (b + 1) * 16), g.subarray(b * 5, (b + 1) * 5), 1e-6);
    }
  });

  it('decodeWeightBytes counts the packed copies without making them (what bench decode --max-batch budgets)', async () => {
    const cfg = tiny48Config();
    const model = new KimiLinearModel(cfg, randomModelWeights(cfg, cpu, 'bf16'));
    const packed = new DecodeWeights(model);
    expect(decodeWeightBytes(model)).toBe(packed.bytes());
    expect(packed.bytes()).toBeGreaterThan(0);
    packed.dispose();
  });

  it('packRows refuses mixed dtypes (the caller then keeps separate projections)', () => {
    const a = randomUniform(cpu, [2, 4], { seed: 1, lo: -1, hi: 1 });
    const b = randomUniform(cpu, [2, 4], { seed: 2, lo: -1, hi: 1, dtype: 'bf16' });
    expect(packRows([a, b])).toBeUndefined();
  });
});

describe.skipIf(!hasGpu)('decode host path on WebGPU', () => {
  // The first step of the 48B structure compiles its decode kernels at lavapipe's default width (lanes-default.ts),
  // sharing no shader cache with the suite's narrow-lane files: 120 s and more with an empty cache on a loaded VM.
  it('a steady step of the 48B structure hits every bind group, creates no buffer, keeps the carries in place', {
    timeout: 300_000,
  }, async () => {
    const gpu = (await gpuContext())!;
    const cfg = tiny48Config();
    const weights = randomModelWeights(cfg, gpu, 'bf16');
    for (const B of [1, 2]) {
      const s = new BatchSession(new KimiLinearModel(cfg, weights), {
        maxSequences: B,
        maxLength: 256,
        cacheDtype: 'bf16',
        // The steps recorded from the model code (a replayed step looks nothing up: decode-replay.test.ts).
        replay: false,
      });
      s.addSyntheticMany(40, B);
      const tokens = (i: number) => Array.from({ length: B }, (_, b) => 3 + i + b);
      for (let i = 0; i < 3; i++) await s.step(tokens(i));
      const created = gpu.pool.stats().created;
      const bytes = s.cacheBytes();
      for (let i = 0; i < 3; i++) {
        const [h, m] = [gpu.bindGroups.hits, gpu.bindGroups.misses];
        const logits = await s.step(tokens(3 + i));
        expect(logits.every(Number.isFinite)).toBe(true);
        expect(gpu.bindGroups.misses - m).toBe(0);
        // Batch 1: about half the 833 dispatches the unfused step recorded for this layer structure (at
        // larger batches the packed outputs' column ranges are strided and some need a copy).
        if (B === 1) expect(gpu.bindGroups.hits - h).toBeLessThan(833 / 1.9);
      }
      expect(gpu.pool.stats().created).toBe(created);
      expect(s.cacheBytes()).toBe(bytes);
      s.dispose();
    }
    weights.dispose();
  });

  it('bench decode --steps-ahead 2 (two steps queued beyond the awaited one) gives the tokens of one ahead; paced reads the same', async () => {
    const gpu = (await gpuContext())!;
    const cfg = tiny48Config();
    const weights = randomModelWeights(cfg, gpu, 'bf16');
    const model = new KimiLinearModel(cfg, weights);
    const run = async (ahead: number, paceReadback?: boolean) => {
      const s = new BatchSession(model, { maxSequences: 1, maxLength: 256, cacheDtype: 'bf16', paceReadback });
      s.addSynthetic(40);
      try {
        return await timeDependentSteps(s, [3], 2, 5, undefined, undefined, ahead);
      } finally {
        s.dispose();
      }
    };
    const one = await run(1);
    const two = await run(2);
    // warm-up 2 + timed 5 + the steps still queued at the end (1 or 2).
    expect(one.tokens).toHaveLength(8);
    expect(two.tokens).toHaveLength(9);
    expect(two.tokens.slice(0, 8)).toEqual(one.tokens);
    expect(two.stepMs).toHaveLength(5);
    // Each step's host and wait parts: each within its step's wall time (both are measured inside it).
    expect(two.hostStepMs).toHaveLength(5);
    expect(two.waitStepMs).toHaveLength(5);
    for (const [i, ms] of two.stepMs!.entries())
      expect(two.hostStepMs![i] + two.waitStepMs![i]).toBeLessThanOrEqual(ms + 0.01);
    // Paced reads (readbackPacer.ts: the ids mapped after a timer once 4 reads have been timed): the same tokens.
    expect((await run(1, true)).tokens).toEqual(one.tokens);
    expect((await run(2, true)).tokens).toEqual(two.tokens);
    await expect(run(0)).rejects.toThrow(/ahead = 0, expected an integer >= 1/);
    weights.dispose();
  });

  it('pipelined steps (ids chosen on the device and fed back) also hit every bind group and create no buffer', async () => {
    const gpu = (await gpuContext())!;
    const cfg = tiny48Config();
    const weights = randomModelWeights(cfg, gpu, 'bf16');
    const s = new BatchSession(new KimiLinearModel(cfg, weights), {
      maxSequences: 1,
      maxLength: 256,
      cacheDtype: 'bf16',
      replay: false,
    });
    s.addSynthetic(40);
    let flight = s.stepOnDevice([3], argmax);
    const advance = async () => {
      const next = s.stepOnDevice(flight.next, argmax);
      flight.next.dispose();
      const ids = await flight.tokens;
      flight = next;
      return ids;
    };
    for (let i = 0; i < 3; i++) await advance();
    const created = gpu.pool.stats().created;
    const m = gpu.bindGroups.misses;
    const per: number[] = [];
    for (let i = 0; i < 4; i++) {
      const m1 = gpu.bindGroups.misses;
      const ids = await advance();
      per.push(gpu.bindGroups.misses - m1);
      expect(ids[0] >= 0 && ids[0] < cfg.vocab_size).toBe(true);
    }
    // Settled: no step creates a bind group. (This once failed under load, ~75 misses a step: reads
    // resolving out of order marked the queue idle at random, moving the next step's first submit and with
    // it the pool's buffer assignment; GpuContext.readBytes no longer does.)
    expect(per, `misses per step ${per.join(', ')}`).toEqual([0, 0, 0, 0]);
    expect(gpu.bindGroups.misses - m).toBe(0);
    expect(gpu.pool.stats().created).toBe(created);
    flight.next.dispose();
    await flight.tokens;
    s.dispose();
    weights.dispose();
  });
});

/**
 * Three decode steps of B synthetic 40-token sequences (int8 cache) with the given session options: each
 * step's logits and the last step's dispatch count.
 */
async function threeSteps(gpu: GpuContext, model: KimiLinearModel, B: number, extra: object) {
  const s = new BatchSession(model, { maxSequences: B, maxLength: 128, cacheDtype: 'int8', ...extra });
  s.addSyntheticMany(40, B);
  const out: Float32Array[] = [];
  let dispatches = 0;
  for (let i = 0; i < 3; i++) {
    const d0 = gpu.dispatchCount;
    out.push(await s.step(Array.from({ length: B }, (_, b) => 3 + 5 * i + b)));
    dispatches = gpu.dispatchCount - d0;
  }
  s.dispose();
  return { out, dispatches };
}

/** The tiny 48B structure with random bf16 weights: threeSteps over them (run) and its count of KDA layers. */
async function tiny48Steps() {
  const gpu = (await gpuContext())!;
  const cfg = tiny48Config();
  const weights = randomModelWeights(cfg, gpu, 'bf16');
  const run = (B: number, extra: object) => threeSteps(gpu, new KimiLinearModel(cfg, weights), B, extra);
  const kda = Array.from({ length: cfg.num_hidden_layers }, (_, i) => i).filter(
    (i) => layerMixer(cfg, i) === 'kda',
  ).length;
  return { gpu, cfg, weights, run, kda };
}

describe.skipIf(!hasGpu)('the sixth session fusions in a step of the 48B structure (tiny dims)', () => {
  it('router in gate_up, latent norm + cache write: the same logits as the step before them, fewer dispatches per MoE and MLA layer, batch 1 and 2', async () => {
    const gpu = (await gpuContext())!;
    const cfg = tiny48Config();
    const weights = randomModelWeights(cfg, gpu, 'bf16');
    const run = async (B: number, extra: object, prefetch = decodeTuning.prefetch) => {
      const saved = decodeTuning.prefetch;
      decodeTuning.prefetch = prefetch;
      try {
        return await threeSteps(gpu, new KimiLinearModel(cfg, weights), B, { replay: false, ...extra });
      } finally {
        decodeTuning.prefetch = saved;
      }
    };
    const layers = Array.from({ length: cfg.num_hidden_layers }, (_, i) => i);
    const moe = layers.filter((i) => isMoeLayer(cfg, i)).length;
    const mla = layers.filter((i) => layerMixer(cfg, i) === 'mla').length;
    for (const B of [1, 2]) {
      const now = await run(B, {});
      const before = await run(B, SESSION6_OFF, false);
      // Later steps attend over the latent rows the earlier ones appended: the cache contents are compared too.
      for (let i = 0; i < 3; i++) expectClose(now.out[i], before.out[i], 0, `batch ${B} step ${i}`);
      // Per MoE layer the router dispatch, and at batch > 1 also the copy of its logits (a strided column
      // range of the packed output, which the folded router reads in place); per MLA layer the cache write.
      expect(before.dispatches - now.dispatches, `batch ${B}`).toBe((B === 1 ? 1 : 2) * moe + mla);
    }
    weights.dispose();
  });
});

describe.skipIf(!hasGpu)('the seventh session fusions in a step of the 48B structure (tiny dims)', () => {
  it("KDA's f_b / g_b inside the recurrent step: the logits of the step before (1e-5), one dispatch fewer per KDA layer (five at batch 2)", async () => {
    const { weights, run, kda } = await tiny48Steps();
    for (const B of [1, 2]) {
      const now = await run(B, { replay: false });
      const before = await run(B, { ...SESSION7_OFF, replay: false });
      // Later steps read the KDA states the earlier ones updated: the carried state is compared too. Not
      // bit-equal: the compiler may contract the gate GEMV's multiply-adds differently in the fused kernel.
      for (let i = 0; i < 3; i++) expectClose(now.out[i], before.out[i], 1e-5, `batch ${B} step ${i}`);
      // The GEMV; at batch > 1 also the copies of its input columns, of g and gate out of its output, and of
      // the betas (strided column ranges of the projection, which the fused kernel reads in place).
      expect(before.dispatches - now.dispatches, `batch ${B}`).toBe((B === 1 ? 1 : 5) * kda);
    }
    // Replayed (the captured step) as recorded.
    const replayed = await run(1, {});
    const recorded = await run(1, { replay: false });
    for (let i = 0; i < 3; i++) expectClose(replayed.out[i], recorded.out[i], 0, `replayed step ${i}`);
    weights.dispose();
  });
});

describe.skipIf(!hasGpu)('the ninth session: the MoE router at the end of the projection (tiny dims)', () => {
  it('routeInNorm on and off: the same logits (bit-equal), as many dispatches; replayed as recorded; batch 2 unchanged', async () => {
    const { gpu, weights, run } = await tiny48Steps();
    // Later steps read the states and cache rows the earlier ones wrote: a wrong pick anywhere shows in the logits.
    const on = await run(1, { routeInNorm: true });
    const off = await run(1, { routeInNorm: false });
    for (let i = 0; i < 3; i++) expectClose(on.out[i], off.out[i], 0, `step ${i}`);
    // The ranking moved from gate_up's dispatch to the projection's: no dispatch more or fewer.
    expect(on.dispatches).toBe(off.dispatches);
    // Recorded from the model code, with the kernels each dispatch ran noted: the route's, not the fold's.
    const names = new Set<string>();
    const dispatch = gpu.dispatch;
    gpu.dispatch = (a) => {
      names.add(a.kernel.name);
      return dispatch.call(gpu, a);
    };
    let recorded: Awaited<ReturnType<typeof run>>;
    try {
      recorded = await run(1, { routeInNorm: true, replay: false });
    } finally {
      gpu.dispatch = dispatch;
    }
    expect(names.has('norm_gemv_route') && names.has('moe_decode_gate_up')).toBe(true);
    expect(names.has('moe_decode_gate_up_route')).toBe(false);
    for (let i = 0; i < 3; i++) expectClose(on.out[i], recorded.out[i], 0, `replayed step ${i}`);
    // Batch 2 keeps the router in gate_up (the norm GEMV is one row's).
    const b2 = await run(2, { routeInNorm: true, replay: false });
    const b2off = await run(2, { routeInNorm: false, replay: false });
    for (let i = 0; i < 3; i++) expectClose(b2.out[i], b2off.out[i], 0, `batch 2 step ${i}`);
    weights.dispose();
  });
});

describe.skipIf(!hasGpu)('the seventeenth session: the KDA handoff (tiny dims)', () => {
  it('kdaHandoff on and off: the same logits (bit-equal), one dispatch fewer per KDA layer at batch 1; replayed as recorded; batch 2 unchanged', async () => {
    const { weights, run, kda } = await tiny48Steps();
    // Later steps read the KDA states the earlier ones updated (in the fused dispatch's step role).
    const on = await run(1, { kdaHandoff: true, replay: false });
    const off = await run(1, { kdaHandoff: false, replay: false });
    for (let i = 0; i < 3; i++) expectClose(on.out[i], off.out[i], 0, `step ${i}`);
    expect(off.dispatches - on.dispatches).toBe(kda);
    const replayed = await run(1, { kdaHandoff: true });
    for (let i = 0; i < 3; i++) expectClose(replayed.out[i], on.out[i], 0, `replayed step ${i}`);
    const b2 = await run(2, { kdaHandoff: true, replay: false });
    const b2off = await run(2, { kdaHandoff: false, replay: false });
    for (let i = 0; i < 3; i++) expectClose(b2.out[i], b2off.out[i], 0, `batch 2 step ${i}`);
    expect(b2.dispatches).toBe(b2off.dispatches);
    weights.dispose();
  });
});
