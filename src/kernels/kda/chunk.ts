/**
 * Dispatch of the chunked forward (chunk.wgsl.ts): gc, intra, then the state pass followed by the output
 * pass (or, asked for, the fused state-and-output pass: no per-chunk states in global memory unless kept;
 * slower on the H200, see kdaForwardTuning.fused), over buffers sized on the host.
 * `dispatchChunkForward` keeps gc, W, U, V' and the per-chunk incoming states when asked (the backward
 * reuses them). Which kernels run, in which variants, is decided once per call by forwardPlan.ts
 * (planChunkForward) from the tuning and its defaults (forwardTuning.ts, re-exported here); chunkForward
 * dispatches from that plan.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { castTo } from '../copy/cast.js';
import { contiguous, copyInto } from '../copy/index.js';
import {
  CHUNK,
  chunkKey,
  outputScalarBV,
  outputWgslScalar,
  stateWgsl,
  stateFuseKey,
  stateWgslPrefetch,
} from './chunk.wgsl.js';
import { outputBV, outputKey, outputWgsl } from './output.wgsl.js';
import {
  type OutputPipelinedVariant,
  outputPipelinedBV,
  outputPipelinedGrid,
  outputPipelinedKey,
  outputPipelinedWgsl,
} from './outputPipelined.wgsl.js';
import { outputTc16Grid, outputTc16Key, outputTc16Wgsl } from './outputTc16.wgsl.js';
import type { GpuProblem, KdaInputs } from './gpu.js';
import { intraBC, intraKey, intraWgsl } from './intra.wgsl.js';
import { gcKey, gcWgsl, gcWorkgroups } from './gc.wgsl.js';
import { type IntraVecVariant, intraVecKey, intraVecWgsl } from './intraVec.wgsl.js';
import { type IntraGramVariant, intraGramFits, intraGramGrid, intraGramKey, intraGramWgsl } from './intraGram.wgsl.js';
import { intraGramSecondaryFits, intraGramSecondaryWgsl } from './intraGramSecondary.wgsl.js';
import { intraGramTc16Key, intraGramTc16Wgsl } from './intraGramTc16.wgsl.js';
import {
  type IntraWUVariant,
  intraWUFits,
  intraWUGrid,
  intraWUKey,
  intraWUSharedBytes,
  intraWUWgsl,
} from './intraWU.wgsl.js';
import { stateHalvesKey, stateHalvesWgsl } from './stateHalves.wgsl.js';
import { stateTiledKey, stateTiledWgsl } from './stateTiled.wgsl.js';
import { stateTc16Grid, stateTc16Key, stateTc16Wgsl } from './stateTc16.wgsl.js';
import { stateRegWKey, stateRegWWgsl } from './stateRegW.wgsl.js';
import { stateOverlapKey, stateOverlapWgsl } from './stateOverlap.wgsl.js';
import { dispatchStateIntra, idleIntraTensors } from './statePipeline.js';
import { dispatchOverlapProbe } from './overlapProbe.js';
import { type ChunkForwardPlan, planChunkForward } from './forwardPlan.js';
import { kdaForwardTuning } from './forwardTuning.js';
import { zeroFill } from './zeros.js';

// The tuning and its defaults live in forwardTuning.ts; re-exported here, where callers have always found them.
export * from './forwardTuning.js';

/** Chunk slots for T packed tokens in N sequences (see chunk.wgsl.ts). */
export function chunkSlots(p: GpuProblem): number {
  return Math.floor(p.Ttot / CHUNK) + p.N;
}

/**
 * Elements of a placeholder for an intermediate the plan never touches (plan.unused): 16 bytes, the largest element
 * any binding of these kernels declares (vec4<f32>), so every binding's minimum size holds.
 */
const PLACEHOLDER_ELEMENTS = 4;

/**
 * Lowers the per-binding byte limit the head-group split works to (below the device's
 * maxStorageBufferBindingSize), so tests can run the split path at small shapes. Undefined: the device's.
 */
export const kdaSplitLimit: { maxBindingBytes?: number } = {};

/** Heads h0 .. h0 + HB - 1 whose per-chunk states share one buffer. */
export interface HeadGroup {
  h0: number;
  HB: number;
}

/**
 * Head groups whose per-chunk state buffers ([slots, HB, K, V] f32: 2 GiB at H=64, T=32768, d=128) each fit
 * one storage binding. The passes that read or write those states run once per group; every other
 * intermediate is the size of an input and stays whole.
 */
