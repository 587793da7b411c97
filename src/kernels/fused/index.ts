/**
 * Fusions for the decode step (BatchSession): each replaces two or more small dispatches of the
 * unfused ops with one, computing the same thing (reference.ts states it; the tests compare).
 *   addRmsnorm(x, deltas, w, eps) -> { sum, normed }  residual add (+ MoE shared expert) + next RMSNorm
 *   convStep(x, weight, tail, ...) -> y [planes, B, Cp]  KDA short conv of one token, tail shifted in place
 *   swigluRows(x, gate, up, I) -> [rows, I]           SwiGLU over column ranges of a packed projection
 *   swigluLinear(x, gate, up, W) -> [rows, N]         that SwiGLU, then W (the down projection), in one GEMV
 *   headGemv(x, w, opts) -> [B, H, N + P]             per-head GEMV (absorbed MLA), optional pass-through columns
 *   headGemv(x, w, {f16Query}) -> qh [B, HP, R / 2] i32  the same, written as the int8 f16 MLA kernel's query
 *   addRmsnormLinear(x, deltas, w, eps, W) -> { sum, y } addRmsnorm, then the projection of the normed row
 *   gatedRmsnormLinear(o, gate, w, eps, W, H) -> [rows, N] KDA's gated per-head o_norm, then o_proj
 *   rmsnormConcat(x, off, r, pass, w, eps) -> [B, r + pass] MLA's normed compressed kv with k_pe appended
 *   rmsnormCacheWrite(x, off, r, pass, w, eps, to)    rmsnormConcat's row appended to the latent cache, one dispatch
 *   routeRanked(logits, bias, cfg) -> routes          moe route() in one pass (sigmoid, ungrouped)
 *   moeSharedDecode(h, routes, w, shared) -> [y]      routed + shared experts of a token in two dispatches
 *   moeRoutedDecode(h, router, w, shared) -> [y]      the router too, inside the first of those two
 *   addRmsnormLinear(..., { route }) -> + routes       the router at the end of the projection's dispatch
 * They are inference-only: no autograd wrapper, and convStep mutates its tail.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { type FloatDType, rowsOf } from '../wgslLib.js';
import { type AddNormVariant, addNormKey, addNormWgsl } from './addRmsnorm.wgsl.js';
import { CONV_STEP_WG, type ConvStepVariant, convStepKey, convStepWgsl } from './convStep.wgsl.js';
import {
  gatedNormGemvRows,
  GNG_WG,
  type GatedNormGemvVariant,
  gatedNormGemvKey,
  gatedNormGemvStagedBytes,
  gatedNormGemvWgsl,
} from './gatedNormGemv.wgsl.js';
import { type L2Prefetch, l2PrefetchTuning, prefetchWorkgroups } from './l2Prefetch.js';
import { decodeSubgroupSize } from './sweep.js';
import { normConcatKey, normConcatWgsl } from './normConcat.wgsl.js';
import { NORM_CACHE_MAX_R, type NormCachePool, normCacheWriteKey, normCacheWriteWgsl } from './normCacheWrite.wgsl.js';
import { cacheWrite } from '../mla/index.js';
import { int8RowLayout } from '../mla/int8Layout.js';
import { i32PoolKind, packF16Rows } from '../mla/f16Layout.js';
import type { MlaCacheDtype } from '../mla/int8Layout.js';
import { HG_MAX_M, HG_ROWS_PER_WG, headGemvKey, headGemvWgsl } from './headGemv.wgsl.js';
import { int8F16QueryDispatch } from '../mla/int8F16Decode.js';
import {
  NORM_GEMV_MAX_K,
  type NormGemvVariant,
  normGemvKey,
  normGemvRows,
  normGemvSharedBytes,
  normGemvWgsl,
} from './normGemv.wgsl.js';
import { routeTailTuning, routeTailWords } from './routeTail.wgsl.js';
import {
  addRmsnormReference,
  convStepReference,
  headGemvReference,
  normConcatReference,
  swigluRowsReference,
} from './reference.js';
import { SWIGLU_ROWS_WG, swigluRowsWgsl } from './swigluRows.wgsl.js';
import { SG_MAX_M, SG_ROWS_PER_WG, swigluGemvKey, swigluGemvWgsl } from './swigluGemv.wgsl.js';
import { concatLast } from '../concat/index.js';
import { linear, matmul } from '../matmul/index.js';
import { rmsnorm } from '../rmsnorm/index.js';
import { type MoeDecodeVariant, moeDecodeKey, moeDecodeRows, moeDecodeWgsl, sharedOf } from '../moe/decode.wgsl.js';
import {
  type ExpertWeights,
  expertsDecodeDown,
  expertsInference,
  type RouterConfig,
  type RoutesT,
  route,
} from '../moe/index.js';
import { ROUTE_FOLD_MAX_E, ROUTE_FOLD_MAX_TOKENS } from './routeFold.wgsl.js';
import { ROUTE_RANK_MAX_E, routeRankKey, routeRankWgsl } from './routeRank.wgsl.js';

/**
 * sum = x + (d0 [+ d1]) and normed = rmsnorm(sum, weight, eps), both with x's shape (f32). One or two
 * deltas: the MoE layer's routed and shared expert outputs are added to each other first, as the unfused
 * `add(routed, shared)` then `add(y, moe)` do.
 */
export function addRmsnorm(
  x: Tensor,
  deltas: readonly Tensor[],
  weight: Tensor,
  eps: number,
): { sum: Tensor; normed: Tensor } {
  const op = 'addRmsnorm';
  if (deltas.length !== 1 && deltas.length !== 2) throw new Error(`${op}: ${deltas.length} deltas, expected 1 or 2`);
  const device = deviceOf(op, x, ...deltas, weight);
  expectDType(op, 'x', x, ['f32']);
  deltas.forEach((d, i) => {
    expectDType(op, `delta ${i}`, d, ['f32']);
    if (d.numel !== x.numel) throw new ShapeError(`${op}: delta ${i} has ${d.numel} elements, x has ${x.numel}`);
  });
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  const { rows, D } = rowsOf(x.shape);
  expectShape(op, 'weight', weight, [D]);
  if (!(eps >= 0)) throw new Error(`${op}: eps ${eps}, expected a number >= 0`);
  const gpu = asGpu(device);
  if (!gpu) {
    const r = addRmsnormReference(hostF32(x), deltas.map(hostF32), hostF32(weight), rows, D, eps);
    return { sum: cpu.fromHost(r.sum, x.shape), normed: cpu.fromHost(r.normed, x.shape) };
  }
  const ins = [x, ...deltas, weight].map(contiguous);
  const sum = gpu.empty(x.shape);
  const normed = gpu.empty(x.shape);
  const v: AddNormVariant = { deltas: deltas.length as 1 | 2, wDtype: weight.dtype as FloatDType, ...restSgOf(gpu) };
  if (rows > 0 && D > 0) {
    gpu.dispatch({
      kernel: { name: 'add_rmsnorm', key: addNormKey(v), code: () => addNormWgsl(v) },
      tensors: [...ins, sum, normed],
      params: new Params().u32(rows, D).f32(eps).u32(0),
      workgroups: grid1d(rows, 1),
    });
  }
  for (const t of ins) t.dispose();
  return { sum, normed };
}

export interface ConvStepOptions {
  /** Column of x where channel 0 sits (x's rows may hold more than the C channels). Default 0. */
  xOff?: number;
  /** Output planes: y is [planes, B, C / planes]. Default 1. */
  planes?: number;
  activation?: 'silu' | 'none';
}

