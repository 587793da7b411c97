/**
 * matmul(a, b): C = op(A) @ op(B) over an optional batch dimension, and linear(x, W) = x @ W^T for
 * weights in the checkpoint's [out, in] layout. A is f32; B is f32 or bf16 (weights).
 *
 * A transposed view (t.transpose()) of a dense tensor is used in place by flipping the trans flag,
 * so no copy is made. Decode-sized products (<= 8 rows against a 2-D weight) take the GEMV kernel,
 * which is bound by reading the weight once; everything else takes the tiled kernel.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { formatShape, ShapeError } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, grid1d, hostF32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { GEMV_MAX_M, GEMV_ROWS_PER_WG, gemvKey, gemvWgsl } from './gemv.wgsl.js';
import { decodeSubgroupSize } from '../fused/sweep.js';
import { type MatmulDims, matmulReference } from './reference.js';
import { SPLITK_SUM_WG, splitKSlices, splitKSumWgsl } from './splitK.js';
import {
  DEFAULT_TILE,
  SMALL_TILE,
  TALL_TILE,
  type TileConfig,
  tiledKey,
  tiledWgsl,
  tiledWorkgroupSize,
  WAVE_TILE,
  WAVE_TILE_TALL,
  WAVE_TILE_WIDE,
  WIDE_TILE,
} from './tiled.wgsl.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Force a tile configuration (benchmarks, tuning). */
  tile?: TileConfig;
  /** Force the generic split-K into this many slices (benchmarks, tuning; 1: no split). */
  splitK?: number;
  /** Force (true) or forbid (false) the GEMV kernel; default chooses by shape. */
  gemv?: boolean;
  /** Write into this dense f32 tensor (of the output shape) instead of allocating. */
  out?: Tensor;
  /**
   * The caller vouches that the product is symmetric (square, C = C^T: X X^T, or A A with A symmetric):
   * only the tiles on and above the block diagonal are computed, each written twice (tiled.wgsl.ts).
   */
  symmetric?: boolean;
  /** C = scaleD * d + scaleAcc * op(A) op(B), d dense f32 of C's shape (symmetric too when `symmetric`). */
  epilogue?: { d: Tensor; scaleD: number; scaleAcc: number };
}

/** A dense operand and whether it is to be read transposed. The caller disposes `t`. */
function operand(t: Tensor, trans: boolean): { t: Tensor; trans: boolean } {
  if (t.isContiguous) return { t: t.alias(), trans };
  const flipped = t.transpose(-2, -1);
  if (flipped.isContiguous) return { t: flipped, trans: !trans };
  flipped.dispose();
  return { t: contiguous(t), trans };
}

/** 'mid': chooseTile may take the 128 x 64 / 64 x 128 tiles; 'two': only the large and small (benchmarks). */
let tilePolicy: 'mid' | 'two' = 'mid';
export function setMatmulTilePolicy(p: 'mid' | 'two'): void {
  tilePolicy = p;
}

/**
 * When set, every tiled dispatch appends a label (batch x M x N x K, layout, tile, split-K slices) in
 * dispatch order: a profile pairs them with its `matmul_tiled` spans to show which shapes take the time.
 */
let trace: string[] | undefined;
export function traceMatmuls(into: string[] | undefined): void {
  trace = into;
}

/**
 * Tile for a product of batch x M x N outputs: 128 x 128 when that gives at least 264 workgroups (two per
 * SM on the H200's 132); else a 128 x 64 (or 64 x 128 for wide outputs) tile when that does, as for the
 * [4096, 768] projections of a 4096-token sequence (384 workgroups; 4096^3: 38.2 TFLOP/s against 27.8 for
 * 64 x 64); else 64 x 64 (and split-K where it applies).
 */
