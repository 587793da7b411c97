/** softmax(x [..., D]) over the last dimension, numerically stable (the row max is subtracted). */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { rowsOf } from '../wgslLib.js';
import { softmaxReference } from './reference.js';
import { softmaxWgsl } from './softmax.wgsl.js';

export function softmax(x: Tensor): Tensor {
  const device = deviceOf('softmax', x);
  expectDType('softmax', 'x', x, ['f32']);
  if (x.rank < 1) throw new Error('softmax: x is a scalar, expected [..., D]');
  const { rows, D } = rowsOf(x.shape);
  const gpu = asGpu(device);
  if (!gpu) return cpu.fromHost(softmaxReference(hostF32(x), rows, D), x.shape);
  const xc = contiguous(x);
  const out = gpu.empty(x.shape);
  if (rows > 0 && D > 0) {
    gpu.dispatch({
      kernel: { name: 'softmax', code: softmaxWgsl },
      tensors: [xc, out],
      params: new Params().u32(rows, D, 0, 0),
      workgroups: grid1d(rows, 1),
    });
  }
  xc.dispose();
  return out;
}