/**
 * One token per row of the causal depthwise conv: x [B, ld] (channels at columns xOff..xOff+C), weight
 * [C, 1, W] f32|bf16, tail [B, W-1, C] f32 (the previous W-1 inputs, updated in place to end with x).
 * Returns y [planes, B, C / planes].
 */
export function convStep(x: Tensor, weight: Tensor, tail: Tensor, opts: ConvStepOptions = {}): Tensor {
  const op = 'convStep';
  const device = deviceOf(op, x, weight, tail);
  expectDType(op, 'x', x, ['f32']);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  expectDType(op, 'tail', tail, ['f32']);
  if (x.rank !== 2) throw new ShapeError(`${op}: x must be [B, ld], got rank ${x.rank}`);
  const [B, ld] = x.shape;
  expectShape(op, 'weight', weight, [null, 1, null]);
  const [C, , W] = weight.shape;
  const xOff = opts.xOff ?? 0;
  const planes = opts.planes ?? 1;
  if (W < 2) throw new ShapeError(`${op}: kernel width ${W}, expected >= 2 (a tail to carry)`);
  if (xOff + C > ld) throw new ShapeError(`${op}: channels ${xOff}..${xOff + C} pass x's row length ${ld}`);
  if (!(Number.isInteger(planes) && planes >= 1 && C % planes === 0))
    throw new ShapeError(`${op}: ${C} channels do not split into ${planes} planes`);
  expectShape(op, 'tail', tail, [B, W - 1, C]);
  const silu = (opts.activation ?? 'silu') === 'silu';
  const Cp = C / planes;
  const gpu = asGpu(device);
  if (!gpu) {
    const tailData = hostF32(tail);
    if (!tail.isContiguous) throw new Error(`${op}: the tail must be a dense tensor (it is updated in place)`);
    const xc = contiguous(x);
    const y = convStepReference(
      hostF32(xc),
      hostF32(weight),
      tailData,
      { B, C, W, ld, xOff, planes },
      silu ? 'silu' : 'none',
    );
    xc.dispose();
    return cpu.fromHost(y, [planes, B, Cp]);
  }
  if (!gpu.isBindable(tail)) throw new Error(`${op}: the tail must be a dense tensor (it is updated in place)`);
  const xc = contiguous(x);
  const wc = contiguous(weight);
  const y = gpu.empty([planes, B, Cp]);
  const n = B * C;
  const v: ConvStepVariant = { W, wDtype: weight.dtype as FloatDType, silu };
  if (n > 0) {
    gpu.dispatch({
      kernel: { name: 'conv_step', key: convStepKey(v), code: () => convStepWgsl(v) },
      tensors: [xc, wc, tail, y],
      params: new Params().u32(n, C, Cp, B, ld, xOff, 0, 0),
      workgroups: grid1d(n, CONV_STEP_WG),
    });
  }
  xc.dispose();
  wc.dispose();
  return y;
}

/** silu(x[:, gate:gate+I]) * x[:, up:up+I] for x [rows, ld] f32 -> [rows, I]. */
export function swigluRows(x: Tensor, gate: number, up: number, I: number): Tensor {
  const op = 'swigluRows';
  const device = deviceOf(op, x);
  expectDType(op, 'x', x, ['f32']);
  if (x.rank !== 2) throw new ShapeError(`${op}: x must be [rows, ld], got rank ${x.rank}`);
  const [rows, ld] = x.shape;
  for (const [name, at] of [
    ['gate', gate],
    ['up', up],
  ] as const) {
    if (!(Number.isInteger(at) && at >= 0 && at + I <= ld))
      throw new ShapeError(`${op}: ${name} columns ${at}..${at + I} outside x's ${ld}`);
  }
  const gpu = asGpu(device);
  const xc = contiguous(x);
  if (!gpu) {
    const y = swigluRowsReference(hostF32(xc), rows, ld, gate, up, I);
    xc.dispose();
    return cpu.fromHost(y, [rows, I]);
  }
  const y = gpu.empty([rows, I]);
  const n = rows * I;
  if (n > 0) {
    gpu.dispatch({
      kernel: { name: 'swiglu_rows', key: 'swiglu_rows', code: swigluRowsWgsl },
      tensors: [xc, y],
      params: new Params().u32(n, I, ld, gate, up, 0, 0, 0),
      workgroups: grid1d(n, SWIGLU_ROWS_WG),
    });
  }
  xc.dispose();
  return y;
}

/**
 * down(silu(x[:, gate:gate+I]) * x[:, up:up+I]) for x [rows, ld] f32 and W [N, I] f32|bf16 -> [rows, N]:
 * swigluRows then linear. At decode shapes (<= 8 rows, aligned columns) one GEMV with the activation in
 * its input load (swigluGemv.wgsl.ts); otherwise the two ops.
 */
export function swigluLinear(x: Tensor, gate: number, up: number, weight: Tensor): Tensor {
  const op = 'swigluLinear';
  const device = deviceOf(op, x, weight);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  if (weight.rank !== 2) throw new ShapeError(`${op}: weight must be [N, I], got rank ${weight.rank}`);
  const [N, I] = weight.shape;
  const gpu = asGpu(device);
  const rows = x.rank === 2 ? x.shape[0] : 0;
  const ld = x.rank === 2 ? x.shape[1] : 0;
  const bf16 = weight.dtype === 'bf16';
  const fused =
    gpu &&
    x.dtype === 'f32' &&
    rows >= 1 &&
    rows <= SG_MAX_M &&
    I % (bf16 ? 8 : 4) === 0 &&
    gate % 4 === 0 &&
    up % 4 === 0 &&
    ld % 4 === 0 &&
    gate >= 0 &&
    up >= 0 &&
    gate + I <= ld &&
    up + I <= ld &&
    gpu.isBindable(weight);
  if (!fused) {
    const h = swigluRows(x, gate, up, I);
    const y = linear(h, weight);
    h.dispose();
    return y;
  }
  const xc = contiguous(x);
  const y = gpu.empty([rows, N]);
  const v = { M: rows, wDtype: weight.dtype as 'f32' | 'bf16', ...restSgOf(gpu) };
  if (N > 0) {
    gpu.dispatch({
      kernel: { name: 'swiglu_gemv', key: swigluGemvKey(v), code: () => swigluGemvWgsl(v) },
      tensors: [xc, weight, y],
      params: new Params().u32(N, I, ld / 4, gate / 4, up / 4, 0, 0, 0),
      workgroups: grid1d(N, SG_ROWS_PER_WG),
    });
  }
  xc.dispose();
  return y;
}

export interface HeadGemvOptions {
  /** The K inputs of each head start at this column of x's head row (K is w's last dimension). Default 0. */
  xOff?: number;
  /** Columns of another [B, H, ps] tensor copied after the N outputs of each head. */
  pass?: { t: Tensor; offset: number; count: number };
  /**
   * Return the int8 f16 MLA kernel's query instead of y: qh [B, HP, (N + P) / 2] i32, f16 pairs of y * c (c as f32)
   * with heads H..HP-1 zero, bit for bit what int8F16QueryWgsl makes of y (int8F16Decode's query dispatch, which a
   * ready qh then skips: mlaDecode with an MlaReadyQuery). One dispatch where y's would be and N, P are even; else
   * y's path and that query dispatch.
   */
  f16Query?: { HP: number; c: number };
}

