/**
 * rmsnorm(x [..., D], weight [D], eps): w * x / sqrt(mean(x^2) + eps) per row, f32 out. The weight may
 * be f32 or bf16 (as stored in checkpoints); x is f32. `opts.gate` (x's shape, f32) fuses KDA's output
 * gate: rmsnorm(o, o_norm) * sigmoid(gate) in one pass.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { decodeSubgroupSize } from '../fused/sweep.js';
import { type FloatDType, rowsOf } from '../wgslLib.js';
import { rmsnormReference } from './reference.js';
import { type NormVariant, normKey, normWgsl } from './rmsnorm.wgsl.js';

export interface RmsnormOptions {
  /** Multiply the result by sigmoid(gate); same shape as x, f32. */
  gate?: Tensor;
  /**
   * A decode step's norm: the sum of squares by subgroup shuffles where fused/sweep.ts decodeTuning.
   * subgroupSumsRest applies on this device (decodeSubgroupSize 'rest'); else (and by default) the tree.
   */
  decode?: boolean;
}

export function rmsnorm(x: Tensor, weight: Tensor, eps: number, opts: RmsnormOptions = {}): Tensor {
  const { gate } = opts;
  const device = deviceOf('rmsnorm', x, weight, ...(gate ? [gate] : []));
  expectDType('rmsnorm', 'x', x, ['f32']);
  expectDType('rmsnorm', 'weight', weight, ['f32', 'bf16']);
  if (x.rank < 1) throw new Error('rmsnorm: x is a scalar, expected [..., D]');
  const { rows, D } = rowsOf(x.shape);
  expectShape('rmsnorm', 'weight', weight, [D]);
  if (gate) {
    expectDType('rmsnorm', 'gate', gate, ['f32']);
    expectShape('rmsnorm', 'gate', gate, x.shape);
  }
  if (!(eps >= 0)) throw new Error(`rmsnorm: eps ${eps}, expected a number >= 0`);
  const gpu = asGpu(device);
  if (!gpu) {
    const g = gate ? hostF32(gate) : undefined;
    return cpu.fromHost(rmsnormReference(hostF32(x), hostF32(weight), rows, D, eps, g), x.shape);
  }
  const xc = contiguous(x);
  const wc = contiguous(weight);
  const gc = gate ? contiguous(gate) : undefined;
  const out = gpu.empty(x.shape);
  const sg = opts.decode ? decodeSubgroupSize(gpu, 'rest') : undefined;
  const v: NormVariant = { kind: 'rms', wDtype: weight.dtype as FloatDType, gated: !!gate, ...(sg ? { sg } : {}) };
  if (rows > 0 && D > 0) {
    gpu.dispatch({
      kernel: { name: 'rmsnorm', key: normKey(v), code: () => normWgsl(v) },
      tensors: gc ? [xc, wc, gc, out] : [xc, wc, out],
      params: new Params().u32(rows, D).f32(eps).u32(0),
      workgroups: grid1d(rows, 1),
    });
  }
  xc.dispose();
  wc.dispose();
  gc?.dispose();
  return out;
}
