/**
 * Profiling only (kdaForwardTuning.overlapProbe, bench kda --fwd-overlap probe): does running the sequential
 * state pass beside a chunk-parallel pass in ONE dispatch (horizontal fusion, src/gpu/horizontalFusion.ts)
 * take max() of their times or their sum? After a normal forward, extra dispatches over the whole sequence,
 * the state part writing scratch buffers (the intra part rewrites the forward's W, U, A_qk, T with the same
 * values; the output part writes a scratch o):
 *   kda_probe_fused:           state and intra workgroups in one dispatch (state first: lowest ids);
 *   kda_probe_state_alone:     the same pipeline, the intra part given no workgroups (what the fused
 *                              pipeline's register and workgroup-memory allocation does to the state pass);
 *   kda_probe_intra_alone:     the same, the state part given none;
 *   kda_probe_state_single:    the state part alone through the rewriting (a one-part module);
 *   kda_probe_fused_so, kda_probe_so_state_alone, kda_probe_so_output_alone: the same with the output pass.
 * Compare with the forward's own kda_chunk_state, kda_chunk_intra and kda_chunk_output in the same profile.
 *
 * H200, H=16, d=128, T=32768 (bench/results/2026-12-01-h200-kovl-probe{1,2}.json; ms, run 1 / run 2):
 *   own kernels:   state 2.789 / 2.833, intra 2.365 / 2.383, output 0.827 / 0.827
 *   state + intra: fused 4.878 / 4.921; in that pipeline alone: state 2.585 / 2.603, intra 2.403 / 2.424
 *   state single:  2.853
 *   state + output: fused 3.931; in that pipeline alone: state 2.860, output 1.202
 * Sum, not max. State + intra: the fused pipeline takes intra's register allocation (the state pass runs faster
 * with it, see statePipeline.ts), at which a 256-thread workgroup needs over half an SM's registers: one
 * workgroup per SM, so while the 128 state workgroups run, intra runs only on the 4 SMs left (4.92 = 2.60 +
 * 2.42 less ~4/132 of the state pass's time). State + output: the pipeline keeps the state pass's allocation and
 * its 46 KiB of workgroup memory, which slows the output pass alone from 0.83 to 1.20 ms (fewer workgroups per
 * SM), and the fused dispatch (3.93) is slower than the two passes one after the other (2.83 + 0.83): the state
 * pass is bound by workgroup-memory transactions (stateTiled.wgsl.ts), which a co-resident output workgroup
 * competes for. So the segmented overlap (state over segment s beside intra / output over other segments) cannot
 * reach max(state, rest) on this hardware through WebGPU, and was not built.
 */
import type { GpuContext } from '../../gpu/context.js';
import { type FusionPart, fuseHorizontally } from '../../gpu/horizontalFusion.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { type ChunkSaved, chunkSlots, groupParams } from './chunk.js';
import type { GpuProblem } from './gpu.js';

interface ProbeKernels {
  state: { key: string; code: () => string; BV: number };
  intra: { key: string; code: () => string };
  /** The output pass (its column-tile count `tiles`), and where the forward's o goes (its shape: a scratch o). */
  output?: { key: string; code: () => string; tiles: number; out: Tensor };
  x: { cu: Tensor; q: Tensor; k: Tensor; v: Tensor; beta: Tensor };
  saved: Omit<ChunkSaved, 'Vp'>;
  Vp: Tensor;
}

export function dispatchOverlapProbe(gpu: GpuContext, p: GpuProblem, scale: number, k: ProbeKernels): void {
  const { H, K, V, N, Ttot } = p;
  const NS = chunkSlots(p);
  const s = k.saved;
  const scratch = {
    state: gpu.empty([N, H, K, V]), // its contents do not matter: only the timing is used
    h: gpu.empty([NS, H, K, V]),
    Vp: gpu.empty([Ttot, H, V]),
  };
  const parts = (stateOn: boolean, intraOn: boolean): FusionPart[] => [
    {
      key: k.state.key,
      code: k.state.code,
      workgroups: stateOn ? [V / k.state.BV, H, N] : [0, 1, 1],
      tensors: [k.x.cu, s.W, s.U, s.Kd, s.gc, scratch.state, scratch.h, scratch.Vp],
      params: groupParams(p, scale, { h0: 0, HB: H }),
    },
    {
      key: k.intra.key,
      code: k.intra.code,
      workgroups: intraOn ? [NS, H] : [0, 1],
      // The forward's own W, U, A_qk and T, rewritten with the same values (same inputs, same kernel, bit for
      // bit) while the state part reads W and U: scratch copies would take 17 storage bindings, over the 16
      // that lavapipe allows.
      tensors: [k.x.cu, k.x.q, k.x.k, k.x.v, s.gc, k.x.beta, s.W, s.U, s.Aqk, s.T],
      params: new Params().u32(H, N).f32(scale).u32(0),
    },
  ];
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  gpu.dispatch(fuseHorizontally('kda_probe_fused', parts(true, true), max));
  gpu.dispatch(fuseHorizontally('kda_probe_state_alone', parts(true, false), max));
  gpu.dispatch(fuseHorizontally('kda_probe_intra_alone', parts(false, true), max));
  // The state part through the fusion rewriting on its own (one part): the rewriting's cost or gain apart
  // from a second part's register and workgroup-memory needs.
  gpu.dispatch(fuseHorizontally('kda_probe_state_single', parts(true, false).slice(0, 1), max));
  const o = k.output;
  if (o && s.h.length === 1) {
    // The state pass beside the output pass (over the forward's own per-chunk states and V'; o to scratch).
    const oScratch = gpu.empty(o.out.shape);
    const so = (stateOn: boolean, outOn: boolean): FusionPart[] => [
      parts(stateOn, false)[0],
      {
        key: o.key,
        code: o.code,
        workgroups: outOn ? [NS, o.tiles, H] : [0, 1, 1],
        tensors: [k.x.cu, k.x.q, s.gc, s.h[0], k.Vp, s.Aqk, oScratch],
        params: groupParams(p, scale, { h0: 0, HB: H }),
      },
    ];
    gpu.dispatch(fuseHorizontally('kda_probe_fused_so', so(true, true), max));
    gpu.dispatch(fuseHorizontally('kda_probe_so_state_alone', so(true, false), max));
    gpu.dispatch(fuseHorizontally('kda_probe_so_output_alone', so(false, true), max));
    oScratch.dispose();
  }
  for (const t of Object.values(scratch)) t.dispose();
}
