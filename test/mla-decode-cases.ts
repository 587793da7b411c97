/**
 * The absorbed MLA decode cases (mlaDecode against mlaDecodeReference on a paged cache written through
 * cacheWrite), shared by mla-decode-split.test.ts (the split kernel, no subgroups: run at the suite's 4 lanes,
 * where lavapipe compiles ~1.7x faster) and mla-decode.test.ts (the tiled kernel, which needs 8-lane subgroups:
 * lanes-default.ts). Each (H, R, Rv, dtype, block) is one pipeline (compiling one takes seconds on lavapipe), so
 * cases share shapes and vary what is a runtime parameter: lengths, batch, page size, chunks.
 */
import { expect, it } from 'vitest';
import { cacheWrite, mlaDecode, mlaDecodeKernelFor } from '../src/kernels/mla/index.js';
import { mlaDecodeReference } from '../src/kernels/mla/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import type { Device } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';

/** Build a paged cache through cacheWrite, with pages handed out in a shuffled order. */
export function buildCache(
  dev: Device,
  rows: Float32Array[],
  R: number,
  pageSize: number,
  dtype: 'f32' | 'bf16',
  rng: Rng,
) {
  const B = rows.length;
  const maxPages = Math.max(1, ...rows.map((r) => Math.ceil(r.length / R / pageSize)));
  const numPages = B * maxPages + 1;
  const order = Array.from({ length: numPages }, (_, i) => i).sort(() => rng.next() - 0.5);
  const table = new Int32Array(B * maxPages);
  for (let i = 0; i < table.length; i++) table[i] = order[i];
  const pool = dev.fromHost(
    dtype === 'bf16' ? new Uint16Array(numPages * pageSize * R) : new Float32Array(numPages * pageSize * R),
    [numPages, pageSize, R],
    dtype,
  );
  const pageTable = dev.fromHost(table, [B, maxPages], 'i32');
  for (let b = 0; b < B; b++) {
    const T = rows[b].length / R;
    if (!T) continue;
    cacheWrite(
      pool,
      dev.fromHost(rows[b], [T, R]),
      dev.fromHost(new Int32Array(T).fill(b), [T], 'i32'),
      dev.fromHost(
        Int32Array.from({ length: T }, (_, t) => t),
        [T],
        'i32',
      ),
      pageTable,
    );
  }
  return { pool, pageTable, table, maxPages };
}

export interface MlaDecodeCase {
  lengths: number[];
  H: number;
  R: number;
  Rv: number;
  pageSize: number;
  dtype: 'f32' | 'bf16';
  chunks?: number;
  blockTokens?: number;
  prefetch?: boolean;
  /** Default: the split kernel (its cases below), or the tiled one (which needs subgroups). */
  kernel?: 'tiled' | 'split';
  doubleBuffer?: boolean;
  pipelined?: boolean;
  sHalves?: boolean;
  lateFetch?: boolean;
  /** Query magnitude: large values make the block maxima move, exercising the rescaling. */
  qScale?: number;
}

