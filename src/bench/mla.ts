/**
 * `kimi-linear bench mla`: the absorbed MLA decode kernel alone (one layer's attention over the latent
 * cache, what dominates a decode step at long context). For each context: a random paged pool made on
 * the GPU (bf16 by default, rows of R = kv_lora_rank + rope dims), B sequences of that length, H heads.
 * Reports GPU ms per call (timestamps around one compute pass of `reps` calls, median of trials), the
 * cache read rate (B * context * R * bytes per ms) and the effective rate of the f32 work
 * (B * context * H * (R + Rv) * 2 FLOP), the per-kernel split (q prep / decode / merge), for each decode
 * kernel (`--kernels`: tiled, split). At the largest context: chunks per sequence for the first kernel,
 * the tiled kernel's variants (TILED_VARIANTS), the split kernel's rows per block. At the smallest context
 * every kernel and variant is checked against the plain-TS reference.
 * `--cache-dtype int8`: the pool is quantised (kernels/mla/int8Layout.ts) by cacheWrite from random f32 rows
 * and decoded by the int8 kernel (decodeInt8.wgsl.ts; `--kernels` does not apply); the check at the smallest
 * context compares it with the int8 reference and reports its error against f32 attention over the rows.
 * With `--unsafe-apis` where the device has int8 subgroup matrices, the tensor-core kernel
 * (decodeInt8Sgm.wgsl.ts) is timed beside dp4a (`--int8-kernels`), its variants swept at the largest
 * context and each checked against the int8 reference and the dp4a kernel's output (`vsDp4aKernel`).
 * `--int8-kernels ...,two-pass`: the two-pass kernels (int8TwoPassPlan.ts) too, checked against the int8 reference
 * and their own scheme (`vsTwoPassReference`), their first pass alone against its emulation (`int8-two-pass-scores`);
 * `--int8-variants two-pass` / `two-pass-stages` sweep their layouts / stage diagnostics with per-kernel times.
 */
import type { Command } from 'commander';
import { type GpuFlagOptions, gpuFlags, printJson, renderTable } from '../cli/shared.js';
import type { GpuContext } from '../gpu/context.js';
import {
  cacheWrite,
  int8RowWords,
  type MlaCacheDtype,
  parseMlaCacheDtype,
  type MlaDecodeKernel,
  defaultInt8SgmChunks,
  type MlaDecodeOptions,
  type MlaInt8Kernel,
  mlaDecode,
  mlaDecodeKernelFor,
  mlaF16CacheKernelFor,
  mlaF16CacheOverrides,
  prepareMlaInt8Sgm,
} from '../kernels/mla/index.js';
import { f16RowWords, unpackF16Rows } from '../kernels/mla/f16Layout.js';
import { defaultInt8Chunks } from '../kernels/mla/int8Plan.js';
import { type MlaInt8SgmOptions, SGM_STAGES, type SgmStage } from '../kernels/mla/int8SgmPlan.js';
import { runSgmAlignProbe } from '../kernels/mla/int8SgmAlignProbe.js';
import { mlaInt8SgmState } from '../kernels/mla/int8SgmState.js';
import { mlaDecodeInt8LazyReference, TWO_PASS_PV } from '../kernels/mla/int8LazyReference.js';
import { int8TwoPassScores } from '../kernels/mla/int8TwoPassDecode.js';
import { type MlaInt8TwoPassOptions, TWO_PASS_STAGES } from '../kernels/mla/int8TwoPassPlan.js';
import { emulateScores } from '../kernels/mla/int8TwoPassEmulate.js';
import { mlaDecodeInt8Reference } from '../kernels/mla/int8Reference.js';
import {
  defaultF16Chunks,
  F16_STAGES,
  MLA_INT8_F16_TB,
  type MlaInt8F16Options,
  planMlaInt8F16,
} from '../kernels/mla/int8F16Plan.js';
import { mlaDecodeInt8F16Reference } from '../kernels/mla/int8F16Reference.js';
import { defaultChunks, planMlaDecode } from '../kernels/mla/plan.js';
import { defaultTiledChunks, planMlaTiled } from '../kernels/mla/tiledPlan.js';
import { mlaDecodeReference } from '../kernels/mla/reference.js';
import { randomUniform } from '../kernels/random/index.js';
import { bf16ArrayToF32 } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { machine, openBenchDevice, parseList, profileKernels, timeGpu } from './harness.js';

export interface MlaBenchOptions {
  context: number[];
  batch: number;
  heads: number;
  rank: number;
  rope: number;
  cacheDtype: MlaCacheDtype;
  pageSize: number;
  reps: number;
  trials: number;
  /** Kernels timed at every context (the first one is swept over chunks at the largest context). */
  kernels: MlaDecodeKernel[];
  sweepChunks: number[];
  /** Split kernel only. */
  sweepBlocks: number[];
  /** Tiled kernel: subgroup size to compile for where the adapter reports a range (see MlaDecodeOptions). */
  subgroupSize?: number;
  /** int8 cache: the kernels timed (those this device can run; the tensor-core one needs --unsafe-apis). */
  int8Kernels?: MlaInt8Kernel[];
  /** int8 cache: the tensor-core kernel's options (int8SgmPlan.ts) in its rows at every context (`--int8-sgm`). */
  int8Sgm?: MlaInt8SgmOptions;
  /**
   * int8 cache: the variants swept at the largest context (`--int8-variants`): 'all' (INT8_VARIANTS), or
   * 'sgm-stages' (the tensor-core kernel with `int8Sgm` less one stage at a time, sgmStageVariants), 'sgm-wide'
   * (SGM_WIDE_VARIANTS), 'sgm-lazy' (SGM_LAZY_VARIANTS), 'sgm-lazy-check' (SGM_LAZY_CHECK_VARIANTS), or 'none'.
   */
  int8VariantSet?:
    | 'all'
    | 'sgm-stages'
    | 'sgm-wide'
    | 'sgm-lazy'
    | 'sgm-lazy-check'
    | 'sgm-lazy-regs'
    | 'two-pass'
    | 'two-pass-stages'
    | 'f16'
    | 'f16-stages'
    | 'f16-all'
    | 'f16-s13'
    | 'f16-s14'
    | 'f16-s14b'
    | 'f16-s15'
    | 'f16-s15b'
    | 'f16-s15c'
    | 'none';
  /** int8 cache: the f16 kernel's options (int8F16Plan.ts) in its rows at every context (`--int8-f16`). */
  int8F16?: MlaInt8F16Options;
  /** int8 cache: chunks per sequence for the swept variants that name none (`--int8-variant-chunks`). */
  int8VariantChunks?: number;
}

/**
 * `--int8-sgm k=v,...`: the tensor-core kernel's options, e.g. `queryResident` (a bare key is true),
 * `heads=16`, `fold=1`, `prefetch=false`, `qRegs`, `foldBarrier=false`.
 */
/**
 * `--mla-int8-f16` (bench decode): the f16 kernel's options as `k=v` items: chunks=n, tau=n (0-15),
 * stage=words|vec4|rows, prefetch=false, qPerBlock, ahead=1..4, convert=cvt|bits|half, pageAhead, rangeIdx[=false], rowSwap, swizzle, qFold,
 * wide, mergeLoads=n.
 */
export function parseF16Options(text: string): MlaInt8F16Options {
  const o: MlaInt8F16Options = {};
  for (const item of text.split(',').filter(Boolean)) {
    const [k, v, ...rest] = item.split('=');
    const n = Number(v);
    if (k === 'chunks' && !rest.length && Number.isInteger(n) && n >= 1) o.chunks = n;
    else if (k === 'tau' && !rest.length && Number.isInteger(n) && n >= 0 && n <= 15) o.tau = n;
    else if (k === 'stage' && !rest.length && (v === 'words' || v === 'vec4' || v === 'rows')) o.stage = v;
    else if (k === 'prefetch' && v === 'false' && !rest.length) o.prefetch = false;
    else if (k === 'qPerBlock' && v === undefined) o.qPerBlock = true;
    else if (k === 'ahead' && ['1', '2', '3', '4'].includes(v) && !rest.length) o.ahead = n as 1 | 2 | 3 | 4;
    else if (k === 'pageAhead' && v === undefined) o.pageAhead = true;
    else if (k === 'rangeIdx' && (v === undefined || v === 'false') && !rest.length) o.rangeIdx = v === undefined;
    else if (k === 'convert' && (v === 'cvt' || v === 'bits' || v === 'half') && !rest.length) o.convert = v;
    else if (k === 'swizzle' && v === undefined) o.swizzle = true;
    else if (k === 'rowSwap' && v === undefined) o.rowSwap = true;
    else if (k === 'f16Rotate' && (v === undefined || v === 'false') && !rest.length) o.f16Rotate = v === undefined;
    else if (k === 'qFold' && v === undefined) o.qFold = true;
    else if (k === 'wide' && v === undefined) o.wide = true;
    else if (k === 'mergeLoads' && !rest.length && Number.isInteger(n) && n >= 1 && n <= 8) o.mergeLoads = n;
    else
      throw new Error(
        `--mla-int8-f16: '${item}' is not chunks=n, tau=0..15, stage=words|vec4|rows, prefetch=false, qPerBlock, ahead=1..4, convert=cvt|bits|half, pageAhead, rangeIdx[=false], rowSwap, f16Rotate[=false] (f16 cache), swizzle, qFold, wide or mergeLoads=1..8`,
      );
  }
  return o;
}

/**
 * `--mla-int8-two-pass` (bench decode): the two-pass kernels' options as `k=v` items: colSplit=1|2,
 * pvSubgroups=8|16, scoresSubgroups=4|8, pvBlocks=1|2, scoresChunks=n, prefetch=false, stageSpread, scoresFullK.
 */
