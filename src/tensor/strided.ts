/** Reading a strided view element by element: the plain reference for every copy and `contiguous`. */
import { type DType, type HostArray, hostArrayFor } from './dtype.js';
import { numel, type Shape } from './shape.js';

export function gatherStrided(src: HostArray, dtype: DType, shape: Shape, strides: Shape, offset: number): HostArray {
  const n = numel(shape);
  const out = hostArrayFor(dtype, n);
  const rank = shape.length;
  if (rank === 0) {
    out[0] = src[offset];
    return out;
  }
  const idx = new Array<number>(rank).fill(0);
  let pos = offset;
  for (let i = 0; i < n; i++) {
    out[i] = src[pos];
    // Odometer increment: bump the last index, carrying into earlier dimensions.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      pos += strides[d];
      if (idx[d] < shape[d]) break;
      pos -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}
