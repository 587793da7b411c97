/**
 * Backward of linear(x, W) = x @ W^T for x [..., K] and W [N, K]:
 *   dX = dY @ W        ([rows, N] @ [N, K])
 *   dW = dY^T @ X      ([N, rows] @ [rows, K])
 * Both are the forward matmul with transpose flags, so no new kernel: dY^T is read transposed in place.
 * W may be bf16 (it is only ever the B operand); dW is always f32.
 *
 * `accumulate` (a gradient already held for x, e.g. from the other projections reading the same normed
 * input): dX = accumulate + dY @ W, through the matmul epilogue when that keeps the product's plan (else a
 * separate add). Either way the same f32 value as adding afterwards: the epilogue computes 1 * D + 1 * acc.
 */
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { contiguous } from '../copy/index.js';
import { add } from '../elementwise/index.js';
import { epilogueKeepsPlan, matmul } from './index.js';

/** true (default): linear's backward adds a pending dX in the matmul epilogue; false: the tape adds it (A/B). */
let fusedAccumulate = true;
export function setLinearFusedAccumulate(on: boolean): void {
  fusedAccumulate = on;
}
export function linearFusedAccumulate(): boolean {
  return fusedAccumulate;
}

export interface LinearGrads {
  dx?: Tensor;
  dw?: Tensor;
}

function rows2d(t: Tensor, cols: number): Tensor {
  const dense = contiguous(t);
  const r = dense.reshape([t.numel / cols, cols]);
  dense.dispose();
  return r;
}

export function linearBackward(
  x: Tensor,
  weight: Tensor,
  dy: Tensor,
  need: { dx?: boolean; dw?: boolean } = { dx: true, dw: true },
  accumulate?: Tensor,
): LinearGrads {
  const [N, K] = weight.shape;
  if (weight.rank !== 2) throw new ShapeError(`linearBackward: weight ${formatShape(weight.shape)} must be [out, in]`);
  if (x.shape[x.rank - 1] !== K || dy.shape[dy.rank - 1] !== N || x.numel / K !== dy.numel / N) {
    throw new ShapeError(
      `linearBackward: x ${formatShape(x.shape)}, weight ${formatShape(weight.shape)} and dy ${formatShape(dy.shape)} do not fit y = x W^T`,
    );
  }
  const dy2 = rows2d(dy, N);
  const out: LinearGrads = {};
  try {
    if (need.dx) {
      const rows = dy2.shape[0];
      const fuse =
        accumulate !== undefined &&
        accumulate.dtype === 'f32' &&
        accumulate.isContiguous &&
        accumulate.numel === rows * K &&
        weight.dtype === 'f32' &&
        epilogueKeepsPlan(rows, K, N, false, false);
      const dx2 = fuse
        ? matmul(dy2, weight, { epilogue: { d: accumulate, scaleD: 1, scaleAcc: 1 } })
        : matmul(dy2, weight);
      if (accumulate && !fuse) {
        const shaped = dx2.reshape(x.shape);
        out.dx = add(accumulate, shaped);
        shaped.dispose();
      } else {
        out.dx = dx2.reshape(x.shape);
      }
      dx2.dispose();
    }
    if (need.dw) {
      const x2 = rows2d(x, K);
      out.dw = matmul(dy2, x2, { transA: true });
      x2.dispose();
    }
  } finally {
    dy2.dispose();
  }
  return out;
}
