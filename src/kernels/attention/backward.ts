/**
 * Training attention: the forward that also returns the per-row softmax statistics (lse for the
 * backward, rowMax for QK-clip), and the FlashAttention-2 backward that recomputes P from q, k and lse
 * instead of keeping a T x T matrix per head. Layout as attention(): [B, T, H, D], statistics [B, H, T].
 */
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32 } from '../common.js';
import { attentionBackwardReference } from './backwardReference.js';
import { attentionBackwardGpu, attentionWithStatsGpu } from './backwardGpu.js';
import { type AttentionDims, attentionWithStatsReference } from './reference.js';

export interface AttentionTrainOptions {
  causal?: boolean;
  /** Default D_k^-0.5. */
  scale?: number;
}

export interface AttentionWithStats {
  /** [B, T, H, Dv] */
  o: Tensor;
  /** [B, H, T] logsumexp of the scaled logits of each query row. */
  lse: Tensor;
  /** [B, H, T] largest scaled logit of each query row (QK-clip reads it). */
  rowMax: Tensor;
}

export interface AttentionGradients {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

/** Head sizes the WGSL kernels are generated for (workgroup arrays are sized by them). */
export const ATTENTION_MAX_HEAD_DIM = 256;

function dimsOf(op: string, q: Tensor, k: Tensor, v: Tensor, opts: AttentionTrainOptions): AttentionDims {
  for (const [n, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const)
    expectDType(op, n, t, ['f32']);
  if (q.rank !== 4) expectShape(op, 'q', q, [null, null, null, null]);
  const [B, T, H, Dk] = q.shape;
  expectShape(op, 'k', k, [B, T, H, Dk]);
  expectShape(op, 'v', v, [B, T, H, null]);
  const Dv = v.shape[3];
  if (Dk > ATTENTION_MAX_HEAD_DIM || Dv > ATTENTION_MAX_HEAD_DIM || Dk < 1 || Dv < 1) {
    throw new Error(`${op}: head sizes Dk=${Dk}, Dv=${Dv}; expected 1..${ATTENTION_MAX_HEAD_DIM}`);
  }
  return { B, T, H, Dk, Dv, scale: opts.scale ?? Dk ** -0.5, causal: opts.causal ?? true };
}

export function attentionWithStats(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionTrainOptions = {},
): AttentionWithStats {
  const op = 'attentionWithStats';
  const device = deviceOf(op, q, k, v);
  const d = dimsOf(op, q, k, v, opts);
  const gpu = asGpu(device);
  if (gpu) return attentionWithStatsGpu(gpu, q, k, v, d);
  const r = attentionWithStatsReference(hostF32(q), hostF32(k), hostF32(v), d);
  return {
    o: cpu.fromHost(r.o, [d.B, d.T, d.H, d.Dv]),
    lse: cpu.fromHost(r.lse, [d.B, d.H, d.T]),
    rowMax: cpu.fromHost(r.rowMax, [d.B, d.H, d.T]),
  };
}

export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: Tensor,
  lse: Tensor,
  dO: Tensor,
  opts: AttentionTrainOptions = {},
): AttentionGradients {
  const op = 'attentionBackward';
  const device = deviceOf(op, q, k, v, o, lse, dO);
  const d = dimsOf(op, q, k, v, opts);
  expectDType(op, 'o', o, ['f32']);
  expectDType(op, 'lse', lse, ['f32']);
  expectDType(op, 'dO', dO, ['f32']);
  expectShape(op, 'o', o, [d.B, d.T, d.H, d.Dv]);
  expectShape(op, 'dO', dO, [d.B, d.T, d.H, d.Dv]);
  expectShape(op, 'lse', lse, [d.B, d.H, d.T]);
  const gpu = asGpu(device);
  if (gpu) return attentionBackwardGpu(gpu, q, k, v, o, lse, dO, d);
  const r = attentionBackwardReference(hostF32(q), hostF32(k), hostF32(v), hostF32(o), hostF32(lse), hostF32(dO), d);
  return {
    dq: cpu.fromHost(r.dq, [d.B, d.T, d.H, d.Dk]),
    dk: cpu.fromHost(r.dk, [d.B, d.T, d.H, d.Dk]),
    dv: cpu.fromHost(r.dv, [d.B, d.T, d.H, d.Dv]),
  };
}