export function headGroups(gpu: GpuContext, p: GpuProblem, bytesPerState = 4): HeadGroup[] {
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, kdaSplitLimit.maxBindingBytes ?? Infinity);
  const perHead = chunkSlots(p) * p.K * p.V * bytesPerState;
  if (perHead > limit) {
    throw new Error(
      `kda chunked: one head's per-chunk states take ${perHead} bytes (T=${p.Ttot}, K=${p.K}, V=${p.V}), over the ${limit}-byte binding limit: split the sequence`,
    );
  }
  // As few groups as fit, of near-equal size: the groups' state passes run one after the other (they write
  // the same buffers), so a small last group would add a whole sequential pass of its own for few heads.
  const count = Math.ceil(p.H / Math.floor(limit / perHead));
  const groups: HeadGroup[] = [];
  for (let i = 0, h0 = 0; i < count; i++) {
    const HB = Math.ceil((p.H - h0) / (count - i));
    groups.push({ h0, HB });
    h0 += HB;
  }
  return groups;
}

/** Uniforms of a per-head-group kernel (GROUP_PARAMS). */
export function groupParams(p: GpuProblem, scale: number, g: HeadGroup): Params {
  return new Params().u32(p.H, p.N).f32(scale).u32(g.h0, g.HB, 0, 0, 0);
}

export interface ChunkSaved {
  /** [T, H, GK] within-chunk cumulative log decay. */
  gc: Tensor;
  /** State entering each chunk: [slots, HB, K, V] per head group (`groups`). */
  h: Tensor[];
  groups: HeadGroup[];
  /** [T, H, V] the chunk-corrected values V' = U - W S. */
  Vp: Tensor;
  /** [slots, H, 64, 64] scale * A_qk (masked). */
  Aqk: Tensor;
  W: Tensor;
  U: Tensor;
  /** [slots, H, 64, 64] strictly lower part of T = (I + Diag(beta) A_kk)^-1. */
  T: Tensor;
  /** [T, H, K] k exp(gc_last - gc). */
  Kd: Tensor;
}

/**
 * Where the forward starts (dispatchChunkForward's `start`): the caller's initial state ([N, H, K, V] f32), or zeros
 * where undefined. Given, the state buffer the caller hands over is uninitialised: the tiled state pass reads the start
 * itself where the plan says (stateStart), else the state buffer is filled first (a copy or a zero fill).
 */
export interface ForwardStart {
  initial?: Tensor;
}

/**
 * The chunked forward. With bf16 q, k, v, g (the bf16 path, bf16.wgsl.ts) `out` is bf16 too, and where the GPU
 * inference path runs the passes read the bf16 inputs themselves; W, U, the per-chunk states and V' are stored in
 * bf16 (the storage mode) or f32 (the mixed mode: kdaForwardTuning.bf16Intermediates) between the passes (the vec4
 * two-pass intra, the tiled state pass forming Kd, the pipelined output pass: ChunkForwardPlan.bf16Kernels); anywhere else (keep,
 * other kernels or tunings) the inputs are cast to f32, the f32 forward runs and o is rounded to bf16 at the end.
 * beta is f32, or bf16 (read so where plan.betaBf16, else widened here: kdaForwardTuning.betaBf16).
 */
