/**
 * The optimizer's device ops: each checks its tensors, then records one WGSL dispatch (webgpu) or runs
 * the reference in place on the host arrays (cpu). All tensors are dense f32; `scalars` is the step's
 * scalar buffer and `coefSlot` the slot holding the gradient factor (see sumsqFinishWgsl).
 */
import { Params } from '../../gpu/params.js';
import { asGpu, deviceOf, expectDType, grid1d } from '../../kernels/common.js';
import type { CpuDevice } from '../../tensor/cpuDevice.js';
import type { Tensor } from '../../tensor/tensor.js';
import {
  adamwWgsl,
  axpbyWgsl,
  muonApplyWgsl,
  muonMomentumWgsl,
  normalizeRowsWgsl,
  OPTIM_WG,
  SUMSQ_GROUPS,
  scaleRowsWgsl,
  sumsqFinishWgsl,
  sumsqPartialWgsl,
  sumsqRowsFinishWgsl,
  sumsqRowsPartialWgsl,
} from './kernels.wgsl.js';
import {
  type AdamwHyper,
  adamwReference,
  axpbyReference,
  muonApplyReference,
  muonMomentumReference,
  normalizeRowsReference,
  scaleRowsReference,
  sumsqReference,
  sumsqRowsReference,
} from './reference.js';

/** The f32 host array behind a dense cpu tensor (a live view: writes go to the tensor). */
function host(t: Tensor): Float32Array {
  return (t.device as CpuDevice).view(t) as Float32Array;
}

function check(op: string, tensors: Record<string, Tensor>, n?: number): void {
  const list = Object.entries(tensors);
  deviceOf(op, ...list.map(([, t]) => t));
  for (const [name, t] of list) {
    expectDType(op, name, t, ['f32']);
    if (!t.isContiguous) throw new Error(`${op}: ${name} ${t} must be dense`);
    if (n !== undefined && t.numel !== n) throw new Error(`${op}: ${name} ${t} has ${t.numel} elements, expected ${n}`);
  }
}

export function adamwStep(
  g: Tensor,
  w: Tensor,
  m: Tensor,
  v: Tensor,
  upd: Tensor,
  h: AdamwHyper,
  scalars: Tensor,
  coefSlot: number,
): void {
  check('adamwStep', { g, w, m, v, upd }, w.numel);
  check('adamwStep', { scalars });
  const gpu = asGpu(w.device);
  if (!gpu) {
    adamwReference(host(g), host(w), host(m), host(v), host(upd), h, host(scalars)[coefSlot]);
    return;
  }
  gpu.dispatch({
    kernel: { name: 'optim_adamw', code: adamwWgsl },
    tensors: [scalars, g, w, m, v, upd],
    params: new Params()
      .u32(w.numel, coefSlot)
      .f32(h.lr, h.beta1, h.beta2, h.eps, h.wd, 1 - h.beta1 ** h.t, 1 - h.beta2 ** h.t),
    workgroups: grid1d(w.numel, OPTIM_WG),
  });
}

export function muonMomentum(g: Tensor, m: Tensor, out: Tensor, mu: number, scalars: Tensor, coefSlot: number): void {
  check('muonMomentum', { g, m, out }, g.numel);
  const gpu = asGpu(g.device);
  if (!gpu) {
    muonMomentumReference(host(g), host(m), host(out), mu, host(scalars)[coefSlot]);
    return;
  }
  gpu.dispatch({
    kernel: { name: 'optim_muon_momentum', code: muonMomentumWgsl },
    tensors: [scalars, g, m, out],
    params: new Params().u32(g.numel, coefSlot).f32(mu).u32(0),
    workgroups: grid1d(g.numel, OPTIM_WG),
  });
}

/** x [R, ...] divided row by row by (sqrt(sumsq[r]) + eps); returns a new tensor. */
export function normalizeRows(x: Tensor, sumsq: Tensor, eps: number): Tensor {
  const R = sumsq.numel;
  if (x.numel % R !== 0) throw new Error(`normalizeRows: ${x} does not split into ${R} rows`);
  check('normalizeRows', { x, sumsq });
  const rowLen = x.numel / R;
  const gpu = asGpu(x.device);
  if (!gpu) return x.device.fromHost(normalizeRowsReference(host(x), host(sumsq), rowLen, eps), x.shape);
  const out = gpu.empty(x.shape);
  gpu.dispatch({
    kernel: { name: 'optim_normalize_rows', code: normalizeRowsWgsl },
    tensors: [x, sumsq, out],
    params: new Params().u32(x.numel, rowLen).f32(eps).u32(0),
    workgroups: grid1d(x.numel, OPTIM_WG),
  });
  return out;
}

/** alpha * x + beta * y, a new tensor of x's shape, or written into `out` (dense, distinct from x and y). */
export function axpby(x: Tensor, y: Tensor, alpha: number, beta: number, out?: Tensor): Tensor {
  check('axpby', { x, y }, x.numel);
  if (out) check('axpby', { out }, x.numel);
  const gpu = asGpu(x.device);
  if (!gpu) {
    const r = axpbyReference(host(x), host(y), alpha, beta);
    if (!out) return x.device.fromHost(r, x.shape);
    host(out).set(r);
    return out.alias();
  }
  const o = out ? out.alias() : gpu.empty(x.shape);
  gpu.dispatch({
    kernel: { name: 'optim_axpby', code: axpbyWgsl },
    tensors: [x, y, o],
    params: new Params().u32(x.numel).f32(alpha, beta).u32(0),
    workgroups: grid1d(x.numel, OPTIM_WG),
  });
  return o;
}

