/**
 * Cross-entropy for training: crossEntropy(logits, targets) and linearCrossEntropy(h, W, targets), the
 * latter fused with the LM head and processed in row chunks so the full [N, V] logits never exist.
 * Both return the mean loss over counted rows (target != ignoreIndex) as a [1] tensor and its gradient.
 * See reference.ts for the definition (all-ignored batches give loss 0 and zero gradients).
 *
 * Targets outside [0, V) that are not ignoreIndex: the cpu backend throws a RangeError naming the row;
 * the GPU cannot raise errors without a readback, so its kernels treat such a row as ignored (no loss,
 * zero gradient, not counted) instead of reading out of bounds.
 */
import { cpu } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32, hostI32 } from '../common.js';
import { crossEntropyGpu, linearCrossEntropyGpu } from './gpu.js';
import { crossEntropyReference, DEFAULT_IGNORE_INDEX, linearCrossEntropyReference } from './reference.js';

export { DEFAULT_IGNORE_INDEX } from './reference.js';

export interface CrossEntropyOptions {
  /** Rows with this target add nothing and are not counted (default -100, as PyTorch). */
  ignoreIndex?: number;
}

export interface LinearCrossEntropyOptions extends CrossEntropyOptions {
  /** Rows of logits computed at once on the GPU (rounded up to a multiple of 64); default 1024. */
  chunkRows?: number;
}

export interface CrossEntropyOutput {
  /** [1] mean loss over counted rows. */
  loss: Tensor;
  /** [N, V] d loss / d logits. */
  dLogits: Tensor;
}

export interface LinearCrossEntropyOutput {
  /** [1] */
  loss: Tensor;
  /** [N, D] */
  dh: Tensor;
  /** [V, D] */
  dWeight: Tensor;
}

export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): CrossEntropyOutput {
  const op = 'crossEntropy';
  const device = deviceOf(op, logits, targets);
  expectDType(op, 'logits', logits, ['f32']);
  expectDType(op, 'targets', targets, ['i32']);
  if (logits.rank !== 2) expectShape(op, 'logits', logits, [null, null]);
  const [N, V] = logits.shape;
  expectShape(op, 'targets', targets, [N]);
  const ignoreIndex = opts.ignoreIndex ?? DEFAULT_IGNORE_INDEX;
  const gpu = asGpu(device);
  if (gpu) return crossEntropyGpu(gpu, logits, targets, { N, V, ignoreIndex });
  const r = crossEntropyReference(hostF32(logits), hostI32(targets), V, ignoreIndex);
  return { loss: cpu.fromHost(new Float32Array([r.loss]), [1]), dLogits: cpu.fromHost(r.dLogits, [N, V]) };
}

export function linearCrossEntropy(
  h: Tensor,
  weight: Tensor,
  targets: Tensor,
  opts: LinearCrossEntropyOptions = {},
): LinearCrossEntropyOutput {
  const op = 'linearCrossEntropy';
  const device = deviceOf(op, h, weight, targets);
  expectDType(op, 'h', h, ['f32']);
  // A bf16 LM head is read as is by matmul (widened per element); gradients are f32.
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  expectDType(op, 'targets', targets, ['i32']);
  if (h.rank !== 2) expectShape(op, 'h', h, [null, null]);
  const [N, D] = h.shape;
  if (weight.rank !== 2) expectShape(op, 'weight', weight, [null, D]);
  const V = weight.shape[0];
  expectShape(op, 'weight', weight, [V, D]);
  expectShape(op, 'targets', targets, [N]);
  const ignoreIndex = opts.ignoreIndex ?? DEFAULT_IGNORE_INDEX;
  const chunkRows = opts.chunkRows ?? 1024;
  if (!(Number.isInteger(chunkRows) && chunkRows >= 1)) {
    throw new RangeError(`${op}: chunkRows = ${chunkRows}, expected a positive integer`);
  }
  const gpu = asGpu(device);
  if (gpu) return linearCrossEntropyGpu(gpu, h, weight, targets, { N, D, V, ignoreIndex, chunkRows });
  const r = linearCrossEntropyReference(hostF32(h), hostF32(weight), hostI32(targets), { N, D, V }, ignoreIndex);
  return {
    loss: cpu.fromHost(new Float32Array([r.loss]), [1]),
    dh: cpu.fromHost(r.dh, [N, D]),
    dWeight: cpu.fromHost(r.dWeight, [V, D]),
  };
}
