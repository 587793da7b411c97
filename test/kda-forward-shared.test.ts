/**
 * The chunked forward with the vec4 intra pass and the tiled state pass compiled as one pipeline
 * (kdaForwardTuning.sharedPipeline, statePipeline.ts, through src/gpu/horizontalFusion.ts) against the same
 * forward with the two kernels as they are: o, the final state and every intermediate it keeps, within 1e-6
 * (the same arithmetic in the same order; only the compiler's context differs). T = 1, 63, 65, 130 (B = 1), a
 * varlen batch with an empty sequence, and the head-group split (two state dispatches, both parts' bindings
 * per group). K16/V8, the geometry the other KDA tests compile; the fused dispatches are checked to be the
 * ones that ran. The shared pipeline is the default on GPUs but not on a software adapter (lavapipe: the
 * joined module only costs compile time there, chunk.ts sharedPipelineByDefault), so the default pass on
 * lavapipe runs the two kernels against the f64 references (kda-golden, kda-consistency, kda-saved); these
 * cases compile the joined module too (~100 s of lavapipe with an empty shader cache) and run with
 * KIMI_SLOW_TESTS=1. In the default pass: the fusion itself (horizontalFusion.test.ts, a toy pair on the
 * GPU) and this module's identity with the one the H200 probe timed (below); on the H200 `bench kda --check`
 * compares the two paths (sharedVsSeparate, 0 in the sixth session).
 * Also (no GPU): its module at the H200 geometry is the one the overlap probe timed (overlapProbe.ts), so the
 * probe's numbers are this pipeline's.
 * The tiled state pass's bf16 variant (StateTiledVariant.bf16) as the pipeline's state part: the fusion takes its
 * packed `array<vec2<u32>>` bindings (no GPU, H=16, d=128), and (KIMI_SLOW_TESTS=1, K16/V8) its dispatch through
 * dispatchStateIntra, beside an idle intra part bound to scratch tensors (idleIntraTensors: 11 storage buffers, not
 * 18 over the limit of 16), writes what the bf16 kernel writes alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DispatchArgs, GpuContext } from '../src/gpu/context.js';
import { Params } from '../src/gpu/params.js';
import { intraVecKey, intraVecWgsl } from '../src/kernels/kda/intraVec.wgsl.js';
import { dispatchOverlapProbe } from '../src/kernels/kda/overlapProbe.js';
import { dispatchStateIntra, idleIntraTensors } from '../src/kernels/kda/statePipeline.js';
import { stateTiledKey, stateTiledWgsl } from '../src/kernels/kda/stateTiled.wgsl.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { groupParams, kdaForwardTuning, kdaSplitLimit } from '../src/kernels/kda/chunk.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { runChunkForwardKept, withDispatchKeys, withForwardTuning } from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

afterEach(() => {
  delete kdaForwardTuning.sharedPipeline;
  delete kdaSplitLimit.maxBindingBytes;
});

/** o, the final state, the kept intermediates, and the kernel keys dispatched. */
async function run(c: KdaCase, cu: number[], S0: Float32Array, shared: boolean) {
  const gpu = (await gpuContext())!;
  return withForwardTuning({ sharedPipeline: shared, intraTwoPass: false }, () =>
    withDispatchKeys(gpu, () => runChunkForwardKept(gpu, c, cu, S0)),
  );
}

async function expectSame(c: KdaCase, cu: number[], S0: Float32Array, groups = 1) {
  const sep = await run(c, cu, S0, false);
  const fused = await run(c, cu, S0, true);
  expect(sep.keys.some((k) => k.startsWith('fuse_'))).toBe(false);
  // One fused intra dispatch, then one fused state dispatch per head group, instead of the two kernels.
  expect(fused.keys.filter((k) => k.startsWith('fuse_kda_chunk_intra_state|')).length).toBe(1 + groups);
  expect(fused.keys.filter((k) => k.startsWith('kda_chunk_intra_vec') || k.startsWith('kda_chunk_state')).length).toBe(
    0,
  );
  expect(sep.keys.filter((k) => k.startsWith('kda_chunk_intra_vec') || k.startsWith('kda_chunk_state')).length).toBe(
    1 + groups,
  );
  expect(fused.groups).toBe(groups);
  for (const n of Object.keys(sep.got)) {
    expect(fused.got[n].length, n).toBe(sep.got[n].length);
    expectClose(fused.got[n], sep.got[n], 1e-6, `${n} (shared pipeline = separate kernels)`);
  }
}

const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';

/**
 * The bf16 tiled state pass (kdFromK: W, U, k bf16; gc, states f32) over one sequence of T tokens at K16/V8,
 * alone or as the state part of the shared pipeline (the intra part idle, on idleIntraTensors): the final state's
 * f32 bits, and V' and the per-chunk states as bf16 bits.
 */
