/**
 * Muon (Jordan et al.; Moonlight's scaled form, as Kimi Linear / K2 train): Nesterov momentum, then
 * the momentum matrix orthogonalised by 5 quintic Newton-Schulz steps and applied with the scale
 * 0.2 * sqrt(max(rows, cols)) that matches AdamW's update RMS, plus decoupled weight decay.
 * A stacked tensor [E, rows, cols] (routed experts) is E separate matrices: the normalisation and the
 * Newton-Schulz products run per matrix as one batched matmul.
 */
import { contiguous } from '../../kernels/copy/index.js';
import { ELEMENTWISE, elementwise } from '../../kernels/elementwise/index.js';
import { matmul } from '../../kernels/matmul/index.js';
import { reduce } from '../../kernels/reduce/index.js';
import { scope } from '../../tensor/scope.js';
import type { Tensor } from '../../tensor/tensor.js';
import { axpby, muonApply, muonMomentum, normalizeRows, sumsqRows } from './ops.js';
import { asGpu } from '../../kernels/common.js';
import type { CpuDevice } from '../../tensor/cpuDevice.js';
import { type MuonHyper, muonReference, muonScale, NS_COEFFS, NS_EPS, NS_STEPS } from './reference.js';

/** [E, rows, cols] of a 2-D or stacked 3-D weight. */
export function matrixDims(w: Tensor): [number, number, number] {
  if (w.rank === 2) return [1, w.shape[0], w.shape[1]];
  if (w.rank === 3) return [w.shape[0], w.shape[1], w.shape[2]];
  throw new Error(`muon: ${w} is not a matrix or a stack of matrices`);
}

/**
 * How the Newton-Schulz chain runs on webgpu. 'fused' (default): the Frobenius norms in two passes over
 * all matrices at once, X X^T and A A as symmetric products (only the tiles on and above the diagonal),
 * and b A + c A^2 and a X + B X as matmul epilogues: 3 dispatches per step. 'plain': the earlier chain
 * (square, reduce, 3 full matmuls and 2 axpby passes per step), kept for comparison on the device.
 */
export type NewtonSchulzMode = 'fused' | 'plain';
let nsMode: NewtonSchulzMode = 'fused';
export function setNewtonSchulzMode(m: NewtonSchulzMode): void {
  nsMode = m;
}

/**
 * Orthogonalise u [E, rows, cols] (per matrix); returns a new tensor of the same shape.
 * The chain reuses a few buffers (Gram A, B, B X or the next X, and two X that take turns) instead of
 * allocating new tensors per step: the pool hands a released buffer out again only after the next submit,
 * so a chain recorded in one batch used to hold 25 tensors of X's size (over 2 GB for the 39 768 x 768
 * projections of the 100M model), and the free list then outgrew the pool's cap and was destroyed and
 * re-created every training step.
 */
export function newtonSchulz(u: Tensor, E: number, rows: number, cols: number, steps = NS_STEPS): Tensor {
  return scope(() => {
    const tall = rows > cols;
    const fused = nsMode === 'fused';
    const norms = fused
      ? sumsqRows(u, E)
      : reduce(elementwise(ELEMENTWISE.mul, [u, u]).reshape([E, rows * cols]), 'sum');
    let x = normalizeRows(u.reshape([E, rows, cols]), norms, NS_EPS);
    // Work on the wide orientation so X X^T is the smaller Gram matrix.
    if (tall) x = contiguous(x.transpose(1, 2));
    const [r, c] = tall ? [cols, rows] : [rows, cols];
    const d = x.device;
    const [a, b, cc] = NS_COEFFS;
    let next = d.empty([E, r, c]);
    const [A, B] = [d.empty([E, r, r]), d.empty([E, r, r])];
    if (fused) {
      for (let s = 0; s < steps; s++) {
        matmul(x, x, { transB: true, out: A, symmetric: true }).dispose();
        // B = b A + c A^2 (A symmetric, so A^2 and B are too); X' = a X + B X. A and B are read as A^T and
        // B^T (bit for bit the same matrices, as the symmetric products mirror their tiles): that layout
        // stages both operands with whole-vec4 stores, the fastest of the tiled kernel's four.
        matmul(A, A, { transA: true, out: B, symmetric: true, epilogue: { d: A, scaleD: b, scaleAcc: cc } }).dispose();
        matmul(B, x, { transA: true, out: next, epilogue: { d: x, scaleD: a, scaleAcc: 1 } }).dispose();
        [x, next] = [next, x];
      }
    } else {
      const A2 = d.empty([E, r, r]);
      const BX = d.empty([E, r, c]);
      for (let s = 0; s < steps; s++) {
        matmul(x, x, { transB: true, out: A }).dispose();
        matmul(A, A, { out: A2 }).dispose();
        axpby(A, A2, b, cc, B).dispose();
        matmul(B, x, { out: BX }).dispose();
        axpby(x, BX, a, 1, next).dispose();
        [x, next] = [next, x];
      }
    }
    return tall ? contiguous(x.transpose(1, 2)) : x;
  });
}