export function parseTwoPassOptions(text: string): MlaInt8TwoPassOptions {
  const o: Record<string, boolean | number> = {};
  const numbers: Record<string, number[] | 'any'> = {
    colSplit: [1, 2],
    pvSubgroups: [8, 16],
    scoresSubgroups: [4, 8],
    pvBlocks: [1, 2],
    scoresChunks: 'any',
  };
  for (const item of text.split(',').filter(Boolean)) {
    const [k, v, ...rest] = item.split('=');
    const allowed = numbers[k];
    if (allowed && v !== undefined && !rest.length) {
      const n = Number(v);
      if (allowed === 'any' ? Number.isInteger(n) && n >= 1 : allowed.includes(n)) {
        o[k] = n;
        continue;
      }
    }
    if (
      ['prefetch', 'stageSpread', 'scoresFullK'].includes(k) &&
      !rest.length &&
      (v === undefined || v === 'true' || v === 'false')
    ) {
      o[k] = v !== 'false';
      continue;
    }
    throw new Error(
      `--mla-int8-two-pass: '${item}' is not colSplit=1|2, pvSubgroups=8|16, scoresSubgroups=4|8, pvBlocks=1|2, scoresChunks=n, prefetch[=false], stageSpread[=false] or scoresFullK[=false]`,
    );
  }
  return o as MlaInt8TwoPassOptions;
}

export function parseInt8SgmOptions(text: string): MlaInt8SgmOptions {
  const o: Record<string, boolean | number | string[]> = {};
  const flags = [
    'queryResident',
    'qRegs',
    'prefetch',
    'foldBarrier',
    'foldSpread',
    'scorePad',
    'wide',
    'stageSpread',
    'pvAhead',
    'maxAhead',
    'kvSlots',
    'lazy',
    'lazyFlush',
    'lazyEvery',
    'lazyBarrier',
    'lazyMultiply',
    'lazySRef1',
    'lazySRefAtomic',
    'lazyNoDither',
    'lazyOneDigit',
    'lazyPwFirst',
    'lazyLoArray',
    'lazyAlign',
    'poolRw',
  ];
  const numbers: Record<string, number[]> = { heads: [16, 32], fold: [1, 2], lazyTau: [0, 1, 2, 3] };
  for (const item of text.split(',').filter(Boolean)) {
    const [k, v, ...rest] = item.split('=');
    const stages = k === 'skip' && v ? v.split('+') : [];
    if (stages.length && !rest.length && stages.every((st) => (SGM_STAGES as readonly string[]).includes(st)))
      o.skip = stages;
    else if (flags.includes(k) && !rest.length && (v === undefined || v === 'true' || v === 'false'))
      o[k] = v !== 'false';
    else if (k in numbers && !rest.length && numbers[k].includes(Number(v))) o[k] = Number(v);
    else
      throw new Error(
        `--int8-sgm: '${item}' is not one of ${flags.join(', ')} (=true / =false), heads=16|32, fold=1|2, lazyTau=0|1|2|3 or skip=<${SGM_STAGES.join('|')}>[+...]`,
      );
  }
  return o as MlaInt8SgmOptions;
}

/** The tensor-core kernel's layout before the sixth session (int8SgmPlan.ts: the parity layout, plain fold, unpadded tiles). */
const SGM_PARITY: MlaInt8SgmOptions = { queryResident: false, foldSpread: false, scorePad: false };

/** int8-kernel variants (int8Plan.ts) timed (and checked) beside its default at the largest (smallest) context. */
const INT8_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { chunks: 264 },
  // dp4a: the kernel before the sixth session (flat arrays, P x values' quads in a WGSL loop: 1.713 ms at 1M
  // against 1.554 for the default, bench/results/2026-12-01-h200-dec8-s6-summary.txt), and each half of it
  { int8Variant: { nested: false, unrollO: false } },
  { int8Variant: { nested: false } },
  { int8Variant: { unrollO: false } },
  // measured slower there: 264 chunks with O in head halves (3.64), 512 threads (3.19)
  { chunks: 264, int8Variant: { oHalves: true } },
  { int8Variant: { sHeads: 2 } },
  // diagnostics (wrong outputs): the kernel without the scores' or the P x values' products
  { int8Variant: { diagnostic: 'no-scores' } },
  { int8Variant: { diagnostic: 'no-pv' } },
  // the tensor-core kernel's variants (int8SgmPlan.ts; its default: the quarter layout, foldSpread, scorePad).
  // The parity layout (the kernel before the sixth session; 2.15-2.46 ms at 1M): 16 heads a workgroup (two
  // fragments a barrier, then one; rows prefetched), the query's fragments in registers
  { int8Kernel: 'subgroup-matrix', int8Sgm: { ...SGM_PARITY } },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { ...SGM_PARITY, heads: 16 } },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { ...SGM_PARITY, heads: 16, prefetch: true } },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { ...SGM_PARITY, heads: 16, fold: 1 } },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { ...SGM_PARITY, qRegs: true } },
  // the quarter layout alone (1.59 ms at 1M): the query's fragments loaded once a workgroup into registers, no
  // fragment from storage in the loop; without the prefetch's 20 registers a lane; 16 heads
  { int8Kernel: 'subgroup-matrix', int8Sgm: { queryResident: true, foldSpread: false, scorePad: false } },
  {
    int8Kernel: 'subgroup-matrix',
    int8Sgm: { queryResident: true, foldSpread: false, scorePad: false, prefetch: false },
  },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { queryResident: true, foldSpread: false, scorePad: false, heads: 16 } },
  // the fold without bank conflicts and padded score tiles each alone (together, the sixth session's default: 1.20
  // ms at 1M, bench/results/2026-12-01-h200-sgm3-s3-mla.json; alone not yet measured apart from bursts)
  { int8Kernel: 'subgroup-matrix', int8Sgm: { wide: false, scorePad: false } },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { wide: false, foldSpread: false } },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { wide: false, prefetch: false } },
  { int8Kernel: 'subgroup-matrix', int8Sgm: { heads: 16 } },
  // the sixth session's default (8 subgroups; the default since the seventh is wide, 16): 1.236 against 1.078 ms
  { int8Kernel: 'subgroup-matrix', int8Sgm: { wide: false } },
  // diagnostic (a data race, never the default): what the P x V rounds' barriers cost
  { int8Kernel: 'subgroup-matrix', int8Sgm: { ...SGM_PARITY, foldBarrier: false } },
  // measured slower earlier (int8Plan.ts, bench/results/2026-12-01-h200-dec8-run1-mla.json), kept
  // reachable: dp4a { int8Variant: { twoBarriers: false } }, { int8Variant: { quadRows: true } },
  // { int8Variant: { oHalves: true } }, { int8Variant: { sHeads: 2 } }, { int8Pv: 'f32' },
  // { int8Variant: { unrollS: false } }, { int8Variant: { sSplit: true } }
];

/**
 * `--int8-variants sgm-stages`: what each stage of the tensor-core kernel's block costs (int8SgmPlan.ts
 * SGM_STAGES; diagnostics, wrong outputs) on top of `base` (the rows' `--int8-sgm`): each stage left out alone,
 * the whole P x V (products and fold), everything but the staging of rows (memory and barriers), nothing but
 * the loop and its barriers; then the exact neighbours: the other fold layout, no prefetch, 16 heads a workgroup.
 */
export function sgmStageVariants(base: MlaInt8SgmOptions = {}): Partial<MlaDecodeOptions>[] {
  const skips: SgmStage[][] = [
    ...SGM_STAGES.map((st) => [st]),
    ['pv', 'fold'],
    ['scores', 'softmax', 'pv', 'fold'],
    [...SGM_STAGES],
  ];
  return [
    ...skips.map((skip) => ({ int8Kernel: 'subgroup-matrix' as const, int8Sgm: { ...base, skip } })),
    { int8Kernel: 'subgroup-matrix', int8Sgm: { ...base, foldSpread: !base.foldSpread } },
    { int8Kernel: 'subgroup-matrix', int8Sgm: { ...base, prefetch: false } },
    { int8Kernel: 'subgroup-matrix', int8Sgm: { ...base, heads: 16 } },
  ];
}

/**
 * `--int8-variants sgm-wide`: the tensor-core kernel's latency-hiding candidates (seventh session, int8SgmPlan.ts):
 * its block is latency-bound at one 256-thread workgroup an SM (every stage left out saves about as much,
 * bench/results/2026-12-01-h200-sgm4-s1-stages2.json), so twice the subgroups (`wide`, 512 threads), the P x V
 * products ahead of the rounds (`pvAhead`), the softmax's reductions at once (`maxAhead`), the staging stores over
 * 32 banks (`stageSpread`), with and without the prefetch's registers, and 16 heads a workgroup wide (256 threads
 * with 32 O registers a lane: two workgroups an SM if the registers allow), beside the sixth session's form (wide
 * false). Measured once (bench/results/2026-12-01-h200-sgm4-s2-summary.txt): wide 1.077 ms at 1M against 1.236,
 * hence the default since; the other rows of that process ran through a slow burst (not yet measured).
 */
export const SGM_WIDE_VARIANTS: Partial<MlaDecodeOptions>[] = (
  [
    { wide: false },
    { wide: false, prefetch: false },
    { wide: false, stageSpread: true },
    { wide: false, maxAhead: true },
    { wide: false, pvAhead: true, maxAhead: true, stageSpread: true },
    { wide: true },
    { wide: true, prefetch: false },
    { wide: true, stageSpread: true },
    { wide: true, maxAhead: true },
    { wide: true, pvAhead: true },
    { wide: true, pvAhead: true, prefetch: false },
    { wide: true, pvAhead: true, maxAhead: true, stageSpread: true },
    { wide: true, pvAhead: true, maxAhead: true, stageSpread: true, prefetch: false },
    { wide: true, pvAhead: true, kvSlots: true },
    { wide: true, pvAhead: true, kvSlots: true, maxAhead: true, stageSpread: true },
    { wide: true, pvAhead: true, kvSlots: true, maxAhead: true, stageSpread: true, prefetch: false },
    { wide: true, heads: 16 },
    { wide: true, heads: 16, pvAhead: true, maxAhead: true, stageSpread: true, prefetch: false },
    { wide: true, heads: 16, pvAhead: true, kvSlots: true, maxAhead: true, stageSpread: true, prefetch: false },
  ] as MlaInt8SgmOptions[]
).map((int8Sgm) => ({ int8Kernel: 'subgroup-matrix', int8Sgm }));

