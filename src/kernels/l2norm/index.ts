/** l2norm(x [..., D], eps = 1e-6): x / sqrt(sum(x^2) + eps) per row (KDA normalises q and k per head). */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { rowsOf } from '../wgslLib.js';
import { l2normKey, l2normWgsl } from './l2norm.wgsl.js';
import { l2normReference } from './reference.js';

export function l2norm(x: Tensor, eps = 1e-6): Tensor {
  const device = deviceOf('l2norm', x);
  expectDType('l2norm', 'x', x, ['f32']);
  if (x.rank < 1) throw new Error('l2norm: x is a scalar, expected [..., D]');
  if (!(eps >= 0)) throw new Error(`l2norm: eps ${eps}, expected a number >= 0`);
  const { rows, D } = rowsOf(x.shape);
  const gpu = asGpu(device);
  if (!gpu) return cpu.fromHost(l2normReference(hostF32(x), rows, D, eps), x.shape);
  const xc = contiguous(x);
  const out = gpu.empty(x.shape);
  if (rows > 0 && D > 0) {
    gpu.dispatch({
      kernel: { name: 'l2norm', key: l2normKey, code: l2normWgsl },
      tensors: [xc, out],
      params: new Params().u32(rows, D).f32(eps).u32(0),
      workgroups: grid1d(rows, 1),
    });
  }
  xc.dispose();
  return out;
}