async function bf16StatePass(T: number, shared: boolean) {
  const gpu = (await gpuContext())!;
  const [H, K, V, N] = [2, 16, 8, 1];
  const NS = Math.floor(T / 64) + N;
  const rng = new Rng(T + 90);
  const bf = (n: number, s: number) => gpu.fromHost(f32ArrayToBf16(rng.normalArray(n, s)), [n], 'bf16');
  const cu = gpu.fromHost(Int32Array.from([0, T]), [2], 'i32');
  const [W, U, k] = [bf(T * H * K, 0.3), bf(T * H * V, 1), bf(T * H * K, 0.3)];
  const gc = gpu.fromHost(rng.uniformArray(T * H * K, -2, 0), [T * H * K]);
  const state = gpu.fromHost(rng.normalArray(N * H * K * V, 0.5), [N * H * K * V]);
  const [h, Vp] = [gpu.empty([NS * H * K * V], 'bf16'), gpu.empty([T * H * V], 'bf16')];
  const tv = { K, V, GK: K, BV: 8, RA: 2 as const, wg: 256, kdFromK: true, bf16: true };
  const st = {
    tensors: [cu, W, U, k, gc, gc, state, h, Vp],
    params: groupParams({ Ttot: T, N, H, K, V, GK: K, B: 1, T }, K ** -0.5, { h0: 0, HB: H }),
    workgroups: [V / tv.BV, H, N] as const,
  };
  const kernel = { key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) };
  const scratch: Tensor[] = [];
  if (shared) {
    const iv = { K, V, GK: K, splitProducts: false };
    const idle = idleIntraTensors(gpu, cu, K);
    scratch.push(...idle.scratch);
    const intra = {
      tensors: idle.tensors,
      params: new Params()
        .u32(H, N)
        .f32(K ** -0.5)
        .u32(0),
      workgroups: [NS, H] as const,
    };
    const kernels = { intra: { key: intraVecKey(iv), code: () => intraVecWgsl(iv) }, state: kernel };
    dispatchStateIntra(gpu, kernels, { intra, state: st }, 'state');
  } else {
    gpu.dispatch({ kernel: { name: 'kda_chunk_state', ...kernel }, ...st });
  }
  const S = new Uint32Array(((await state.read()) as Float32Array).slice().buffer);
  const got = { S, Vp: (await Vp.read()) as Uint16Array, h: (await h.read()) as Uint16Array };
  for (const t of [cu, W, U, k, gc, state, h, Vp, ...scratch]) t.dispose();
  return got;
}