/**
 * `--int8-variants sgm-lazy`: the lazy P x V form (issue #4, int8SgmPlan.ts MlaInt8SgmOptions.lazy: P x V in i32
 * subgroup-matrix accumulators across a chunk's blocks, 4 barriers a block) beside the default (wide, repeated in the
 * same process): with its rescales (tau 1, and 0: more of them), without them (lazyFlush=false, a diagnostic: what
 * the block costs without its rare branch, wrong where a rescale happens), without the prefetch's registers (the
 * accumulators take 64 a lane), with the staging stores spread over the banks. Checked at the smallest context
 * against the int8 reference (not bit-identical: within int8LazyReference.ts's error).
 */
export const SGM_LAZY_VARIANTS: Partial<MlaDecodeOptions>[] = (
  [
    { wide: true },
    { lazy: true },
    { lazy: true, lazyFlush: false },
    { lazy: true, prefetch: false },
    { lazy: true, lazyTau: 0 },
    { lazy: true, stageSpread: true },
    { lazy: true, lazyFlush: false, prefetch: false },
    { wide: true },
  ] as MlaInt8SgmOptions[]
).map((int8Sgm) => ({ int8Kernel: 'subgroup-matrix', int8Sgm }));

/**
 * `--int8-variants sgm-lazy-check`: the lazy form's device check. Its error (0.72 of max |o| at 4K, the emulation
 * exact) was the workgroup layout (mlalazy3: MlaInt8SgmOptions.lazyAlign): the lazy form with its variables padded to
 * 16 bytes (the default now), the old layout (lazyAlign=false, the control: expected 0.7245 again), s_ref = 1 (which
 * amplified the misread P 71x: a sensitive check that nothing of it is left), the atomic s_ref (its other variable),
 * and without the flush (timed beside), between two default rows, the lazy form again last. bench mla also runs the
 * alignment probe (int8SgmAlignProbe.ts) with this set. Measured (H200, bench/results/2026-12-02-h200-mlalazy3-chk.json):
 * 2.99e-3, 0.7245, 9.0e-3, 2.99e-3 and 5.7e-2 (no flush: wrong where a rescale happens) of max |o| at 4K.
 * (Every lazy row of any set is also compared with the default kernel at every context: lazyVsDefault.)
 */
export const SGM_LAZY_CHECK_VARIANTS: Partial<MlaDecodeOptions>[] = (
  [
    { wide: true },
    { lazy: true },
    { lazy: true, lazyAlign: false },
    { lazy: true, lazySRef1: true },
    { lazy: true, lazySRefAtomic: true },
    { lazy: true, lazyFlush: false },
    { wide: true },
    { lazy: true },
  ] as MlaInt8SgmOptions[]
).map((int8Sgm) => ({ int8Kernel: 'subgroup-matrix', int8Sgm }));

/** `--int8-variants sgm-lazy-regs`: the register-pressure rows of sgm-lazy-check alone, beside the lazy form (a short sitting). */
export const SGM_LAZY_REGS_VARIANTS: Partial<MlaDecodeOptions>[] = (
  [
    { lazy: true },
    { lazy: true, lazyOneDigit: true },
    { lazy: true, lazyOneDigit: true, prefetch: false },
  ] as MlaInt8SgmOptions[]
).map((int8Sgm) => ({ int8Kernel: 'subgroup-matrix', int8Sgm }));

/**
 * `--int8-variants two-pass`: the two-pass kernels' (int8TwoPassPlan.ts) layout choices beside its default: the value
 * columns split over two workgroups (half the accumulators a lane: more workgroups an SM), 8 P x V subgroups, the
 * scores' and the P x V pass's chunk counts.
 */
export const TWO_PASS_VARIANTS: Partial<MlaDecodeOptions>[] = [
  // After the first sitting (default 0.80 + 0.53 ms at 1M, both latency-bound): more workgroups an SM for the scores
  // (4 subgroups), half the barriers of P x V (2 blocks a step).
  { int8Kernel: 'two-pass', int8TwoPass: { scoresSubgroups: 4 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresSubgroups: 4, scoresChunks: 1056 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresSubgroups: 4, prefetch: false, scoresChunks: 1056 } },
  { int8Kernel: 'two-pass', int8TwoPass: { pvBlocks: 2 } },
  { int8Kernel: 'two-pass', int8TwoPass: { pvBlocks: 2, pvSubgroups: 8 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresSubgroups: 4, pvBlocks: 2 } },
  // Each scores subgroup a whole tile's K, two staging buffers: 2 barriers a block.
  { int8Kernel: 'two-pass', int8TwoPass: { scoresFullK: true } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresFullK: true, scoresChunks: 1056 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresFullK: true, prefetch: false, scoresChunks: 1056 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresFullK: true, pvBlocks: 2 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresFullK: true, pvBlocks: 2, stageSpread: true } },
  { int8Kernel: 'two-pass', int8TwoPass: { colSplit: 2 } },
  { int8Kernel: 'two-pass', int8TwoPass: { colSplit: 2, pvSubgroups: 8 } },
  { int8Kernel: 'two-pass', int8TwoPass: { pvSubgroups: 8 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresChunks: 132 } },
  { int8Kernel: 'two-pass', int8TwoPass: { scoresChunks: 1056 } },
  { int8Kernel: 'two-pass', chunks: 264 },
  { int8Kernel: 'two-pass', int8TwoPass: { colSplit: 2 }, chunks: 264 },
];

/**
 * `--int8-variants two-pass-stages`: what limits the two-pass kernels: each stage of a block left out alone
 * (int8TwoPassPlan.ts TWO_PASS_STAGES, diagnostics: wrong outputs; the per-kernel times say which kernel gains), the
 * loads without the prefetch, and the staging stores spread over the banks (stageSpread, exact).
 */
export const TWO_PASS_STAGE_VARIANTS: Partial<MlaDecodeOptions>[] = (
  [
    ...TWO_PASS_STAGES.map((st) => ({ skip: [st] })),
    { skip: ['scores', 'combine'] },
    { skip: ['p', 'pv'] },
    { prefetch: false },
    { stageSpread: true },
  ] as MlaInt8TwoPassOptions[]
).map((int8TwoPass) => ({ int8Kernel: 'two-pass', int8TwoPass }));

/**
 * `--int8-variants f16`: the f16 tensor-core kernel (int8F16Plan.ts) at other chunk counts (132 = one workgroup an
 * SM; the default 264), its staging forms and register savers, and tau 0 (rescales: what the rare path costs).
 * `--int8-variants f16-stages`: each stage of a block left out (diagnostics: wrong outputs).
 */
export const F16_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { int8Kernel: 'f16', chunks: 264 },
  { int8Kernel: 'f16', int8F16: { ahead: 1 } },
  { int8Kernel: 'f16', int8F16: { ahead: 1 }, chunks: 264 },
  { int8Kernel: 'f16', int8F16: { stage: 'words' } },
  { int8Kernel: 'f16', int8F16: { stage: 'vec4' } },
  { int8Kernel: 'f16', int8F16: { prefetch: false } },
  { int8Kernel: 'f16', int8F16: { qPerBlock: true } },
  { int8Kernel: 'f16', int8F16: { tau: 0 } },
];
/**
 * `--int8-variants f16-s13`: the thirteenth session's candidates beside the default (repeated first and last: a
 * transient after the pool's fill shows as a first row slower than the last): the rows staging's stores in
 * row-parity order (swizzle), the query made inside the kernel (qFold), both, the register savers that might let
 * two workgroups share an SM (qPerBlock) at 264 chunks, and the 512-thread layout (wide).
 */
export const F16_S13_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { swizzle: true } },
  { int8Kernel: 'f16', int8F16: { qFold: true } },
  { int8Kernel: 'f16', int8F16: { swizzle: true, qFold: true } },
  { int8Kernel: 'f16', chunks: 264 },
  { int8Kernel: 'f16', chunks: 264, int8F16: { qPerBlock: true } },
  // 512 threads (decodeInt8F16Wide.wgsl.ts)
  { int8Kernel: 'f16', int8F16: { wide: true } },
  { int8Kernel: 'f16', int8F16: { wide: true, swizzle: true } },
  { int8Kernel: 'f16', int8F16: { wide: true, swizzle: true, qFold: true } },
  { int8Kernel: 'f16', chunks: 264, int8F16: { wide: true, swizzle: true } },
  // the merge's loads four chunks at a time (bit-identical), alone and with the rest
  { int8Kernel: 'f16', int8F16: { mergeLoads: 4 } },
  { int8Kernel: 'f16', int8F16: { wide: true, swizzle: true, qFold: true, mergeLoads: 4 } },
  { int8Kernel: 'f16', int8F16: { swizzle: true, qFold: true, mergeLoads: 4 } },
  { int8Kernel: 'f16' },
];
/**
 * `--int8-variants f16-s14`: the fourteenth session's candidates beside the default (repeated first, in the middle
 * and last): the codes made f16 without the conversion units (convert bits: the same values; half: packed f16
 * arithmetic, the scale rounded to f16), three and four blocks of codes in flight (ahead), their pairs, and the
 * staging alone (scores, softmax and P x V left out: diagnostics) with each convert.
 */
