/**
 * rope(x [B, T, H, dr], positions, theta) -> [B, T, H, dr] f32: the rotary embedding of MLA's qk_rope
 * part (convention and formula in reference.ts). `positions` is an i32 tensor [B*T] of absolute
 * positions (decode: each sequence's own), or a number: the position of t = 0, the same for every row
 * of the batch (prefill from the start: 0). ropeBackward(dy, ...) is the gradient (the inverse rotation).
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { ropeInvFreq, ropeReference } from './reference.js';
import { ROPE_WG, ropeKey, ropeWgsl } from './rope.wgsl.js';

export { ropeInvFreq, ropeReference } from './reference.js';

export function rope(x: Tensor, positions: Tensor | number, theta: number): Tensor {
  return rotate('rope', x, positions, theta, false);
}

/** d loss / d x given d loss / d y: the rotation is orthogonal, so this is its inverse. */
export function ropeBackward(dy: Tensor, positions: Tensor | number, theta: number): Tensor {
  return rotate('ropeBackward', dy, positions, theta, true);
}

function rotate(op: string, x: Tensor, positions: Tensor | number, theta: number, inverse: boolean): Tensor {
  const device = typeof positions === 'number' ? deviceOf(op, x) : deviceOf(op, x, positions);
  expectDType(op, 'x', x, ['f32']);
  expectShape(op, 'x', x, [null, null, null, null]);
  const [B, T, H, dr] = x.shape;
  if (dr % 2 || dr === 0 || dr > 256) throw new Error(`${op}: rope dim dr = ${dr}, expected an even size in 2..256`);
  if (!(theta > 0)) throw new RangeError(`${op}: theta = ${theta}, expected > 0`);
  const N = B * T;
  let pos: Tensor;
  if (typeof positions === 'number') {
    if (!Number.isInteger(positions) || positions < 0)
      throw new RangeError(`${op}: position offset ${positions}, expected an integer >= 0`);
    pos = device.fromHost(
      Int32Array.from({ length: N }, (_, n) => positions + (n % T)),
      [N],
      'i32',
    );
  } else {
    expectDType(op, 'positions', positions, ['i32']);
    expectShape(op, 'positions', positions, [N]);
    pos = contiguous(positions);
  }
  const gpu = asGpu(device);
  try {
    if (!gpu) {
      const y = ropeReference(hostF32(x), hostI32(pos), { N, H, dr, theta }, inverse);
      return cpu.fromHost(y, x.shape);
    }
    const xc = contiguous(x);
    const out = gpu.empty(x.shape);
    const total = N * H * (dr / 2);
    const freq = ropeInvFreq(dr, theta);
    const params = new Params().u32(total, H, 0, 0).f32(...freq, ...new Array((4 - (freq.length % 4)) % 4).fill(0));
    if (total > 0) {
      gpu.dispatch({
        kernel: { name: 'rope', key: ropeKey(dr, inverse), code: () => ropeWgsl(dr, inverse) },
        tensors: [xc, pos, out],
        params,
        workgroups: grid1d(Math.ceil(total / ROPE_WG), 1),
      });
    }
    xc.dispose();
    return out;
  } finally {
    pos.dispose();
  }
}