/**
 * y[b, h, :N] = w[h] x[b, h, xOff : xOff + K] for x [B, H, xs] f32 and w [H, N, K] f32|bf16, then the
 * `pass` columns pt[b, h, offset : offset + count] (pt [B, H, ps] f32) appended: y [B, H, N + count].
 * One dispatch at decode shapes (B <= 8, 16-byte aligned rows); otherwise the batched matmul and a concat.
 */
export function headGemv(x: Tensor, w: Tensor, opts: HeadGemvOptions = {}): Tensor {
  const op = 'headGemv';
  const pass = opts.pass;
  const device = deviceOf(op, x, w, ...(pass ? [pass.t] : []));
  expectDType(op, 'x', x, ['f32']);
  expectDType(op, 'w', w, ['f32', 'bf16']);
  if (x.rank !== 3 || w.rank !== 3) throw new ShapeError(`${op}: x must be [B, H, xs] and w [H, N, K]`);
  const [B, H, xs] = x.shape;
  expectShape(op, 'w', w, [H, null, null]);
  const [, N, K] = w.shape;
  const xOff = opts.xOff ?? 0;
  if (xOff + K > xs) throw new ShapeError(`${op}: inputs ${xOff}..${xOff + K} pass x's head row of ${xs}`);
  const P = pass?.count ?? 0;
  if (pass) {
    expectDType(op, 'pass', pass.t, ['f32']);
    expectShape(op, 'pass', pass.t, [B, H, null]);
    if (pass.offset + P > pass.t.shape[2]) throw new ShapeError(`${op}: pass-through columns pass its row`);
  }
  const fq = opts.f16Query;
  if (fq) {
    if (!Number.isInteger(fq.HP) || fq.HP < H)
      throw new ShapeError(`${op}: f16Query.HP must be an integer >= H = ${H}, got ${fq.HP}`);
    if ((N + P) % 2) throw new ShapeError(`${op}: f16Query packs f16 pairs: N + P = ${N + P} must be even`);
  }
  const gpu = asGpu(device);
  if (!gpu) {
    const xc = contiguous(x);
    const pc = pass ? contiguous(pass.t) : undefined;
    const ps = pass ? pass.t.shape[2] : 0;
    const y = headGemvReference(hostF32(xc), hostF32(w), pc ? hostF32(pc) : undefined, {
      B,
      H,
      N,
      K,
      xs,
      xOff,
      P,
      ps,
      ptOff: pass?.offset ?? 0,
    });
    xc.dispose();
    pc?.dispose();
    if (fq) return cpu.fromHost(f16QueryReference(y, B, H, N + P, fq.HP, fq.c), [B, fq.HP, (N + P) / 2], 'i32');
    return cpu.fromHost(y, [B, H, N + P]);
  }
  const bf16 = w.dtype === 'bf16';
  const fits = B >= 1 && B <= HG_MAX_M && K % (bf16 ? 8 : 4) === 0 && xs % 4 === 0 && xOff % 4 === 0 && H <= 65535;
  if (fq && !(fits && N % 2 === 0 && P % 2 === 0 && fq.HP <= 65535)) {
    // y as usual, then the decode's own query dispatch on it.
    const y = headGemv(x, w, { ...opts, f16Query: undefined });
    const qh = int8F16QueryDispatch(gpu, y, fq.HP, fq.c);
    y.dispose();
    return qh;
  }
  if (!fits) {
    // [H, B, K] x [H, N, K]^T, back to [B, H, N], then the pass-through columns.
    const xk = contiguous(x.narrow(2, xOff, K).transpose(0, 1));
    const yT = matmul(xk, w, { transB: true });
    const y = contiguous(yT.transpose(0, 1));
    for (const t of [xk, yT]) t.dispose();
    if (!pass) return y;
    const tail = pass.t.narrow(2, pass.offset, P);
    const out = concatLast(y, tail);
    y.dispose();
    tail.dispose();
    return out;
  }
  const xc = contiguous(x);
  const wc = contiguous(w);
  const pc = pass ? contiguous(pass.t) : undefined;
  const y = fq ? gpu.empty([B, fq.HP, (N + P) / 2], 'i32') : gpu.empty([B, H, N + P]);
  const v = { M: B, wDtype: w.dtype as 'f32' | 'bf16', pass: !!pass, ...(fq ? { f16q: true } : {}), ...sgOf(gpu) };
  const params = new Params().u32(N, K, H, xs / 4, xOff / 4, P, pass ? pass.t.shape[2] : 0, pass?.offset ?? 0);
  if (fq) params.u32(fq.HP).f32(fq.c).u32(0, 0);
  gpu.dispatch({
    kernel: { name: 'head_gemv', key: headGemvKey(v), code: () => headGemvWgsl(v) },
    tensors: pc ? [xc, wc, pc, y] : [xc, wc, y],
    params,
    workgroups: [Math.max(1, Math.ceil(N / HG_ROWS_PER_WG)), fq ? fq.HP : H],
  });
  for (const t of [xc, wc, pc]) t?.dispose();
  return y;
}

/**
 * The MoE router on columns of addRmsnormLinear's output (the packed projection of a decode token): its logits
 * at columns col..col+E-1 of y. `scratch` is an i32 tensor of at least routeTailWords(E) elements, zero when
 * created and left zero by every dispatch that uses it (routeTail.wgsl.ts), so one can serve a whole session.
 */
export interface NormLinearRoute {
  col: number;
  bias?: Tensor;
  cfg: RouterConfig;
  scratch: Tensor;
}

/**
 * addRmsnorm(x, deltas, normWeight, eps) followed by linear(normed, weight [N, D]): returns the residual
 * sum, y [rows, N] and, with `keepNormed`, the normed rows. One dispatch for a single row at decode
 * shapes (normGemv.wgsl.ts); otherwise the two ops. With `route`, where the one dispatch applies (and the
 * router's shape does: see routeInNormApplies), that dispatch also ranks the router logits among y's columns
 * and returns the token's routes (the same as routeRanked of those columns); elsewhere `routes` is absent and
 * the caller routes.
 */