export const F16_S14_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { convert: 'half' } },
  { int8Kernel: 'f16', int8F16: { convert: 'bits' } },
  { int8Kernel: 'f16', int8F16: { ahead: 3 } },
  { int8Kernel: 'f16', int8F16: { ahead: 4 } },
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { convert: 'half', ahead: 3 } },
  { int8Kernel: 'f16', int8F16: { convert: 'half', ahead: 4 } },
  { int8Kernel: 'f16', int8F16: { convert: 'bits', ahead: 4 } },
  { int8Kernel: 'f16', int8F16: { convert: 'half' } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { convert: 'half', skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { convert: 'bits', skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['stage'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['rescale'] } },
  { int8Kernel: 'f16', int8F16: { convert: 'half', skip: ['rescale'] } },
  { int8Kernel: 'f16' },
];
/**
 * `--int8-variants f16-s14b`: the fourteenth session's second set (after the first sitting: convert and ahead 4
 * even, the staging alone 0.57 of 0.70 ms, bounds clamps 0.07-0.12): the page-table look-ups a block ahead
 * (pageAhead) alone and with convert half / bits and ahead 4, and the loop's skeleton (everything left out) with
 * and without the rescale flag's second barrier.
 */
export const F16_S14B_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { pageAhead: true } },
  { int8Kernel: 'f16', int8F16: { pageAhead: true, convert: 'half' } },
  { int8Kernel: 'f16', int8F16: { pageAhead: true, ahead: 4 } },
  { int8Kernel: 'f16', int8F16: { pageAhead: true, convert: 'half', ahead: 4 } },
  { int8Kernel: 'f16', int8F16: { pageAhead: true, convert: 'bits' } },
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { pageAhead: true } },
  { int8Kernel: 'f16', int8F16: { pageAhead: true, convert: 'half' } },
  { int8Kernel: 'f16', int8F16: { pageAhead: true, skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { pageAhead: true, convert: 'half', skip: ['rescale'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'stage', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'stage', 'pv', 'rescale'] } },
  { int8Kernel: 'f16' },
];
/**
 * `--int8-variants f16-s15`: the fifteenth session's set: the block loop's workgroup indices in forms Tint's range
 * analysis bounds (rangeIdx: no bounds clamps on the staging's f16 stores, the softmax's part loads and pw stores)
 * alone and with convert half / bits, ahead 4 and pageAhead (what the clamps hid in the fourteenth session), the
 * staging alone with it (diagnostics), the default repeated first, in the middle and last.
 */
export const F16_S15_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, convert: 'half' } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, convert: 'bits' } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, ahead: 4 } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, convert: 'half', ahead: 4 } },
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, convert: 'half' } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, convert: 'half', pageAhead: true } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, convert: 'half', skip: ['rescale'] } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, convert: 'half', skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { rangeIdx: true, skip: ['stage'] } },
  { int8Kernel: 'f16' },
];
/**
 * `--int8-variants f16-s15b`: the fifteenth session's second set, after rangeIdx and convert half became the
 * default: the fourteenth session's default (plain indices, cvt) and rangeIdx with cvt beside it, ahead 4, 264
 * chunks, and the new default's stages left out (diagnostics: the staging alone, without it, the loop's skeleton,
 * the rescale flag's second barrier), the default repeated first, in the middle and last.
 */
export const F16_S15B_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { rangeIdx: false, convert: 'cvt' } },
  { int8Kernel: 'f16', int8F16: { convert: 'cvt' } },
  { int8Kernel: 'f16', int8F16: { ahead: 4 } },
  { int8Kernel: 'f16', chunks: 264 },
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { rangeIdx: false, convert: 'cvt' } },
  { int8Kernel: 'f16', int8F16: { skip: ['rescale'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['stage'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'stage', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['pv'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores'] } },
  { int8Kernel: 'f16' },
];
/**
 * `--int8-variants f16-s15c`: the fifteenth session's third set (candidates after rangeIdx + convert half, 0.566 ms a
 * layer at 1M): the staging's f16 stores of a warp's two rows into banks of different parity (rowSwap), alone, with
 * ahead 4 and with cvt (its stores' values made apart from the packed halves); fewer registers a thread (one block
 * of codes in flight, ahead 1) at 264 chunks, where two workgroups might share an SM, beside 264 chunks with the
 * default; diagnostics (wrong outputs): the staging's stores cut to one a word (skip stores: what the stores cost),
 * the staging alone with and without rowSwap; the default repeated first, in the middle and last.
 */
export const F16_S15C_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { rowSwap: true } },
  { int8Kernel: 'f16', int8F16: { rowSwap: true, ahead: 4 } },
  { int8Kernel: 'f16', int8F16: { rowSwap: true, convert: 'cvt' } },
  { int8Kernel: 'f16' },
  { int8Kernel: 'f16', int8F16: { rowSwap: true } },
  { int8Kernel: 'f16', chunks: 264 },
  { int8Kernel: 'f16', chunks: 264, int8F16: { ahead: 1 } },
  { int8Kernel: 'f16', chunks: 264, int8F16: { rowSwap: true } },
  { int8Kernel: 'f16', int8F16: { skip: ['stores'] } },
  { int8Kernel: 'f16', int8F16: { rowSwap: true, skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16' },
];
export const F16_STAGE_VARIANTS: Partial<MlaDecodeOptions>[] = [
  ...F16_STAGES.map((s) => ({ int8Kernel: 'f16' as const, int8F16: { skip: [s] } })),
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'pv'] } },
  { int8Kernel: 'f16', int8F16: { skip: ['scores', 'softmax', 'pv', 'stage'] } },
];

/**
 * The two-pass scores (or block stats) from the device against their emulation, over the entries the emulation
 * wrote (finite, not the -3e38 past a sequence: those must be equal): max |diff| / max |expected|, and the first
 * entry off by more than 1e-4 of max |expected| as (row, column) of rows of `cols` (a score's: sequence x head, token).
 */
/** The largest |got - want| and that relative to max |want| (the checks' error measure). */
function maxErr(got: Float32Array, want: Float32Array): { maxAbsErr: number; relToMax: number } {
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return { maxAbsErr: maxAbs, relToMax: maxAbs / maxRef };
}

export function scoreDiff(got: Float32Array, want: Float32Array, cols: number) {
  let maxAbs = 0;
  let maxRef = 0;
  let compared = 0;
  let sentinelMismatch = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i])) continue;
    if (Math.abs(want[i]) > 1e30) {
      if (got[i] !== want[i]) sentinelMismatch++;
      continue;
    }
    compared++;
    maxRef = Math.max(maxRef, Math.abs(want[i]));
    const d = Math.abs(got[i] - want[i]);
    maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(maxAbs, d);
  }
  let firstBad: Record<string, number> | undefined;
  for (let i = 0; i < want.length && !firstBad; i++) {
    if (Number.isNaN(want[i]) || Math.abs(want[i]) > 1e30) continue;
    if (!(Math.abs(got[i] - want[i]) <= 1e-4 * maxRef))
      firstBad = { row: Math.floor(i / cols), col: i % cols, got: got[i], want: want[i] };
  }
  return { compared, relToMax: maxAbs / maxRef, sentinelMismatch, firstBad };
}

/** Tiled-kernel variants timed (and checked) beside its default at the largest (smallest) context. */
const TILED_VARIANTS: Partial<MlaDecodeOptions>[] = [
  { sHalves: false, lateFetch: false },
  { sHalves: false },
  { lateFetch: false },
  { doubleBuffer: true },
  { doubleBuffer: true, pipelined: true },
];

interface Inputs {
  q: Tensor;
  pool: Tensor;
  table: Tensor;
  lengths: Tensor;
  /** int8 cache at small contexts: the f32 rows [B, T, R] it was quantised from (for the error vs f32). */
  rows?: Float32Array;
}

/** Rows quantised per cacheWrite call (a [n, R] f32 staging tensor stays far below the binding limit). */
const INT8_FILL_ROWS = 65536;

/**
 * Where an output differs from its reference, for the lazy form's device check (its error was 0.72 of max |o| on the
 * H200 with the emulation exact): the least-squares scale k of got against ref and what is left after it (a pure
 * scale error leaves ~0), the error by head half (the two P x V left fragments) and by the value columns' fragment
 * parity (a subgroup's two value fragments j = 0, 1), the worst element, and the exact zeros.
 */
function lazyDiag(got: Float32Array, ref: Float32Array, H: number, Rv: number) {
  let gr = 0;
  let rr = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    gr += got[i] * ref[i];
    rr += ref[i] * ref[i];
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  const k = rr > 0 ? gr / rr : 0;
  const part = (keep: (h: number, d: number) => boolean, scale = 1) => {
    let e = 0;
    for (let i = 0; i < ref.length; i++) {
      const h = Math.floor(i / Rv) % H;
      if (keep(h, i % Rv)) e = Math.max(e, Math.abs(got[i] - scale * ref[i]));
    }
    return Number((e / maxRef).toPrecision(4));
  };
  let worst = 0;
  let zeros = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Math.abs(got[i] - ref[i]) > Math.abs(got[worst] - ref[worst])) worst = i;
    if (got[i] === 0 && ref[i] !== 0) zeros++;
  }
  return {
    k: Number(k.toPrecision(6)),
    afterK: part(() => true, k),
    heads0to15: part((h) => h % 32 < 16),
    heads16to31: part((h) => h % 32 >= 16),
    colsJ0: part((_, d) => ((d >> 4) & 1) === 0),
    colsJ1: part((_, d) => ((d >> 4) & 1) === 1),
    worst: { head: Math.floor(worst / Rv) % H, d: worst % Rv, got: got[worst], ref: ref[worst] },
    zeros,
  };
}

