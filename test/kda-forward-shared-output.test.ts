/**
 * The sixth session's shared-pipeline variants of the chunked forward (statePipeline.ts), each against the
 * same forward without it: o, the final state and every kept intermediate within 1e-6 (the same arithmetic in
 * the same order; only the compiler's context differs), and the dispatches that ran checked to be the fused
 * ones:
 *  - the pipelined output pass as a third part of the shared pipeline (kdaForwardTuning.sharedOutput) against
 *    the output pass in its own pipeline (both with the intra and state passes shared);
 *  - the 'halves' state pass (stateHalves.wgsl.ts) in the shared pipeline against it in its own pipeline.
 * The parts of one pipeline need one workgroup size: the output pass has 256 threads from 16 value columns on
 * (outputGeometry), so the output cases run at K16/V16 (at V8 it has 128 and the option does not apply); the
 * halves case at K16/V8 (the geometry the other KDA tests compile). Compiling the three-part module (twice: the
 * output dispatches' pipeline has a name of its own for the profiles) takes ~60 s of lavapipe, so the GPU
 * cases (T = 65, two chunks, the second partial; T = 1; a varlen batch with an empty sequence; the head-group
 * split, one output dispatch per group with every part's bindings; the halves case) run with
 * KIMI_SLOW_TESTS=1. The default pass checks, without a GPU, that the output dispatch and the intra and state
 * dispatches carry one module with the three parts at the H200 geometry (the fusion itself runs on the GPU in
 * horizontalFusion.test; the halves kernel in kda-forward-halves).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DispatchArgs, GpuContext } from '../src/gpu/context.js';
import { Params } from '../src/gpu/params.js';
import { intraVecKey, intraVecWgsl } from '../src/kernels/kda/intraVec.wgsl.js';
import { outputPipelinedKey, outputPipelinedWgsl } from '../src/kernels/kda/outputPipelined.wgsl.js';
import { dispatchStateIntra } from '../src/kernels/kda/statePipeline.js';
import { stateTiledKey, stateTiledWgsl } from '../src/kernels/kda/stateTiled.wgsl.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { kdaForwardTuning, kdaSplitLimit } from '../src/kernels/kda/chunk.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { type ForwardTuning, runChunkForwardKept, withDispatchKeys, withForwardTuning } from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

type Tuning = ForwardTuning;

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
  delete kdaSplitLimit.maxBindingBytes;
});

/** o, the final state, the kept intermediates, and the kernel keys dispatched, with `tuning`. */
async function run(c: KdaCase, cu: number[], S0: Float32Array, tuning: Tuning) {
  const gpu = (await gpuContext())!;
  return withForwardTuning(tuning, () => withDispatchKeys(gpu, () => runChunkForwardKept(gpu, c, cu, S0)));
}

type Run = Awaited<ReturnType<typeof run>>;

function expectSameResults(got: Run, want: Run, what: string) {
  expect(got.groups).toBe(want.groups);
  for (const n of Object.keys(want.got)) {
    expect(got.got[n].length, n).toBe(want.got[n].length);
    expectClose(got.got[n], want.got[n], 1e-6, `${n} (${what})`);
  }
}

const count = (keys: string[], prefix: string) => keys.filter((k) => k.startsWith(prefix)).length;

async function expectOutputShared(c: KdaCase, cu: number[], S0: Float32Array, groups = 1) {
  // The shared pipeline asked for (not the default on a software adapter such as lavapipe).
  const own = await run(c, cu, S0, { sharedPipeline: true });
  const shared = await run(c, cu, S0, { sharedPipeline: true, sharedOutput: true });
  // The output pass: its own pipeline once per head group, or the shared pipeline's output part instead.
  expect(count(own.keys, 'kda_chunk_output_pipe')).toBe(groups);
  expect(own.keys.filter((k) => k.startsWith('fuse_') && k.includes('|kda_chunk_output_pipe'))).toHaveLength(0);
  expect(count(shared.keys, 'kda_chunk_output')).toBe(0);
  // Intra once, state and output once per group, all from the one three-part module (the output's key among
  // its parts).
  const three = shared.keys.filter((k) => k.startsWith('fuse_kda_chunk_intra_state|'));
  expect(three.length).toBe(1 + 2 * groups);
  for (const k of three) expect(k).toBe(three[0]);
  expect(three[0]).toContain('|kda_chunk_output_pipe');
  expectSameResults(shared, own, 'output in the shared pipeline = in its own');
}

