/**
 * Dispatch of the chunked backward (backward.wgsl.ts): the chunked forward's intermediates, either kept by
 * the forward (`saved`, gpu.ts GpuSaved) or recomputed here (prep, then the chunked forward with keep), then
 * the backward kernels, then (layer form) the chain rule through the prep.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous, copyInto } from '../copy/index.js';
import { bwdKey, dqkwWgsl, dstateWgsl, pairsWgsl, utBackwardWgsl } from './backward.wgsl.js';
import { type ChunkSaved, chunkSlots, dispatchChunkForward, disposeSaved, groupParams } from './chunk.js';
import { chunkBK, stateBK, stateBV } from './chunk.wgsl.js';
import type { GpuGrads, GpuProblem, GpuSaved, KdaInputs, LayerParams } from './gpu.js';
import { dispatchPrep, dispatchPrepBackward } from './prep.js';
import { cuTensor } from './slots.js';
import { utKey, utTiledWgsl } from './ut.wgsl.js';
import { utRowsFits, utRowsKey, utRowsWgsl } from './utRows.wgsl.js';
import { dqkwBK, dqkwKey, dqkwTiledFits, dqkwTiledWgsl } from './dqkw.wgsl.js';
import { dstateKey, dstatePreWgsl, dstateSeqWgsl, dstateSplitFits, preBV, seqBV } from './dstateSplit.wgsl.js';
import { dstateSeqTiledFits, dstateSeqTiledKey, dstateSeqTiledWgsl } from './dstateSeqTiled.wgsl.js';
import { zerosF32 } from './zeros.js';
import { pairsFactoredWgsl, pairsKey } from './pairs.wgsl.js';
import { pairsVecFits, pairsVecKey, pairsVecWgsl } from './pairsVec.wgsl.js';

/**
 * Test and bench switches: `legacyDstate` runs the single-kernel backward state pass even where the split
 * fits; `legacyDqkw` the scalar dqkw kernel instead of the register-tiled one (dqkw.wgsl.ts); `legacyUt` the scalar UT-backward kernel instead of ut.wgsl.ts's; `seqBV` forces the value-tile width of the split's sequential pass (a divisor of V that fits). `bench kda --bwd-tune key=value,...` sets any of them.
 */
export const kdaBackwardTuning: {
  legacyDstate?: boolean;
  seqBV?: number;
  legacyDqkw?: boolean;
  legacyUt?: boolean;
  /** The tiled dqkw kernel with its register tiles as indexed arrays (before the named-variable form). */
  prevDqkw?: boolean;
  /** The vec4 UT-transform backward without its scatter operands loaded a tile ahead (ut.wgsl.ts). */
  prevUt?: boolean;
  /** The pair pass without the block-factored decay (backward.wgsl.ts pairsWgsl instead of pairs.wgsl.ts). */
  prevPairs?: boolean;
  /** The block-factored pair pass with scalar workgroup tiles (pairs.wgsl.ts) instead of pairsVec.wgsl.ts's vec4 ones. */
  factoredPairs?: boolean;
  /** pairsVec.wgsl.ts with its row loops stopping at the chunk's end (not the constant 16 rows of a block). */
  pairsVecPartial?: boolean;
  /** ut.wgsl.ts's dB sum as a loop from 4 jg to the chunk's end L (before the constant 16-group loop). */
  utVarRows?: boolean;
  /** The split state pass's sequential part as one value column per thread (dstateSplit.wgsl.ts dstateSeqWgsl) instead of dstateSeqTiled.wgsl.ts's register tiles. */
  prevDstateSeq?: boolean;
  /** pairsVec.wgsl.ts with dg's reverse cumsum as a walk over the chunk's rows at the end (before the in-loop scan). */
  pairsTailDg?: boolean;
  /** dV' rows per thread of dstateSeqTiled.wgsl.ts (default 2). */
  seqRows?: 1 | 2 | 4;

  /** The UT backward of ut.wgsl.ts (column-lane scatter, square dA map) instead of utRows.wgsl.ts's. */
  prevUtRows?: boolean;
  /** utRows.wgsl.ts with ut.wgsl.ts's square dA map (every subgroup runs the product) instead of the triangular one. */
  utSquare?: boolean;
} = {};

function stateCopy(gpu: GpuContext, p: GpuProblem, src?: Tensor): Tensor {
  if (!src) return zerosF32(gpu, [p.N, p.H, p.K, p.V]);
  const s = gpu.empty([p.N, p.H, p.K, p.V]);
  const c = contiguous(src);
  copyInto(c, s);
  c.dispose();
  return s;
}

