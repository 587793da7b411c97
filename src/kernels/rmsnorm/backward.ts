/**
 * rmsnormBackward(x, weight, eps, dout, {gate}) -> { dx, dw [D], dgate? }: the gradient of
 * rmsnorm(x, weight, eps, {gate}) (formulas in backwardReference.ts). On webgpu one kernel writes dx,
 * dgate and the per-row products dy * xhat; dw is their sum over rows (a transposed copy and a row
 * reduction: rows * D extra f32, the size of one activation).
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { sumToTrailing } from '../elementwise/backward.js';
import { type FloatDType, rowsOf } from '../wgslLib.js';
import { rmsnormBackwardReference } from './backwardReference.js';
import { normBackwardKey, normBackwardWgsl } from './backward.wgsl.js';

export interface RmsnormGrads {
  dx: Tensor;
  dw: Tensor;
  dgate?: Tensor;
}

export function rmsnormBackward(
  x: Tensor,
  weight: Tensor,
  eps: number,
  dout: Tensor,
  opts: { gate?: Tensor } = {},
): RmsnormGrads {
  const op = 'rmsnormBackward';
  const { gate } = opts;
  const device = deviceOf(op, x, weight, dout, ...(gate ? [gate] : []));
  expectDType(op, 'x', x, ['f32']);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  expectDType(op, 'dout', dout, ['f32']);
  const { rows, D } = rowsOf(x.shape);
  expectShape(op, 'weight', weight, [D]);
  expectShape(op, 'dout', dout, x.shape);
  if (gate) {
    expectDType(op, 'gate', gate, ['f32']);
    expectShape(op, 'gate', gate, x.shape);
  }
  const gpu = asGpu(device);
  if (!gpu) {
    const r = rmsnormBackwardReference(
      hostF32(x),
      hostF32(weight),
      hostF32(dout),
      rows,
      D,
      eps,
      gate ? hostF32(gate) : undefined,
    );
    return {
      dx: cpu.fromHost(r.dx, x.shape),
      dw: cpu.fromHost(r.dw, [D]),
      dgate: r.dgate ? cpu.fromHost(r.dgate, x.shape) : undefined,
    };
  }
  const ins = [contiguous(x), contiguous(weight), contiguous(dout), ...(gate ? [contiguous(gate)] : [])];
  const dx = gpu.empty(x.shape);
  const dwRows = gpu.empty([rows, D]);
  const dgate = gate ? gpu.empty(x.shape) : undefined;
  const v = { wDtype: weight.dtype as FloatDType, gated: !!gate };
  if (rows > 0 && D > 0) {
    gpu.dispatch({
      kernel: { name: 'rmsnorm_backward', key: normBackwardKey(v), code: () => normBackwardWgsl(v) },
      tensors: [...ins, dx, dwRows, ...(dgate ? [dgate] : [])],
      params: new Params().u32(rows, D).f32(eps).u32(0),
      workgroups: grid1d(rows, 1),
    });
  }
  for (const t of ins) t.dispose();
  const dw = sumToTrailing(dwRows, [D]);
  dwRows.dispose();
  return { dx, dw, dgate };
}