export function addRmsnormLinear(
  x: Tensor,
  deltas: readonly Tensor[],
  normWeight: Tensor,
  eps: number,
  weight: Tensor,
  opts: { keepNormed?: boolean; conv?: NormLinearConv; route?: NormLinearRoute; prefetch?: L2Prefetch } = {},
): { sum: Tensor; y: Tensor; normed?: Tensor; conv?: Tensor; routes?: RoutesT } {
  const op = 'addRmsnormLinear';
  const device = deviceOf(op, x, ...deltas, normWeight, weight);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  const { rows, D } = rowsOf(x.shape);
  expectShape(op, 'weight', weight, [null, D]);
  const gpu = asGpu(device);
  const bf16 = weight.dtype === 'bf16';
  const cv = opts.conv;
  if (cv) {
    expectShape(op, 'conv.weight', cv.weight, [null, 1, null]);
    const [C, , W] = cv.weight.shape;
    if (C > weight.shape[0])
      throw new ShapeError(`${op}: ${C} conv channels, but the projection has ${weight.shape[0]}`);
    expectShape(op, 'conv.tail', cv.tail, [rows, W - 1, C]);
  }
  const fused =
    gpu &&
    rows === 1 &&
    D % (bf16 ? 8 : 4) === 0 &&
    D <= NORM_GEMV_MAX_K &&
    (deltas.length === 1 || deltas.length === 2) &&
    x.dtype === 'f32' &&
    deltas.every((d) => d.dtype === 'f32' && d.numel === x.numel) &&
    (normWeight.dtype === 'f32' || normWeight.dtype === 'bf16') &&
    normWeight.numel === D &&
    eps >= 0 &&
    gpu.isBindable(weight);
  const convFused =
    !cv ||
    (cv.weight.shape[2] >= 2 &&
      (cv.weight.dtype === 'f32' || cv.weight.dtype === 'bf16') &&
      cv.tail.dtype === 'f32' &&
      !!gpu?.isBindable(cv.tail));
  if (!fused || !convFused) {
    const r = addRmsnorm(x, deltas, normWeight, eps);
    const y = linear(r.normed, weight);
    const conv = cv ? convStep(y, cv.weight, cv.tail, { planes: cv.planes }) : undefined;
    if (!opts.keepNormed) r.normed.dispose();
    return { sum: r.sum, y, ...(opts.keepNormed ? { normed: r.normed } : {}), ...(conv ? { conv } : {}) };
  }
  const N = weight.shape[0];
  const ins = [x, ...deltas, normWeight].map(contiguous);
  const sum = gpu.empty(x.shape);
  const y = gpu.empty([...x.shape.slice(0, -1), N]);
  const v: NormGemvVariant = {
    K: D,
    deltas: deltas.length as 1 | 2,
    normDtype: normWeight.dtype as FloatDType,
    wDtype: weight.dtype as 'f32' | 'bf16',
    normed: !!opts.keepNormed,
    ...(cv ? { conv: { W: cv.weight.shape[2], wDtype: cv.weight.dtype as FloatDType } } : {}),
    ...sgOf(gpu),
  };
  const rt = opts.route;
  if (rt && routeInNormApplies(gpu, rt, N, v))
    v.route = {
      E: rt.cfg.numExperts,
      k: rt.cfg.topK,
      hasBias: !!rt.bias,
      select: routeTailTuning.select,
      ...sortSgOf(gpu),
    };
  const normed = opts.keepNormed ? gpu.empty(x.shape) : undefined;
  const C = cv ? cv.weight.shape[0] : 0;
  const planes = cv?.planes ?? 1;
  if (cv && C % planes !== 0) throw new ShapeError(`${op}: ${C} conv channels do not split into ${planes} planes`);
  // [planes, 1, C / planes]: the layout convStep gives for one row (plane-major, so the same memory as [C]).
  const conv = cv ? gpu.empty([planes, 1, C / planes]) : undefined;
  const cw = cv ? contiguous(cv.weight) : undefined;
  const tensors = [...ins, weight, sum, y, ...(normed ? [normed] : []), ...(cv ? [cw!, cv.tail, conv!] : [])];
  const { pf, workgroups } = prefetchGrid(gpu, grid1d(N, normGemvRows(v)), opts.prefetch);
  if (pf) v.l2 = true;
  const guard = l2PrefetchTuning.guard;
  const params = new Params().u32(N, D).f32(eps).u32(C);
  let routes: RoutesT | undefined;
  if (v.route && rt) {
    // The router workgroups: those whose rows meet col..col+E-1.
    const R = normGemvRows(v);
    const { E, k } = v.route;
    const rg0 = Math.floor(rt.col / R);
    routes = { idx: gpu.empty([1, k], 'i32'), weights: gpu.empty([1, k]) };
    tensors.push(rt.scratch, ...(rt.bias ? [rt.bias] : []), routes.idx, routes.weights);
    params
      .u32(rt.col, rg0, Math.ceil((rt.col + E) / R) - rg0, rt.cfg.renormalize ? 1 : 0)
      .f32(rt.cfg.scaling)
      .u32(pf ? guard : 0, 0, 0);
  } else if (pf) params.u32(guard, 0, 0, 0);
  if (pf) tensors.push(pf.range, pf.sink);
  gpu.dispatch({
    kernel: {
      name: cv ? 'norm_gemv_conv' : v.route ? 'norm_gemv_route' : 'norm_gemv',
      key: normGemvKey(v),
      code: () => normGemvWgsl(v),
    },
    tensors,
    params,
    workgroups,
  });
  for (const t of ins) t.dispose();
  cw?.dispose();
  return { sum, y, ...(normed ? { normed } : {}), ...(conv ? { conv } : {}), ...(routes ? { routes } : {}) };
}

/**
 * A norm GEMV's grid with an L2 prefetch's workgroups after its own (l2Prefetch.ts), where the prefetch is asked for,
 * can be bound and the grid is one row of workgroups; `pf` the prefetch that runs (undefined: none).
 */
function prefetchGrid(
  gpu: NonNullable<ReturnType<typeof asGpu>>,
  grid: readonly [number, number],
  prefetch: L2Prefetch | undefined,
): { pf?: L2Prefetch; workgroups: readonly [number, number] } {
  if (!prefetch || grid[1] !== 1 || !l2PrefetchApplies(gpu, prefetch)) return { workgroups: grid };
  return { pf: prefetch, workgroups: [grid[0] + prefetchWorkgroups(prefetch), 1] };
}

/** Whether a prefetch's range and sink can be bound (contiguous, aligned; the sink an i32 word at least). */
function l2PrefetchApplies(gpu: NonNullable<ReturnType<typeof asGpu>>, pf: L2Prefetch): boolean {
  return (
    pf.range.numel > 0 &&
    gpu.isBindable(pf.range) &&
    deviceOf('l2Prefetch', pf.range, pf.sink) === gpu &&
    pf.sink.dtype === 'i32' &&
    pf.sink.numel >= 1 &&
    gpu.isBindable(pf.sink)
  );
}

/**
 * Whether addRmsnormLinear's one dispatch (variant v, N outputs) can rank the router's logits at its end: sigmoid
 * scores without a group limit, E within ROUTE_FOLD_MAX_E, the logits among y's columns, an f32 bias of E, the
 * scratch large enough, and the route's workgroup arrays within the device's workgroup memory.
 */
function routeInNormApplies(
  gpu: NonNullable<ReturnType<typeof asGpu>>,
  rt: NormLinearRoute,
  N: number,
  v: NormGemvVariant,
): boolean {
  const { cfg, bias, scratch } = rt;
  const E = cfg.numExperts;
  const grouped = cfg.numGroups > 1 && cfg.topkGroup < cfg.numGroups;
  return (
    !grouped &&
    cfg.activation === 'sigmoid' &&
    E >= 1 &&
    E <= ROUTE_FOLD_MAX_E &&
    cfg.topK >= 1 &&
    cfg.topK <= E &&
    Number.isInteger(rt.col) &&
    rt.col >= 0 &&
    rt.col + E <= N &&
    (!bias || (bias.dtype === 'f32' && bias.numel === E && gpu.isBindable(bias))) &&
    scratch.dtype === 'i32' &&
    scratch.numel >= routeTailWords(E) &&
    gpu.isBindable(scratch) &&
    normGemvSharedBytes({ ...v, route: { E, k: cfg.topK, hasBias: !!bias } }) <=
      gpu.limits.maxComputeWorkgroupStorageSize
  );
}

/**
 * The KDA decode conv fused into addRmsnormLinear: outputs 0..C-1 of the projection (C = weight's first
 * dimension) also go through convStep(y, weight, tail, { planes }) (tail updated in place); the result,
 * [planes, rows, C / planes], comes back as `conv`.
 */
export interface NormLinearConv {
  /** [C, 1, W] f32|bf16. */
  weight: Tensor;
  /** [rows, W - 1, C] f32, dense. */
  tail: Tensor;
  planes?: number;
}

