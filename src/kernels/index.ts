/** The public ops. Each lives in its own folder (reference.ts, *.wgsl.ts, index.ts); see docs/CONVENTIONS.md. */
export { type Conv1dOptions, type Conv1dResult, causalConv1d } from './conv1d/index.js';
export { contiguous, copyInto } from './copy/index.js';
export {
  add,
  defineElementwise,
  ELEMENTWISE,
  type ElementwiseOp,
  elementwise,
  exp,
  mul,
  neg,
  scale,
  sigmoid,
  sigmoidMul,
  silu,
  softplus,
  swiglu,
} from './elementwise/index.js';
export { embedding } from './embedding/index.js';
export { l2norm } from './l2norm/index.js';
export { linear, type MatmulOptions, matmul } from './matmul/index.js';
export { argmax, type ReduceOp, reduce } from './reduce/index.js';
export { type RmsnormOptions, rmsnorm } from './rmsnorm/index.js';
export { softmax } from './softmax/index.js';
export { TOPK_MAX_K, type TopK, topk } from './topk/index.js';
