/**
 * Profiling only (kdaForwardTuning.overlapProbe, bench kda --fwd-overlap probe): does running the sequential
 * state pass and the chunk-parallel intra pass in ONE dispatch (horizontal fusion, src/gpu/horizontalFusion.ts)
 * take max(state, intra) or their sum? After a normal forward, three extra dispatches over the whole sequence,
 * the state part writing scratch buffers, the intra part rewriting the forward's W, U, A_qk, T with the same values:
 *   kda_probe_fused:       the state pass's workgroups and the intra pass's in one dispatch;
 *   kda_probe_state_alone: the same pipeline with the intra part given no workgroups (what the fused pipeline's
 *                          register and workgroup-memory allocation costs the state pass);
 *   kda_probe_intra_alone: the same with the state part given none.
 * Compare with the forward's own kda_chunk_state and kda_chunk_intra in the same profile.
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
