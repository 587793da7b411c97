/**
 * Backward of concatLast(a, b) along the last dimension: the two slices of dy, made dense. A copy per
 * operand, no new kernel.
 */
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous } from '../copy/index.js';

export function concatLastBackward(dy: Tensor, widthA: number): { da: Tensor; db: Tensor } {
  const last = dy.shape[dy.rank - 1];
  if (widthA < 0 || widthA > last)
    throw new ShapeError(`concatLastBackward: width ${widthA} of a outside dy ${formatShape(dy.shape)}`);
  const va = dy.narrow(-1, 0, widthA);
  const vb = dy.narrow(-1, widthA, last - widthA);
  const out = { da: contiguous(va), db: contiguous(vb) };
  va.dispose();
  vb.dispose();
  return out;
}