// Split kernel. Load paths: f32 scalar (R odd), f32 vec4 (R % 4 == 0), bf16 scalar (R/2 odd), bf16 vec4 (R = 576).
export const SPLIT_CASES: MlaDecodeCase[] = [
  { lengths: [1], H: 1, R: 24, Rv: 13, pageSize: 4, dtype: 'f32' },
  { lengths: [63], H: 1, R: 24, Rv: 13, pageSize: 5, dtype: 'f32', chunks: 1, qScale: 3 },
  { lengths: [65, 7, 1000], H: 3, R: 17, Rv: 17, pageSize: 7, dtype: 'f32' },
  { lengths: [1000, 1, 63], H: 3, R: 17, Rv: 17, pageSize: 64, dtype: 'f32', chunks: 2, qScale: 4 },
  { lengths: [7, 63, 65], H: 32, R: 36, Rv: 32, pageSize: 16, dtype: 'bf16', chunks: 3 },
  { lengths: [1000, 1, 0], H: 32, R: 36, Rv: 32, pageSize: 5, dtype: 'bf16', qScale: 3 },
  // Blocks of 8 rows without the register prefetch (compiling this on lavapipe is cheapest at small H).
  {
    lengths: [1000, 65],
    H: 3,
    R: 17,
    Rv: 17,
    pageSize: 64,
    dtype: 'f32',
    chunks: 5,
    blockTokens: 8,
    prefetch: false,
  },
  // 260 chunks of one block: the merge's max / sum over more chunks than it has threads.
  { lengths: [8300, 3], H: 32, R: 36, Rv: 32, pageSize: 64, dtype: 'bf16', chunks: 300 },
  { lengths: [130, 17], H: 8, R: 576, Rv: 512, pageSize: 32, dtype: 'bf16' },
  { lengths: [65, 1, 7], H: 8, R: 576, Rv: 512, pageSize: 7, dtype: 'bf16', chunks: 1 },
];

export const TILED_CASES: MlaDecodeCase[] = [
  // The tiled kernel. Its code grows with R / SG and lavapipe (SG = 8) compiles it slowly, so four
  // pipelines cover its load paths (f32 scalar / vec4, bf16 scalar / vec4) and buffering, and the
  // cases vary the runtime parameters: lengths around blocks of 8 and pages, chunks, batch, head groups.
  ...[
    { lengths: [1], pageSize: 4 },
    { lengths: [7, 1000, 65], pageSize: 7 },
    { lengths: [130, 63, 0], pageSize: 64, chunks: 3, qScale: 4 },
    { lengths: [1000, 9], pageSize: 5, chunks: 40 },
  ].map((c) => ({ ...c, H: 3, R: 17, Rv: 17, dtype: 'f32' as const, kernel: 'tiled' as const })),
  ...[
    { lengths: [63], pageSize: 5, chunks: 1, qScale: 3 },
    { lengths: [65, 130, 1], pageSize: 16, chunks: 2 },
  ].map((c) => ({
    ...c,
    H: 1,
    R: 24,
    Rv: 13,
    dtype: 'f32' as const,
    kernel: 'tiled' as const,
    // Scores in one pass of 8 tokens, rows loaded a whole block ahead.
    sHalves: false,
    lateFetch: false,
  })),
  // The pipelined loop (S of block k + 1 beside O of block k; lengths around 1, 2 and 3 blocks of 8),
  // two head groups (H = 40 > 32), bf16 pairs loaded as vec4.
  ...[
    { lengths: [1, 8, 9, 16, 17, 24, 25], pageSize: 4 },
    { lengths: [130, 7, 65, 1000], pageSize: 7, chunks: 9, qScale: 4 },
    { lengths: [130, 17, 1], pageSize: 32 },
    { lengths: [64, 65, 8300], pageSize: 64, chunks: 300, qScale: 3 },
  ].map((c) => ({
    ...c,
    H: 40,
    R: 48,
    Rv: 40,
    dtype: 'bf16' as const,
    kernel: 'tiled' as const,
    doubleBuffer: true,
    pipelined: true,
    sHalves: true,
  })),
  // Two row buffers (no barrier before staging), bf16 scalar loads (R / 2 odd).
  ...[
    { lengths: [7, 63, 65], pageSize: 16, chunks: 3 },
    { lengths: [1000, 1, 0], pageSize: 5, qScale: 3 },
  ].map((c) => ({
    ...c,
    H: 32,
    R: 36,
    Rv: 32,
    dtype: 'bf16' as const,
    kernel: 'tiled' as const,
    doubleBuffer: true,
  })),
];

