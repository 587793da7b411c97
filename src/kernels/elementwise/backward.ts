/**
 * Backward of the elementwise ops the model uses, as fused elementwise expressions (no new kernel: each
 * is one more expression for the generic kernel, with its plain-TS reference beside the WGSL):
 *   silu'(x) = s (1 + x (1 - s)),  s = sigmoid(x)
 *   swiglu(a, b) = silu(a) b:      da = dy b silu'(a),   db = dy silu(a)
 *   sigmoidMul(x, g) = x s(g):     dx = dy s(g),         dg = dy x s(g) (1 - s(g))
 * and `sumToTrailing`, the gradient of a trailing-dims operand broadcast over leading dims (a bias [D]
 * added to [N, D]): the sum over the leading dims, as column sums on the GPU (reduce/columns.ts; the
 * earlier transposed copy + row reduction stays behind setSumToTrailingColumns(false)).
 */
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu } from '../common.js';
import { contiguous } from '../copy/index.js';
import { columnSumsEnabled, setColumnSums, sumColumns, sumColumnsFits } from '../reduce/columns.js';
import { reduce } from '../reduce/index.js';
import { defineElementwise, elementwise } from './index.js';
import { sigmoid, silu } from './reference.js';

const dsiluRef = (x: number): number => {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
};
const DSILU = '(sigmoid(a) * (1.0 + a * (1.0 - sigmoid(a))))';

export const ELEMENTWISE_BACKWARD = {
  /** a = x, b = dy */
  siluGrad: defineElementwise({ name: 'siluGrad', arity: 2, wgsl: `b * ${DSILU}`, ref: (a, b) => b * dsiluRef(a) }),
  /** a = gate, b = up, c = dy: d gate */
  swigluGradGate: defineElementwise({
    name: 'swigluGradGate',
    arity: 3,
    wgsl: `c * b * ${DSILU}`,
    ref: (a, b, c) => c * b * dsiluRef(a),
  }),
  /** a = gate, b = dy: d up */
  swigluGradUp: defineElementwise({ name: 'swigluGradUp', arity: 2, wgsl: 'b * silu(a)', ref: (a, b) => b * silu(a) }),
  /** a = x, b = g, c = dy: d g */
  sigmoidMulGradGate: defineElementwise({
    name: 'sigmoidMulGradGate',
    arity: 3,
    wgsl: 'c * a * sigmoid(b) * (1.0 - sigmoid(b))',
    ref: (a, b, c) => c * a * sigmoid(b) * (1 - sigmoid(b)),
  }),
  /** a = dy, b = g: d x */
  sigmoidMulGradX: defineElementwise({
    name: 'sigmoidMulGradX',
    arity: 2,
    wgsl: 'a * sigmoid(b)',
    ref: (a, b) => a * sigmoid(b),
  }),
} as const;

export function siluBackward(x: Tensor, dy: Tensor): Tensor {
  return elementwise(ELEMENTWISE_BACKWARD.siluGrad, [x, dy]);
}

export function swigluBackward(gate: Tensor, up: Tensor, dy: Tensor): { dgate: Tensor; dup: Tensor } {
  return {
    dgate: elementwise(ELEMENTWISE_BACKWARD.swigluGradGate, [gate, up, dy]),
    dup: elementwise(ELEMENTWISE_BACKWARD.swigluGradUp, [gate, dy]),
  };
}

export function sigmoidMulBackward(x: Tensor, g: Tensor, dy: Tensor): { dx: Tensor; dg: Tensor } {
  return {
    dx: elementwise(ELEMENTWISE_BACKWARD.sigmoidMulGradX, [dy, g]),
    dg: elementwise(ELEMENTWISE_BACKWARD.sigmoidMulGradGate, [x, g, dy]),
  };
}

/**
 * true (default): sumToTrailing (and expandBackward) sum columns directly on the GPU; false: transposed copy +
 * row sums (A/B). The flag lives in reduce/columns.ts.
 */
export const setSumToTrailingColumns = setColumnSums;

/**
 * The gradient of an operand of shape `shape` (trailing dims of dy's) that was broadcast over dy's
 * leading dims: dy summed over them. Equal shapes give a dense copy.
 */
export function sumToTrailing(dy: Tensor, shape: readonly number[]): Tensor {
  const off = dy.rank - shape.length;
  if (off < 0 || shape.some((d, i) => d !== dy.shape[off + i])) {
    throw new ShapeError(`sumToTrailing: ${formatShape(shape)} is not the trailing dims of ${formatShape(dy.shape)}`);
  }
  const inner = shape.reduce((a, b) => a * b, 1);
  const dense = contiguous(dy);
  if (off === 0) return dense;
  if (columnSumsEnabled() && asGpu(dy.device) && sumColumnsFits(inner)) {
    // [lead, inner] summed down its columns in place (reduce/columns.ts): no transposed copy.
    const flat = dense.reshape([dy.numel / Math.max(inner, 1), inner]);
    const s = sumColumns(flat);
    const out = s.reshape([...shape]);
    for (const x of [dense, flat, s]) x.dispose();
    return out;
  }
  // [lead, inner] read as [inner, lead] (a transposed view), made dense, then summed row by row.
  const flat = dense.reshape([dy.numel / Math.max(inner, 1), inner]);
  const t = flat.transpose(0, 1);
  const rows = contiguous(t);
  const s = reduce(rows, 'sum');
  const out = s.reshape([...shape]);
  for (const x of [dense, flat, t, rows, s]) x.dispose();
  return out;
}