export function dispatchChunkForward(
  gpu: GpuContext,
  p: GpuProblem,
  cu: Tensor,
  x: KdaInputs,
  state: Tensor,
  /** Where o goes; undefined skips the output pass (the backward only needs the kept intermediates). */
  out: Tensor | undefined,
  scale: number,
  keep = false,
  /** Undefined: `state` holds the start already (the backward's use); else see ForwardStart. */
  start?: ForwardStart,
): ChunkSaved | undefined {
  const bf16 = x.q.dtype === 'bf16';
  for (const [n, t] of Object.entries(x) as [string, Tensor][]) {
    if (n !== 'beta' && (t.dtype === 'bf16') !== bf16)
      throw new Error(`kda chunked: q is ${x.q.dtype} but ${n} is ${t.dtype}: q, k, v and g share one dtype`);
  }
  if (x.beta.dtype !== 'f32' && x.beta.dtype !== 'bf16')
    throw new Error(`kda chunked: beta is ${x.beta.dtype}, expected f32 or bf16`);
  if (out && out.dtype !== (bf16 ? 'bf16' : 'f32'))
    throw new Error(`kda chunked: o is ${out.dtype}, expected ${bf16 ? 'bf16' : 'f32'} like q`);
  const beta16 = x.beta.dtype === 'bf16';
  const startKind = start ? (start.initial ? 'h0' : 'zero') : undefined;
  const plan = (b: boolean) =>
    planChunkForward(gpu, p, { keep, out: out !== undefined, bf16: b, start: startKind, beta16 }, kdaForwardTuning);
  // bf16 beta as it is where the plan's kernels read it so (plan.betaBf16), else widened here (the caller disposes x).
  const run = (y: KdaInputs, o: Tensor | undefined, pl: ChunkForwardPlan) => {
    const yb = beta16 && !pl.betaBf16 ? { ...y, beta: castTo(y.beta, 'f32') } : y;
    try {
      return chunkForward(gpu, p, cu, yb, state, o, scale, keep, pl, start);
    } finally {
      if (yb !== y) yb.beta.dispose();
    }
  };
  if (!bf16) return run(x, out, plan(false));
  // The bf16 kernels where they exist (the GPU inference path: ChunkForwardPlan.bf16Kernels).
  if (out && !keep) {
    const bf16Plan = plan(true);
    if (bf16Plan.bf16Kernels) return run(x, out, bf16Plan);
  }
  // Elsewhere: the f32 forward on widened inputs, o rounded at the end.
  const xf = widenInputs(x);
  const of = out ? gpu.empty(out.shape) : undefined;
  try {
    const saved = run(xf, of, plan(false));
    if (out && of) castTo(of, 'bf16', out);
    return saved;
  } finally {
    for (const t of [xf.q, xf.k, xf.v, xf.g, of]) t?.dispose();
  }
}

/** q, k, v, g as new f32 tensors (bf16 widened; the caller disposes them); beta as given (f32). */
export function widenInputs(x: KdaInputs): KdaInputs {
  return { q: castTo(x.q, 'f32'), k: castTo(x.k, 'f32'), v: castTo(x.v, 'f32'), g: castTo(x.g, 'f32'), beta: x.beta };
}