/**
 * KDA's output projection of a decode step: linear(rmsnorm(o, normWeight, eps, { gate }), weight) for o and
 * gate [rows, H * d] (the norm per head of d values, as KimiLinearModel.kda runs it on [.., H, d]) and
 * weight [N, H * d] -> [rows, N]. One dispatch for a single row (gatedNormGemv.wgsl.ts); otherwise the two ops.
 */
export function gatedRmsnormLinear(
  o: Tensor,
  gate: Tensor,
  normWeight: Tensor,
  eps: number,
  weight: Tensor,
  H: number,
  prefetch?: L2Prefetch,
): Tensor {
  const op = 'gatedRmsnormLinear';
  const device = deviceOf(op, o, gate, normWeight, weight);
  expectDType(op, 'o', o, ['f32']);
  expectDType(op, 'gate', gate, ['f32']);
  expectDType(op, 'normWeight', normWeight, ['f32', 'bf16']);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  const { rows, D: K } = rowsOf(o.shape);
  if (gate.numel !== o.numel) throw new ShapeError(`${op}: gate has ${gate.numel} elements, o has ${o.numel}`);
  if (!(Number.isInteger(H) && H >= 1 && K % H === 0)) throw new ShapeError(`${op}: ${H} heads do not divide ${K}`);
  const d = K / H;
  expectShape(op, 'normWeight', normWeight, [d]);
  expectShape(op, 'weight', weight, [null, K]);
  const gpu = asGpu(device);
  const fused =
    gpu &&
    rows === 1 &&
    d % 4 === 0 &&
    GNG_WG % H === 0 &&
    K % (weight.dtype === 'bf16' ? 8 : 4) === 0 &&
    eps >= 0 &&
    gpu.isBindable(weight);
  if (!fused) {
    const heads = (t: Tensor) => t.reshape([rows, H, d]);
    const [oh, gh] = [contiguous(o), contiguous(gate)];
    const [o3, g3] = [heads(oh), heads(gh)];
    const normed = rmsnorm(o3, normWeight, eps, { gate: g3 });
    const flat = normed.reshape([...o.shape.slice(0, -1), K]);
    const y = linear(flat, weight);
    for (const t of [oh, gh, o3, g3, normed, flat]) t.dispose();
    return y;
  }
  const N = weight.shape[0];
  const ins = [o, gate, normWeight].map(contiguous);
  const y = gpu.empty([...o.shape.slice(0, -1), N]);
  const v: GatedNormGemvVariant = {
    H,
    d,
    normDtype: normWeight.dtype as FloatDType,
    wDtype: weight.dtype as 'f32' | 'bf16',
    staged: gatedNormGemvStagedBytes(H, d) <= gpu.limits.maxComputeWorkgroupStorageSize,
    ...sgOf(gpu),
    ...(decodeSubgroupSize(gpu, 'rest') ? { normSg: decodeSubgroupSize(gpu, 'rest') } : {}),
  };
  if (N > 0) {
    const { pf, workgroups } = prefetchGrid(gpu, grid1d(N, gatedNormGemvRows(v)), prefetch);
    if (pf) v.l2 = true;
    gpu.dispatch({
      kernel: { name: 'gated_norm_gemv', key: gatedNormGemvKey(v), code: () => gatedNormGemvWgsl(v) },
      tensors: [...ins, weight, y, ...(pf ? [pf.range, pf.sink] : [])],
      params: new Params()
        .u32(N, K)
        .f32(eps)
        .u32(pf ? l2PrefetchTuning.guard : 0),
      workgroups,
    });
  }
  for (const t of ins) t.dispose();
  return y;
}

/**
 * The checks rmsnormConcat and rmsnormCacheWrite share: x [B, ld] f32, the normed columns off .. off + r - 1
 * and the `pass` copied after them inside its row, weight [r] f32 or bf16, eps >= 0. Returns x's [B, ld].
 */
function checkNormSlice(
  op: string,
  x: Tensor,
  off: number,
  r: number,
  pass: number,
  weight: Tensor,
  eps: number,
): [number, number] {
  expectDType(op, 'x', x, ['f32']);
  expectDType(op, 'weight', weight, ['f32', 'bf16']);
  expectShape(op, 'x', x, [null, null]);
  expectShape(op, 'weight', weight, [r]);
  const [B, ld] = x.shape;
  if (!(off >= 0 && r >= 1 && pass >= 0 && off + r + pass <= ld))
    throw new ShapeError(`${op}: columns ${off}..${off + r + pass} pass x's row of ${ld}`);
  if (!(eps >= 0)) throw new Error(`${op}: eps ${eps}, expected a number >= 0`);
  return [B, ld];
}

/**
 * [rmsnorm(x[:, off : off + r], weight, eps), x[:, off + r : off + r + pass]] for x [B, ld] f32 (any
 * column offset: the kernel reads x by index) -> [B, r + pass]: MLA's normalised compressed kv with k_pe
 * appended (the latent row the cache stores), in one dispatch (normConcat.wgsl.ts).
 */
export function rmsnormConcat(x: Tensor, off: number, r: number, pass: number, weight: Tensor, eps: number): Tensor {
  const op = 'rmsnormConcat';
  const device = deviceOf(op, x, weight);
  const [B, ld] = checkNormSlice(op, x, off, r, pass, weight, eps);
  const gpu = asGpu(device);
  if (!gpu) {
    const xc = contiguous(x);
    const y = normConcatReference(hostF32(xc), hostF32(weight), { B, ld, off, r, pass, eps });
    xc.dispose();
    return cpu.fromHost(y, [B, r + pass]);
  }
  const xc = contiguous(x);
  const wc = contiguous(weight);
  const y = gpu.empty([B, r + pass]);
  if (B > 0) {
    const wDtype = weight.dtype as FloatDType;
    gpu.dispatch({
      kernel: { name: 'norm_concat', key: normConcatKey(wDtype), code: () => normConcatWgsl(wDtype) },
      tensors: [xc, wc, y],
      params: new Params().u32(ld, off, r, pass).f32(eps).u32(0, 0, 0),
      workgroups: [B],
    });
  }
  xc.dispose();
  wc.dispose();
  return y;
}

/**
 * moe route() for decode: the same routes (experts, order and weights) from the rank kernel
 * (routeRank.wgsl.ts: one pass instead of k arg-max rounds), where it applies: WebGPU, sigmoid scores,
 * no group limit, E <= ROUTE_RANK_MAX_E, topK <= E. Anything else goes to route().
 */
export function routeRanked(logits: Tensor, bias: Tensor | undefined, cfg: RouterConfig): RoutesT {
  const gpu = asGpu(deviceOf('routeRanked', logits, ...(bias ? [bias] : [])));
  const E = cfg.numExperts;
  const grouped = cfg.numGroups > 1 && cfg.topkGroup < cfg.numGroups;
  if (
    !gpu ||
    grouped ||
    cfg.activation !== 'sigmoid' ||
    E > ROUTE_RANK_MAX_E ||
    cfg.topK > E ||
    logits.rank !== 2 ||
    logits.shape[1] !== E ||
    (bias && bias.numel !== E)
  )
    return route(logits, bias, cfg);
  const N = logits.shape[0];
  const idx = gpu.empty([N, cfg.topK], 'i32');
  const weights = gpu.empty([N, cfg.topK]);
  const v = { E, k: cfg.topK, hasBias: !!bias };
  const lc = contiguous(logits);
  if (N > 0) {
    gpu.dispatch({
      kernel: { name: 'moe_route_rank', key: routeRankKey(v), code: () => routeRankWgsl(v) },
      tensors: bias ? [lc, bias, idx, weights] : [lc, idx, weights],
      params: new Params()
        .u32(N, cfg.renormalize ? 1 : 0)
        .f32(cfg.scaling)
        .u32(0),
      workgroups: [Math.min(N, 65535), Math.ceil(N / 65535)],
    });
  }
  lc.dispose();
  return { idx, weights };
}

