/**
 * causalConv1d(x [T, C] | [B, T, C], weight [C, 1, W] f32|bf16, opts) -> { y, state? }: KDA's causal
 * depthwise short convolution, y[t,c] = sum_j w[c,0,j] x[t-(W-1)+j, c], zero padded or continued from
 * `state` (the previous W-1 input rows, [B, W-1, C]; [W-1, C] also accepted for 2-D x). With
 * `activation: 'silu'` the output is silu(conv) in the same pass. With `returnState` the new tail (the
 * last W-1 rows of state ++ x, shaped like x's rank) comes back for the next decode step.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import type { FloatDType } from '../wgslLib.js';
import { CONV_WG, type Conv1dVariant, conv1dKey, conv1dTailWgsl, conv1dWgsl } from './conv1d.wgsl.js';
import { type Conv1dDims, conv1dReference, conv1dTailReference } from './reference.js';

export interface Conv1dOptions {
  /** The previous W-1 input rows per sequence; zeros when absent. */
  state?: Tensor;
  activation?: 'none' | 'silu';
  /** Also return the new tail (last W-1 rows of state ++ x). */
  returnState?: boolean;
}

export interface Conv1dResult {
  y: Tensor;
  state?: Tensor;
}

export function causalConv1d(x: Tensor, weight: Tensor, opts: Conv1dOptions = {}): Conv1dResult {
  const op = 'causalConv1d';
  const { state } = opts;
  const device = deviceOf(op, x, weight, ...(state ? [state] : []));
  expectDType(op, 'x', x, ['f32']);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  if (x.rank !== 2 && x.rank !== 3) {
    throw new ShapeError(`${op}: x has shape ${formatShape(x.shape)}, expected [T, C] or [B, T, C]`);
  }
  const [B, T, C] = x.rank === 3 ? x.shape : [1, ...x.shape];
  expectShape(op, 'weight', weight, [C, 1, null]);
  const W = weight.shape[2];
  if (W < 1) throw new ShapeError(`${op}: weight has width ${W}, expected >= 1`);
  if (state) {
    expectDType(op, 'state', state, ['f32']);
    if (x.rank === 2 && state.rank === 2) expectShape(op, 'state', state, [W - 1, C]);
    else expectShape(op, 'state', state, [B, W - 1, C]);
  }
  const activation = opts.activation ?? 'none';
  if (activation !== 'none' && activation !== 'silu')
    throw new Error(`${op}: activation '${activation}', expected 'none' or 'silu'`);
  const silu = activation === 'silu';
  const d: Conv1dDims = { B, T, C, W };
  const tailShape = x.rank === 3 ? [B, W - 1, C] : [W - 1, C];
  const gpu = asGpu(device);
  if (!gpu) {
    const xs = hostF32(x);
    const ss = state ? hostF32(state) : undefined;
    const y = cpu.fromHost(conv1dReference(xs, hostF32(weight), ss, d, silu), x.shape);
    if (!opts.returnState) return { y };
    return { y, state: cpu.fromHost(conv1dTailReference(xs, ss, d), tailShape) };
  }
  const hasState = !!state && W > 1;
  const xc = contiguous(x);
  const wc = contiguous(weight);
  const sc = hasState ? contiguous(state!) : undefined;
  const inputs = sc ? [xc, sc] : [xc];
  const y = gpu.empty(x.shape);
  const n = B * T * C;
  const v: Conv1dVariant = { W, wDtype: weight.dtype as FloatDType, hasState, silu };
  if (n > 0) {
    gpu.dispatch({
      kernel: { name: 'conv1d', key: conv1dKey(v), code: () => conv1dWgsl(v) },
      tensors: [...inputs, wc, y],
      params: new Params().u32(n, T, C, 0),
      workgroups: grid1d(n, CONV_WG),
    });
  }
  let tail: Tensor | undefined;
  if (opts.returnState) {
    tail = gpu.empty(tailShape);
    const nt = B * (W - 1) * C;
    if (nt > 0) {
      gpu.dispatch({
        kernel: { name: 'conv1d_tail', key: `conv1d_tail_w${W}_${hasState}`, code: () => conv1dTailWgsl(W, hasState) },
        tensors: [...inputs, tail],
        params: new Params().u32(nt, T, C, 0),
        workgroups: grid1d(nt, CONV_WG),
      });
    }
  }
  for (const t of [xc, wc, sc]) t?.dispose();
  return tail ? { y, state: tail } : { y };
}