async function makeInputs(gpu: GpuContext, o: MlaBenchOptions, T: number): Promise<Inputs> {
  const R = o.rank + o.rope;
  const pagesPerSeq = Math.ceil(T / o.pageSize);
  const table = new Int32Array(o.batch * pagesPerSeq);
  // Sequence b's pages interleaved with the others' (as a pool shared by a batch ends up).
  for (let b = 0; b < o.batch; b++) for (let i = 0; i < pagesPerSeq; i++) table[b * pagesPerSeq + i] = i * o.batch + b;
  const x: Inputs = {
    q: randomUniform(gpu, [o.batch, o.heads, R], { seed: 1, lo: -0.5, hi: 0.5 }),
    pool:
      o.cacheDtype === 'int8'
        ? gpu.zeros([o.batch * pagesPerSeq, o.pageSize, int8RowWords(R, o.rank)], 'i32')
        : o.cacheDtype === 'f16'
          ? gpu.zeros([o.batch * pagesPerSeq, o.pageSize, f16RowWords(R)], 'i32')
          : randomUniform(gpu, [o.batch * pagesPerSeq, o.pageSize, R], { seed: 2, dtype: o.cacheDtype }),
    table: gpu.fromHost(table, [o.batch, pagesPerSeq], 'i32'),
    lengths: gpu.fromHost(new Int32Array(o.batch).fill(T), [o.batch], 'i32'),
  };
  if (o.cacheDtype !== 'int8' && o.cacheDtype !== 'f16') return x;
  // The int8 (f16) pool: random rows quantised (rounded) by the cache write the model uses, a piece at a time.
  const keep = o.batch * T <= 16384;
  const kept: Float32Array[] = [];
  let seed = 2;
  for (let b = 0; b < o.batch; b++)
    for (let t0 = 0; t0 < T; t0 += INT8_FILL_ROWS) {
      const n = Math.min(INT8_FILL_ROWS, T - t0);
      const rows = randomUniform(gpu, [n, R], { seed: seed++ });
      const seq = gpu.fromHost(new Int32Array(n).fill(b), [n], 'i32');
      const pos = gpu.fromHost(
        Int32Array.from({ length: n }, (_, i) => t0 + i),
        [n],
        'i32',
      );
      cacheWrite(x.pool, rows, seq, pos, x.table, { Rv: o.rank });
      if (keep) kept.push((await rows.read()) as Float32Array);
      for (const t of [rows, seq, pos]) t.dispose();
    }
  if (keep) {
    x.rows = new Float32Array(o.batch * T * R);
    let at = 0;
    for (const k of kept) {
      x.rows.set(k, at);
      at += k.length;
    }
  }
  return x;
}

/**
 * An i32 (int8 / f16) pool's reference inputs read back: the query, page table and lengths, the reference's dims `d`,
 * and `exact`, f32 attention over the rows [B, T, R] the pool was written from (placed in an f32 pool by the page
 * table), the quantisation's (rounding's) error is measured against.
 */
async function readReference(
  x: Inputs,
  rows: Float32Array,
  o: MlaBenchOptions,
  T: number,
  dims: { H: number; R: number; Rv: number; scale: number },
) {
  const { R } = dims;
  const q = (await x.q.read()) as Float32Array;
  const table = (await x.table.read()) as Int32Array;
  const lengths = (await x.lengths.read()) as Int32Array;
  const d = { B: o.batch, ...dims, pageSize: o.pageSize, maxPages: x.table.shape[1] };
  const f32Pool = new Float32Array(x.pool.shape[0] * o.pageSize * R);
  for (let b = 0; b < o.batch; b++)
    for (let t = 0; t < T; t++) {
      const page = table[b * d.maxPages + Math.floor(t / o.pageSize)];
      f32Pool.set(rows.subarray((b * T + t) * R, (b * T + t + 1) * R), (page * o.pageSize + (t % o.pageSize)) * R);
    }
  return { q, table, lengths, d, exact: mlaDecodeReference(q, f32Pool, table, lengths, d) };
}