/** A MoE layer's shared expert as the decode step holds it: gate and up as columns of a packed output. */
export interface SharedExpertInput {
  /** [1, ld] f32: the packed projection's output (router logits, shared gate, shared up). */
  x: Tensor;
  /** Columns of the shared gate and up in x (multiples of 4). */
  gate: number;
  up: number;
  /** [D, Is] down projection, the routed experts' dtype. */
  down: Tensor;
}

/**
 * The routed experts and the shared expert of one decode token, summed: expertsInference(h, routes, w) +
 * swigluLinear(shared.x, gate, up, down) in two dispatches (moe decode gate_up, then the down kernel with
 * the shared expert folded in, moe/decode.wgsl.ts `shared`) instead of three, the sum in the kernel (the
 * next residual add then takes one term instead of two: the same additions in the same order).
 * Returns [sum], or where that path does not apply (cpu, more rows, odd widths, unroll 1) the two
 * terms [routed, shared] from the separate ops.
 */
/**
 * moeSharedDecode's L2 prefetch (l2Prefetch.ts; the outputs are unchanged): `down`, gate_up's extra workgroups
 * read the picked experts' down rows (the next dispatch's weights); `next`, down's extra workgroups read that
 * range (the next layer's projection). `wgs` (default l2PrefetchTuning.wgs) is gate_up's total over its k pairs.
 */
export interface MoeDecodePrefetch {
  sink: Tensor;
  down?: boolean;
  next?: Tensor;
  wgs?: number;
}

export function moeSharedDecode(
  h: Tensor,
  routes: RoutesT,
  w: ExpertWeights,
  shared: SharedExpertInput,
  prefetch?: MoeDecodePrefetch,
): Tensor[] {
  const gpu = asGpu(deviceOf('moeSharedDecode', h, routes.idx, routes.weights, w.w1, shared.x, shared.down));
  const k = routes.idx.shape[1];
  const plan = sharedDecodePlan(gpu, h, w, shared, k);
  if (!gpu || !plan) {
    return [expertsInference(h, routes, w), swigluLinear(shared.x, shared.gate, shared.up, shared.down)];
  }
  const { I, D } = plan;
  const xc = contiguous(h);
  const idx = contiguous(routes.idx);
  const rw = contiguous(routes.weights);
  const hid = gpu.empty([k, I]);
  const pfDown = prefetch?.down && l2PrefetchApplies(gpu, { range: w.w2, sink: prefetch.sink }) ? prefetch : undefined;
  const gu: MoeDecodeVariant = {
    mode: 'gateUp',
    wDtype: plan.wDtype,
    vec: true,
    k,
    ...(pfDown ? { l2: true } : {}),
    ...sgOf(gpu),
  };
  const own = Math.ceil(I / moeDecodeRows(gu));
  // With the prefetch: each pair's extra workgroups, and W2's 32-byte sectors an expert (l2Prefetch.ts).
  const pfWgs = pfDown ? Math.max(1, Math.round(prefetchWorkgroups(pfDown) / k)) : 0;
  const bytesPerExpert = D * I * (plan.wDtype === 'bf16' ? 2 : 4);
  gpu.dispatch({
    kernel: { name: 'moe_decode_gate_up', key: moeDecodeKey(gu), code: () => moeDecodeWgsl(gu) },
    tensors: [xc, idx, w.w1, w.w3, hid, ...(pfDown ? [w.w2, pfDown.sink] : [])],
    params: pfDown
      ? new Params().u32(D, I, l2PrefetchTuning.guard, Math.ceil(bytesPerExpert / 32))
      : new Params().u32(D, I, 0, 0),
    workgroups: [own + pfWgs, k],
  });
  const next = prefetch?.next;
  const pfNext =
    prefetch && next && l2PrefetchApplies(gpu, { range: next, sink: prefetch.sink })
      ? { range: next, sink: prefetch.sink, wgs: prefetch.wgs }
      : undefined;
  const y = sharedDown(gpu, plan, hid, idx, rw, w, shared, pfNext);
  for (const t of [xc, idx, rw, hid]) t.dispose();
  return [y];
}

/** What moeSharedDecode's two dispatches need, or undefined where they do not apply. */
interface SharedDecodePlan {
  I: number;
  D: number;
  wDtype: 'f32' | 'bf16';
  down: MoeDecodeVariant;
}

function sharedDecodePlan(
  gpu: ReturnType<typeof asGpu>,
  h: Tensor,
  w: ExpertWeights,
  shared: SharedExpertInput,
  k: number,
): SharedDecodePlan | undefined {
  const [, I, D] = w.w1.shape;
  const wDtype = w.w1.dtype as 'f32' | 'bf16';
  const per = wDtype === 'bf16' ? 8 : 4;
  const [Ds, Is] = shared.down.shape;
  const ld = shared.x.shape[shared.x.rank - 1];
  const down: MoeDecodeVariant = {
    mode: 'down',
    wDtype,
    vec: I % per === 0,
    k,
    shared: true,
    ...(gpu ? sgOf(gpu) : {}),
  };
  const fits =
    gpu &&
    h.shape[0] === 1 &&
    shared.x.numel === ld &&
    D % per === 0 &&
    Ds === D &&
    Is % per === 0 &&
    shared.down.dtype === wDtype &&
    w.w2.dtype === wDtype &&
    w.w3.dtype === wDtype &&
    shared.gate % 4 === 0 &&
    shared.up % 4 === 0 &&
    shared.gate + Is <= ld &&
    shared.up + Is <= ld &&
    sharedOf(down) &&
    gpu.isBindable(shared.down);
  return fits ? { I, D, wDtype, down } : undefined;
}

/** The down dispatch with the shared expert folded in: y [1, D] = routed + shared. */
function sharedDown(
  gpu: NonNullable<ReturnType<typeof asGpu>>,
  plan: SharedDecodePlan,
  hid: Tensor,
  idx: Tensor,
  rw: Tensor,
  w: ExpertWeights,
  shared: SharedExpertInput,
  pf?: L2Prefetch,
): Tensor {
  const { I, D } = plan;
  const down: MoeDecodeVariant = pf ? { ...plan.down, l2: true } : plan.down;
  const sx = contiguous(shared.x);
  const y = gpu.empty([1, D]);
  const own = Math.ceil(D / moeDecodeRows(down));
  gpu.dispatch({
    kernel: { name: 'moe_decode_down_shared', key: moeDecodeKey(down), code: () => moeDecodeWgsl(down) },
    tensors: [hid, idx, w.w2, rw, y, sx, shared.down, ...(pf ? [pf.range, pf.sink] : [])],
    params: new Params().u32(
      I,
      D,
      shared.down.shape[1],
      shared.gate / 4,
      shared.up / 4,
      pf ? l2PrefetchTuning.guard : 0,
      0,
      0,
    ),
    // The prefetch workgroups (l2Prefetch.ts) after the grid's own.
    workgroups: [own + (pf ? prefetchWorkgroups(pf) : 0), 1],
  });
  sx.dispose();
  return y;
}