/**
 * One Muon step for weight w (f32, [rows, cols] or [E, rows, cols]) with gradient g and momentum m, in
 * place; upd receives the applied change. The gradient is multiplied by scalars[coefSlot] first.
 */
export function muonStep(
  g: Tensor,
  w: Tensor,
  m: Tensor,
  upd: Tensor,
  h: MuonHyper,
  scalars: Tensor,
  coefSlot: number,
): void {
  const [E, rows, cols] = matrixDims(w);
  if (!asGpu(w.device)) {
    // cpu backend: the f64 reference is the definition (and much faster than op-by-op host kernels).
    const host = (t: Tensor) => (t.device as CpuDevice).view(t) as Float32Array;
    const before = host(w).slice();
    muonReference(host(g), host(w), host(m), E, rows, cols, h, host(scalars)[coefSlot]);
    const u = host(upd);
    const after = host(w);
    for (let i = 0; i < u.length; i++) u[i] = after[i] - before[i];
    return;
  }
  scope(() => {
    const u = w.device.empty(w.shape);
    muonMomentum(g, m, u, h.momentum, scalars, coefSlot);
    const o = newtonSchulz(u, E, rows, cols);
    muonApply(o.reshape(w.shape), w, upd, h.lr, muonScale(rows, cols), h.wd);
  });
}

export interface MuonItem {
  g: Tensor;
  w: Tensor;
  m: Tensor;
  upd: Tensor;
  /** Weight decay of this parameter. */
  wd: number;
}

/**
 * Muon for several parameters whose matrices share one shape up to a transpose ([rows, cols] or
 * [cols, rows]; stacks of E allowed): the momentum results are gathered into one [sum E, r, c] tensor in
 * the wide orientation (r <= c; tall matrices transposed on the way in and back on the way out, which
 * newtonSchulz would otherwise do per chain) so Newton-Schulz runs as one batched chain of matmuls
 * instead of one chain per parameter and orientation (a model has dozens of same-shape projections, the
 * 100M one e.g. 198 [256, 768] and 99 [768, 256] expert matrices, and each chain is ~17 dispatches).
 * The math per matrix is muonStep's (the Frobenius norm and the orthogonalisation do not depend on the
 * orientation; the update scale is symmetric in rows and cols).
 */
export function muonStepBatched(
  items: readonly MuonItem[],
  h: Omit<MuonHyper, 'wd'>,
  scalars: Tensor,
  coefSlot: number,
): void {
  const gpu = items.length ? asGpu(items[0].w.device) : undefined;
  if (!gpu || items.length === 1) {
    for (const it of items) muonStep(it.g, it.w, it.m, it.upd, { ...h, wd: it.wd }, scalars, coefSlot);
    return;
  }
  const dims = items.map((it) => matrixDims(it.w));
  const [, r0, c0] = dims[0];
  const [rows, cols] = r0 <= c0 ? [r0, c0] : [c0, r0];
  for (const [k, [, r, c]] of dims.entries()) {
    if (Math.min(r, c) !== rows || Math.max(r, c) !== cols) {
      throw new Error(`muonStepBatched: item ${k} is ${r}x${c}, expected the group's ${rows}x${cols} or its transpose`);
    }
  }
  const total = dims.reduce((n, [E]) => n + E, 0);
  const tall = (k: number) => dims[k][1] > dims[k][2];
  scope(() => {
    const U = gpu.empty([total, rows, cols]);
    let at = 0;
    for (const [k, it] of items.entries()) {
      const [E, r, c] = dims[k];
      const u = gpu.empty([E, r, c]);
      muonMomentum(it.g, it.m, u, h.momentum, scalars, coefSlot);
      const wide = tall(k) ? contiguous(u.transpose(1, 2)) : u;
      // A buffer copy needs only 4-byte alignment (a bound slice would need the storage-offset alignment).
      gpu.copyBytes(wide, 0, U, at, wide.numel);
      at += wide.numel;
    }
    const O = newtonSchulz(U, total, rows, cols);
    at = 0;
    for (const [k, it] of items.entries()) {
      const [E, r, c] = dims[k];
      const wide = gpu.empty([E, rows, cols]);
      gpu.copyBytes(O, at, wide, 0, wide.numel);
      at += wide.numel;
      const o = tall(k) ? contiguous(wide.transpose(1, 2)) : wide;
      muonApply(o.reshape(it.w.shape), it.w, it.upd, h.lr, muonScale(r, c), it.wd);
    }
  });
}
