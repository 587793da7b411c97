/**
 * WebGPU orchestration of the KDA forward and backward: which kernels run, in which order, on which
 * intermediate buffers. Everything is recorded into the context's command buffer; nothing is read back.
 *   forward, recurrent: [prep] -> state copy -> recurrent kernel (in place on the final-state buffer)
 *   forward, chunked:   [prep] -> intra-chunk (all chunks x heads) -> inter-chunk state recurrence (per sequence,
 *                       head, value tile; reading the initial state itself, or after a state copy) -> outputs
 *   backward:           [prep] -> chunked forward states -> reverse pass (backward.wgsl.ts) -> [prep backward]
 * A training forward may keep the chunked forward's intermediates (`save`: a GpuSaved); the backward then
 * starts at the reverse pass instead of running [prep] and the chunked forward again.
 */
import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous, copyInto } from '../copy/index.js';
import { castTo } from '../copy/cast.js';
import { type ChunkSaved, dispatchChunkForward, disposeSaved, savedTensors, widenInputs } from './chunk.js';
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

/**
 * The intermediates one chunked forward keeps for one backward (kdaCore / kdaLayer `saveForBackward`): the
 * chunked forward's (chunk.ts ChunkSaved: gc, W, U, V', Kd, A_qk, T and the per-chunk states) and, in the
 * layer form, the prep's l2-normalised q, k and sigmoid beta that the backward kernels read. A plain object
 * so that `scope()` keeps the tensors of a returned one. The backward overwrites A_qk with dA (backwardGpu.ts),
 * so a set serves one backward (`consumed`); its owner disposes it afterwards.
 */
export interface GpuSaved {
  chunk: ChunkSaved;
  core?: { q: Tensor; k: Tensor; beta: Tensor };
  /** What the set was made for; the backward checks it against its own problem. */
  made: { Ttot: number; N: number; H: number; K: number; V: number; GK: number; scale: number; layer: boolean };
  consumed: boolean;
  /** Every tensor held, and their bytes. */
  tensors: Tensor[];
  bytes: number;
  dispose(): void;
}

function makeSaved(p: GpuProblem, scale: number, chunk: ChunkSaved, core?: GpuSaved['core']): GpuSaved {
  const tensors = savedTensors(chunk);
  if (core) tensors.push(core.q, core.k, core.beta);
  return {
    chunk,
    core,
    made: { Ttot: p.Ttot, N: p.N, H: p.H, K: p.K, V: p.V, GK: p.GK, scale, layer: !!core },
    consumed: false,
    tensors,
    bytes: tensors.reduce((b, t) => b + 4 * t.numel, 0),
    dispose() {
      disposeSaved(chunk);
      if (core) for (const t of [core.q, core.k, core.beta]) t.dispose();
    },
  };
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
  o: { scale: number; initialState?: Tensor; wantState: boolean; mode: KdaMode; save?: boolean },
): { o: Tensor; finalState?: Tensor; saved?: GpuSaved } {
  const cu = cuTensor(gpu, p);
  // bf16 q, k, v, g (kdaCore's bf16 storage mode; kdaLayer widens its own): o in bf16 too.
  const bf16 = x.q.dtype === 'bf16';
  if (bf16 && (layer || o.save)) throw new Error('kda: bf16 inputs run the core forward only (no layer prep, no save)');
  // Saving makes 'auto' chunked at any length: the backward is the chunked one, and its intermediates are
  // the chunked forward's.
  const recurrent = o.mode === 'recurrent' || (o.mode === 'auto' && !o.save && p.Ttot <= RECURRENT_MAX_LEN * p.N);
  // The recurrent kernels update the state in place: it starts as a copy of the initial state (or zeros). The
  // chunked forward takes the start itself (chunk.ts ForwardStart): its state pass may read it from the initial
  // state's own buffer, no copy (kdaForwardTuning.stateStart).
  const state = recurrent ? startState(gpu, p, o.initialState) : gpu.empty([p.N, p.H, p.K, p.V]);
  // beta is read in f32 by the recurrent kernels and the layer's prep (T x H values: widened here when given in
  // bf16); the chunked core forward widens it only where its kernels do not read bf16 (kdaForwardTuning.betaBf16).
  const beta16 = x.beta.dtype === 'bf16' && (recurrent || layer) ? x.beta : undefined;
  if (beta16) x = { ...x, beta: castTo(beta16, 'f32') };
  const out = gpu.empty([p.B, p.T, p.H, p.V], bf16 ? 'bf16' : 'f32');
  let saved: GpuSaved | undefined;
  if (recurrent) {
    const slots = identitySlots(gpu, p.N);
    // The recurrent kernels read and write f32: bf16 inputs widened, o rounded at the end.
    const xr = bf16 ? widenInputs(x) : x;
    const or = bf16 ? gpu.empty(out.shape) : out;
    dispatchRecurrent(gpu, p, cu, slots, xr, layer, state, or, o.scale);
    if (bf16) {
      castTo(or, 'bf16', out);
      for (const t of [xr.q, xr.k, xr.v, xr.g, or]) t.dispose();
    }
    slots.dispose();
  } else {
    const core = layer ? dispatchPrep(gpu, p, x, layer) : x;
    const chunk = dispatchChunkForward(gpu, p, cu, core, state, out, o.scale, !!o.save, {
      initial: o.initialState,
    });
    if (chunk) saved = makeSaved(p, o.scale, chunk, layer ? { q: core.q, k: core.k, beta: core.beta } : undefined);
    if (layer) for (const t of saved ? [core.v, core.g] : [core.q, core.k, core.v, core.g, core.beta]) t.dispose();
  }
  cu.dispose();
  if (beta16) x.beta.dispose();
  if (!o.wantState) state.dispose();
  return { o: out, finalState: o.wantState ? state : undefined, saved };
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
  o: { scale: number; initialState?: Tensor; dS?: Tensor; saved?: GpuSaved },
): GpuGrads {
  return dispatchBackward(gpu, p, x, layer, dO, o);
}