export function muonApply(o: Tensor, w: Tensor, upd: Tensor, lr: number, scale: number, wd: number): void {
  check('muonApply', { o, w, upd }, w.numel);
  const gpu = asGpu(w.device);
  if (!gpu) {
    muonApplyReference(host(o), host(w), host(upd), lr, scale, wd);
    return;
  }
  gpu.dispatch({
    kernel: { name: 'optim_muon_apply', code: muonApplyWgsl },
    tensors: [o, w, upd],
    params: new Params().u32(w.numel).f32(lr, scale, wd),
    workgroups: grid1d(w.numel, OPTIM_WG),
  });
}

/** w viewed as [R, L] with R = factor.numel: row r scaled by factor[r], in place. */
export function scaleRows(w: Tensor, factor: Tensor): void {
  check('scaleRows', { w, factor });
  const R = factor.numel;
  if (w.numel % R !== 0) throw new Error(`scaleRows: ${w} does not split into ${R} rows`);
  const gpu = asGpu(w.device);
  if (!gpu) {
    scaleRowsReference(host(w), host(factor), w.numel / R);
    return;
  }
  gpu.dispatch({
    kernel: { name: 'optim_scale_rows', code: scaleRowsWgsl },
    tensors: [factor, w],
    params: new Params().u32(w.numel, w.numel / R, 0, 0),
    workgroups: grid1d(w.numel, OPTIM_WG),
  });
}

/** scalars[slot] = sum(x^2) (two passes on webgpu: strided partials, then one group sums them). */
export function sumsqInto(x: Tensor, scalars: Tensor, slot: number): void {
  check('sumsqInto', { x, scalars });
  if (slot >= scalars.numel) throw new Error(`sumsqInto: slot ${slot} outside the scalar buffer (${scalars.numel})`);
  const gpu = asGpu(x.device);
  if (!gpu) {
    host(scalars)[slot] = sumsqReference(host(x));
    return;
  }
  const groups = Math.max(1, Math.min(SUMSQ_GROUPS, Math.ceil(x.numel / OPTIM_WG)));
  const partial = gpu.empty([groups]);
  gpu.dispatch({
    kernel: { name: 'optim_sumsq_partial', code: sumsqPartialWgsl },
    tensors: [x, partial],
    params: new Params().u32(x.numel, groups * OPTIM_WG, 0, 0),
    workgroups: [groups],
  });
  gpu.dispatch({
    kernel: { name: 'optim_sumsq_finish', code: sumsqFinishWgsl },
    tensors: [partial, scalars],
    params: new Params().u32(groups, slot, 0, 0).f32(1, 0).u32(0, 0),
    workgroups: [1],
  });
  partial.dispose();
}

/**
 * Squared Frobenius norm of each of R matrices: x dense f32 viewed as [R, L]; returns [R]. Two passes on
 * webgpu (about 2048 workgroups of partial sums over all rows, then one workgroup per row).
 */
export function sumsqRows(x: Tensor, R: number): Tensor {
  check('sumsqRows', { x });
  if (R < 1 || x.numel % R !== 0) throw new Error(`sumsqRows: ${x} does not split into ${R} rows`);
  const L = x.numel / R;
  const gpu = asGpu(x.device);
  if (!gpu) return x.device.fromHost(sumsqRowsReference(host(x), R), [R]);
  // Enough groups per row to fill the GPU, no more than there are 256-element strides, nor one pass-2 group's 256.
  const G = Math.max(1, Math.min(OPTIM_WG, Math.ceil(2048 / R), Math.ceil(L / (4 * OPTIM_WG))));
  const partial = gpu.empty([R * G]);
  gpu.dispatch({
    kernel: { name: 'optim_sumsq_rows_partial', code: sumsqRowsPartialWgsl },
    tensors: [x, partial],
    params: new Params().u32(L, 0, 0, 0),
    workgroups: [G, R],
  });
  const out = gpu.empty([R]);
  gpu.dispatch({
    kernel: { name: 'optim_sumsq_rows_finish', code: sumsqRowsFinishWgsl },
    tensors: [partial, out],
    params: new Params().u32(G, 0, 0, 0),
    workgroups: [R],
  });
  partial.dispose();
  return out;
}

/**
 * From the squared gradient norms in scalars[first .. first+count): scalars[slot] = the global norm of
 * the averaged gradient (sqrt(sum) * gradScale), scalars[slot+1] = the factor the optimizers multiply
 * each gradient by: gradScale * min(1, maxNorm / (norm + 1e-6)) (maxNorm <= 0: no clipping).
 */
export function clipFactorInto(
  scalars: Tensor,
  first: number,
  count: number,
  slot: number,
  gradScale: number,
  maxNorm: number,
): void {
  check('clipFactorInto', { scalars });
  const gpu = asGpu(scalars.device);
  if (!gpu) {
    const s = host(scalars);
    let total = 0;
    for (let i = 0; i < count; i++) total += s[first + i];
    const norm = Math.fround(Math.sqrt(total) * gradScale);
    s[slot] = norm;
    s[slot + 1] = maxNorm > 0 ? gradScale * Math.min(1, maxNorm / (norm + 1e-6)) : gradScale;
    return;
  }
  const dummy = gpu.empty([1]);
  gpu.dispatch({
    kernel: { name: 'optim_sumsq_finish', code: sumsqFinishWgsl },
    tensors: [dummy, scalars],
    params: new Params().u32(count, slot, first, 1).f32(gradScale, maxNorm).u32(0, 0),
    workgroups: [1],
  });
  dummy.dispose();
}