describe('kda chunked forward: intra and tiled state passes in one pipeline', () => {
  it('its WGSL at H=16, d=128 is the module of the probe that timed it', () => {
    const [Ttot, H, d] = [32768, 16, 128];
    const p = { Ttot, N: 1, H, K: d, V: d, GK: d, B: 1, T: Ttot };
    const fake = () => ({ storage: {}, offset: 0, numel: 1, dispose() {} }) as unknown as Tensor;
    const captured: DispatchArgs[] = [];
    const gpu = {
      limits: { maxComputeWorkgroupsPerDimension: 65535 },
      dispatch: (a: DispatchArgs) => captured.push(a),
      empty: fake,
    } as unknown as GpuContext;
    const tv = { K: d, V: d, GK: d, BV: 16, RA: 2 as const, wg: 256 };
    const iv = { K: d, V: d, GK: d, splitProducts: false };
    const kernels = {
      state: { key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) },
      intra: { key: intraVecKey(iv), code: () => intraVecWgsl(iv) },
    };
    const [cu, q, k, v, beta, gc, W, U, Kd, Aqk, T, h, Vp, state] = Array.from({ length: 14 }, fake);
    const saved = { gc, W, U, Kd, Aqk, T, h: [h], groups: [{ h0: 0, HB: H }] };
    dispatchOverlapProbe(gpu, p, 0.1, {
      state: { ...kernels.state, BV: 16 },
      intra: kernels.intra,
      x: { cu, q, k, v, beta },
      saved,
      Vp,
    });
    const probe = captured.find((a) => a.kernel.name === 'kda_probe_state_alone');
    const intra = { tensors: [cu, q, k, v, gc, beta, W, U, Aqk, T], params: new Params(), workgroups: [1] as const };
    const st = { tensors: [cu, W, U, Kd, gc, state, h, Vp], params: new Params(), workgroups: [1] as const };
    dispatchStateIntra(gpu, kernels, { intra, state: st }, 'state');
    const shared = captured[captured.length - 1];
    expect(shared.kernel.name).toBe('kda_chunk_state');
    expect(shared.kernel.key).toMatch(/^fuse_kda_chunk_intra_state\|/);
    expect(probe?.kernel.code()).toBe(shared.kernel.code());
  });

  it('bf16 state part: its packed bindings bound as array<vec2<u32>>, 11 in all with idleIntraTensors, H=16, d=128', () => {
    const [H, d] = [16, 128];
    const fake = () => ({ storage: {}, offset: 0, numel: 1, dispose() {} }) as unknown as Tensor;
    let captured: DispatchArgs | undefined;
    const gpu = {
      limits: { maxComputeWorkgroupsPerDimension: 65535 },
      dispatch: (a: DispatchArgs) => {
        captured = a;
      },
      empty: fake,
    } as unknown as GpuContext;
    const tv = { K: d, V: d, GK: d, BV: 16, RA: 2 as const, wg: 256, kdFromK: true, fma: true, bf16: true };
    const iv = { K: d, V: d, GK: d, splitProducts: false };
    const kernels = {
      state: { key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) },
      intra: { key: intraVecKey(iv), code: () => intraVecWgsl(iv) },
    };
    // The state part's tensors: cu, W, U, k, gc (twice), state, h, V'; the intra part's cu and scratch.
    const st = Array.from({ length: 8 }, fake);
    const idle = idleIntraTensors(gpu, st[0], d);
    const state = {
      tensors: [st[0], st[1], st[2], st[3], st[4], st[4], st[5], st[6], st[7]],
      params: new Params(),
      workgroups: [d / 16, H, 1] as const,
    };
    const intra = { tensors: idle.tensors, params: new Params(), workgroups: [1] as const };
    dispatchStateIntra(gpu, kernels, { intra, state }, 'state');
    const code = captured!.kernel.code();
    const decl = (t: Tensor) => {
      const j = captured!.tensors.indexOf(t);
      return code.match(new RegExp(`@binding\\(${j + 1}\\) var<storage, (\\w+)> fuse_b${j}: array<(.+)>;`))?.slice(1);
    };
    for (const t of [st[1], st[2], st[3]]) expect(decl(t)).toEqual(['read', 'vec2<u32>']);
    for (const t of [st[6], st[7]]) expect(decl(t)).toEqual(['read_write', 'vec2<u32>']);
    expect(decl(st[5])).toEqual(['read_write', 'vec4<f32>']);
    // The state part's 9 bindings and the two scratch tensors (within the 16 storage buffers a stage may have).
    expect(captured!.tensors.length).toBe(11);
    expect(decl(idle.scratch[0])).toEqual(['read_write', 'vec4<f32>']);
    expect(decl(idle.scratch[1])).toEqual(['read', 'f32']);
    expect(code).toContain('fuse0_pbf4(');
    expect(captured!.kernel.key).toContain('_bf16');
  });

  it.skipIf(slow)(
    'bf16 state part = the bf16 state kernel alone: T=1, 65, 130, K=16, V=8',
    { timeout: 300_000 },
    async () => {
      for (const T of [1, 65, 130]) {
        const alone = await bf16StatePass(T, false);
        const fused = await bf16StatePass(T, true);
        const used = (Math.floor(T / 64) + 1) * 2 * 16 * 8;
        expect(Array.from(fused.S), `final state, T=${T}`).toEqual(Array.from(alone.S));
        expect(Array.from(fused.Vp), `V', T=${T}`).toEqual(Array.from(alone.Vp));
        expect(Array.from(fused.h.subarray(0, used)), `hB, T=${T}`).toEqual(Array.from(alone.h.subarray(0, used)));
      }
    },
  );

  for (const T of [1, 63, 65, 130]) {
    it.skipIf(slow)(`= separate kernels: T=${T}, K=16, V=8`, { timeout: 300_000 }, async () => {
      const [H, K, V] = [2, 16, 8];
      await expectSame(randomCase(T * 5 + 2, T, H, K, V), [0, T], new Rng(T + 1).normalArray(H * K * V, 0.5));
    });
  }

  it.skipIf(slow)('= separate kernels: varlen batch (5, 70, 0, 58 tokens)', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 133];
    const [H, K, V] = [2, 16, 8];
    await expectSame(randomCase(61, cu[4], H, K, V), cu, new Rng(12).normalArray(4 * H * K * V, 0.5));
  });

  it.skipIf(slow)('= separate kernels: two head groups (split state buffers)', { timeout: 300_000 }, async () => {
    const [T, H, K, V] = [130, 2, 16, 8];
    // One head's per-chunk states: 3 slots x K x V f32 (chunkSlots = floor(130 / 64) + 1).
    kdaSplitLimit.maxBindingBytes = 3 * K * V * 4;
    await expectSame(randomCase(67, T, H, K, V), [0, T], new Rng(13).normalArray(H * K * V, 0.5), 2);
  });
});
