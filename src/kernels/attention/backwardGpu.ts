/**
 * WebGPU paths of backward.ts (dispatch recording only; shapes are checked by the caller): the wide kernels
 * (flashWide / backwardWide) where choice.ts's useWide says so, else the tiled ones (flash / backward.wgsl.ts).
 * Both paths use the same kernel names, so a profile compares them bucket by bucket.
 */
import type { GpuContext } from '../../gpu/context.js';
import { Params } from '../../gpu/params.js';
import type { Tensor } from '../../tensor/tensor.js';
import { grid1d } from '../common.js';
import { contiguous } from '../copy/index.js';
import type { AttentionGradients, AttentionWithStats } from './backward.js';
import { backwardKey, dkdvWgsl, dqWgsl, ROWDOT_WG, rowDotWgsl } from './backward.wgsl.js';
import { blocksOf, tileParams } from './tiles.wgsl.js';
import { flashKey, flashVec, flashWgsl } from './flash.wgsl.js';
import { backwardWideKey, dkdvWideWgsl, dqWideWgsl } from './backwardWide.wgsl.js';
import { useWide, widePasses } from './choice.js';
import { flashWideKey, flashWideWgsl } from './flashWide.wgsl.js';
import { wideBlocks, wideParams } from './wideTiles.wgsl.js';
import type { AttentionDims } from './reference.js';

export function attentionWithStatsGpu(
  gpu: GpuContext,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  d: AttentionDims,
): AttentionWithStats {
  const { B, T, H, Dk, Dv } = d;
  const [qc, kc, vc] = [contiguous(q), contiguous(k), contiguous(v)];
  const o = gpu.empty([B, T, H, Dv]);
  const lse = gpu.empty([B, H, T]);
  const rowMax = gpu.empty([B, H, T]);
  if (useWide(Dk, Dv)) {
    const wv = { Dk, Dv, causal: d.causal, stats: true, passes: widePasses() };
    gpu.dispatch({
      kernel: { name: 'attention_flash_stats', key: flashWideKey(wv), code: () => flashWideWgsl(wv) },
      tensors: [qc, kc, vc, o, lse, rowMax],
      params: wideParams(T, H, d.scale, Dk, Dv, widePasses()),
      workgroups: [H, wideBlocks(T), B],
    });
    for (const t of [qc, kc, vc]) t.dispose();
    return { o, lse, rowMax };
  }
  const variant = { Dk, Dv, causal: d.causal, stats: true, vec: flashVec(Dk, Dv) };
  gpu.dispatch({
    kernel: { name: 'attention_flash_stats', key: flashKey(variant), code: () => flashWgsl(variant) },
    tensors: [qc, kc, vc, o, lse, rowMax],
    params: tileParams(T, H, d.scale, Dk, Dv),
    workgroups: [H, blocksOf(T), B],
  });
  for (const t of [qc, kc, vc]) t.dispose();
  return { o, lse, rowMax };
}

export function attentionBackwardGpu(
  gpu: GpuContext,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: Tensor,
  lse: Tensor,
  dO: Tensor,
  d: AttentionDims,
): AttentionGradients {
  const { B, T, H, Dk, Dv } = d;
  const inputs = [q, k, v, o, lse, dO].map((t) => contiguous(t));
  const [qc, kc, vc, oc, lc, gc] = inputs;
  const D = gpu.empty([B, H, T]);
  const rows = B * T * H;
  gpu.dispatch({
    kernel: { name: 'attention_bwd_rowdot', key: `attention_bwd_rowdot_dv${Dv}`, code: () => rowDotWgsl(Dv) },
    tensors: [oc, gc, D],
    params: new Params().u32(rows, T, H, 0),
    workgroups: grid1d(rows, ROWDOT_WG),
  });
  const dq = gpu.empty([B, T, H, Dk]);
  const dk = gpu.empty([B, T, H, Dk]);
  const dv = gpu.empty([B, T, H, Dv]);
  if (useWide(Dk, Dv)) {
    const wv = { Dk, Dv, causal: d.causal, passes: widePasses() };
    const wp = wideParams(T, H, d.scale, Dk, Dv, widePasses());
    gpu.dispatch({
      kernel: { name: 'attention_bwd_dkdv', key: backwardWideKey('dkdv', wv), code: () => dkdvWideWgsl(wv) },
      tensors: [qc, kc, vc, gc, lc, D, dk, dv],
      params: wp,
      workgroups: [H, wideBlocks(T), B],
    });
    gpu.dispatch({
      kernel: { name: 'attention_bwd_dq', key: backwardWideKey('dq', wv), code: () => dqWideWgsl(wv) },
      tensors: [qc, kc, vc, gc, lc, D, dq],
      params: wp,
      workgroups: [H, wideBlocks(T), B],
    });
    for (const t of [...inputs, D]) t.dispose();
    return { dq, dk, dv };
  }
  const variant = { Dk, Dv, causal: d.causal, vec: flashVec(Dk, Dv) };
  const nb = blocksOf(T);
  const params = tileParams(T, H, d.scale, Dk, Dv);
  gpu.dispatch({
    kernel: { name: 'attention_bwd_dkdv', key: backwardKey('dkdv', variant), code: () => dkdvWgsl(variant) },
    tensors: [qc, kc, vc, gc, lc, D, dk, dv],
    params,
    workgroups: [H, nb, B],
  });
  gpu.dispatch({
    kernel: { name: 'attention_bwd_dq', key: backwardKey('dq', variant), code: () => dqWgsl(variant) },
    tensors: [qc, kc, vc, gc, lc, D, dq],
    params,
    workgroups: [H, nb, B],
  });
  for (const t of [...inputs, D]) t.dispose();
  return { dq, dk, dv };
}