function chunkForward(
  gpu: GpuContext,
  p: GpuProblem,
  cu: Tensor,
  x: KdaInputs,
  state: Tensor,
  out: Tensor | undefined,
  scale: number,
  keep: boolean,
  /**
   * The path (forwardPlan.ts), planned for this call's keep, out and dtype. plan.bf16: the bf16 path (bf16Kernels
   * holds): the inputs q, k, v, g and o in bf16; W, U, h, V' too in the storage mode (plan.midBf16), f32 in the mixed
   * mode.
   */
  plan: ChunkForwardPlan,
  /** See dispatchChunkForward. */
  start?: ForwardStart,
): ChunkSaved | undefined {
  const { H, K, V, GK, Ttot, N } = p;
  const NS = chunkSlots(p);
  const v = { K, V, GK };
  const { bf16, midBf16, vec4Intra, BV, BK, maxWg, wgS, usePrefetch, ktForm, tv, hv } = plan;
  const { halves, regw, overlap, tiled, fused, needH, gcInIntra, twoPass, gcInGram, vv4, shared } = plan;
  const { pv, pipelinedOutput, sharedOut } = plan;
  const smem = gpu.limits.maxComputeWorkgroupStorageSize;
  const [q, k, vv, g, beta] = [x.q, x.k, x.v, x.g, x.beta].map(contiguous);
  if (plan.refusal) throw new Error(plan.refusal);
  // The start: read by the tiled state pass itself (plan.stateStart: S0 bound, or zeros), else put into the state
  // buffer now (a copy of the initial state or a zero fill: one dispatch).
  const S0 = start?.initial ? contiguous(start.initial) : undefined;
  if (start && !plan.stateStart) {
    if (S0) copyInto(S0, state);
    else zeroFill(gpu, state);
  }
  const S0bound = plan.stateStart && S0 ? [S0] : [];
  // bf16 beta widened by the gc pass for intraGram (plan.gcBeta).
  const betaF = plan.gcBeta ? gpu.empty([Ttot, H]) : undefined;
  // The gc pass's beta: widened (loaded by every workgroup of a chunk, or by its first only: plan.gcBetaFirst) or not.
  const gcBetaMode = betaF === undefined ? false : plan.gcBetaFirst ? 'first' : true;
  // Head groups bound the per-chunk state buffers; the fused pass without them runs all heads at once.
  const groups = needH ? headGroups(gpu, p, midBf16 || plan.hbBf16 ? 2 : 4) : [{ h0: 0, HB: H }];
  // In the bf16 storage mode W, U, the per-chunk states and V' are stored in bf16 (bf16.wgsl.ts); in the mixed
  // mode (bf16 inputs, bf16Intermediates 'f32') and the f32 forward in f32.
  const mid = midBf16 ? 'bf16' : 'f32';
  // What no pass of this plan touches is a 16-byte placeholder for the bindings that still name it (plan.unused).
  const { unused } = plan;
  const intermediate = (skip: boolean, shape: number[], dtype: 'f32' | 'bf16' = 'f32') =>
    gpu.empty(skip ? [PLACEHOLDER_ELEMENTS] : shape, skip ? 'f32' : dtype);
  const saved: MaybeSaved = {
    gc: gpu.empty([Ttot, H, GK]),
    W: gpu.empty([Ttot, H, K], mid),
    U: intermediate(unused.U, [Ttot, H, V], mid),
    Aqk: gpu.empty([NS, H, CHUNK, CHUNK]),
    // hB also in bf16 in the mixed mode where the plan says (kdaForwardTuning.hbBf16).
    h: needH ? groups.map((gr) => gpu.empty([NS, gr.HB, K, V], plan.hbBf16 ? 'bf16' : mid)) : [],
    groups,
    Vp: needH ? gpu.empty([Ttot, H, V], mid) : undefined,
    T: intermediate(unused.T, [NS, H, CHUNK, CHUNK]),
    Kd: intermediate(unused.Kd, [Ttot, H, K]),
  };
  // The Kt form: Kt in W's place, Y in V''s, M beside A_qk (no U).
  const M = ktForm ? gpu.empty([NS, H, CHUNK, CHUNK]) : undefined;
  const Qg = fused ? gpu.empty([Ttot, H, K]) : undefined;
  // The vec4 intra pass's and the separate state pass's bindings, uniforms and grids.
  const intra = {
    tensors: [cu, q, k, vv, saved.gc, beta, saved.W, saved.U, saved.Aqk, saved.T],
    params: new Params()
      .u32(H, N)
      .f32(scale)
      .u32(keep ? 1 : 0),
    workgroups: [NS, H] as const,
  };
  const gcTwice = tv.rwInputs ? [saved.gc] : [saved.gc, saved.gc];
  const stateDispatch = (gi: number) => ({
    // gc as f32 (gcAt) and as vec4; with rwInputs once, as vec4.
    tensors: ktForm
      ? [cu, saved.W, vv, k, ...gcTwice, beta, ...S0bound, state, saved.h[gi], saved.Vp as Tensor]
      : tv.kdFromK
        ? [cu, saved.W, saved.U, k, ...gcTwice, ...S0bound, state, saved.h[gi], saved.Vp as Tensor]
        : [cu, saved.W, saved.U, saved.Kd, saved.gc, state, saved.h[gi], saved.Vp as Tensor],
    params: groupParams(p, scale, groups[gi]),
    workgroups: [V / BV, groups[gi].HB, N] as const,
  });
  const sharedKernels: Parameters<typeof dispatchStateIntra>[1] = {
    intra: { key: intraVecKey(vv4), code: () => intraVecWgsl(vv4) },
    state: halves
      ? { key: stateHalvesKey(hv), code: () => stateHalvesWgsl(hv) }
      : regw
        ? { key: stateRegWKey(tv), code: () => stateRegWWgsl(tv) }
        : overlap
          ? { key: stateOverlapKey(tv), code: () => stateOverlapWgsl(tv) }
          : { key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) },
  };
  // The output pass's dispatch for head group gi, `tiles` value tiles per chunk (its kernel's column width).
  // `grid`: the pipelined pass's variant where its grid differs (head first, two chunks a workgroup).
  const outputDispatch = (gi: number, o: Tensor, tiles: number, grid: OutputPipelinedVariant = v) => ({
    tensors: [cu, q, saved.gc, saved.h[gi], saved.Vp as Tensor, M ?? saved.Aqk, o],
    params: groupParams(p, scale, groups[gi]),
    workgroups: outputPipelinedGrid(grid, NS, tiles, groups[gi].HB),
  });
  if (sharedOut) sharedKernels.output = { key: outputPipelinedKey(pv), code: () => outputPipelinedWgsl(pv) };
  // A path the bf16 or Kt-form kernels are not written for (cannot happen while the plan decides as it does).
  if (plan.inconsistency) throw new Error(plan.inconsistency);
  // The shared pipeline's idle intra part bound to scratch tensors (statePipeline.ts idleIntraTensors; see
  // ChunkForwardPlan.idleScratch).
  const idle = plan.idleScratch ? idleIntraTensors(gpu, cu, GK) : undefined;
  const sharedIntra = idle ? { ...intra, tensors: idle.tensors } : intra;
  const sharedDispatches = (gi: number) => ({
    intra: sharedIntra,
    state: stateDispatch(gi),
    ...(sharedOut && out ? { output: outputDispatch(gi, out, Math.ceil(V / outputPipelinedBV(V, pv.BV)), pv) } : {}),
  });
  if (gcInIntra) {
    // One pass: gc, Kd and the intra products (intraVec.wgsl.ts gcPrologue); the intra pass's uniforms and grid.
    const fv: IntraVecVariant = { ...vv4, fuseGc: true };
    gpu.dispatch({
      kernel: { name: 'kda_chunk_intra', key: intraVecKey(fv), code: () => intraVecWgsl(fv) },
      tensors: [cu, q, k, vv, g, beta, saved.gc, saved.W, saved.U, saved.Aqk, saved.T, saved.Kd],
      params: intra.params,
      workgroups: intra.workgroups,
    });
  } else if (vec4Intra) {
    // gc and Kd first (one thread per channel walks the chunk), then the intra products on whole vec4 tiles.
    const kd = plan.gcKd;
    if (plan.gcPass)
      gpu.dispatch({
        kernel: {
          name: 'kda_chunk_gc',
          key: gcKey(K, GK, fused, kd, bf16, gcBetaMode),
          code: () => gcWgsl(K, GK, fused, kd, bf16, gcBetaMode),
        },
        tensors: Qg
          ? [cu, k, g, q, saved.gc, saved.Kd, Qg]
          : kd
            ? [cu, k, g, saved.gc, saved.Kd]
            : betaF
              ? [cu, g, beta, saved.gc, betaF]
              : [cu, g, saved.gc],
        params: new Params().u32(H, N).f32(scale).u32(0),
        workgroups: [NS, H, gcWorkgroups(K)],
      });
    const gram = gcInGram ? { g, kd, keep } : undefined;
    // intraGram reads the gc pass's f32 beta where it widened one (plan.gcBeta; nothing else binds it).
    const gramBeta = betaF ?? beta;
    if (twoPass)
      dispatchIntraTwoPass(gpu, p, NS, { cu, q, k, vv, g, beta: gramBeta }, saved, intra.params, scale, gram, plan, M);
    else if (shared) dispatchStateIntra(gpu, sharedKernels, sharedDispatches(0), 'intra');
    else
      gpu.dispatch({
        kernel: { name: 'kda_chunk_intra', key: intraVecKey(vv4), code: () => intraVecWgsl(vv4) },
        ...intra,
      });
  } else {
    const iv = { ...v, BC: intraBC(K, smem) };
    gpu.dispatch({
      kernel: { name: 'kda_chunk_intra', key: intraKey(iv), code: () => intraWgsl(iv) },
      tensors: [cu, q, k, vv, g, beta, saved.gc, saved.W, saved.U, saved.Aqk, saved.T, saved.Kd],
      params: new Params().u32(H, N).f32(scale).u32(0),
      workgroups: [NS, H],
    });
  }
  const stateKernel = (fuse?: { keep: boolean }) => ({
    name: fuse ? 'kda_chunk_state_output' : 'kda_chunk_state',
    key: chunkKey('kda_chunk_state', v, `_bv${BV}_bk${BK}${usePrefetch ? `_pf_wg${wgS}${stateFuseKey(fuse)}` : ''}`),
    code: () => (usePrefetch ? stateWgslPrefetch(v, BV, maxWg, fuse) : stateWgsl(v, BV, BK)),
  });
  const separateState = halves
    ? { name: 'kda_chunk_state', key: stateHalvesKey(hv), code: () => stateHalvesWgsl(hv) }
    : regw
      ? { name: 'kda_chunk_state', key: stateRegWKey(tv), code: () => stateRegWWgsl(tv) }
      : overlap
        ? { name: 'kda_chunk_state', key: stateOverlapKey(tv), code: () => stateOverlapWgsl(tv) }
        : plan.tc16State
          ? { name: 'kda_chunk_state', key: stateTc16Key(plan.tc16v), code: () => stateTc16Wgsl(plan.tc16v) }
          : tiled
            ? { name: 'kda_chunk_state', key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) }
            : stateKernel();
  if (fused && out && Qg) {
    const base = [cu, saved.W, saved.U, saved.Kd, saved.gc, Qg, saved.Aqk, state];
    if (keep) {
      for (const [gi, gr] of groups.entries()) {
        gpu.dispatch({
          kernel: stateKernel({ keep: true }),
          tensors: [...base, saved.h[gi], saved.Vp as Tensor, out],
          params: groupParams(p, scale, gr),
          workgroups: [V / BV, gr.HB, N],
        });
      }
    } else {
      gpu.dispatch({
        kernel: stateKernel({ keep: false }),
        tensors: [...base, out],
        params: groupParams(p, scale, groups[0]),
        workgroups: [V / BV, H, N],
      });
    }
    Qg.dispose();
  } else {
    for (const gi of groups.keys()) {
      if (shared) dispatchStateIntra(gpu, sharedKernels, sharedDispatches(gi), 'state');
      else if (plan.tc16State)
        // The f16 tensor-core kernel (stateTc16.wgsl.ts): the Kt form's tensors, gc bound once (as vec4).
        gpu.dispatch({
          kernel: separateState,
          tensors: [cu, saved.W, vv, k, saved.gc, beta, state, saved.h[gi], saved.Vp as Tensor],
          params: groupParams(p, scale, groups[gi]),
          workgroups: stateTc16Grid(V, groups[gi].HB, N),
        });
      else gpu.dispatch({ kernel: separateState, ...stateDispatch(gi) });
    }
  }
  if (out && !fused) {
    const vec4 = plan.outputVec4;
    const ov = plan.ov;
    const kernel = pipelinedOutput
      ? { name: 'kda_chunk_output', key: outputPipelinedKey(pv), code: () => outputPipelinedWgsl(pv) }
      : vec4
        ? { name: 'kda_chunk_output', key: outputKey(ov), code: () => outputWgsl(ov) }
        : { name: 'kda_chunk_output', key: chunkKey('kda_chunk_output', v), code: () => outputWgslScalar(v) };
    const obv = pipelinedOutput ? outputPipelinedBV(V, pv.BV) : vec4 ? outputBV(V, ov.BV) : outputScalarBV(V);
    const tc16 = plan.tc16o;
    for (const gi of groups.keys()) {
      if (plan.tc16Output)
        gpu.dispatch({
          kernel: { name: 'kda_chunk_output', key: outputTc16Key(tc16), code: () => outputTc16Wgsl(tc16) },
          ...outputDispatch(gi, out, 1),
          workgroups: outputTc16Grid(tc16, NS, groups[gi].HB),
        });
      else if (sharedOut) dispatchStateIntra(gpu, sharedKernels, sharedDispatches(gi), 'output');
      else gpu.dispatch({ kernel, ...outputDispatch(gi, out, Math.ceil(V / obv), pipelinedOutput ? pv : v) });
    }
    if (plan.overlapProbe && groups.length === 1) {
      // The intra kernel as the probe measures it: the vec4 one-pass kernel, without profiling skips.
      const vv4: IntraVecVariant = { ...v, splitProducts: plan.vv4.splitProducts };
      dispatchOverlapProbe(gpu, p, scale, {
        state: { key: stateTiledKey(tv), code: () => stateTiledWgsl(tv), BV },
        intra: { key: intraVecKey(vv4), code: () => intraVecWgsl(vv4) },
        output: { ...kernel, tiles: Math.ceil(V / obv), out },
        x: { cu, q, k, v: vv, beta },
        saved,
        Vp: saved.Vp as Tensor,
      });
    }
  }
  for (const t of [
    q,
    k,
    vv,
    g,
    beta,
    ...(idle?.scratch ?? []),
    ...(M ? [M] : []),
    ...(S0 ? [S0] : []),
    ...(betaF ? [betaF] : []),
  ])
    t.dispose();
  // keep implies needH, so Vp exists.
  if (keep) return saved as ChunkSaved;
  disposeSaved(saved);
  return undefined;
}