/** The router's input as the decode step holds it: logits as columns of the packed projection's output. */
export interface RouterInput {
  /** [1, ld] f32 holding the E router logits at columns col..col+E-1. */
  x: Tensor;
  col: number;
  /** [E] f32 e_score_correction_bias, if the router has one. */
  bias?: Tensor;
  cfg: RouterConfig;
}

/**
 * routeRanked then moeSharedDecode in two dispatches instead of three: the router runs inside the gate_up
 * dispatch (fused/routeFold.wgsl.ts; every workgroup ranks the token's experts for its own slot), which
 * also writes the routes the down dispatch reads. The same picks, weights and sums as the three
 * dispatches (exact). Where it does not apply (cpu, more rows, grouped or softmax routing, E past
 * ROUTE_FOLD_MAX_E, what moeSharedDecode itself falls back on) it is routeRanked + moeSharedDecode.
 * Returns the routes too (owned by the caller).
 */
export function moeRoutedDecode(
  h: Tensor,
  router: RouterInput,
  w: ExpertWeights,
  shared: SharedExpertInput,
): { terms: Tensor[]; routes: RoutesT } {
  const { cfg, bias } = router;
  const gpu = asGpu(deviceOf('moeRoutedDecode', h, router.x, ...(bias ? [bias] : []), w.w1, shared.x));
  const E = cfg.numExperts;
  const k = cfg.topK;
  const [N, D] = h.shape;
  const [, I] = w.w1.shape;
  const wDtype = w.w1.dtype as 'f32' | 'bf16';
  const ld = router.x.shape[router.x.rank - 1];
  const grouped = cfg.numGroups > 1 && cfg.topkGroup < cfg.numGroups;
  // One token: the shared expert inside the down dispatch (moeSharedDecode's); up to ROUTE_FOLD_MAX_TOKENS:
  // the decode down kernel (expertsInference's) and the shared expert's own GEMV.
  const plan = sharedDecodePlan(gpu, h, w, shared, k);
  const applies =
    gpu &&
    (plan || (N >= 1 && N <= ROUTE_FOLD_MAX_TOKENS)) &&
    h.rank === 2 &&
    !grouped &&
    cfg.activation === 'sigmoid' &&
    E <= ROUTE_FOLD_MAX_E &&
    k >= 1 &&
    k <= E &&
    w.w1.shape[0] === E &&
    w.w2.dtype === wDtype &&
    w.w3.dtype === wDtype &&
    router.x.dtype === 'f32' &&
    router.x.rank === 2 &&
    router.x.shape[0] === N &&
    router.col >= 0 &&
    router.col + E <= ld &&
    (!bias || (bias.dtype === 'f32' && bias.numel === E));
  if (!gpu || !applies) {
    const lc = contiguous(router.x.narrow(router.x.rank - 1, router.col, E));
    const routes = routeRanked(lc, bias, cfg);
    lc.dispose();
    return { terms: moeSharedDecode(h, routes, w, shared), routes };
  }
  const xc = contiguous(h);
  const rx = contiguous(router.x);
  const idx = gpu.empty([N, k], 'i32');
  const rw = gpu.empty([N, k]);
  const hid = gpu.empty([N * k, I]);
  const gu: MoeDecodeVariant = {
    mode: 'gateUp',
    wDtype,
    // As expertsDecode (moe/index.ts) picks it, so that the hidden rows are the same for N > 1 too.
    vec: plan ? true : D % 8 === 0,
    k,
    route: { E, k, hasBias: !!bias, ...sortSgOf(gpu) },
    ...sgOf(gpu),
  };
  gpu.dispatch({
    kernel: { name: 'moe_decode_gate_up_route', key: moeDecodeKey(gu), code: () => moeDecodeWgsl(gu) },
    tensors: [xc, w.w1, w.w3, hid, rx, ...(bias ? [bias] : []), idx, rw],
    params: new Params()
      .u32(D, I, ld, router.col, cfg.renormalize ? 1 : 0)
      .f32(cfg.scaling)
      .u32(0, 0),
    workgroups: [Math.ceil(I / moeDecodeRows(gu)), N * k],
  });
  let terms: Tensor[];
  if (plan) terms = [sharedDown(gpu, plan, hid, idx, rw, w, shared)];
  else {
    // expertsInference's down dispatch (moe/index.ts), then the shared expert as a term.
    terms = [expertsDecodeDown(gpu, hid, idx, rw, w), swigluLinear(shared.x, shared.gate, shared.up, shared.down)];
  }
  for (const t of [xc, rx, hid]) t.dispose();
  return { terms, routes: { idx, weights: rw } };
}

/** Where rmsnormCacheWrite appends: the layer's pool, each row's cache slot and position, the page table. */
export interface LatentCacheTarget {
  /** [pages, pageSize, R] f32|bf16, or i32 [pages, pageSize, RW] (int8 rows, int8Layout.ts). */
  pool: Tensor;
  /** i32 [B]: cache slot (page-table row) of each row. */
  seq: Tensor;
  /** i32 [B]: position of each row. */
  pos: Tensor;
  /** i32 [slots, maxPages]. */
  pageTable: Tensor;
  /** kv_lora_rank: the c_kv part of the row (needed for an int8 pool). */
  Rv?: number;
  /** The pool's cache where it is i32 (int8 or f16, mla/f16Layout.ts); unstated, told by its width. */
  cacheDtype?: MlaCacheDtype;
}

/**
 * rmsnormConcat(x, off, r, pass, weight, eps) appended to the paged latent cache (mla cacheWrite) in one
 * dispatch (normCacheWrite.wgsl.ts): the row is normed and quantised (int8) or stored (f32, bf16) without
 * going through device memory. Same cache contents as the two ops (exact). The two ops on cpu.
 */
export function rmsnormCacheWrite(
  x: Tensor,
  off: number,
  r: number,
  pass: number,
  weight: Tensor,
  eps: number,
  to: LatentCacheTarget,
): void {
  const op = 'rmsnormCacheWrite';
  const device = deviceOf(op, x, weight, to.pool, to.seq, to.pos, to.pageTable);
  const [B, ld] = checkNormSlice(op, x, off, r, pass, weight, eps);
  expectShape(op, 'seq', to.seq, [B]);
  expectShape(op, 'pos', to.pos, [B]);
  const R = r + pass;
  const gpu = asGpu(device);
  const pool = fusedCachePool(op, to, R);
  if (!gpu || !pool || !gpu.isBindable(to.pool) || R > NORM_CACHE_MAX_R) {
    const latent = rmsnormConcat(x, off, r, pass, weight, eps);
    cacheWrite(to.pool, latent, to.seq, to.pos, to.pageTable, { Rv: to.Rv, cacheDtype: to.cacheDtype });
    latent.dispose();
    return;
  }
  const wDtype = weight.dtype as FloatDType;
  const xc = contiguous(x);
  const wc = contiguous(weight);
  const [seq, pos, table] = [to.seq, to.pos, to.pageTable].map(contiguous);
  const sg = decodeSubgroupSize(gpu, 'rest');
  if (B > 0) {
    gpu.dispatch({
      kernel: {
        name: 'norm_cache_write',
        key: normCacheWriteKey(wDtype, pool, sg),
        code: () => normCacheWriteWgsl(wDtype, pool, sg),
      },
      tensors: [xc, wc, seq, pos, table, to.pool],
      params: new Params().u32(ld, off, r, pass).f32(eps).u32(to.pageTable.shape[1], to.pool.shape[1], 0),
      workgroups: [B],
    });
  }
  for (const t of [xc, wc, seq, pos, table]) t.dispose();
}

