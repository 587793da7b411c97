/**
 * WebGPU orchestration of the KDA forward and backward: which kernels run, in which order, on which
 * intermediate buffers. Everything is recorded into the context's command buffer; nothing is read back.
 *   forward, recurrent: [prep] -> state copy -> recurrent kernel (in place on the final-state buffer)
 *   forward, chunked:   [prep] -> state copy -> intra-chunk (all chunks x heads) -> inter-chunk state
 *                       recurrence (per sequence, head, value tile) -> outputs (all chunks x heads)
 *   backward:           [prep] -> chunked forward states -> reverse pass (backward.wgsl.ts) -> [prep backward]
 */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous, copyInto } from '../copy/index.js';
import { dispatchChunkForward } from './chunk.js';
import { dispatchPrep } from './prep.js';
import { cuTensor, dispatchRecurrent } from './slots.js';
import { zerosF32 } from './zeros.js';
import type { KdaMode } from './index.js';
import { dispatchBackward } from './backwardGpu.js';

export interface GpuProblem {
  /** Packed tokens (B*T), sequences, heads, key/value sizes, gate width (K or 1). */
  Ttot: number;
  N: number;
  H: number;
  K: number;
  V: number;
  GK: number;
  B: number;
  T: number;
  cuSeqlens?: Tensor;
}

export interface KdaInputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  g: Tensor;
  beta: Tensor;
}

export interface LayerParams {
  A_log: Tensor;
  dt_bias: Tensor;
}

/** Sequences at most this long on average run the recurrent kernel under mode 'auto'. */
export const RECURRENT_MAX_LEN = 64;

function identitySlots(gpu: GpuContext, N: number): Tensor {
  return gpu.fromHost(
    Int32Array.from({ length: N }, (_, i) => i),
    [N],
    'i32',
  );
}

/** A fresh [N, H, K, V] state: a copy of the initial state, or zeros. */
function startState(gpu: GpuContext, p: GpuProblem, initialState?: Tensor): Tensor {
  if (!initialState) return zerosF32(gpu, [p.N, p.H, p.K, p.V]);
  const s = gpu.empty([p.N, p.H, p.K, p.V]);
  const c = contiguous(initialState);
  copyInto(c, s);
  c.dispose();
  return s;
}

export function kdaForwardGpu(
  gpu: GpuContext,
  p: GpuProblem,
  x: KdaInputs,
  layer: LayerParams | undefined,
  o: { scale: number; initialState?: Tensor; wantState: boolean; mode: KdaMode },
): { o: Tensor; finalState?: Tensor } {
  const cu = cuTensor(gpu, p);
  const state = startState(gpu, p, o.initialState);
  const out = gpu.empty([p.B, p.T, p.H, p.V]);
  const recurrent = o.mode === 'recurrent' || (o.mode === 'auto' && p.Ttot <= RECURRENT_MAX_LEN * p.N);
  if (recurrent) {
    const slots = identitySlots(gpu, p.N);
    dispatchRecurrent(gpu, p, cu, slots, x, layer, state, out, o.scale);
    slots.dispose();
  } else {
    const core = layer ? dispatchPrep(gpu, p, x, layer) : x;
    dispatchChunkForward(gpu, p, cu, core, state, out, o.scale);
    if (layer) for (const t of [core.q, core.k, core.g, core.beta]) t.dispose();
  }
  cu.dispose();
  if (!o.wantState) state.dispose();
  return { o: out, finalState: o.wantState ? state : undefined };
}

export interface GpuGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  dg: Tensor;
  dbeta: Tensor;
  dS0?: Tensor;
  dA_log?: Tensor;
  ddt_bias?: Tensor;
}

export function kdaBackwardGpu(
  gpu: GpuContext,
  p: GpuProblem,
  x: KdaInputs,
  layer: LayerParams | undefined,
  dO: Tensor,
  o: { scale: number; initialState?: Tensor; dS?: Tensor },
): GpuGrads {
  return dispatchBackward(gpu, p, x, layer, dO, o);
}
