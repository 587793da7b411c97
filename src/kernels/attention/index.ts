/**
 * attention(q, k, v): (causal) softmax attention, [B, T, H, D] layout, per-head k and v (MLA prefill
 * expands its latent to per-head keys and values first; decode uses the absorbed form instead).
 */
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { attentionReference } from './reference.js';
import { flashKey, flashVec, flashWgsl } from './flash.wgsl.js';
import { blocksOf, tileParams } from './tiles.wgsl.js';
import { useWide, widePasses } from './choice.js';
import { flashWideKey, flashWideWgsl } from './flashWide.wgsl.js';
import { wideBlocks, wideParams } from './wideTiles.wgsl.js';

export interface AttentionOptions {
  causal?: boolean;
  /** Default D_k^-0.5. */
  scale?: number;
}

export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const device = deviceOf('attention', q, k, v);
  for (const [n, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const)
    expectDType('attention', n, t, ['f32']);
  if (q.rank !== 4) expectShape('attention', 'q', q, [null, null, null, null]);
  const [B, T, H, Dk] = q.shape;
  expectShape('attention', 'k', k, [B, T, H, Dk]);
  expectShape('attention', 'v', v, [B, T, H, null]);
  const Dv = v.shape[3];
  const dims = { B, T, H, Dk, Dv, scale: opts.scale ?? Dk ** -0.5, causal: opts.causal ?? true };
  const gpu = asGpu(device);
  if (!gpu) return cpu.fromHost(attentionReference(hostF32(q), hostF32(k), hostF32(v), dims), [B, T, H, Dv]);
  const [qc, kc, vc] = [contiguous(q), contiguous(k), contiguous(v)];
  const out = gpu.empty([B, T, H, Dv]);
  if (useWide(Dk, Dv)) {
    const wv = { Dk, Dv, causal: dims.causal, passes: widePasses() };
    gpu.dispatch({
      kernel: { name: 'attention_flash', key: flashWideKey(wv), code: () => flashWideWgsl(wv) },
      tensors: [qc, kc, vc, out],
      params: wideParams(T, H, dims.scale, Dk, Dv, widePasses()),
      workgroups: [H, wideBlocks(T), B],
    });
    for (const t of [qc, kc, vc]) t.dispose();
    return out;
  }
  const variant = { Dk, Dv, causal: dims.causal, vec: flashVec(Dk, Dv) };
  gpu.dispatch({
    kernel: { name: 'attention_flash', key: flashKey(variant), code: () => flashWgsl(variant) },
    tensors: [qc, kc, vc, out],
    params: tileParams(T, H, dims.scale, Dk, Dv),
    workgroups: [H, blocksOf(T), B],
  });
  for (const t of [qc, kc, vc]) t.dispose();
  return out;
}

export { type AttentionKernels, attentionKernels, setAttentionKernels } from './choice.js';
export {
  ATTENTION_MAX_HEAD_DIM,
  type AttentionGradients,
  type AttentionTrainOptions,
  type AttentionWithStats,
  attentionBackward,
  attentionWithStats,
} from './backward.js';