/** A kept set must come from the forward of this very problem (same form, sizes and scale), unused. */
function checkSaved(s: GpuSaved, p: GpuProblem, layer: boolean, scale: number): void {
  const m = s.made;
  const want = { Ttot: p.Ttot, N: p.N, H: p.H, K: p.K, V: p.V, GK: p.GK, scale, layer };
  for (const key of Object.keys(want) as (keyof typeof want)[]) {
    if (m[key] !== want[key]) {
      throw new Error(
        `kda backward: the saved forward intermediates were made for ${key}=${m[key]}, this backward has ${key}=${want[key]} (pass the set from the forward of the same ${layer ? 'kdaLayer' : 'kdaCore'} call)`,
      );
    }
  }
  if (s.consumed) throw new Error('kda backward: this saved set already served a backward (it holds one backward)');
}

export function dispatchBackward(
  gpu: GpuContext,
  p: GpuProblem,
  x: KdaInputs,
  layer: LayerParams | undefined,
  dOin: Tensor,
  o: { scale: number; initialState?: Tensor; dS?: Tensor; saved?: GpuSaved },
): GpuGrads {
  const { H, K, V, GK, Ttot, N } = p;
  const NS = chunkSlots(p);
  const v = { K, V, GK };
  const cu = cuTensor(gpu, p);
  let core: KdaInputs | undefined;
  let saved: ChunkSaved;
  let q: Tensor;
  let k: Tensor;
  let beta: Tensor;
  if (o.saved) {
    checkSaved(o.saved, p, !!layer, o.scale);
    o.saved.consumed = true;
    saved = o.saved.chunk;
    const c = o.saved.core ?? x;
    [q, k, beta] = [c.q, c.k, c.beta].map(contiguous);
  } else {
    core = layer ? dispatchPrep(gpu, p, x, layer) : x;
    [q, k, beta] = [core.q, core.k, core.beta].map(contiguous);
    const state = stateCopy(gpu, p, o.initialState);
    saved = dispatchChunkForward(gpu, p, cu, core, state, undefined, o.scale, true)!;
    state.dispose();
  }
  const vv = contiguous(x.v);
  const dO = contiguous(dOin);
  const params = new Params().u32(H, N).f32(o.scale).u32(0);

  const G = stateCopy(gpu, p, o.dS);
  // Outgoing-state gradients per chunk, per head group like the forward's states (chunk.ts headGroups).
  const dh = saved.groups.map((gr) => gpu.empty([NS, gr.HB, K, V]));
  const dVp = gpu.empty([Ttot, H, V]);
  const smem = gpu.limits.maxComputeWorkgroupStorageSize;
  const SBV = kdaBackwardTuning.seqBV ?? seqBV(V, N, H, K, smem);
  if (!kdaBackwardTuning.legacyDstate && dstateSplitFits(v, SBV, smem)) {
    // dstateSplit.wgsl.ts: A_qk^T dO and Qg^T dO for all chunks at once, then the sequential recurrence.
    for (const [gi, gr] of saved.groups.entries()) {
      gpu.dispatch({
        kernel: { name: 'kda_bwd_dstate_pre', key: dstateKey('kda_bwd_dstate_pre', v), code: () => dstatePreWgsl(v) },
        tensors: [cu, q, saved.gc, saved.Aqk, dO, dh[gi], dVp],
        params: groupParams(p, o.scale, gr),
        workgroups: [NS, V / preBV(V), gr.HB],
      });
      const tv = { ...v, BV: SBV, RA: kdaBackwardTuning.seqRows ?? 2 };
      gpu.dispatch({
        kernel:
          !kdaBackwardTuning.prevDstateSeq && dstateSeqTiledFits(tv, smem)
            ? { name: 'kda_bwd_dstate_seq', key: dstateSeqTiledKey(tv), code: () => dstateSeqTiledWgsl(tv) }
            : {
                name: 'kda_bwd_dstate_seq',
                key: dstateKey('kda_bwd_dstate_seq', v, `_bv${SBV}`),
                code: () => dstateSeqWgsl(v, SBV),
              },
        tensors: [cu, saved.Kd, saved.W, saved.gc, G, dh[gi], dVp],
        params: groupParams(p, o.scale, gr),
        workgroups: [V / SBV, gr.HB, N],
      });
    }
  } else {
    const BV = stateBV(V, N, H, K, smem, true);
    const BK = stateBK(K, BV, smem, true);
    for (const [gi, gr] of saved.groups.entries()) {
      gpu.dispatch({
        kernel: {
          name: 'kda_bwd_dstate',
          key: bwdKey('kda_bwd_dstate', v, `_bv${BV}_bk${BK}`),
          code: () => dstateWgsl(v, BV, BK),
        },
        tensors: [cu, q, saved.Kd, saved.gc, saved.W, saved.Aqk, dO, G, dh[gi], dVp],
        params: groupParams(p, o.scale, gr),
        workgroups: [V / BV, gr.HB, N],
      });
    }
  }

  const dq = gpu.empty(x.q.shape);
  const dk = gpu.empty(x.k.shape);
  const dgc = gpu.empty([Ttot, H, K]);
  const dW = gpu.empty([Ttot, H, K]);
  for (const [gi, gr] of saved.groups.entries()) {
    const tiled = !kdaBackwardTuning.legacyDqkw && dqkwTiledFits(v);
    gpu.dispatch({
      kernel: tiled
        ? {
            name: 'kda_bwd_dqkw',
            key: dqkwKey(v, !kdaBackwardTuning.prevDqkw),
            code: () => dqkwTiledWgsl(v, !kdaBackwardTuning.prevDqkw),
          }
        : { name: 'kda_bwd_dqkw', key: bwdKey('kda_bwd_dqkw', v), code: () => dqkwWgsl(v) },
      tensors: [cu, q, k, saved.gc, saved.h[gi], dh[gi], dO, dVp, saved.Vp, dq, dk, dgc, dW],
      params: groupParams(p, o.scale, gr),
      workgroups: [NS, K / (tiled ? dqkwBK(K) : chunkBK(K)), gr.HB],
    });
  }

  const dv = gpu.empty(x.v.shape);
  const dbeta = gpu.empty(x.beta.shape);
  // A_qk is not read after the dstate pass: its buffer takes dA (which is why a kept set serves one backward).
  const dA = saved.Aqk;
  const t = kdaBackwardTuning;
  const uv = { ...v, triangular: !t.utSquare };
  const useUtRows = !t.prevUtRows && !t.prevUt && !t.utVarRows && utRowsFits(uv);
  gpu.dispatch({
    kernel: kdaBackwardTuning.legacyUt
      ? { name: 'kda_bwd_ut', key: bwdKey('kda_bwd_ut', v), code: () => utBackwardWgsl(v) }
      : useUtRows
        ? { name: 'kda_bwd_ut', key: utRowsKey(uv), code: () => utRowsWgsl(uv) }
        : {
            name: 'kda_bwd_ut',
            key: utKey(v, !kdaBackwardTuning.prevUt, !kdaBackwardTuning.utVarRows),
            code: () => utTiledWgsl(v, !kdaBackwardTuning.prevUt, !kdaBackwardTuning.utVarRows),
          },
    tensors: [cu, saved.T, saved.W, saved.U, dW, dVp, beta, vv, k, saved.gc, dk, dgc, dv, dbeta, dA],
    params,
    workgroups: [NS, H],
  });

  const dg = gpu.empty(x.g.shape);
  gpu.dispatch({
    kernel: kdaBackwardTuning.prevPairs
      ? { name: 'kda_bwd_pairs', key: bwdKey('kda_bwd_pairs', v), code: () => pairsWgsl(v) }
      : kdaBackwardTuning.factoredPairs || !pairsVecFits(v)
        ? { name: 'kda_bwd_pairs', key: pairsKey(v), code: () => pairsFactoredWgsl(v) }
        : {
            name: 'kda_bwd_pairs',
            key: pairsVecKey(v, kdaBackwardTuning.pairsVecPartial, !kdaBackwardTuning.pairsTailDg),
            code: () => pairsVecWgsl(v, kdaBackwardTuning.pairsVecPartial, !kdaBackwardTuning.pairsTailDg),
          },
    tensors: [cu, q, k, saved.gc, beta, dO, saved.Vp, dA, dq, dk, dgc, dbeta, dg],
    params,
    workgroups: [NS, H],
  });

  if (!o.saved) disposeSaved(saved);
  for (const t of [...dh, dVp, dgc, dW, q, k, vv, beta, dO, cu]) t.dispose();
  const out: GpuGrads = { dq, dk, dv, dg, dbeta };
  if (layer) {
    const r = dispatchPrepBackward(gpu, p, x, layer, { dq, dk, dg, dbeta });
    out.dA_log = r.dA_log;
    out.ddt_bias = r.ddt_bias;
    if (core) for (const t of [core.q, core.k, core.v, core.g, core.beta]) t.dispose();
  }
  if (o.initialState) out.dS0 = G;
  else G.dispose();
  return out;
}
