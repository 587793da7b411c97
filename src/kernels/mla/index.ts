/**
 * Absorbed MLA decode over a paged latent cache, and appending rows to that cache.
 * The pool holds pages [numPages, pageSize, R] (R = kv_lora_rank + qk_rope_head_dim) in f32 or bf16,
 * or, quantised (int8Layout.ts), i32 pages [numPages, pageSize, int8RowWords(R, Rv)] of packed int8 codes
 * and per-token scales, decoded by integer dot products (decodeInt8.wgsl.ts);
 * a page table [B, maxPages] i32 maps each sequence's pages, so sequences of different lengths share
 * one pool without reserving their maximum length.
 */
import type { GpuContext } from '../../gpu/context.js';
import type { KernelSpec } from '../../gpu/pipelineCache.js';
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { f32ArrayToBf16 } from '../../tensor/dtype.js';
import type { CpuStorage } from '../../tensor/storage.js';
import type { Device, Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, grid1d, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { cacheWriteWgsl } from './cacheWrite.wgsl.js';
import { mlaDecodeWgsl } from './decode.wgsl.js';
import { MERGE_DV, mlaMergeWgsl } from './merge.wgsl.js';
import { defaultChunks, mlaDecodeKey, planMlaDecode } from './plan.js';
import { Q_PREP_WG, qPrepWgsl } from './qPrep.wgsl.js';
import { cacheWriteReference, mlaDecodeReference } from './reference.js';
import { mlaTiledWgsl } from './decodeTiled.wgsl.js';
import { defaultTiledChunks, mlaTiledKey, planMlaTiled, tiledSubgroupSize } from './tiledPlan.js';
import { int8RowLayout, int8RowWords, type MlaCacheDtype } from './int8Layout.js';
import { cacheWriteInt8Reference, mlaDecodeInt8Reference } from './int8Reference.js';
import { int8CacheWriteWgsl, int8QueryWgsl } from './int8Quantize.wgsl.js';
import { defaultInt8Chunks, type MlaInt8Variant, mlaInt8Key, planMlaInt8 } from './int8Plan.js';
import { mlaInt8Wgsl } from './decodeInt8.wgsl.js';
import { int8QueryRowsWgsl } from './int8Quantize.wgsl.js';
import { type MlaInt8SgmOptions, mlaInt8SgmKey, mlaInt8SgmUnsupported, planMlaInt8Sgm } from './int8SgmPlan.js';
import { mlaInt8SgmWgsl } from './decodeInt8Sgm.wgsl.js';
import { mlaInt8SgmState } from './int8SgmState.js';
import { int8QueryRowsReference } from './int8SgmEmulate.js';
import { int8TwoPassDecode } from './int8TwoPassDecode.js';
import type { MlaInt8TwoPassOptions } from './int8TwoPassPlan.js';
import { int8F16Decode, mlaInt8F16DeviceUnsupported, mlaInt8F16Overrides } from './int8F16Decode.js';
import { type MlaInt8F16Options, mlaInt8F16Unsupported, planMlaInt8F16 } from './int8F16Plan.js';
import { cacheWriteF16Reference, f16RowWords, i32PoolKind, unpackF16Rows } from './f16Layout.js';

export { int8RowWords, MLA_CACHE_DTYPES, type MlaCacheDtype, parseMlaCacheDtype } from './int8Layout.js';
export { prepareMlaInt8Sgm } from './int8SgmPrepare.js';
export { mlaInt8TwoPassOverrides } from './int8TwoPassDecode.js';
export { mlaInt8F16Overrides } from './int8F16Decode.js';

/**
 * The int8 cache's decode kernels: `dp4a` (integer dot products, decodeInt8.wgsl.ts; every device with
 * fixed-size subgroups) and `subgroup-matrix` (tensor cores, decodeInt8Sgm.wgsl.ts; where
 * prepareMlaInt8Sgm found Dawn's int8 subgroup matrices working and exact), and `two-pass` (tensor cores, scores
 * then P x V in two streaming kernels, int8TwoPassPlan.ts; opt-in where subgroup-matrix may run: exact on the H200
 * but not faster, 1.10 against 1.07 ms a layer at 1M), and `f16` (f16 tensor cores over the int8 codes times their
 * scales, a lazy max, P x V accumulated in registers across the chunk: int8F16Plan.ts; the default where the device
 * has f16 subgroup matrices of 32 lanes, `--unsafe-apis --f16` on the H200: 0.70 ms a layer at 1M, hybrid TPOT 8.52 ms).
 */
export type MlaInt8Kernel = 'dp4a' | 'subgroup-matrix' | 'two-pass' | 'f16';

/** The decode kernels: `tiled` (decodeTiled.wgsl.ts, needs subgroups of a fixed size 8-32), `split` (decode.wgsl.ts). */
export type MlaDecodeKernel = 'tiled' | 'split';

export interface MlaDecodeOptions {
  /** Value dims (kv_lora_rank): the first Rv of each cached row. */
  Rv: number;
  scale: number;
  /**
   * The longest sequence in the batch (host-side bookkeeping; sets how the sequence is split). Must be at
   * least every lengths[b]: rows past chunks * chunkLen >= maxLength are not visited.
   */
  maxLength: number;
  /** Chunks per sequence; default spreads the work over ~264 workgroups (plan.ts defaultChunks). */
  chunks?: number;
  /** Cached rows per block (a multiple of 4); default: the largest that fits the device's workgroup memory. */
  blockTokens?: number;
  /** Split kernel: fetch the next block's rows into registers during the current block's math (default true). */
  prefetch?: boolean;
  /** Which kernel; default `tiled` where the device has fixed-size subgroups of 8, 16 or 32, else `split`. */
  kernel?: MlaDecodeKernel;
  /** Tiled kernel: two row buffers or one (default). */
  doubleBuffer?: boolean;
  /** Tiled kernel: overlap S of the next block with O of this one (two row buffers; default off). */
  pipelined?: boolean;
  /** Tiled kernel: scores in two passes of 4 tokens (default true: fewer live registers) or one of 8. */
  sHalves?: boolean;
  /** Tiled kernel: load the next block's rows during O only (default true) or a whole block ahead. */
  lateFetch?: boolean;
  /** int8 cache: P x values on dot4I8Packed with p quantised per head and block (default), or in f32. */
  int8Pv?: 'dp4a' | 'f32';
  /** int8 cache: code-generation variants of its kernel (int8Plan.ts), for measuring. */
  int8Variant?: Omit<MlaInt8Variant, 'pv'>;
  /**
   * int8 cache: which kernel; default `subgroup-matrix` where prepareMlaInt8Sgm(gpu) found it working here
   * (MLA_INT8_SGM_BY_DEFAULT: exact and faster on the H200), else `dp4a`.
   */
  int8Kernel?: MlaInt8Kernel;
  /** int8 cache, tensor-core kernel: code-generation variants (int8SgmPlan.ts), for measuring. */
  int8Sgm?: MlaInt8SgmOptions;
  /** int8 cache, two-pass kernels: options (int8TwoPassPlan.ts), for measuring. */
  int8TwoPass?: MlaInt8TwoPassOptions;
  /** int8 cache, f16 tensor-core kernel: options (int8F16Plan.ts), for measuring. */
  int8F16?: MlaInt8F16Options;
  /**
   * The pool's cache where it is i32: 'int8' or 'f16' (f16Layout.ts); unstated, told by its row width (int8 where
   * the widths coincide). The model's sessions state it.
   */
  cacheDtype?: MlaCacheDtype;
  /**
   * Tiled kernel: the subgroup size to compile for where the adapter does not report one fixed size (the
   * kernel writes NaN if the size it runs with differs).
   */
  subgroupSize?: number;
}

/** qT [B, R, HP]: the query transposed, heads padded to HP, scaled by scale * log2(e) (qPrep.wgsl.ts). */
function prepQuery(gpu: GpuContext, qFull: Tensor, HP: number, scale: number): Tensor {
  const [B, H, R] = qFull.shape;
  const q = contiguous(qFull);
  const qT = gpu.empty([B, R, HP]);
  const nq = B * R * (HP / 4);
  gpu.dispatch({
    kernel: { name: 'mla_q_prep', key: `mla_q_prep_h${H}_r${R}_hp${HP}`, code: () => qPrepWgsl(H, R, HP) },
    tensors: [q, qT],
    params: new Params()
      .u32(nq)
      .f32(scale * Math.LOG2E)
      .u32(0, 0),
    workgroups: grid1d(nq, Q_PREP_WG),
  });
  q.dispose();
  return qT;
}

/** Combine the per-chunk partial results [B, chunks, H, Rv + 2] into o [B, H, Rv] (and free them). */
export function mergeChunks(gpu: GpuContext, partial: Tensor, Rv: number, loads = 1): Tensor {
  const [B, chunks, H] = partial.shape;
  const out = gpu.empty([B, H, Rv]);
  gpu.dispatch({
    kernel: {
      name: 'mla_merge',
      key: `mla_merge_h${H}_rv${Rv}${loads > 1 ? `_l${loads}` : ''}`,
      code: () => mlaMergeWgsl(H, Rv, loads),
    },
    tensors: [partial, out],
    params: new Params().u32(chunks, 0, 0, 0),
    workgroups: [H, B, Math.ceil(Rv / MERGE_DV)],
  });
  partial.dispose();
  return out;
}

/** Split each sequence into `wanted` chunks of whole TT-row blocks, one decode workgroup column each. */
export function splitSequence(
  gpu: GpuContext,
  maxLen: number,
  wanted: number,
  TT: number,
): { chunkLen: number; chunks: number } {
  if (!Number.isInteger(wanted) || wanted < 1)
    throw new Error(`mlaDecode: chunks must be a positive integer, got ${wanted}`);
  const chunkLen = Math.ceil(maxLen / wanted / TT) * TT;
  const chunks = Math.ceil(maxLen / chunkLen);
  if (chunks > gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new Error(
      `mlaDecode: ${chunks} chunks per sequence exceed this device's ${gpu.limits.maxComputeWorkgroupsPerDimension} workgroups per dimension: pass fewer chunks`,
    );
  }
  return { chunkLen, chunks };
}

/** The kernel `mlaDecode` runs on this device for these options (the split one where tiled cannot). */
export function mlaDecodeKernelFor(gpu: GpuContext, opts: { kernel?: MlaDecodeKernel }): MlaDecodeKernel {
  if (opts.kernel === 'split') return 'split';
  const sg = tiledSubgroupSize(
    gpu.features.subgroups,
    gpu.adapterInfo.subgroupMinSize,
    gpu.adapterInfo.subgroupMaxSize,
  );
  if (sg === undefined && opts.kernel === 'tiled') {
    throw new Error(
      `mlaDecode: the tiled kernel needs subgroups of one size 8, 16 or 32; this device has subgroups=${gpu.features.subgroups}, sizes ${gpu.adapterInfo.subgroupMinSize}-${gpu.adapterInfo.subgroupMaxSize}`,
    );
  }
  return sg === undefined ? 'split' : 'tiled';
}

/**
 * The int8 f16 kernel's query made by the dispatch before it (headGemv's f16Query, at the layout
 * mlaReadyQueryLayout gives): qh [B, HP, R / 2] i32 for H heads, f16 pairs of q * scale * log2(e). mlaDecode then
 * runs no query dispatch of its own.
 */
export interface MlaReadyQuery {
  qh: Tensor;
  H: number;
}

/**
 * Where mlaDecode with these options would run the int8 f16 kernel with a query dispatch of its own (int8 cache,
 * a GPU device where mlaInt8KernelFor picks 'f16', no qFold), the layout a ready query must have: its padded head
 * count HP and factor c (the f32 the query dispatch multiplies by). Else undefined (pass q f32 as usual).
 */
export function mlaReadyQueryLayout(
  device: Device,
  o: { H: number; R: number } & Pick<
    MlaDecodeOptions,
    'Rv' | 'scale' | 'cacheDtype' | 'int8Kernel' | 'int8F16' | 'subgroupSize'
  >,
): { HP: number; c: number } | undefined {
  const gpu = asGpu(device);
  if (!gpu || o.cacheDtype !== 'int8' || tiledSubgroupSizeOf(gpu, o) === undefined) return undefined;
  if (mlaInt8KernelFor(gpu, o) !== 'f16') return undefined;
  const f16o = { ...mlaInt8F16Overrides.options, ...o.int8F16 };
  const plan = planMlaInt8F16({ H: o.H, R: o.R, Rv: o.Rv, ...f16o }, gpu.limits.maxComputeWorkgroupStorageSize);
  return plan.qFold || plan.cache === 'f16' ? undefined : { HP: plan.HP, c: o.scale * Math.LOG2E };
}

export function mlaDecode(
  qFull: Tensor | MlaReadyQuery,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
): Tensor {
  if ('qh' in qFull) return mlaDecodeReady(qFull, pool, pageTable, lengths, opts);
  const device = deviceOf('mlaDecode', qFull, pool, pageTable, lengths);
  const [B, H, R] = qFull.shape;
  expectShape('mlaDecode', 'qFull', qFull, [B, H, R]);
  // An i32 pool is the int8 cache (int8RowWords(R, Rv) words a row) or the f16 one (R / 2: f16Layout.ts).
  const f16c = pool.dtype === 'i32' && i32PoolKind(pool.shape[2], R, opts.Rv, opts.cacheDtype) === 'f16';
  const int8 = pool.dtype === 'i32' && !f16c;
  expectShape('mlaDecode', 'cache pool', pool, [null, null, int8 ? int8RowWords(R, opts.Rv) : f16c ? R / 2 : R]);
  expectPaging(pageTable, lengths, B);
  const pageSize = pool.shape[1];
  const maxPages = pageTable.shape[1];
  const { Rv, scale } = opts;
  const gpu = asGpu(device);
  if (!gpu && int8) {
    const dims = { B, H, R, Rv, pageSize, maxPages, scale };
    const out = mlaDecodeInt8Reference(hostF32(qFull), hostI32(pool), hostI32(pageTable), hostI32(lengths), dims, {
      pv: opts.int8Pv,
    });
    return cpu.fromHost(out, [B, H, Rv]);
  }
  if (!gpu) {
    // The f16 cache's values are its f16 channels: f32 attention over them.
    const rows = f16c ? unpackF16Rows(hostI32(pool), R) : hostF32(pool);
    const out = mlaDecodeReference(hostF32(qFull), rows, hostI32(pageTable), hostI32(lengths), {
      B,
      H,
      R,
      Rv,
      pageSize,
      maxPages,
      scale,
    });
    return cpu.fromHost(out, [B, H, Rv]);
  }
  if (int8) return int8Decode(gpu, qFull, pool, pageTable, lengths, opts);
  if (pool.dtype !== 'f32' && pool.dtype !== 'bf16' && !f16c) {
    throw new Error(`mlaDecode: cache pool must be f32, bf16 or i32 (int8 codes or f16 pairs), got ${pool.dtype}`);
  }
  // f16 cache: the f16 tensor-core kernel's f16 staging where the device and shapes allow it (mlaF16CacheKernelFor),
  // else the tiled / split kernels reading its words as bf16's (unpack2x16float).
  if (f16c && mlaF16CacheKernelFor(gpu, { H, R, Rv, subgroupSize: opts.subgroupSize }) === 'f16') {
    if (pool.offset % 4)
      throw new Error(`mlaDecode: an f16 pool must start on a 16-byte boundary (offset ${pool.offset} words)`);
    return int8F16Decode(gpu, qFull, pool, pageTable, lengths, {
      ...opts,
      int8F16: { ...opts.int8F16, cache: 'f16' },
    });
  }
  if (mlaDecodeKernelFor(gpu, opts) === 'tiled') return tiledDecode(gpu, qFull, pool, pageTable, lengths, opts);
  const maxShared = gpu.limits.maxComputeWorkgroupStorageSize;
  const cacheDtype = f16c ? 'f16' : (pool.dtype as 'f32' | 'bf16');
  const base = planMlaDecode({ H, R, Rv, cacheDtype }, maxShared, opts.blockTokens, opts.prefetch);
  // vec4 pool loads need the binding to start on a 16-byte boundary.
  const plan = { ...base, vecLoad: base.vecLoad && (pool.offset * (pool.dtype === 'bf16' ? 2 : 4)) % 16 === 0 };
  const maxLen = Math.max(1, opts.maxLength);
  const { chunkLen, chunks } = splitSequence(gpu, maxLen, opts.chunks ?? defaultChunks(maxLen, B, plan.TT), plan.TT);
  const qT = prepQuery(gpu, qFull, plan.HP, scale);
  const partial = gpu.empty([B, chunks, H, Rv + 2]);
  gpu.dispatch({
    kernel: { name: 'mla_decode', key: mlaDecodeKey(plan), code: () => mlaDecodeWgsl(plan) },
    tensors: [qT, pool, pageTable, lengths, partial],
    params: new Params().u32(maxPages, pageSize, chunks, chunkLen),
    workgroups: [chunks, B],
  });
  qT.dispose();
  return mergeChunks(gpu, partial, Rv);
}

/** mlaDecode's page table [B, maxPages] and lengths [B], both i32 (errors name the tensor, the shape or dtype found). */
function expectPaging(pageTable: Tensor, lengths: Tensor, B: number): void {
  expectShape('mlaDecode', 'page table', pageTable, [B, null]);
  expectShape('mlaDecode', 'lengths', lengths, [B]);
  expectDType('mlaDecode', 'page table', pageTable, ['i32']);
  expectDType('mlaDecode', 'lengths', lengths, ['i32']);
}

/** mlaDecode with a ready query: only the int8 cache's f16 kernel reads one (mlaReadyQueryLayout). */
function mlaDecodeReady(
  ready: MlaReadyQuery,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
): Tensor {
  const { qh, H } = ready;
  const device = deviceOf('mlaDecode', qh, pool, pageTable, lengths);
  expectDType('mlaDecode', 'ready query qh', qh, ['i32']);
  if (qh.rank !== 3) throw new Error(`mlaDecode: a ready query qh must be [B, HP, R / 2], got rank ${qh.rank}`);
  const [B, , RW] = qh.shape;
  const R = 2 * RW;
  const gpu = asGpu(device);
  const layout = mlaReadyQueryLayout(device, { H, R, ...opts });
  if (!gpu || !layout)
    throw new Error(
      "mlaDecode: a ready query needs the int8 cache's f16 kernel with its own query dispatch (mlaReadyQueryLayout)",
    );
  expectShape('mlaDecode', 'ready query qh', qh, [B, layout.HP, RW]);
  expectShape('mlaDecode', 'cache pool', pool, [null, null, int8RowWords(R, opts.Rv)]);
  expectPaging(pageTable, lengths, B);
  if (pool.dtype !== 'i32' || i32PoolKind(pool.shape[2], R, opts.Rv, opts.cacheDtype) !== 'int8')
    throw new Error('mlaDecode: a ready query needs an int8 cache pool');
  if (pool.offset % 4)
    throw new Error(`mlaDecode: an int8 pool must start on a 16-byte boundary (offset ${pool.offset})`);
  return int8F16Decode(gpu, ready, pool, pageTable, lengths, opts);
}

function tiledSubgroupSizeOf(gpu: GpuContext, opts: { subgroupSize?: number }): number | undefined {
  const { subgroupMinSize: min, subgroupMaxSize: max } = gpu.adapterInfo;
  const forced = opts.subgroupSize;
  return forced === undefined
    ? tiledSubgroupSize(gpu.features.subgroups, min, max)
    : tiledSubgroupSize(gpu.features.subgroups, forced, forced);
}

/**
 * Uniforms of the paged decode kernels (tiled and int8 share their layout): pages per sequence, page size,
 * chunk count and length, and pageShift = log2(pageSize) for a power of two (a shift and a mask instead of a
 * division in the kernel), else 32.
 */
export function pagedChunkParams(
  pageTable: Tensor,
  pageSize: number,
  chunks: number,
  chunkLen: number,
  /** The last three u32 (zero unless a kernel takes more: the two-pass kernels' Tpad, nBlk). */
  tail: [number, number, number] = [0, 0, 0],
): Params {
  const pageShift = (pageSize & (pageSize - 1)) === 0 ? Math.log2(pageSize) : 32;
  return new Params().u32(pageTable.shape[1], pageSize, chunks, chunkLen, pageShift, ...tail);
}

/**
 * The chunked paged decode of the tiled, int8 and tensor-core kernels, one place so they keep one uniform
 * layout (pagedChunkParams), grid and merge: the sequence split into chunks (opts.chunks, else the
 * kernel's default), the prepared query (`query()`, run only once the split is valid) bound before pool,
 * page table and lengths and partial [B, chunks, H, Rv + 2], one workgroup per (chunk, sequence, head
 * group of the plan's NG), the query freed, the partials merged. The two-pass kernels' second pass
 * (int8TwoPassDecode.ts) binds kernel A's scores and stats as its `query`, takes `groups` workgroups a chunk and
 * sequence (its head groups times column splits) and the uniforms' `tail` (Tpad, nBlk).
 */
export function pagedChunkDecode(
  gpu: GpuContext,
  d: {
    B: number;
    H: number;
    Rv: number;
    NG: number;
    TT: number;
    groups?: number;
    tail?: [number, number, number];
    /** The merge's loads in flight a lane (mlaMergeWgsl; 1 by default). */
    mergeLoads?: number;
  },
  opts: MlaDecodeOptions,
  defaultChunksOf: (maxLength: number, B: number, NG: number) => number,
  kernel: KernelSpec,
  query: () => Tensor[],
  paged: [pool: Tensor, pageTable: Tensor, lengths: Tensor],
): Tensor {
  const { B, H, Rv, NG, TT } = d;
  const [pool, pageTable] = paged;
  const maxLen = Math.max(1, opts.maxLength);
  const { chunkLen, chunks } = splitSequence(gpu, maxLen, opts.chunks ?? defaultChunksOf(maxLen, B, NG), TT);
  const q = query();
  const partial = gpu.empty([B, chunks, H, Rv + 2]);
  gpu.dispatch({
    kernel,
    tensors: [...q, ...paged, partial],
    params: pagedChunkParams(pageTable, pool.shape[1], chunks, chunkLen, d.tail),
    workgroups: [chunks, B, d.groups ?? NG],
  });
  for (const t of q) t.dispose();
  return mergeChunks(gpu, partial, Rv, d.mergeLoads);
}

function tiledDecode(
  gpu: GpuContext,
  qFull: Tensor,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
): Tensor {
  const [B, H, R] = qFull.shape;
  const { Rv, scale } = opts;
  const SG = tiledSubgroupSizeOf(gpu, opts)!;
  // An i32 pool here is the f16 cache (mlaDecode sends int8 pools elsewhere).
  const dtype = pool.dtype === 'i32' ? 'f16' : (pool.dtype as 'f32' | 'bf16');
  // vec4 pool loads need the binding to start on a 16-byte boundary.
  const vecAligned = (pool.offset * (pool.dtype === 'bf16' ? 2 : 4)) % 16 === 0;
  const plan = planMlaTiled({ H, R, Rv, cacheDtype: dtype, SG }, gpu.limits.maxComputeWorkgroupStorageSize, {
    vecAligned,
    doubleBuffer: opts.doubleBuffer,
    pipelined: opts.pipelined,
    sHalves: opts.sHalves,
    lateFetch: opts.lateFetch,
  });
  return pagedChunkDecode(
    gpu,
    { B, H, Rv, NG: plan.NG, TT: plan.TT },
    opts,
    defaultTiledChunks,
    { name: 'mla_decode_tiled', key: mlaTiledKey(plan), code: () => mlaTiledWgsl(plan) },
    () => [prepQuery(gpu, qFull, plan.HP, scale)],
    [pool, pageTable, lengths],
  );
}

/**
 * Int8 pool: quantise the query (int8Quantize.wgsl.ts), scores and P x values on dot4I8Packed per chunk
 * (decodeInt8.wgsl.ts), then the same merge as the f32 kernels. Needs subgroups of a fixed size 8-32.
 */
function int8Decode(
  gpu: GpuContext,
  qFull: Tensor,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
): Tensor {
  const [B, H, R] = qFull.shape;
  const { Rv, scale } = opts;
  const SG = tiledSubgroupSizeOf(gpu, opts);
  if (SG === undefined) {
    throw new Error(
      `mlaDecode: the int8 cache needs subgroups of one size 8, 16 or 32; this device has subgroups=${gpu.features.subgroups}, sizes ${gpu.adapterInfo.subgroupMinSize}-${gpu.adapterInfo.subgroupMaxSize}`,
    );
  }
  if (pool.offset % 4)
    throw new Error(`mlaDecode: an int8 pool must start on a 16-byte boundary (offset ${pool.offset})`);
  const int8Kernel = mlaInt8KernelFor(gpu, { H, R, Rv, int8Kernel: opts.int8Kernel });
  if (int8Kernel === 'f16') return int8F16Decode(gpu, qFull, pool, pageTable, lengths, opts);
  if (int8Kernel === 'subgroup-matrix') return int8SgmDecode(gpu, qFull, pool, pageTable, lengths, opts);
  if (int8Kernel === 'two-pass') return int8TwoPassDecode(gpu, qFull, pool, pageTable, lengths, opts);
  const plan = planMlaInt8(
    { H, R, Rv, SG, pv: opts.int8Pv, ...opts.int8Variant },
    gpu.limits.maxComputeWorkgroupStorageSize,
  );
  const quantiseQuery = () => {
    const q = contiguous(qFull);
    const q8 = gpu.empty([B, plan.NC, plan.HP, 4], 'i32');
    const qs = gpu.empty([B, plan.HP, 2]);
    const L = int8RowLayout(R, Rv);
    gpu.dispatch({
      kernel: {
        name: 'mla_int8_query',
        key: `mla_int8_query_h${H}_hp${plan.HP}_r${R}_rv${Rv}`,
        code: () => int8QueryWgsl(L, H, plan.HP),
      },
      tensors: [q, q8, qs],
      params: new Params().f32(scale * Math.LOG2E).u32(0, 0, 0),
      workgroups: [plan.HP, B],
    });
    q.dispose();
    return [q8, qs];
  };
  return pagedChunkDecode(
    gpu,
    { B, H, Rv, NG: plan.NG, TT: plan.TT },
    opts,
    defaultInt8Chunks,
    { name: 'mla_decode_int8', key: mlaInt8Key(plan), code: () => mlaInt8Wgsl(plan) },
    quantiseQuery,
    [pool, pageTable, lengths],
  );
}

/**
 * Whether mlaDecode takes the tensor-core kernel by default where it is prepared and possible: yes since the
 * sixth session. On the H200 it is exact (the same outputs as dp4a, bit for bit) and, in its default form
 * (int8SgmPlan.ts: the quarter layout, foldSpread, scorePad), faster: 1.19 against 1.55 ms a layer at 1M context,
 * 0.178 against 0.227 at 128K, 0.023 against 0.029 at 4K; hybrid TPOT at 1M 12.72 against 15.03 ms
 * (bench/results/2026-12-01-h200-sgm3-s3-*.json); since the seventh session with twice the subgroups (`wide`):
 * 1.078 ms a layer at 1M, hybrid TPOT 11.75 against 12.80 ms (bench/results/2026-12-01-h200-sgm4-s2-*).
 * Its parity layout before that was slower (2.15-2.46 ms;
 * why: decodeInt8Sgm.wgsl.ts). "Prepared" means prepareMlaInt8Sgm(gpu) ran once on the device and found
 * Dawn's experimental int8 subgroup matrices (behind allow_unsafe_apis: `--unsafe-apis`) compiling and exact
 * against dp4a; without that, or with `int8Kernel: 'dp4a'`, the dp4a kernel runs.
 */
export const MLA_INT8_SGM_BY_DEFAULT = true;

/**
 * The int8 cache's decode on f16 tensor cores (int8F16Plan.ts, decodeInt8F16.wgsl.ts) wherever the device offers
 * f16 subgroup matrices (on the H200: `--unsafe-apis --f16`), before the int8 tensor-core kernel: 0.704 ms a
 * layer at 1M context against 1.074, 0.63 against 0.90 at 128K, equal at 4K; hybrid TPOT at 1M 8.52 ms against
 * 11.19 (twelfth session, bench/results/2026-12-02-h200-s12-mlaf16-run3-*). o within 3.5e-3 of max |o| of the
 * int8 reference, 2.8e-3 of f32 attention on the same cache.
 */
export const MLA_INT8_F16_BY_DEFAULT = true;

/**
 * What mlaDecode's callers leave unset for an int8 cache takes from here (as int8Plan.ts mlaInt8Overrides
 * does for the dp4a kernel's variant): the kernel, and the tensor-core kernel's options. How `bench decode
 * --mla-int8-kernel subgroup-matrix --mla-int8-sgm queryResident,...` times whole steps with it (after
 * prepareMlaInt8Sgm, under --unsafe-apis). Empty by default.
 */
export const mlaInt8KernelOverrides: { kernel?: MlaInt8Kernel; sgm?: MlaInt8SgmOptions } = {};

/**
 * The int8 kernel mlaDecode runs for these shapes: the one asked for (an error where it cannot run), else `f16`
 * where possible and MLA_INT8_F16_BY_DEFAULT, else `subgroup-matrix` where prepared and possible and
 * MLA_INT8_SGM_BY_DEFAULT, else `dp4a`.
 */
export function mlaInt8KernelFor(
  gpu: GpuContext,
  o: { H: number; R: number; Rv: number; int8Kernel?: MlaInt8Kernel; subgroupSize?: number },
): MlaInt8Kernel {
  const asked = o.int8Kernel ?? mlaInt8KernelOverrides.kernel;
  // f16: where the device has f16 subgroup matrices (no prepare step: no int8 builtins involved); the default
  // there (MLA_INT8_F16_BY_DEFAULT), asked for elsewhere an error that says why not.
  if (asked === 'f16' || (asked === undefined && MLA_INT8_F16_BY_DEFAULT)) {
    const SG = tiledSubgroupSizeOf(gpu, o);
    const why =
      mlaInt8F16DeviceUnsupported(gpu) ??
      (SG !== 32 ? `needs subgroups of 32, this device has ${SG}` : mlaInt8F16Unsupported(o.R, o.Rv));
    if (why === undefined) return 'f16';
    if (asked === 'f16') throw new Error(`mlaDecode: the int8 f16 kernel is not available: ${why}`);
  }
  if (asked === 'dp4a' || (asked === undefined && !MLA_INT8_SGM_BY_DEFAULT)) return 'dp4a';
  const state = mlaInt8SgmState.get(gpu);
  const SG = tiledSubgroupSizeOf(gpu, o);
  const why =
    state === undefined
      ? 'call prepareMlaInt8Sgm(gpu) first'
      : (state.reason ??
        (SG !== 32 ? `needs subgroups of 32, this device has ${SG}` : mlaInt8SgmUnsupported(o.R, o.Rv)));
  // two-pass: opt-in only, on the tensor cores where the fused kernel may run (the same prepared builtins).
  if (why === undefined) return asked === 'two-pass' ? 'two-pass' : 'subgroup-matrix';
  if (asked === 'subgroup-matrix' || asked === 'two-pass')
    throw new Error(`mlaDecode: the int8 ${asked} kernel is not available: ${why}`);
  return 'dp4a';
}

/**
 * The kernel mlaDecode runs for an f16 cache (f16Layout.ts): 'f16', the f16 tensor-core kernel with its f16 rows
 * staging (int8F16Plan.ts `cache: 'f16'`), where the device has f16 subgroup matrices and subgroups of 32 (the H200
 * with `--unsafe-apis --f16`) and the shapes fit it (kv_lora_rank a multiple of 128, R a multiple of 64), unless
 * `mlaF16CacheOverrides.kernel` says 'plain'; else 'plain': the tiled or split kernel reading the words as the bf16
 * cache's, widened by unpack2x16float (core WGSL: no f16 extension needed). Asked for 'f16' where it cannot run: an
 * error saying why.
 */
export function mlaF16CacheKernelFor(
  gpu: GpuContext,
  o: { H: number; R: number; Rv: number; subgroupSize?: number },
): 'f16' | 'plain' {
  const asked = mlaF16CacheOverrides.kernel;
  if (asked === 'plain') return 'plain';
  const SG = tiledSubgroupSizeOf(gpu, o);
  const why =
    mlaInt8F16DeviceUnsupported(gpu) ??
    (SG !== 32 ? `needs subgroups of 32, this device has ${SG}` : mlaInt8F16Unsupported(o.R, o.Rv));
  if (why === undefined) return 'f16';
  if (asked === 'f16') throw new Error(`mlaDecode: the f16 cache's tensor-core kernel is not available: ${why}`);
  return 'plain';
}

/** What bench / tests set for the f16 cache's kernel (mlaF16CacheKernelFor): unset = the tensor cores where possible. */
export const mlaF16CacheOverrides: { kernel?: 'f16' | 'plain' } = {};

/**
 * Chunks per sequence of the tensor-core kernel: one workgroup per SM of an H200, as for dp4a (at 1M:
 * 132 chunks 2.15 ms, 264 2.19, 528 2.27; bench/results/2026-12-01-h200-dec8-run1-mla.json).
 */
export function defaultInt8SgmChunks(maxLength: number, B: number, NG: number): number {
  return defaultInt8Chunks(maxLength, B, NG);
}

/**
 * The decode query qFull [B, H, R] quantised to rows [B, HP, int8RowWords(R, Rv)] as the cache stores
 * rows, scales times scale * log2 e, heads past H zero (int8QueryRowsWgsl; int8QueryRowsReference).
 */
export function int8QueryRows(qFull: Tensor, o: { Rv: number; HP: number; scale: number }): Tensor {
  const device = deviceOf('int8QueryRows', qFull);
  const [B, H, R] = qFull.shape;
  expectShape('int8QueryRows', 'qFull', qFull, [B, H, R]);
  if (o.HP < H) throw new Error(`int8QueryRows: HP = ${o.HP} is below the ${H} heads`);
  const L = int8RowLayout(R, o.Rv);
  const gpu = asGpu(device);
  if (!gpu) {
    const d = { B, H, R, Rv: o.Rv };
    return cpu.fromHost(int8QueryRowsReference(hostF32(qFull), d, o.HP, o.scale * Math.LOG2E), [B, o.HP, L.RW], 'i32');
  }
  const q = contiguous(qFull);
  const qr = gpu.empty([B, o.HP, L.RW], 'i32');
  gpu.dispatch({
    kernel: {
      name: 'mla_int8_query_rows',
      key: `mla_int8_query_rows_h${H}_hp${o.HP}_r${R}_rv${o.Rv}`,
      code: () => int8QueryRowsWgsl(L, H, o.HP),
    },
    tensors: [q, qr],
    params: new Params().f32(o.scale * Math.LOG2E).u32(0, 0, 0),
    workgroups: [o.HP, B],
  });
  q.dispose();
  return qr;
}

/**
 * Int8 pool on the tensor cores: the query quantised to rows (int8QueryRowsWgsl), scores and P x values
 * as subgroup-matrix products per chunk (decodeInt8Sgm.wgsl.ts), then the same merge.
 */
function int8SgmDecode(
  gpu: GpuContext,
  qFull: Tensor,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
): Tensor {
  const [B, H, R] = qFull.shape;
  const { Rv, scale } = opts;
  const state = mlaInt8SgmState.get(gpu)!;
  const plan = planMlaInt8Sgm(
    { H, R, Rv, variant: state.variant!, ...mlaInt8KernelOverrides.sgm, ...opts.int8Sgm },
    gpu.limits.maxComputeWorkgroupStorageSize,
    gpu.limits.maxComputeInvocationsPerWorkgroup,
  );
  return pagedChunkDecode(
    gpu,
    { B, H, Rv, NG: plan.NG, TT: plan.TT },
    opts,
    defaultInt8SgmChunks,
    { name: 'mla_decode_int8_sgm', key: mlaInt8SgmKey(plan), code: () => mlaInt8SgmWgsl(plan) },
    () => [int8QueryRows(qFull, { Rv, HP: plan.HP, scale })],
    [pool, pageTable, lengths],
  );
}

/**
 * Append rows [N, R] at (seq[i], pos[i]) of the paged pool (bf16 pools round to nearest even; an int8
 * pool, i32 [pages, pageSize, int8RowWords(R, Rv)], quantises each row and needs `Rv`).
 */
export function cacheWrite(
  pool: Tensor,
  values: Tensor,
  seq: Tensor,
  pos: Tensor,
  pageTable: Tensor,
  /** cacheDtype: the pool's cache where it is i32 (int8 or f16; unstated: told by its width, f16Layout.ts). */
  opts: { Rv?: number; cacheDtype?: MlaCacheDtype } = {},
): void {
  const device = deviceOf('cacheWrite', pool, values, seq, pos, pageTable);
  if (pool.dtype === 'i32') {
    const R = values.shape[1];
    const f16 = i32PoolKind(pool.shape[2], R, opts.Rv, opts.cacheDtype) === 'f16';
    cacheWriteI32(device, pool, values, seq, pos, pageTable, f16 ? f16CacheWriter(R) : int8CacheWriter(R, opts.Rv));
    return;
  }
  const R = pool.shape[2];
  const N = values.shape[0];
  expectShape('cacheWrite', 'values', values, [N, R]);
  expectShape('cacheWrite', 'seq', seq, [N]);
  expectShape('cacheWrite', 'pos', pos, [N]);
  const pageSize = pool.shape[1];
  const maxPages = pageTable.shape[1];
  if (pool.dtype === 'bf16' && R % 2) throw new Error(`cacheWrite: a bf16 cache needs an even row size, got ${R}`);
  const gpu = asGpu(device);
  if (!gpu) {
    // A bf16 pool stores the rows rounded to nearest even, as the kernel does.
    const rows = pool.dtype === 'bf16' ? f32ArrayToBf16(hostF32(values)) : hostF32(values);
    const dst = (pool.storage as CpuStorage).data.subarray(pool.offset) as Float32Array | Uint16Array;
    cacheWriteReference(dst, rows, hostI32(seq), hostI32(pos), hostI32(pageTable), { R, pageSize, maxPages });
    return;
  }
  dispatchCacheWrite(gpu, values, seq, pos, pageTable, pool, {
    name: 'mla_cache_write',
    key: `mla_cache_write_r${R}_${pool.dtype}`,
    code: () => cacheWriteWgsl(R, pool.dtype as 'f32' | 'bf16'),
  });
}

/** How an i32 cache writes its rows: what cacheWriteI32 needs besides the tensors. */
interface I32CacheWriter {
  /** The pool as the shape error names it ('f16 pool', 'int8 pool'). */
  what: string;
  /** i32 words a row. */
  RW: number;
  /** The CPU reference writer. */
  reference: (
    dst: Int32Array,
    rows: Float32Array,
    seq: Int32Array,
    pos: Int32Array,
    pageTable: Int32Array,
    geom: { pageSize: number; maxPages: number },
  ) => void;
  kernel: KernelSpec;
}

/** The f16 cache (f16Layout.ts): rows [N, R] rounded to nearest f16, two channels a word. */
function f16CacheWriter(R: number): I32CacheWriter {
  return {
    what: 'f16 pool',
    RW: f16RowWords(R),
    reference: (dst, rows, s, p, pt, geom) => cacheWriteF16Reference(dst, rows, s, p, pt, { R, ...geom }),
    kernel: { name: 'mla_cache_write', key: `mla_cache_write_r${R}_f16`, code: () => cacheWriteWgsl(R, 'f16') },
  };
}

/** The int8 cache (int8Layout.ts): each row quantised, codes and two scales; needs Rv. */
function int8CacheWriter(R: number, Rv: number | undefined): I32CacheWriter {
  if (Rv === undefined) throw new Error('cacheWrite: an int8 (i32) pool needs opts.Rv, the latent rank kv_lora_rank');
  const L = int8RowLayout(R, Rv);
  return {
    what: 'int8 pool',
    RW: L.RW,
    reference: (dst, rows, s, p, pt, geom) => cacheWriteInt8Reference(dst, rows, s, p, pt, { R, Rv, ...geom }),
    kernel: {
      name: 'mla_cache_write_int8',
      key: `mla_cache_write_int8_r${R}_rv${Rv}`,
      code: () => int8CacheWriteWgsl(L),
    },
  };
}

/**
 * What the two i32 caches' writes (f16, int8) share: the pool [pages, pageSize, RW] and seq / pos [N] checked (the
 * errors name the tensor and the expected shape), then on the CPU the cache's reference writer, on the GPU its kernel.
 */
function cacheWriteI32(
  device: ReturnType<typeof deviceOf>,
  pool: Tensor,
  values: Tensor,
  seq: Tensor,
  pos: Tensor,
  pageTable: Tensor,
  cache: I32CacheWriter,
): void {
  const N = values.shape[0];
  expectShape('cacheWrite', cache.what, pool, [null, null, cache.RW]);
  expectShape('cacheWrite', 'seq', seq, [N]);
  expectShape('cacheWrite', 'pos', pos, [N]);
  const gpu = asGpu(device);
  if (!gpu) {
    const dst = (pool.storage as CpuStorage).data.subarray(pool.offset) as Int32Array;
    const geom = { pageSize: pool.shape[1], maxPages: pageTable.shape[1] };
    cache.reference(dst, hostF32(values), hostI32(seq), hostI32(pos), hostI32(pageTable), geom);
    return;
  }
  dispatchCacheWrite(gpu, values, seq, pos, pageTable, pool, cache.kernel);
}

/** Every cache write's dispatch: one workgroup a row (N rows over x, then y past 65535), Params {N, maxPages, pageSize}. */
function dispatchCacheWrite(
  gpu: GpuContext,
  values: Tensor,
  seq: Tensor,
  pos: Tensor,
  pageTable: Tensor,
  pool: Tensor,
  kernel: KernelSpec,
): void {
  const [N, maxPages, pageSize] = [values.shape[0], pageTable.shape[1], pool.shape[1]];
  const vc = contiguous(values);
  gpu.dispatch({
    kernel,
    tensors: [vc, seq, pos, pageTable, pool],
    params: new Params().u32(N, maxPages, pageSize, 0),
    workgroups: [Math.min(N, 65535), Math.ceil(N / 65535)],
  });
  vc.dispose();
}