/** Each case as a test: the GPU kernel against the reference on the pool as stored, and the cpu backend. */
export function defineMlaDecodeCases(cases: readonly MlaDecodeCase[]): void {
  const tiledOk = async () => {
    const gpu = (await gpuContext())!;
    return mlaDecodeKernelFor(gpu, {}) === 'tiled';
  };
  for (const c of cases) {
    const {
      lengths,
      H,
      R,
      Rv,
      pageSize,
      dtype,
      chunks,
      blockTokens,
      prefetch,
      doubleBuffer,
      pipelined,
      sHalves,
      lateFetch,
      qScale = 0.3,
    } = c;
    const kernel = c.kernel ?? 'split';
    it.skipIf(!hasGpu)(
      `WebGPU vs reference (${kernel}): lengths ${lengths.join(',')}, H=${H}, R=${R}, Rv=${Rv}, ${dtype} pages of ${pageSize}, chunks ${chunks ?? 'auto'}, block ${blockTokens ?? 'auto'}${prefetch === false ? ', no prefetch' : ''}${doubleBuffer ? ', two buffers' : ''}${pipelined ? ', pipelined' : ''}${sHalves === false ? ', S in one pass' : ''}${lateFetch === false ? ', early fetch' : ''}`,
      async (ctx) => {
        // The tiled kernel needs subgroups; a device without them runs (and tests) the split one.
        if (kernel === 'tiled' && !(await tiledOk())) ctx.skip();
        const gpu = (await gpuContext())!;
        const rng = new Rng(R + H + lengths.length);
        const rows = lengths.map((T) => rng.normalArray(T * R));
        const q = rng.normalArray(lengths.length * H * R, qScale);
        const g = buildCache(gpu, rows, R, pageSize, dtype, new Rng(3));
        const lens = gpu.fromHost(Int32Array.from(lengths), [lengths.length], 'i32');
        const out = mlaDecode(gpu.fromHost(q, [lengths.length, H, R]), g.pool, g.pageTable, lens, {
          Rv,
          scale: R ** -0.5,
          maxLength: Math.max(...lengths),
          chunks,
          blockTokens,
          prefetch,
          kernel,
          doubleBuffer,
          pipelined,
          sHalves,
          lateFetch,
        });
        // Reference on the pool as the GPU stored it (bf16-rounded rows): only summation order differs.
        const poolBits = await g.pool.read();
        const poolF32 = dtype === 'bf16' ? bf16ArrayToF32(poolBits as Uint16Array) : (poolBits as Float32Array);
        const ref = mlaDecodeReference(q, poolF32, g.table, Int32Array.from(lengths), {
          B: lengths.length,
          H,
          R,
          Rv,
          pageSize,
          maxPages: g.maxPages,
          scale: R ** -0.5,
        });
        const got = await out.read();
        expectClose(got, ref, 1e-4, 'o_lat');
        // A sequence without rows gives zeros (no NaN from 0/0).
        for (const [b, T] of lengths.entries()) {
          if (!T) expect(Array.from(got.subarray(b * H * Rv, (b + 1) * H * Rv)).every((x) => x === 0)).toBe(true);
        }
        // The pool holds exactly the rows written (rounded to bf16 where the pool is bf16).
        const b0 = rows[0].subarray(0, R);
        const page0 = g.table[0];
        const stored = poolF32.subarray(page0 * pageSize * R, page0 * pageSize * R + R);
        expect(Array.from(stored)).toEqual(Array.from(dtype === 'bf16' ? bf16ArrayToF32(f32ArrayToBf16(b0)) : b0));
        // And the cpu backend agrees through the same API.
        const c = buildCache(cpu, rows, R, pageSize, dtype, new Rng(3));
        const outC = mlaDecode(
          cpu.fromHost(q, [lengths.length, H, R]),
          c.pool,
          c.pageTable,
          cpu.fromHost(Int32Array.from(lengths), [lengths.length], 'i32'),
          {
            Rv,
            scale: R ** -0.5,
            maxLength: Math.max(...lengths),
          },
        );
        expectClose(await outC.read(), ref, 1e-6, 'cpu o_lat');
      },
    );
  }
}