export function chooseTile(M: number, N: number, batch: number, bf16 = false, symmetric = false): TileConfig {
  if (symmetric) {
    // Square tiles only; count the workgroups that do work (on and above the block diagonal).
    const live = (t: number) => ((Math.ceil(M / t) * (Math.ceil(M / t) + 1)) / 2) * batch;
    return live(128) >= 264 ? DEFAULT_TILE : SMALL_TILE;
  }
  const groups = (bm: number, bn: number) => Math.ceil(M / bm) * Math.ceil(N / bn) * batch;
  if (groups(128, 128) >= 264) return DEFAULT_TILE;
  // bf16 weights (inference) keep the two tiles whose per-thread B share takes the 8-value vector loads.
  if (tilePolicy === 'mid' && !bf16) {
    if (M >= N && groups(128, 64) >= 264) return TALL_TILE;
    if (N > M && groups(64, 128) >= 264) return WIDE_TILE;
  }
  return SMALL_TILE;
}

/**
 * 'wave' (default): 'tuned' plus whole-wave tiles, split-K for very narrow outputs and vector loads for K
 * tails (wavePlan below; H200, bench/results/2026-12-01-h200-mm-*: matmul 57.2 -> 54.9 ms and split-K sums
 * 2.96 -> 2.45 ms per hybrid forward + backward). 'tuned': choosePlan's measured rules for unbatched f32
 * products below. 'plain': chooseTile's tile and only the A^T B split (the plan before these rules). The
 * last two are kept for comparison on the device.
 */
export type MatmulPlanPolicy = 'tuned' | 'plain' | 'wave';
let planPolicy: MatmulPlanPolicy = 'wave';
export function setMatmulPlan(p: MatmulPlanPolicy): void {
  planPolicy = p;
}

export type WaveTileName = '64x192' | '128x96' | '128x192';
const WAVE_TILES: Record<WaveTileName, TileConfig> = {
  '64x192': WAVE_TILE,
  '128x96': WAVE_TILE_TALL,
  '128x192': WAVE_TILE_WIDE,
};
/** The wave plan's tile: 64 x 192 (default), 128 x 96 or 128 x 192 (benchmarks: which fills a wave fastest). */
let waveTile: TileConfig = WAVE_TILE;
export function setMatmulWaveTile(t: WaveTileName): void {
  waveTile = WAVE_TILES[t];
}

/** The H200's SMs; the tiled kernel's workgroups fit two per SM, except the 128 x 192 tile's one. */
const SMS = 132;
const WAVE = 2 * SMS;
function slotsOf(t: TileConfig): number {
  return t === WAVE_TILE_WIDE ? SMS : WAVE;
}
/** Fraction of the last wave's workgroup slots (`slots` at a time) a grid of g workgroups fills. */
export function waveFill(g: number, slots = WAVE): number {
  return g / (Math.ceil(g / slots) * slots);
}

/**
 * The 'wave' plan's additions to the tuned rules, for an unbatched f32 product on the vector path
 * (undefined: the tuned plan):
 *  - B not transposed, K < 2048 and the 128 x 128 grid fills under 90% of its last wave (4096 x 768: 192
 *    tiles, 73%): the wave tile when its grid of whole tiles fills at least 90% (4096 x 768: 256, 97%),
 *    unsplit, so it also takes the epilogue (dX with the accumulated gradient). Measured in the training
 *    step on the H200: dX = dY W at 4096 x 768 x 768 with the epilogue 27.4 -> 31.6 TFLOP/s (128 x 64 before),
 *    without 28 -> 32.5, 4096 x 768 x 1152 28.6 -> 33.4. x W^T (B transposed) kept the tuned plan: 4096 x
 *    768 x 768 ran 29.0 on 64 x 192 against 29.3 for 128 x 128 with 2 K slices, 4096 x 1536 x 256 26.8
 *    against 27.6 (in isolation 128 x 192 gave 32.0 there: not measured in the step yet);
 *  - an output side under 64 (the router's 8 and the gates' 12 outputs over K = 768: 64 workgroups of
 *    64 x 64 walking all of K): the 64 x 64 tile with K cut into slices until ~264 workgroups.
 */
