/**
 * Dispatch of the chunked forward (chunk.wgsl.ts): three kernels over buffers sized on the host.
 * `dispatchChunkForward` keeps gc, W, U, V' and the per-chunk incoming states when asked (the backward
 * reuses them).
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous } from '../copy/index.js';
import {
  CHUNK,
  chunkKey,
  outputScalarBV,
  outputWgslScalar,
  stateBK,
  stateBV,
  stateWgsl,
  stateWgslPrefetch,
} from './chunk.wgsl.js';
import { outputBV, outputKey, outputVec4Fits, outputWgsl } from './output.wgsl.js';
import type { GpuProblem, KdaInputs } from './gpu.js';
import { intraBC, intraKey, intraWgsl } from './intra.wgsl.js';

/** Chunk slots for T packed tokens in N sequences (see chunk.wgsl.ts). */
export function chunkSlots(p: GpuProblem): number {
  return Math.floor(p.Ttot / CHUNK) + p.N;
}

export interface ChunkSaved {
  /** [T, H, GK] within-chunk cumulative log decay. */
  gc: Tensor;
  /** [slots, H, K, V] state entering each chunk. */
  h: Tensor;
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
): ChunkSaved | undefined {
  const { H, K, V, GK, Ttot, N } = p;
  const NS = chunkSlots(p);
  const v = { K, V, GK };
  const [q, k, vv, g, beta] = [x.q, x.k, x.v, x.g, x.beta].map(contiguous);
  const saved: ChunkSaved = {
    gc: gpu.empty([Ttot, H, GK]),
    W: gpu.empty([Ttot, H, K]),
    U: gpu.empty([Ttot, H, V]),
    Aqk: gpu.empty([NS, H, CHUNK, CHUNK]),
    h: gpu.empty([NS, H, K, V]),
    Vp: gpu.empty([Ttot, H, V]),
    T: gpu.empty([NS, H, CHUNK, CHUNK]),
    Kd: gpu.empty([Ttot, H, K]),
  };
  const smem = gpu.limits.maxComputeWorkgroupStorageSize;
  const iv = { ...v, BC: intraBC(K, smem) };
  gpu.dispatch({
    kernel: { name: 'kda_chunk_intra', key: intraKey(iv), code: () => intraWgsl(iv) },
    tensors: [cu, q, k, vv, g, beta, saved.gc, saved.W, saved.U, saved.Aqk, saved.T, saved.Kd],
    params: new Params().u32(H, N).f32(scale).u32(0),
    workgroups: [NS, H],
  });
  const BV = stateBV(V, N, H, K, smem);
  const BK = stateBK(K, BV, smem);
  const wgS = Math.min(256, BV * Math.min(K, 64));
  const usePrefetch = BK === K && K % 4 === 0 && (16 * K) % wgS === 0;
  gpu.dispatch({
    kernel: {
      name: 'kda_chunk_state',
      key: chunkKey('kda_chunk_state', v, `_bv${BV}_bk${BK}${usePrefetch ? '_pf' : ''}`),
      code: () => (usePrefetch ? stateWgslPrefetch(v, BV) : stateWgsl(v, BV, BK)),
    },
    tensors: [cu, saved.W, saved.U, saved.Kd, saved.gc, state, saved.h, saved.Vp],
    params: new Params().u32(H, N, 0, 0),
    workgroups: [V / BV, H, N],
  });
  if (out) {
    const vec4 = outputVec4Fits(v);
    gpu.dispatch({
      kernel: vec4
        ? { name: 'kda_chunk_output', key: outputKey(v), code: () => outputWgsl(v) }
        : { name: 'kda_chunk_output', key: chunkKey('kda_chunk_output', v), code: () => outputWgslScalar(v) },
      tensors: [cu, q, saved.gc, saved.h, saved.Vp, saved.Aqk, out],
      params: new Params().u32(H, N).f32(scale).u32(0),
      workgroups: [NS, Math.ceil(V / (vec4 ? outputBV(V) : outputScalarBV(V))), H],
    });
  }
  for (const t of [q, k, vv, g, beta]) t.dispose();
  if (keep) return saved;
  for (const t of Object.values(saved)) t.dispose();
  return undefined;
}