export async function benchMla(gpu: GpuContext, o: MlaBenchOptions) {
  if (o.cacheDtype === 'f16') return benchMlaF16Cache(gpu, o);
  const R = o.rank + o.rope;
  const Rv = o.rank;
  const H = o.heads;
  const scale = (128 + o.rope) ** -0.5;
  const int8 = o.cacheDtype === 'int8';
  // The f32 kernels' element type (unused with an int8 cache).
  const fDtype = o.cacheDtype === 'int8' ? 'bf16' : o.cacheDtype;
  // Bytes a cached row takes (int8: codes, two scales and padding, int8Layout.ts).
  const rowBytes = int8 ? 4 * int8RowWords(R, Rv) : R * (o.cacheDtype === 'bf16' ? 2 : 4);
  const maxShared = gpu.limits.maxComputeWorkgroupStorageSize;
  const rate = (T: number, ms: number) => ({
    ms: Number(ms.toFixed(4)),
    cacheGBps: Number(((o.batch * T * rowBytes) / (ms * 1e-3) / 1e9).toFixed(1)),
    tflops: Number(((o.batch * T * H * (R + Rv) * 2) / (ms * 1e-3) / 1e12).toFixed(2)),
  });
  const rows: Record<string, unknown>[] = [];
  const sweep: Record<string, unknown>[] = [];
  const checks: Record<string, unknown>[] = [];
  // The lazy rows against the default tensor-core kernel at every context (the int8 reference is checked at 4K only).
  const lazyVsDefault: Record<string, unknown>[] = [];
  // The f16 kernel against the other int8 kernels' outputs at every context.
  const crossChecks: Record<string, unknown>[] = [];
  // Kernels this device cannot run (tiled without subgroups) are left out, not failed.
  // int8: the tensor-core kernel where prepareMlaInt8Sgm finds it working and exact on this device.
  const sgmPrep = int8 ? await prepareMlaInt8Sgm(gpu) : undefined;
  // f16: where the device has f16 subgroup matrices (`--unsafe-apis --f16` on the H200; no prepare step).
  const f16Ok = gpu.features.subgroupMatrixF16 && gpu.adapterInfo.subgroupMinSize === 32;
  const int8Kernels = (o.int8Kernels ?? ['subgroup-matrix', 'dp4a']).filter((k) =>
    k === 'f16' ? f16Ok : k === 'dp4a' || sgmPrep?.kernel === 'subgroup-matrix',
  );
  const int8Runs = (v: Partial<MlaDecodeOptions>) =>
    v.int8Kernel === 'f16'
      ? f16Ok
      : v.int8Kernel === 'subgroup-matrix' || v.int8Kernel === 'two-pass'
        ? sgmPrep?.kernel === 'subgroup-matrix'
        : int8Kernels.includes('dp4a');
  const kernels = int8
    ? (int8Kernels as unknown as MlaDecodeKernel[])
    : o.kernels.filter((k) => mlaDecodeKernelFor(gpu, { kernel: k === 'split' ? 'split' : undefined }) === k);
  const longest = Math.max(...o.context);
  const variantSets = {
    all: INT8_VARIANTS,
    'sgm-stages': sgmStageVariants(o.int8Sgm),
    'sgm-wide': SGM_WIDE_VARIANTS,
    'sgm-lazy': SGM_LAZY_VARIANTS,
    'sgm-lazy-check': SGM_LAZY_CHECK_VARIANTS,
    'sgm-lazy-regs': SGM_LAZY_REGS_VARIANTS,
    'two-pass': TWO_PASS_VARIANTS,
    'two-pass-stages': TWO_PASS_STAGE_VARIANTS,
    f16: F16_VARIANTS,
    'f16-stages': F16_STAGE_VARIANTS,
    'f16-all': [...F16_VARIANTS, ...F16_STAGE_VARIANTS],
    'f16-s13': F16_S13_VARIANTS,
    'f16-s14': F16_S14_VARIANTS,
    'f16-s14b': F16_S14B_VARIANTS,
    'f16-s15': F16_S15_VARIANTS,
    'f16-s15b': F16_S15B_VARIANTS,
    'f16-s15c': F16_S15C_VARIANTS,
    none: [],
  };
  const int8Variants = variantSets[o.int8VariantSet ?? 'all'].map((v: Partial<MlaDecodeOptions>) =>
    o.int8VariantChunks && v.chunks === undefined ? { ...v, chunks: o.int8VariantChunks } : v,
  );
  // Issue #4's device check: where a subgroup-matrix load from workgroup memory reads beside unaligned variables.
  const sgmVariant = sgmPrep?.kernel === 'subgroup-matrix' ? mlaInt8SgmState.get(gpu)?.variant : undefined;
  const alignProbe =
    o.int8VariantSet === 'sgm-lazy-check' && sgmVariant ? await runSgmAlignProbe(gpu, sgmVariant) : undefined;
  for (const T of o.context) {
    try {
      await contextRun(T);
    } catch (e) {
      // One context failing (memory, binding size) must not lose the others' numbers.
      rows.push({ context: T, batch: o.batch, error: (e as Error).message });
      console.error(e);
    }
  }
  async function contextRun(T: number) {
    const x = await makeInputs(gpu, o, T);
    const call =
      (kernel: MlaDecodeKernel, more: Partial<MlaDecodeOptions> = {}) =>
      () =>
        mlaDecode(x.q, x.pool, x.table, x.lengths, {
          Rv,
          scale,
          maxLength: T,
          kernel: int8 ? undefined : kernel,
          int8Kernel: int8 ? (kernel as unknown as MlaInt8Kernel) : undefined,
          int8Sgm: o.int8Sgm,
          int8F16: o.int8F16,
          subgroupSize: o.subgroupSize,
          ...more,
        }).dispose();
    for (const kernel of kernels) {
      let layout: Record<string, unknown>;
      if (int8) {
        const NG = Math.ceil(H / 32);
        const sgm = (kernel as string) === 'subgroup-matrix' || (kernel as string) === 'two-pass';
        const f16 = (kernel as string) === 'f16';
        layout = {
          kernel: `int8-${kernel}`,
          int8Sgm: (kernel as string) === 'subgroup-matrix' ? o.int8Sgm : undefined,
          blockTokens: f16 ? MLA_INT8_F16_TB : 32,
          chunks: f16
            ? defaultF16Chunks(T, o.batch, NG)
            : sgm
              ? defaultInt8SgmChunks(T, o.batch, NG)
              : defaultInt8Chunks(T, o.batch, NG),
        };
      } else if (kernel === 'tiled') {
        const SG = o.subgroupSize ?? gpu.adapterInfo.subgroupMinSize!;
        const p = planMlaTiled({ H, R, Rv, cacheDtype: fDtype, SG }, maxShared);
        layout = {
          SG,
          blockTokens: p.TT,
          doubleBuffer: p.doubleBuffer,
          sharedBytes: p.sharedBytes,
          chunks: defaultTiledChunks(T, o.batch, p.NG),
        };
      } else {
        const p = planMlaDecode({ H, R, Rv, cacheDtype: fDtype }, maxShared);
        layout = { blockTokens: p.TT, prefetch: p.prefetch, chunks: defaultChunks(T, o.batch, p.TT) };
      }
      const t = await timeGpu(gpu, call(kernel), o.reps, o.trials);
      rows.push({
        context: T,
        kernel,
        batch: o.batch,
        H,
        R,
        Rv,
        cache: o.cacheDtype,
        ...layout,
        ...rate(T, t.ms),
        // Each trial's ms a call, in order (a slow start after the pool's fill shows as a falling sequence).
        trialsMs: t.trials.map((x) => Number(x.toFixed(4))),
        // No warm-up: timeGpu above just ran this call.
        kernelsMs: await profileKernels(gpu, call(kernel), 3, { warmUp: false }),
        timer: t.source,
      });
    }
    // The f16 kernel against the other int8 kernels timed here, at every context (the int8 reference itself runs
    // at the smallest only: at 1M it would take the host minutes): max |diff| / max |other|.
    if (int8 && kernels.includes('f16' as MlaDecodeKernel)) {
      const read = async (k: MlaInt8Kernel) => {
        const out = mlaDecode(x.q, x.pool, x.table, x.lengths, {
          Rv,
          scale,
          maxLength: T,
          int8Kernel: k,
          int8Sgm: o.int8Sgm,
          int8F16: o.int8F16,
        });
        const got = (await out.read()) as Float32Array;
        out.dispose();
        return got;
      };
      const f16 = await read('f16');
      for (const k of new Set(kernels as unknown as MlaInt8Kernel[])) {
        if (k === 'f16' || k === 'two-pass') continue;
        const other = await read(k);
        crossChecks.push({
          context: T,
          kernel: 'int8-f16',
          int8F16: o.int8F16,
          against: `int8-${k}`,
          ...maxErr(f16, other),
          finite: f16.every(Number.isFinite),
        });
      }
    }
    const lazyRuns = int8Variants.filter((v) => v.int8Sgm?.lazy && int8Runs(v));
    if (lazyRuns.length) {
      const read = async (v: Partial<MlaDecodeOptions>) => {
        const out = mlaDecode(x.q, x.pool, x.table, x.lengths, { Rv, scale, maxLength: T, ...v });
        const got = (await out.read()) as Float32Array;
        out.dispose();
        return got;
      };
      const base = await read({ int8Kernel: 'subgroup-matrix', int8Sgm: o.int8Sgm });
      for (const v of lazyRuns) {
        try {
          const got = await read(v);
          lazyVsDefault.push({
            context: T,
            int8Sgm: v.int8Sgm,
            relToMax: maxErr(got, base).relToMax,
            finite: got.every(Number.isFinite),
          });
        } catch (e) {
          lazyVsDefault.push({ context: T, int8Sgm: v.int8Sgm, error: (e as Error).message });
        }
      }
    }
    if (T === longest) {
      const kernel = kernels[0];
      for (const c of o.sweepChunks) {
        const tc = await timeGpu(gpu, call(kernel, { chunks: c }), o.reps, o.trials);
        const sgmOpts = (kernel as string) === 'subgroup-matrix' ? { int8Sgm: o.int8Sgm } : {};
        sweep.push({ context: T, kernel: int8 ? `int8-${kernel}` : kernel, ...sgmOpts, chunks: c, ...rate(T, tc.ms) });
      }
      if (int8) {
        for (const v of int8Variants.filter(int8Runs)) {
          const k = v.int8Kernel ?? 'dp4a';
          try {
            const tv = await timeGpu(gpu, call(k as unknown as MlaDecodeKernel, v), o.reps, o.trials);
            // The two-pass rows with each kernel's time (which of the two a variant changes).
            const kernelsMs =
              k === 'two-pass' || k === 'f16'
                ? await profileKernels(gpu, call(k as unknown as MlaDecodeKernel, v), 3, { warmUp: false })
                : undefined;
            sweep.push({
              context: T,
              kernel: `int8-${k}`,
              ...v,
              ...rate(T, tv.ms),
              trialsMs: tv.trials.map((x) => Number(x.toFixed(4))),
              kernelsMs,
            });
          } catch (e) {
            // A variant that does not compile or run on this device must not lose the others' numbers.
            sweep.push({ context: T, kernel: `int8-${k}`, ...v, error: (e as Error).message });
          }
        }
      }
      if (kernel === 'tiled' && !int8) {
        for (const v of TILED_VARIANTS) {
          const tv = await timeGpu(gpu, call('tiled', v), o.reps, o.trials);
          sweep.push({ context: T, kernel, ...v, ...rate(T, tv.ms) });
        }
      }
      if (kernels.includes('split') && !int8) {
        for (const tt of o.sweepBlocks) {
          const p = planMlaDecode({ H, R, Rv, cacheDtype: fDtype }, Number.POSITIVE_INFINITY, tt);
          if (p.sharedBytes > maxShared) {
            sweep.push({ context: T, kernel: 'split', blockTokens: tt, skipped: `needs ${p.sharedBytes} bytes` });
            continue;
          }
          for (const prefetch of [true, false]) {
            const tb = await timeGpu(gpu, call('split', { blockTokens: tt, prefetch }), o.reps, o.trials);
            sweep.push({
              context: T,
              kernel: 'split',
              chunks: defaultChunks(T, o.batch, tt),
              blockTokens: tt,
              prefetch,
              ...rate(T, tb.ms),
            });
          }
        }
      }
    }
    if (int8 && !checks.length && x.rows) {
      // The int8 kernel against the int8 reference on the same words (its own arithmetic), and against
      // f32 attention over the rows it was quantised from (the quantisation error).
      const { q, table, lengths, d, exact } = await readReference(x, x.rows, o, T, { H, R, Rv, scale });
      const words = (await x.pool.read()) as Int32Array;
      const refs = {
        dp4a: mlaDecodeInt8Reference(q, words, table, lengths, d),
        f32: mlaDecodeInt8Reference(q, words, table, lengths, d, { pv: 'f32' }),
      };
      // The two-pass kernels' own scheme (int8LazyReference.ts TWO_PASS_PV) at the P x V pass's chunk length.
      const twoPassRefs = new Map<number, Float32Array>();
      const twoPassRef = (chunks?: number) => {
        const NG = Math.ceil(H / 32);
        const want = chunks ?? defaultInt8SgmChunks(T, o.batch, NG);
        const chunkLen = Math.ceil(T / want / 32) * 32;
        let r = twoPassRefs.get(chunkLen);
        if (!r) {
          r = mlaDecodeInt8LazyReference(q, words, table, lengths, d, { ...TWO_PASS_PV, chunkLen });
          twoPassRefs.set(chunkLen, r);
        }
        return r;
      };
      // The f16 kernel's own scheme (int8F16Reference.ts) at its chunk length and tau.
      const f16Ref = (v: Partial<MlaDecodeOptions>) => {
        const NG = Math.ceil(H / 32);
        const want = v.chunks ?? v.int8F16?.chunks ?? defaultF16Chunks(T, o.batch, NG);
        const chunkLen = Math.ceil(T / want / MLA_INT8_F16_TB) * MLA_INT8_F16_TB;
        const f = v.int8F16 ?? o.int8F16;
        // The convert the kernel's plan resolves (its default depends on the staging form).
        const convert = planMlaInt8F16({ H, R: d.R, Rv: d.Rv, ...f }).convert;
        return mlaDecodeInt8F16Reference(q, words, table, lengths, d, { chunkLen, tau: f?.tau, convert });
      };
      // The dp4a kernel's default output: the tensor-core kernel must match it to f32 rounding.
      const dp4aOut = mlaDecode(x.q, x.pool, x.table, x.lengths, { Rv, scale, maxLength: T, int8Kernel: 'dp4a' });
      const dp4a = (await dp4aOut.read()) as Float32Array;
      dp4aOut.dispose();
      const runs: Partial<MlaDecodeOptions>[] = [
        ...int8Kernels.map((k) => ({ int8Kernel: k, int8Sgm: k === 'subgroup-matrix' ? o.int8Sgm : undefined })),
        ...int8Variants.filter(int8Runs),
      ];
      // The two-pass kernels' first pass alone against its emulation (int8TwoPassEmulate.ts) on the same words: every
      // score and block stat, so a wrong A + B output can be placed in one kernel.
      if (int8Kernels.includes('two-pass')) {
        try {
          const a = int8TwoPassScores(gpu, x.q, x.pool, x.table, x.lengths, { Rv, scale, maxLength: T });
          const gotS = (await a.scores.read()) as Float32Array;
          const gotStats = (await a.stats.read()) as Float32Array;
          a.scores.dispose();
          a.stats.dispose();
          const em = emulateScores(q, words, table, lengths, d, a.plan, a.chunkLenA);
          checks.push({
            context: T,
            kernel: 'int8-two-pass-scores',
            scoresVsEmulation: scoreDiff(gotS, em.scores, a.Tpad),
            statsVsEmulation: scoreDiff(gotStats, em.stats, a.plan.SA),
          });
        } catch (e) {
          checks.push({ context: T, kernel: 'int8-two-pass-scores', error: (e as Error).message });
        }
      }
      for (const v of runs) {
        const ref = refs[v.int8Pv ?? 'dp4a'];
        let got: Float32Array;
        try {
          const out = mlaDecode(x.q, x.pool, x.table, x.lengths, { Rv, scale, maxLength: T, int8Kernel: 'dp4a', ...v });
          got = (await out.read()) as Float32Array;
          out.dispose();
        } catch (e) {
          checks.push({ context: T, kernel: `int8-${v.int8Kernel ?? 'dp4a'}`, ...v, error: (e as Error).message });
          continue;
        }
        checks.push({
          context: T,
          kernel: `int8-${v.int8Kernel ?? 'dp4a'}`,
          ...v,
          vsInt8Reference: maxErr(got, ref),
          vsTwoPassReference: v.int8Kernel === 'two-pass' ? maxErr(got, twoPassRef(v.chunks)) : undefined,
          vsF16Reference: v.int8Kernel === 'f16' ? maxErr(got, f16Ref(v)) : undefined,
          // The lazy form's device check: where its error lies (mlalazy2).
          lazyDiag: v.int8Sgm?.lazy ? lazyDiag(got, ref, H, Rv) : undefined,
          vsDp4aKernel: v.int8Pv ? undefined : maxErr(got, dp4a),
          vsF32Attention: maxErr(got, exact),
          int8ReferenceVsF32Attention: maxErr(ref, exact),
          finite: got.every(Number.isFinite),
        });
      }
    }
    if (!int8 && !checks.length && o.batch * T <= 16384) {
      // Each kernel on this device against the f64-accumulating reference on the same pool bits.
      const bits = await x.pool.read();
      const pool = o.cacheDtype === 'bf16' ? bf16ArrayToF32(bits as Uint16Array) : (bits as Float32Array);
      const ref = mlaDecodeReference(
        (await x.q.read()) as Float32Array,
        pool,
        (await x.table.read()) as Int32Array,
        (await x.lengths.read()) as Int32Array,
        { B: o.batch, H, R, Rv, pageSize: o.pageSize, maxPages: x.table.shape[1], scale },
      );
      const runs: [MlaDecodeKernel, Partial<MlaDecodeOptions>][] = kernels.map((k) => [k, {}]);
      if (kernels.includes('tiled')) for (const v of TILED_VARIANTS) runs.push(['tiled', v]);
      for (const [kernel, v] of runs) {
        const out = mlaDecode(x.q, x.pool, x.table, x.lengths, {
          Rv,
          scale,
          maxLength: T,
          kernel,
          subgroupSize: o.subgroupSize,
          ...v,
        });
        const got = (await out.read()) as Float32Array;
        out.dispose();
        checks.push({
          context: T,
          kernel,
          ...v,
          ...maxErr(got, ref),
          finite: got.every(Number.isFinite),
        });
      }
    }
    for (const t of [x.q, x.pool, x.table, x.lengths]) t.dispose();
  }
  return {
    bench: 'mla',
    machine: machine(gpu),
    subgroupSizes: [gpu.adapterInfo.subgroupMinSize, gpu.adapterInfo.subgroupMaxSize],
    int8SubgroupMatrix: sgmPrep,
    options: o,
    decode: rows,
    sweep,
    checks,
    lazyVsDefault: lazyVsDefault.length ? lazyVsDefault : undefined,
    crossChecks: crossChecks.length ? crossChecks : undefined,
    alignProbe,
    targets: { note: 'H200, 48B preset (H=32, R=576, Rv=512, bf16): <= 5 ms per layer at 1M context (>= 14 TFLOP/s)' },
  };
}