function wavePlan(
  M: number,
  N: number,
  K: number,
  s: PlanShape,
  symmetric: boolean,
): { tile: TileConfig; slices: number; generic: boolean } | undefined {
  const grid = (t: TileConfig) => Math.ceil(M / t.BM) * Math.ceil(N / t.BN);
  const staged = (t: TileConfig) => 4 * t.BK * (t.BM + t.BN);
  const w = staged(waveTile) <= (s.workgroupBytes ?? 16384) ? waveTile : WAVE_TILE;
  if (
    !symmetric &&
    !s.transB &&
    K < 2048 &&
    waveFill(grid(DEFAULT_TILE)) < 0.9 &&
    M % w.BM === 0 &&
    N % w.BN === 0 &&
    waveFill(grid(w), slotsOf(w)) >= 0.9
  ) {
    return { tile: w, slices: 1, generic: false };
  }
  if (!s.special && Math.min(M, N) < 64 && Math.max(M, N) >= 1024 && K >= 256 && K % SMALL_TILE.BK === 0) {
    const g = grid(SMALL_TILE);
    let n = 1;
    while (n < 8 && g * n * 2 <= WAVE && K % (2 * n * SMALL_TILE.BK) === 0 && K / (2 * n) >= 64) n *= 2;
    if (n > 1) return { tile: SMALL_TILE, slices: n, generic: true };
  }
  return undefined;
}

let swizzle = true;
/** Benchmarks: false turns off the tiled kernel's swizzled scatter into workgroup memory (tiled.wgsl.ts). */
export function setMatmulSwizzle(on: boolean): void {
  swizzle = on;
}

export interface PlanShape {
  bf16: boolean;
  vec4: boolean;
  /** An epilogue or symmetric product (no split-K). */
  special: boolean;
  /** The device's workgroup memory in bytes (default WebGPU's 16 KiB): the 128 x 192 wave tile needs 20 KiB. */
  workgroupBytes?: number;
  transA: boolean;
  transB: boolean;
}

/**
 * Tile and split-K of one product. Batched, bf16, symmetric / epilogue products and those with enough
 * 128 x 128 tiles keep chooseTile (and the A^T B split of splitK.ts). Otherwise, by the tile / split menu
 * measured over the training step's shapes on the H200 (bench matmul --shapes,
 * bench/results/2026-12-01-h200-train-matmul-shapes.json), the half tile (128 x 64, or 64 x 128 for wide
 * outputs) with K cut by the generic split, whose slices any layout can take:
 *   K >= 2048, both sides >= 512: slices until ~512 workgroups (slices >= 256): the loss head's dX
 *     1024 x 768 x 32000 22 -> 37.6 TFLOP/s, dW 768 x 768 x 4096 23.6 -> 33.5, 2048 x 768 x 4096 32.9 -> 39.4;
 *   shorter K: x W^T with 132..263 tiles of 128 x 128 takes that tile and 2 slices (4096 x 768 x 768:
 *     24.9 -> 29.6); else the half tile once it has 128 tiles (4096 x 256 x 768: 21 -> 28.8), else slices
 *     until 128 workgroups, slices >= 192 (4096 x 64 x 768: 9.3 -> 17.5).
 */
