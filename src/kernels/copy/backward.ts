/**
 * Gradients of the view ops. reshape, unsqueeze and alias are free (the gradient is reshaped back);
 * these two are not:
 *   narrowBackward(dy, fullShape, dim, start): dy placed into zeros of the full shape (one kernel)
 *   expandBackward(dy, shape): dy summed over the dimensions `expand` repeated (size 1 in `shape`), each
 *     by a transposed view made dense and a row reduction.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, expectDType, grid1d, hostF32 } from '../common.js';
import { reduce } from '../reduce/index.js';
import { columnSumsEnabled, sumColumns, sumColumnsFits } from '../reduce/columns.js';
import { narrowBackwardReference } from './backwardReference.js';
import { PAD_WG, narrowBackwardWgsl } from './backward.wgsl.js';
import { contiguous } from './index.js';

export function narrowBackward(dy: Tensor, fullShape: readonly number[], dim: number, start: number): Tensor {
  expectDType('narrowBackward', 'dy', dy, ['f32']);
  const d = dim < 0 ? dim + fullShape.length : dim;
  const L = dy.shape[d];
  const ok =
    dy.rank === fullShape.length &&
    d >= 0 &&
    d < dy.rank &&
    start >= 0 &&
    start + L <= fullShape[d] &&
    dy.shape.every((s, i) => i === d || s === fullShape[i]);
  if (!ok) {
    throw new ShapeError(
      `narrowBackward: dy ${formatShape(dy.shape)} is not a narrow(${dim}, ${start}, ...) of ${formatShape(fullShape)}`,
    );
  }
  const F = fullShape[d];
  const inner = fullShape.slice(d + 1).reduce((a, b) => a * b, 1);
  const outer = fullShape.slice(0, d).reduce((a, b) => a * b, 1);
  const dims = { outer, F, L, inner, start };
  const gpu = asGpu(dy.device);
  if (!gpu) return cpu.fromHost(narrowBackwardReference(hostF32(dy), dims), fullShape);
  const dc = contiguous(dy);
  const out = gpu.empty(fullShape);
  const n = out.numel;
  if (n > 0) {
    gpu.dispatch({
      kernel: { name: 'narrow_backward', code: narrowBackwardWgsl },
      tensors: [dc, out],
      params: new Params().u32(n, F, L, inner, start, 0, 0, 0),
      workgroups: grid1d(n, PAD_WG),
    });
  }
  dc.dispose();
  return out;
}

/** Sum dy over the dimensions where `shape` is 1 and dy is not (what `expand` repeated). */
export function expandBackward(dy: Tensor, shape: readonly number[]): Tensor {
  if (shape.length !== dy.rank || shape.some((s, i) => s !== dy.shape[i] && s !== 1)) {
    throw new ShapeError(`expandBackward: ${formatShape(dy.shape)} is not an expansion of ${formatShape(shape)}`);
  }
  let g = contiguous(dy);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === g.shape[d]) continue;
    // [pre, n, post] -> [pre, post, n] (transposed view, made dense) -> sum of each row -> size 1 at d.
    const pre = g.shape.slice(0, d).reduce((a, b) => a * b, 1);
    const post = g.shape.slice(d + 1).reduce((a, b) => a * b, 1);
    const v = g.reshape([pre, g.shape[d], post]);
    if (columnSumsEnabled() && asGpu(g.device) && sumColumnsFits(post, pre)) {
      // Each of the pre [n, post] blocks summed down its columns (reduce/columns.ts): no transposed copy.
      const s = sumColumns(v);
      const next = s.reshape(g.shape.map((x, i) => (i === d ? 1 : x)));
      for (const x of [g, v, s]) x.dispose();
      g = next;
      continue;
    }
    const t = v.transpose(1, 2);
    const rows = contiguous(t);
    const s = reduce(rows, 'sum');
    const next = s.reshape(g.shape.map((x, i) => (i === d ? 1 : x)));
    for (const x of [g, v, t, rows, s]) x.dispose();
    g = next;
  }
  return g;
}