/**
 * The f16 cache's rows (bench mla --cache-dtype f16): per F16_CACHE_VARIANTS row (the f16 tensor-core kernel's f16
 * staging: plain twice, f16Rotate twice, then the stage diagnostics: the staging alone, without it) the query +
 * kernel + merge time and its kernels' profile; the int8 cache's default kernel is bench mla --cache-dtype int8. At
 * the smallest context (batch x T <= 16384) each row's output against this scheme's reference (int8F16Reference.ts
 * with cache 'f16') and f32 attention over the rows the cache was written from; at every context the tensor-core
 * output against the tiled kernel reading the same words (mlaF16CacheOverrides.kernel 'plain').
 */
export const F16_CACHE_VARIANTS: { name: string; int8F16: MlaInt8F16Options; diagnostic?: boolean }[] = [
  { name: 'f16c', int8F16: { f16Rotate: false, ahead: 2 } },
  { name: 'f16c-rot', int8F16: { f16Rotate: true, ahead: 2 } },
  { name: 'f16c', int8F16: { f16Rotate: false, ahead: 2 } },
  { name: 'f16c-rot', int8F16: { f16Rotate: true, ahead: 2 } },
  // Second sitting: twice the bytes in flight (four blocks fetched ahead; the first sitting's staging alone ran 0.569
  // ms at 1M against the int8 rows' 0.50 with twice the bytes a row). f16Rotate + ahead 4 is the f16 cache's default
  // since (MLA_F16_CACHE_DEFAULTS).
  { name: 'f16c-a4', int8F16: { f16Rotate: false, ahead: 4 } },
  { name: 'f16c-rot-a4', int8F16: { f16Rotate: true, ahead: 4 } },
  { name: 'f16c-a4', int8F16: { f16Rotate: false, ahead: 4 } },
  { name: 'f16c-rot-a4', int8F16: { f16Rotate: true, ahead: 4 } },
  {
    name: 'f16c-stage-only',
    int8F16: { f16Rotate: false, ahead: 2, skip: ['scores', 'softmax', 'pv'] },
    diagnostic: true,
  },
  {
    name: 'f16c-rot-a4-stage-only',
    int8F16: { f16Rotate: true, ahead: 4, skip: ['scores', 'softmax', 'pv'] },
    diagnostic: true,
  },
  {
    name: 'f16c-rot-stage-only',
    int8F16: { f16Rotate: true, ahead: 2, skip: ['scores', 'softmax', 'pv'] },
    diagnostic: true,
  },
  { name: 'f16c-no-stage', int8F16: { f16Rotate: false, ahead: 2, skip: ['stage'] }, diagnostic: true },
];