/**
 * The fused cache write's view of a latent cache target (normCacheWrite.wgsl.ts NormCachePool), for
 * rmsnormCacheWrite and headGemvCacheWrite: an i32 pool is the f16 cache where its rows are R / 2 words
 * (mla/f16Layout.ts i32PoolKind), else the int8 one (which needs Rv). Undefined where the pool's rows do not suit the
 * fused kernel: the callers then write through cacheWrite, whose checks name what is wrong.
 */
function fusedCachePool(op: string, to: LatentCacheTarget, R: number): NormCachePool | undefined {
  if (to.pool.dtype === 'i32') {
    if (i32PoolKind(to.pool.shape[2], R, to.Rv, to.cacheDtype) === 'f16') return { dtype: 'f16', R };
    if (to.Rv === undefined) throw new Error(`${op}: an int8 (i32) pool needs Rv, the latent rank kv_lora_rank`);
    const L = int8RowLayout(R, to.Rv);
    return to.pool.shape[2] === L.RW ? { dtype: 'int8', L } : undefined;
  }
  const fits = to.pool.shape[2] === R && (to.pool.dtype === 'f32' || R % 2 === 0);
  return fits ? { dtype: to.pool.dtype as 'f32' | 'bf16', R } : undefined;
}

/** rmsnormCacheWrite's arguments, for headGemvCacheWrite. */
export interface NormCacheWriteArgs {
  x: Tensor;
  off: number;
  r: number;
  pass: number;
  weight: Tensor;
  eps: number;
  to: LatentCacheTarget;
}

/**
 * headGemv with f16Query and rmsnormCacheWrite in one dispatch (headGemv.wgsl.ts cw: the cache write's workgroups
 * are an extra row of the GEMV's grid; both depend only on the packed projection before them). The same qh and
 * cache bits as the two calls, which it makes where the one dispatch does not apply (the host, shapes headGemv's
 * kernel or the fused cache write does not take, more rows than a grid row has workgroups, too few storage
 * bindings).
 */
export function headGemvCacheWrite(
  x: Tensor,
  w: Tensor,
  opts: HeadGemvOptions & { f16Query: { HP: number; c: number } },
  cw: NormCacheWriteArgs,
): Tensor {
  const op = 'headGemvCacheWrite';
  const apart = () => {
    const qh = headGemv(x, w, opts);
    rmsnormCacheWrite(cw.x, cw.off, cw.r, cw.pass, cw.weight, cw.eps, cw.to);
    return qh;
  };
  const gpu = asGpu(deviceOf(op, x, w, cw.x, cw.weight, cw.to.pool));
  if (!gpu || x.rank !== 3 || w.rank !== 3) return apart();
  const [B, H, xs] = x.shape;
  const [, N, K] = w.shape;
  const xOff = opts.xOff ?? 0;
  const pass = opts.pass;
  const P = pass?.count ?? 0;
  const fq = opts.f16Query;
  const bf16 = w.dtype === 'bf16';
  const gridX = Math.max(1, Math.ceil(N / HG_ROWS_PER_WG));
  const headFits =
    x.dtype === 'f32' &&
    (w.dtype === 'f32' || bf16) &&
    w.shape[0] === H &&
    B >= 1 &&
    B <= HG_MAX_M &&
    K % (bf16 ? 8 : 4) === 0 &&
    xs % 4 === 0 &&
    xOff % 4 === 0 &&
    xOff + K <= xs &&
    N % 2 === 0 &&
    P % 2 === 0 &&
    Number.isInteger(fq.HP) &&
    fq.HP >= H &&
    fq.HP < 65535 &&
    (!pass || (pass.t.dtype === 'f32' && pass.t.rank === 3 && pass.offset + P <= pass.t.shape[2]));
  const [Bc, ld] = checkNormSlice(op, cw.x, cw.off, cw.r, cw.pass, cw.weight, cw.eps);
  const { to } = cw;
  const R = cw.r + cw.pass;
  const pool = fusedCachePool(op, to, R);
  const bindings = (pass ? 4 : 3) + 6;
  if (
    !headFits ||
    !pool ||
    !gpu.isBindable(to.pool) ||
    R > NORM_CACHE_MAX_R ||
    Bc !== B ||
    B > gridX ||
    bindings > gpu.limits.maxStorageBuffersPerShaderStage
  )
    return apart();
  expectShape(op, 'seq', to.seq, [B]);
  expectShape(op, 'pos', to.pos, [B]);
  const v = {
    M: B,
    wDtype: w.dtype as 'f32' | 'bf16',
    pass: !!pass,
    f16q: true,
    cw: { wDtype: cw.weight.dtype as FloatDType, pool, ...restSgOf(gpu) },
    ...sgOf(gpu),
  };
  const ins = [x, w, ...(pass ? [pass.t] : [])].map(contiguous);
  const cwIns = [cw.x, cw.weight, to.seq, to.pos, to.pageTable].map(contiguous);
  const qh = gpu.empty([B, fq.HP, (N + P) / 2], 'i32');
  gpu.dispatch({
    kernel: { name: 'head_gemv', key: headGemvKey(v), code: () => headGemvWgsl(v) },
    tensors: [...ins, qh, ...cwIns, to.pool],
    params: new Params()
      .u32(N, K, H, xs / 4, xOff / 4, P, pass ? pass.t.shape[2] : 0, pass?.offset ?? 0, fq.HP)
      .f32(fq.c)
      .u32(0, 0, ld, cw.off, cw.r, cw.pass)
      .f32(cw.eps)
      .u32(to.pageTable.shape[1], to.pool.shape[1], B),
    workgroups: [gridX, fq.HP + 1],
  });
  for (const t of [...ins, ...cwIns]) t.dispose();
  return qh;
}

/** The decode kernels' subgroup size for their shuffle sums on this device, as a variant field (or none). */
function sgOf(gpu: {
  features: { subgroups: boolean };
  adapterInfo: { subgroupMinSize?: number; subgroupMaxSize?: number };
}): {
  sg?: number;
} {
  const sg = decodeSubgroupSize(gpu);
  return sg ? { sg } : {};
}

/** The subgroup size of decodeTuning.subgroupSumsRest's sums on this device, as a variant field (or none). */
function restSgOf(gpu: Parameters<typeof decodeSubgroupSize>[0]): { sg?: number } {
  const sg = decodeSubgroupSize(gpu, 'rest');
  return sg ? { sg } : {};
}

/** The router sort's subgroup size on this device (decodeTuning.subgroupSort), as a RouteFoldVariant field. */
function sortSgOf(gpu: Parameters<typeof decodeSubgroupSize>[0]): { sg?: number } {
  const sg = decodeSubgroupSize(gpu, 'sort');
  return sg ? { sg } : {};
}

/**
 * headGemv's f16Query on the host: y [B, H, R] -> qh [B, HP, R / 2] words, f16(f32(y * f32(c))) pairs (low half
 * the even column), heads H..HP-1 zero: int8F16QueryWgsl's arithmetic.
 */
export function f16QueryReference(y: Float32Array, B: number, H: number, R: number, HP: number, c: number): Int32Array {
  const cf = Math.fround(c);
  // f16Layout's row packing of the products (a Float32Array stores them rounded to f32, as the kernel holds them).
  const rows = packF16Rows(
    Float32Array.from(y.subarray(0, B * H * R), (v) => v * cf),
    R,
  );
  const W = R / 2;
  const out = new Int32Array(B * HP * W);
  for (let b = 0; b < B; b++) out.set(rows.subarray(b * H * W, (b + 1) * H * W), b * HP * W);
  return out;
}