export function choosePlan(
  M: number,
  N: number,
  K: number,
  batch: number,
  s: PlanShape,
  opts: MatmulOptions,
): { tile: TileConfig; slices: number; generic: boolean } {
  const canSplit = batch === 1 && !s.special && !s.bf16;
  if (opts.splitK !== undefined) {
    const tile = opts.tile ?? chooseTile(M, N, batch, s.bf16, false);
    if (opts.splitK > 1 && (!canSplit || !s.vec4 || K % (opts.splitK * tile.BK) !== 0)) {
      throw new Error(`matmul: cannot split ${M}x${N}x${K} into ${opts.splitK} slices of whole ${tile.BK} steps`);
    }
    return { tile, slices: opts.splitK, generic: opts.splitK > 1 };
  }
  if (opts.tile) return { tile: opts.tile, slices: 1, generic: false };
  const base = chooseTile(M, N, batch, s.bf16, !!opts.symmetric);
  const groups = (t: TileConfig) => Math.ceil(N / t.BN) * Math.ceil(M / t.BM) * batch;
  const plain = () => ({
    tile: base,
    slices: canSplit && s.transA && !s.transB ? splitKSlices(groups(base), K, base) : 1,
    generic: false,
  });
  if (planPolicy === 'wave' && batch === 1 && !s.bf16 && s.vec4) {
    const w = wavePlan(M, N, K, s, !!opts.symmetric);
    if (w) return w;
  }
  if (planPolicy === 'plain' || !canSplit || !s.vec4 || groups(DEFAULT_TILE) >= 264) return plain();
  const half = M >= N ? TALL_TILE : WIDE_TILE;
  const g = groups(half);
  // Fewest slices (1, 2, 4, 8) giving `target` workgroups, each slice at least minSlice whole BK steps long.
  const slicesFor = (target: number, minSlice: number) => {
    let n = 1;
    while (n < 8 && g * n < target && K % (2 * n * half.BK) === 0 && K / (2 * n) >= minSlice) n *= 2;
    return n;
  };
  const split = (tile: TileConfig, n: number) => ({ tile, slices: n, generic: n > 1 });
  if (K >= 2048) return Math.min(M, N) >= 512 ? split(half, slicesFor(512, 256)) : plain();
  if (Math.min(M, N) < 64) return plain();
  const d = groups(DEFAULT_TILE);
  if (s.transB && !s.transA && d >= 132 && K % (2 * DEFAULT_TILE.BK) === 0 && K / 2 >= 256) {
    return split(DEFAULT_TILE, 2);
  }
  return g >= 128 ? split(half, 1) : split(half, slicesFor(128, 192));
}

/**
 * Whether an unbatched f32 product of this shape and layout runs the same tile, unsplit, with an epilogue
 * as without: choosePlan gives epilogue products chooseTile's tile and no split-K, so a caller fusing an
 * addition into the epilogue (linearBackward's accumulated dX) checks that it does not get a slower plan.
 */
export function epilogueKeepsPlan(M: number, N: number, K: number, transA: boolean, transB: boolean): boolean {
  const vec4 = (transA ? M % 4 === 0 : K % 4 === 0) && (transB ? K % 4 === 0 : N % 4 === 0);
  const s: PlanShape = { bf16: false, vec4, special: false, transA, transB };
  const tuned = choosePlan(M, N, K, 1, s, {});
  const epi = choosePlan(M, N, K, 1, { ...s, special: true }, {});
  return tuned.slices === 1 && epi.slices === 1 && tuned.tile === epi.tile;
}