async function benchMlaF16Cache(gpu: GpuContext, o: MlaBenchOptions) {
  const R = o.rank + o.rope;
  const Rv = o.rank;
  const H = o.heads;
  const scale = (128 + o.rope) ** -0.5;
  const rowBytes = 2 * R;
  const rate = (T: number, ms: number) => ({
    ms: Number(ms.toFixed(4)),
    cacheGBps: Number(((o.batch * T * rowBytes) / (ms * 1e-3) / 1e9).toFixed(1)),
    tflops: Number(((o.batch * T * H * (R + Rv) * 2) / (ms * 1e-3) / 1e12).toFixed(2)),
  });
  const tc = mlaF16CacheKernelFor(gpu, { H, R, Rv, subgroupSize: o.subgroupSize }) === 'f16';
  const rows: Record<string, unknown>[] = [];
  const checks: Record<string, unknown>[] = [];
  const crossChecks: Record<string, unknown>[] = [];
  const variants = F16_CACHE_VARIANTS.filter((v) => !v.diagnostic || o.int8VariantSet !== 'none');
  // Each timed form (not the diagnostics) once in the checks.
  const checked = F16_CACHE_VARIANTS.filter((v, i, a) => !v.diagnostic && a.findIndex((w) => w.name === v.name) === i);
  for (const T of o.context) {
    let x: Inputs | undefined;
    try {
      x = await makeInputs(gpu, o, T);
      const xi = x;
      const opts = (v: MlaInt8F16Options): MlaDecodeOptions => ({
        Rv,
        scale,
        maxLength: T,
        subgroupSize: o.subgroupSize,
        int8F16: { ...o.int8F16, ...v },
      });
      // kernel 'plain': the tiled / split kernel over the same words (mlaF16CacheOverrides), set for fn only.
      const withKernel = async <R>(kernel: 'plain' | undefined, fn: () => Promise<R>): Promise<R> => {
        mlaF16CacheOverrides.kernel = kernel;
        try {
          return await fn();
        } finally {
          mlaF16CacheOverrides.kernel = undefined;
        }
      };
      const read = (v: MlaInt8F16Options, kernel?: 'plain') =>
        withKernel(kernel, async () => {
          const out = mlaDecode(xi.q, xi.pool, xi.table, xi.lengths, opts(v));
          const got = (await out.read()) as Float32Array;
          out.dispose();
          return got;
        });
      const NG = Math.ceil(H / 32);
      for (const v of tc ? variants : []) {
        const call = () => mlaDecode(xi.q, xi.pool, xi.table, xi.lengths, opts(v.int8F16)).dispose();
        try {
          const t = await timeGpu(gpu, call, o.reps, o.trials);
          const pl = planMlaInt8F16({ H, R, Rv, cache: 'f16', ...o.int8F16, ...v.int8F16 });
          rows.push({
            context: T,
            kernel: v.name,
            batch: o.batch,
            H,
            R,
            Rv,
            cache: 'f16',
            int8F16: { ...o.int8F16, ...v.int8F16 },
            diagnostic: v.diagnostic,
            chunks: o.int8F16?.chunks ?? defaultF16Chunks(T, o.batch, NG),
            sharedBytes: pl.sharedBytes,
            ...rate(T, t.ms),
            trialsMs: t.trials.map((y) => Number(y.toFixed(4))),
            kernelsMs: await profileKernels(gpu, call, 3, { warmUp: false }),
            timer: t.source,
          });
        } catch (e) {
          rows.push({ context: T, kernel: v.name, error: (e as Error).message });
        }
      }
      // The plain kernel (tiled / split over the same words) timed once and its output as the cross-check's base.
      await withKernel('plain', async () => {
        const t = await timeGpu(
          gpu,
          () => mlaDecode(xi.q, xi.pool, xi.table, xi.lengths, opts({})).dispose(),
          Math.min(o.reps, 2),
          Math.min(o.trials, 3),
        );
        rows.push({ context: T, kernel: 'f16c-plain', batch: o.batch, H, R, Rv, cache: 'f16', ...rate(T, t.ms) });
      });
      const plain = await read({}, 'plain');
      if (tc)
        for (const v of checked) {
          const got = await read(v.int8F16);
          crossChecks.push({
            context: T,
            kernel: v.name,
            against: 'f16c-plain',
            ...maxErr(got, plain),
            finite: got.every(Number.isFinite),
          });
        }
      if (!checks.length && x.rows) {
        const { q, table, lengths, d, exact } = await readReference(x, x.rows, o, T, { H, R, Rv, scale });
        const words = (await x.pool.read()) as Int32Array;
        const overF16 = mlaDecodeReference(q, unpackF16Rows(words, R), table, lengths, d);
        const want = o.int8F16?.chunks ?? defaultF16Chunks(T, o.batch, NG);
        const chunkLen = Math.ceil(T / want / MLA_INT8_F16_TB) * MLA_INT8_F16_TB;
        const scheme = mlaDecodeInt8F16Reference(q, words, table, lengths, d, {
          chunkLen,
          tau: o.int8F16?.tau,
          cache: 'f16',
        });
        checks.push({
          context: T,
          kernel: 'f16c-plain',
          vsF32OverF16: maxErr(plain, overF16),
          vsF32Attention: maxErr(plain, exact),
        });
        for (const v of tc ? checked : []) {
          const got = await read(v.int8F16);
          checks.push({
            context: T,
            kernel: v.name,
            vsF16Reference: maxErr(got, scheme),
            vsF32OverF16: maxErr(got, overF16),
            vsF32Attention: maxErr(got, exact),
            schemeVsF32Attention: maxErr(scheme, exact),
            finite: got.every(Number.isFinite),
          });
        }
      }
    } catch (e) {
      rows.push({ context: T, batch: o.batch, error: (e as Error).message });
      console.error(e);
    } finally {
      if (x) for (const t of [x.q, x.pool, x.table, x.lengths]) t.dispose();
    }
  }
  return {
    bench: 'mla',
    machine: machine(gpu),
    subgroupSizes: [gpu.adapterInfo.subgroupMinSize, gpu.adapterInfo.subgroupMaxSize],
    f16CacheKernel: tc ? 'f16' : 'plain',
    options: o,
    decode: rows,
    sweep: [],
    checks,
    crossChecks,
  };
}

export function registerMlaBench(bench: Command): void {
  const cmd = bench
    .command('mla')
    .description('absorbed MLA decode kernel over a paged latent cache: ms, cache GB/s, effective TFLOP/s')
    .option('--context <n,...>', 'cached tokens per sequence', '4096,131072,1048576')
    .option('--batch <n>', 'sequences (all of the same length)', '1')
    .option('--heads <n>', 'attention heads', '32')
    .option('--rank <n>', 'kv_lora_rank (value dims Rv)', '512')
    .option('--rope <n>', 'qk_rope_head_dim (R = rank + rope)', '64')
    .option(
      '--cache-dtype <t>',
      'bf16, f32, int8 (quantised rows, the int8 kernel) or f16 (binary16 rows: the f16 tensor-core kernel, F16_CACHE_VARIANTS, --int8-variants none leaves out its stage diagnostics)',
      'bf16',
    )
    .option('--page-size <n>', 'rows per cache page', '64')
    .option('--reps <n>', 'calls per timed trial', '5')
    .option('--trials <n>', 'timed trials (median reported)', '5')
    .option('--kernels <k,...>', 'decode kernels to time: tiled, split', 'tiled,split')
    .option('--sweep-chunks <n,...>', 'chunks per sequence tried at the largest context (first kernel)', '132,264,528')
    .option('--sweep-blocks <n,...>', 'split kernel: rows per block tried at the largest context', '')
    .option('--subgroup-size <n>', 'tiled kernel: subgroup size to compile for if the adapter reports a range')
    .option(
      '--int8-kernels <k,...>',
      'int8 cache: kernels to time, dp4a, subgroup-matrix, two-pass and f16 (tensor cores: need --unsafe-apis, f16 also --f16, and a device that has them)',
      'subgroup-matrix,dp4a',
    )
    .option(
      '--int8-sgm <k=v,...>',
      'int8 cache: options of the tensor-core kernel in its rows at every context (queryResident, heads=16, fold=1, prefetch=false, wide, stageSpread, ...)',
      '',
    )
    .option(
      '--int8-variants <set>',
      "int8 cache: variants swept at the largest context: all, sgm-stages (the tensor-core kernel less one stage at a time, diagnostics), sgm-wide (its latency-hiding candidates), sgm-lazy (P x V accumulated across blocks), sgm-lazy-check (its correctness diagnostics), sgm-lazy-regs (its register-pressure rows), two-pass (the two-pass kernels' layout choices), two-pass-stages (what limits them: a stage left out at a time, diagnostics), f16 (the f16 tensor-core kernel's chunk counts and its rescale path), f16-stages (its stages left out, diagnostics), f16-all (both), f16-s13 (the thirteenth session's candidates), f16-s14 (the fourteenth's: convert, ahead 3 / 4), f16-s14b (its second: pageAhead), f16-s15 (the fifteenth's: rangeIdx), f16-s15b (its second: the new default's diagnostics), f16-s15c (its third: rowSwap, ahead 1 at 264 chunks) or none",
      'all',
    )
    .option(
      '--int8-f16 <k=v,...>',
      'int8 cache: options of the f16 kernel in its rows (as bench decode --mla-int8-f16)',
      '',
    )
    .option('--int8-variant-chunks <n>', 'int8 cache: chunks per sequence for the swept variants that name none')
    .option('--json', 'print a JSON object');
  gpuFlags(cmd).action(async (opts: Record<string, string> & GpuFlagOptions & { json?: boolean }) => {
    const cacheDtype = parseMlaCacheDtype('--cache-dtype', opts.cacheDtype);
    const gpu = await openBenchDevice(opts);
    const result = await benchMla(gpu, {
      context: parseList(opts.context),
      batch: parseList(opts.batch)[0],
      heads: parseList(opts.heads)[0],
      rank: parseList(opts.rank)[0],
      rope: parseList(opts.rope)[0],
      cacheDtype,
      pageSize: parseList(opts.pageSize)[0],
      reps: parseList(opts.reps)[0],
      trials: parseList(opts.trials)[0],
      kernels: opts.kernels.split(',').map((k) => {
        if (k !== 'tiled' && k !== 'split') throw new Error(`--kernels: '${k}' is not tiled or split`);
        return k;
      }),
      sweepChunks: opts.sweepChunks ? parseList(opts.sweepChunks) : [],
      sweepBlocks: opts.sweepBlocks ? parseList(opts.sweepBlocks) : [],
      subgroupSize: opts.subgroupSize ? parseList(opts.subgroupSize)[0] : undefined,
      int8Kernels: opts.int8Kernels.split(',').map((k) => {
        if (k !== 'dp4a' && k !== 'subgroup-matrix' && k !== 'two-pass' && k !== 'f16')
          throw new Error(`--int8-kernels: '${k}' is not dp4a, subgroup-matrix, two-pass or f16`);
        return k;
      }),
      int8Sgm: parseInt8SgmOptions(opts.int8Sgm),
      int8F16: parseF16Options(opts.int8F16 ?? ''),
      int8VariantSet: ((v) => {
        if (
          ![
            'all',
            'sgm-stages',
            'sgm-wide',
            'sgm-lazy',
            'sgm-lazy-check',
            'sgm-lazy-regs',
            'two-pass',
            'two-pass-stages',
            'f16',
            'f16-stages',
            'f16-all',
            'f16-s13',
            'f16-s14',
            'f16-s14b',
            'f16-s15',
            'f16-s15b',
            'f16-s15c',
            'none',
          ].includes(v)
        )
          throw new Error(
            `--int8-variants: '${v}' is not all, sgm-stages, sgm-wide, sgm-lazy, sgm-lazy-check, sgm-lazy-regs, two-pass, two-pass-stages, f16, f16-stages, f16-all, f16-s13, f16-s14, f16-s14b, f16-s15, f16-s15b, f16-s15c or none`,
          );
        return v as MlaBenchOptions['int8VariantSet'];
      })(opts.int8Variants),
      int8VariantChunks: opts.int8VariantChunks ? parseList(opts.int8VariantChunks)[0] : undefined,
    });
    gpu.destroy();
    if (opts.json) return printJson(result);
    console.log(`mla decode on ${String(result.machine.adapter)}`);
    console.log(
      renderTable(result.decode.map(({ kernelsMs, ...r }) => ({ ...r, kernels: JSON.stringify(kernelsMs) }))),
    );
    if (result.sweep.length) console.log(renderTable(result.sweep));
    for (const c of result.checks) console.log(`check vs reference: ${JSON.stringify(c)}`);
  });
}