async function expectHalvesShared(c: KdaCase, cu: number[], S0: Float32Array) {
  const halves: Tuning = { state: 'halves', stateHalves: 2 };
  const own = await run(c, cu, S0, { ...halves, sharedPipeline: false });
  const shared = await run(c, cu, S0, { ...halves, sharedPipeline: true });
  expect(count(own.keys, 'kda_chunk_state_halves')).toBe(1);
  expect(count(shared.keys, 'kda_chunk_state_halves')).toBe(0);
  const fused = shared.keys.filter((k) => k.startsWith('fuse_kda_chunk_intra_state|'));
  expect(fused.length).toBe(2);
  for (const k of fused) expect(k).toContain('|kda_chunk_state_halves');
  expectSameResults(shared, own, 'halves state pass in the shared pipeline = in its own');
}

const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';
const [H, K, V] = [2, 16, 16];

describe('kda chunked forward: more passes in the shared pipeline', () => {
  it('the output, intra and state dispatches share one three-part module (H=16, d=128)', () => {
    const d = 128;
    const fake = () => ({ storage: {}, offset: 0, numel: 1, dispose() {} }) as unknown as Tensor;
    const captured: DispatchArgs[] = [];
    const gpu = {
      limits: { maxComputeWorkgroupsPerDimension: 65535 },
      dispatch: (a: DispatchArgs) => captured.push(a),
    } as unknown as GpuContext;
    const tv = { K: d, V: d, GK: d, BV: 16, RA: 2 as const, wg: 256 };
    const iv = { K: d, V: d, GK: d, splitProducts: false };
    const ov = { K: d, V: d, GK: d, BV: 128 };
    const kernels = {
      state: { key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) },
      intra: { key: intraVecKey(iv), code: () => intraVecWgsl(iv) },
      output: { key: outputPipelinedKey(ov), code: () => outputPipelinedWgsl(ov) },
    };
    const [cu, q, k, v, beta, gc, W, U, Kd, Aqk, T, h, Vp, state, o] = Array.from({ length: 15 }, fake);
    const one = [1] as const;
    const dispatches = {
      intra: { tensors: [cu, q, k, v, gc, beta, W, U, Aqk, T], params: new Params().u32(1), workgroups: one },
      state: { tensors: [cu, W, U, Kd, gc, state, h, Vp], params: new Params().u32(2), workgroups: one },
      output: { tensors: [cu, q, gc, h, Vp, Aqk, o], params: new Params().u32(3), workgroups: one },
    };
    for (const active of ['intra', 'state', 'output'] as const) dispatchStateIntra(gpu, kernels, dispatches, active);
    // One pipeline (one key), each dispatch profiled under its pass's name.
    expect(captured.map((a) => a.kernel.name)).toEqual(['kda_chunk_intra', 'kda_chunk_state', 'kda_chunk_output']);
    expect(new Set(captured.map((a) => a.kernel.key)).size).toBe(1);
    const code = captured.map((a) => a.kernel.code());
    expect(code[1]).toBe(code[0]);
    expect(code[2]).toBe(code[0]);
    for (const i of [0, 1, 2]) expect(code[0]).toContain(`fn fuse_part${i}(`);
    // The same bindings each time (every part's, deduplicated): only the active part's grid differs.
    expect(captured[2].tensors).toEqual(captured[0].tensors);
    expect(() => dispatchStateIntra(gpu, { ...kernels, output: undefined }, dispatches, 'output')).toThrow(/output/);
  });

  it.skipIf(slow)('output pass as its third part: T=65, K=16, V=16', { timeout: 300_000 }, async () => {
    await expectOutputShared(randomCase(3, 65, H, K, V), [0, 65], new Rng(4).normalArray(H * K * V, 0.5));
  });

  it.skipIf(slow)('output pass as its third part: T=1', { timeout: 300_000 }, async () => {
    await expectOutputShared(randomCase(5, 1, H, K, V), [0, 1], new Rng(6).normalArray(H * K * V, 0.5));
  });

  it.skipIf(slow)('output pass as its third part: varlen (5, 70, 0, 58 tokens)', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 133];
    await expectOutputShared(randomCase(7, cu[4], H, K, V), cu, new Rng(8).normalArray(4 * H * K * V, 0.5));
  });

  it.skipIf(slow)('output pass as its third part: two head groups', { timeout: 300_000 }, async () => {
    // One head's per-chunk states: 3 slots x K x V f32 (chunkSlots = floor(130 / 64) + 1).
    kdaSplitLimit.maxBindingBytes = 3 * K * V * 4;
    await expectOutputShared(randomCase(9, 130, H, K, V), [0, 130], new Rng(10).normalArray(H * K * V, 0.5), 2);
  });

  it.skipIf(slow)('halves state pass in it: T=65, K=16, V=8', { timeout: 300_000 }, async () => {
    await expectHalvesShared(randomCase(11, 65, H, K, 8), [0, 65], new Rng(12).normalArray(H * K * 8, 0.5));
  });
});
