/**
 * causalConv1dBackward(x, weight, dy, {activation}) -> { dx, dw [C, 1, W] }: the gradient of
 * causalConv1d(x, weight, {activation}) with a zero initial state (how training runs it). Formulas in
 * backwardReference.ts; the three GPU passes and their cost in backward.wgsl.ts (dw: block partial sums,
 * then a reduction over the blocks).
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import type { FloatDType } from '../wgslLib.js';
import { conv1dBackwardReference } from './backwardReference.js';
import {
  CONV_BWD_WG,
  CONV_DW_ROWS,
  type ConvBackwardPass,
  convBackwardKey,
  convBackwardWgsl,
} from './backward.wgsl.js';
import { sumToTrailing } from '../elementwise/backward.js';

export function causalConv1dBackward(
  x: Tensor,
  weight: Tensor,
  dy: Tensor,
  opts: { activation?: 'none' | 'silu' } = {},
): { dx: Tensor; dw: Tensor } {
  const op = 'causalConv1dBackward';
  const device = deviceOf(op, x, weight, dy);
  expectDType(op, 'x', x, ['f32']);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  expectDType(op, 'dy', dy, ['f32']);
  if (x.rank !== 2 && x.rank !== 3) {
    throw new ShapeError(`${op}: x has shape ${formatShape(x.shape)}, expected [T, C] or [B, T, C]`);
  }
  const [B, T, C] = x.rank === 3 ? x.shape : [1, ...x.shape];
  expectShape(op, 'weight', weight, [C, 1, null]);
  expectShape(op, 'dy', dy, x.shape);
  const W = weight.shape[2];
  const activation = opts.activation ?? 'none';
  if (activation !== 'none' && activation !== 'silu')
    throw new Error(`${op}: activation '${activation}', expected 'none' or 'silu'`);
  const silu = activation === 'silu';
  const gpu = asGpu(device);
  if (!gpu) {
    const r = conv1dBackwardReference(hostF32(x), hostF32(weight), hostF32(dy), { B, T, C, W }, silu);
    return { dx: cpu.fromHost(r.dx, x.shape), dw: cpu.fromHost(r.dw, weight.shape) };
  }
  const [xc, wc, dc] = [contiguous(x), contiguous(weight), contiguous(dy)];
  const n = B * T * C;
  const wDtype = weight.dtype as FloatDType;
  const run = (pass: ConvBackwardPass, tensors: Tensor[], items: number) => {
    const v = { pass, W, wDtype, silu };
    if (items > 0) {
      gpu.dispatch({
        kernel: { name: `conv1d_backward_${pass}`, key: convBackwardKey(v), code: () => convBackwardWgsl(v) },
        tensors,
        params: new Params().u32(items, B, T, C),
        workgroups: grid1d(items, CONV_BWD_WG),
      });
    }
  };
  const dpre = gpu.empty(x.shape);
  run('dpre', [xc, wc, dc, dpre], n);
  const dx = gpu.empty(x.shape);
  run('dx', [dpre, wc, dx], n);
  const blocks = Math.max(1, Math.ceil((B * T) / CONV_DW_ROWS));
  const partial = gpu.empty([blocks, C * W]);
  run('dw', [dpre, xc, partial], blocks * C * W);
  const sum = sumToTrailing(partial, [C * W]);
  const dw = sum.reshape(weight.shape);
  for (const t of [xc, wc, dc, dpre, partial, sum]) t.dispose();
  return { dx, dw };
}
