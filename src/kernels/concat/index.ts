/**
 * concatLast(a, b): join two f32 tensors along the last dimension (leading dimensions equal). Views,
 * including stride-0 broadcasts made with `expand`, are made dense first.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { CONCAT_WG, concatWgsl } from './concat.wgsl.js';
import { concatLastReference } from './reference.js';

export function concatLast(a: Tensor, b: Tensor): Tensor {
  const device = deviceOf('concatLast', a, b);
  expectDType('concatLast', 'a', a, ['f32']);
  expectDType('concatLast', 'b', b, ['f32']);
  const lead = a.shape.slice(0, -1);
  if (b.rank !== a.rank || b.shape.slice(0, -1).some((d, i) => d !== lead[i])) {
    throw new ShapeError(`concatLast: leading dimensions differ: ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  }
  const A = a.shape[a.rank - 1];
  const B = b.shape[b.rank - 1];
  const rows = a.numel / Math.max(A, 1);
  const shape = [...lead, A + B];
  const gpu = asGpu(device);
  if (!gpu) return cpu.fromHost(concatLastReference(hostF32(a), hostF32(b), rows, A, B), shape);
  const [ac, bc] = [contiguous(a), contiguous(b)];
  const out = gpu.empty(shape);
  gpu.dispatch({
    kernel: { name: 'concat_last', code: concatWgsl },
    tensors: [ac, bc, out],
    params: new Params().u32(out.numel, A, B, 0),
    workgroups: grid1d(out.numel, CONCAT_WG),
  });
  ac.dispose();
  bc.dispose();
  return out;
}