/**
 * The intra pass as two kernels (kdaForwardTuning.intraTwoPass): A_qk and T (intraGram.wgsl.ts), then W and U
 * (intraWU.wgsl.ts) from T in the layout the first leaves it in, in a scratch buffer (saved.T holds the
 * backward's row-major T when kept).
 */
function dispatchIntraTwoPass(
  gpu: GpuContext,
  p: GpuProblem,
  NS: number,
  x: { cu: Tensor; q: Tensor; k: Tensor; vv: Tensor; g: Tensor; beta: Tensor },
  saved: MaybeSaved,
  params: Params,
  scale: number,
  /** gc formed by the first kernel from g (IntraGramVariant.gcFromG), Kd too where `kd`; undefined: gc read. */
  gram: { g: Tensor; kd: boolean; keep: boolean } | undefined,
  /** The forward's plan: its two kernels' variants (plan.gram, plan.wu). */
  plan: ChunkForwardPlan,
  /** The Kt form's M (kdaForwardTuning.ktForm): the second kernel writes Kt (to saved.W) and M instead of W and U. */
  M?: Tensor,
): void {
  const { H, N, K, V, GK } = p;
  const gv = plan.gram as IntraGramVariant;
  if (!(gv.secondary ? intraGramSecondaryFits(gv) : intraGramFits(gv)))
    throw new Error(`kda: two-pass intra, K=${K} V=${V} GK=${GK} do not fit`);
  const Tt = gpu.empty([NS, H, CHUNK, CHUNK]);
  // The tensor-core first kernel (plan.tc16Gram: gc read, so the same bindings and params as intraGram's).
  const tc = plan.tc16Gram ? plan.tc16g : undefined;
  gpu.dispatch({
    kernel: tc
      ? { name: 'kda_chunk_intra', key: intraGramTc16Key(tc), code: () => intraGramTc16Wgsl(tc) }
      : {
          name: 'kda_chunk_intra',
          key: intraGramKey(gv),
          code: () => (gv.secondary ? intraGramSecondaryWgsl(gv) : intraGramWgsl(gv)),
        },
    // saved.T (allocated with or without keep) written only with keep (params' storeT); saved.Kd only where the
    // forward needs it (storeKd).
    ...(gram
      ? {
          tensors: [x.cu, x.q, x.k, gram.g, x.beta, saved.Aqk, Tt, saved.T, saved.gc, saved.Kd],
          params: new Params()
            .u32(H, N)
            .f32(scale)
            .u32(gram.keep ? 1 : 0, gram.kd ? 1 : 0),
        }
      : gv.gcPrologue
        ? // gc formed in the prologue from g (IntraGramVariant.gcPrologue): g read, gc written (no gc pass ran).
          { tensors: [x.cu, x.q, x.k, x.g, x.beta, saved.Aqk, Tt, saved.T, saved.gc], params }
        : { tensors: [x.cu, x.q, x.k, saved.gc, x.beta, saved.Aqk, Tt, saved.T], params }),
    workgroups: tc ? [NS, H] : intraGramGrid(gv, NS, H),
  });
  const wv = plan.wu as IntraWUVariant;
  if (!intraWUFits(wv) || intraWUSharedBytes(wv) > gpu.limits.maxComputeWorkgroupStorageSize) {
    throw new Error(`kda: two-pass intra W|U variant ${intraWUKey(wv)} does not fit`);
  }
  gpu.dispatch({
    kernel: { name: 'kda_chunk_intra_wu', key: intraWUKey(wv), code: () => intraWUWgsl(wv) },
    tensors: M
      ? [x.cu, x.k, saved.gc, saved.Aqk, Tt, saved.W, M]
      : [x.cu, x.k, x.vv, saved.gc, x.beta, Tt, saved.W, saved.U],
    params,
    workgroups: intraWUGrid(wv, NS, H),
  });
  Tt.dispose();
}

/** A ChunkSaved, or the forward's own set before it knows whether V' was needed (no keep, fused pass). */
type MaybeSaved = Omit<ChunkSaved, 'Vp'> & { Vp?: Tensor };

/** Every tensor a ChunkSaved holds. */
export function savedTensors(saved: MaybeSaved): Tensor[] {
  return [saved.gc, saved.W, saved.U, saved.Aqk, ...(saved.Vp ? [saved.Vp] : []), saved.T, saved.Kd, ...saved.h];
}

export function disposeSaved(saved: MaybeSaved): void {
  for (const t of savedTensors(saved)) t.dispose();
}