export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const device = deviceOf('matmul', a, b);
  expectDType('matmul', 'A', a, ['f32']);
  expectDType('matmul', 'B', b, ['f32', 'bf16']);
  if (a.rank < 2 || a.rank > 3 || b.rank < 2 || b.rank > 3) {
    throw new ShapeError(`matmul: A ${formatShape(a.shape)} and B ${formatShape(b.shape)} must be 2-D or 3-D`);
  }
  const A = operand(a, opts.transA ?? false);
  const B = operand(b, opts.transB ?? false);
  try {
    const batch = a.rank === 3 ? a.shape[0] : 1;
    const batchB = b.rank === 3 ? b.shape[0] : 1;
    if (batchB !== 1 && batchB !== batch) {
      throw new ShapeError(`matmul: batch of B ${formatShape(b.shape)} must be 1 or match A ${formatShape(a.shape)}`);
    }
    // Logical (after op) sizes, read from the caller's views.
    const ta = opts.transA ?? false;
    const tb = opts.transB ?? false;
    const [ar, ac] = a.shape.slice(-2);
    const [br, bc] = b.shape.slice(-2);
    const M = ta ? ac : ar;
    const K = ta ? ar : ac;
    const Kb = tb ? bc : br;
    const N = tb ? br : bc;
    if (K !== Kb) {
      throw new ShapeError(
        `matmul: inner dimensions differ: A ${formatShape(a.shape)}${ta ? '^T' : ''} and B ${formatShape(b.shape)}${tb ? '^T' : ''} (${K} vs ${Kb})`,
      );
    }
    const dims: MatmulDims = {
      batch,
      M,
      N,
      K,
      transA: A.trans,
      transB: B.trans,
      batchStrideB: batchB === 1 ? 0 : K * N,
    };
    const outShape = a.rank === 3 || b.rank === 3 ? [batch, M, N] : [M, N];
    const gpu = asGpu(device);
    if (opts.out && (opts.out.numel !== batch * M * N || opts.out.dtype !== 'f32' || !opts.out.isContiguous)) {
      throw new ShapeError(
        `matmul: out ${formatShape(opts.out.shape)} does not hold the result ${formatShape(outShape)} (dense f32)`,
      );
    }
    const epi = opts.epilogue;
    if (opts.symmetric && M !== N) throw new ShapeError(`matmul: a symmetric product must be square, not ${M}x${N}`);
    if (epi && (epi.d.numel !== batch * M * N || epi.d.dtype !== 'f32' || !epi.d.isContiguous)) {
      throw new ShapeError(
        `matmul: epilogue d ${formatShape(epi.d.shape)} does not match the result ${formatShape(outShape)} (dense f32)`,
      );
    }
    if (!gpu) {
      const c = matmulReference(hostF32(A.t), hostF32(B.t), dims);
      if (epi) {
        const d = hostF32(epi.d);
        for (let i = 0; i < c.length; i++) c[i] = Math.fround(epi.scaleD * d[i] + epi.scaleAcc * c[i]);
      }
      if (!opts.out) return cpu.fromHost(c, outShape);
      cpu.write(opts.out, c);
      return opts.out.alias();
    }
    const out = opts.out ? opts.out.alias() : gpu.empty(outShape, 'f32');
    const rowsTotal = batch * M;
    const special = !!epi || !!opts.symmetric;
    if (special && opts.gemv) throw new Error('matmul: the GEMV kernel has no symmetric or epilogue form');
    const useGemv =
      !special &&
      (opts.gemv ?? (rowsTotal <= GEMV_MAX_M && dims.batchStrideB === 0 && dims.transB && !dims.transA && K >= 64));
    if (useGemv) {
      if (!(dims.batchStrideB === 0 && dims.transB && !dims.transA && rowsTotal <= GEMV_MAX_M)) {
        throw new Error('matmul: the GEMV kernel needs <= 8 rows of untransposed A against a shared [N, K] weight');
      }
      const wDtype = b.dtype as 'f32' | 'bf16';
      const sg = decodeSubgroupSize(gpu);
      const v = { M: rowsTotal, wDtype, vec: K % 8 === 0, ...(sg ? { sg } : {}) };
      gpu.dispatch({
        kernel: { name: 'gemv', key: gemvKey(v), code: () => gemvWgsl(v) },
        tensors: [A.t, B.t, out],
        params: new Params().u32(N, K, 0, 0),
        workgroups: grid1d(N, GEMV_ROWS_PER_WG),
      });
      return out;
    }
    const bf16 = b.dtype === 'bf16';
    // Vector loads need whole vec4s along each operand's contiguous dimension (f32 B; bf16 keeps the
    // whole-tile rule below) and K in whole BK steps.
    const vec4 = !bf16 && (dims.transA ? M % 4 === 0 : K % 4 === 0) && (dims.transB ? K % 4 === 0 : N % 4 === 0);
    const workgroupBytes = gpu.limits.maxComputeWorkgroupStorageSize;
    const shape = { bf16, vec4, special, transA: dims.transA, transB: dims.transB, workgroupBytes };
    const plan = choosePlan(M, N, K, batch, shape, opts);
    const { tile, slices, generic } = plan;
    const Ks = K / slices;
    // The vector path loads 16 bytes per thread per step: 8 bf16 values must divide each thread's share.
    const bPerThread = (tile.BK * tile.BN) / tiledWorkgroupSize(tile);
    const whole = M % tile.BM === 0 && N % tile.BN === 0;
    const kSteps = Ks % tile.BK === 0 && Ks % 4 === 0;
    // The wave plan reads a K tail (K not whole BK steps) with vector loads too, zeros past K, where the
    // other plans take the checked path (the loss head's 1023-token chunk ran there at 25 TFLOP/s).
    const kTail = planPolicy === 'wave' && vec4 && slices === 1 && !kSteps;
    const aligned = (whole && kSteps && (!bf16 || (K % 8 === 0 && bPerThread % 8 === 0))) || (vec4 && kSteps) || kTail;
    const edge = aligned && !whole;
    if (generic && !aligned) throw new Error(`matmul: split-K of ${M}x${N}x${K} needs the vector path`);
    const variant = {
      tile,
      transA: dims.transA,
      transB: dims.transB,
      bDtype: b.dtype as 'f32' | 'bf16',
      aligned,
      edge,
      kSplit: generic,
      swizzle,
      symmetric: !!opts.symmetric,
      epilogue: !!epi,
      kTail,
    };
    trace?.push(
      `${batch}x${M}x${N}x${K} ${dims.transA ? 'T' : 'N'}${dims.transB ? 'T' : 'N'} ${tile.BM}x${tile.BN}` +
        `${slices > 1 ? ` split${slices}${generic ? 'g' : ''}` : ''}${edge ? ' edge' : aligned ? '' : ' checked'}` +
        `${kTail ? ' ktail' : ''}` +
        `${opts.symmetric ? ' sym' : ''}${epi ? ' epi' : ''}${bf16 ? ' bf16' : ''}`,
    );
    // Split-K (splitK.ts): either slice z of K is batch entry z, with batch strides Ks M (A) and Ks N (B)
    // (A^T B, both K-major), or (generic) the kernel walks slice z of K itself with the rows' full pitch.
    const partial = slices > 1 ? gpu.empty([slices, M, N], 'f32') : out;
    gpu.dispatch({
      kernel: { name: 'matmul_tiled', key: tiledKey(variant), code: () => tiledWgsl(variant) },
      tensors: epi ? [A.t, B.t, epi.d, partial] : [A.t, B.t, partial],
      params: generic
        ? new Params().u32(M, N, K, 0, 0, M * N, Ks, 0)
        : slices > 1
          ? new Params().u32(M, N, Ks, Ks * M, Ks * N, M * N, 0, 0)
          : epi
            ? new Params().u32(M, N, K, M * K, dims.batchStrideB, M * N).f32(epi.scaleD, epi.scaleAcc)
            : new Params().u32(M, N, K, M * K, dims.batchStrideB, M * N, 0, 0),
      workgroups: [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM), batch * slices],
    });
    if (slices > 1) {
      gpu.dispatch({
        kernel: { name: 'matmul_splitk_sum', key: `matmul_splitk_sum_${slices}`, code: () => splitKSumWgsl(slices) },
        tensors: [partial, out],
        params: new Params().u32(M * N, 0, 0, 0),
        workgroups: grid1d(M * N, SPLITK_SUM_WG),
      });
      partial.dispose();
    }
    return out;
  } finally {
    A.t.dispose();
    B.t.dispose();
  }
}

/** y = x @ W^T for x [..., K] and a weight W [N, K] (f32 or bf16), as nn.Linear without bias. */
export function linear(x: Tensor, weight: Tensor): Tensor {
  if (weight.rank !== 2) throw new ShapeError(`linear: weight ${formatShape(weight.shape)} must be [out, in]`);
  const K = x.shape[x.rank - 1];
  if (K !== weight.shape[1]) {
    throw new ShapeError(`linear: input ${formatShape(x.shape)} has ${K} features, weight expects ${weight.shape[1]}`);
  }
  const rows = x.numel / K;
  const dense = contiguous(x);
  const x2 = dense.reshape([rows, K]);
  dense.dispose();
  try {
    const y = matmul(x2, weight, { transB: true });
    const outShape = [...x.shape.slice(0, -1), weight.shape[0]];
    const shaped = y.reshape(outShape);
    y.dispose();
    return shaped;
  } finally {
    x2.dispose();
  }
}

export {
  DEFAULT_TILE,
  SMALL_TILE,
  TALL_TILE,
  type TileConfig,
  WAVE_TILE,
  WAVE_TILE_TALL,
  WAVE_TILE_WIDE,
  WIDE_TILE,
} from './tiled.wgsl.js';
