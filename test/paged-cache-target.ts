/**
 * A small paged latent cache for the cache-write tests (fused.test.ts, fused-head-f16q.test.ts): 6 pages of 4 rows,
 * 3 sequences of up to 3 pages with scattered page numbers, one row written per batch row (sequence (2b + 1) % 3,
 * position 3 + 4b), and pools of the given dtype that all start from the same garbage, so that words a write must
 * not touch can be compared too.
 */
import type { GpuContext } from '../src/gpu/context.js';
import { int8RowWords } from '../src/kernels/mla/index.js';
import type { Tensor } from '../src/tensor/tensor.js';

export type PagedCacheDtype = 'int8' | 'bf16' | 'f32';

export interface PagedCacheTarget {
  seq: Tensor;
  pos: Tensor;
  table: Tensor;
  /** A fresh pool holding the same starting garbage each call. */
  poolOf: () => Tensor;
}

/** rand(n, seed): the caller's deterministic uniform values in [-1, 1). R: row width, r: the latent rank (int8 rows). */
export function pagedCacheTarget(
  gpu: GpuContext,
  B: number,
  R: number,
  r: number,
  dtype: PagedCacheDtype,
  rand: (n: number, seed: number) => Float32Array,
): PagedCacheTarget {
  const [pages, pageSize, maxPages] = [6, 4, 3];
  const width = dtype === 'int8' ? int8RowWords(R, r) : R;
  const seq = gpu.fromHost(
    Int32Array.from({ length: B }, (_, b) => (2 * b + 1) % 3),
    [B],
    'i32',
  );
  const pos = gpu.fromHost(
    Int32Array.from({ length: B }, (_, b) => 3 + 4 * b),
    [B],
    'i32',
  );
  const table = gpu.fromHost(
    Int32Array.from({ length: 3 * maxPages }, (_, i) => (5 * i + 2) % pages),
    [3, maxPages],
    'i32',
  );
  const fill = Int32Array.from(rand(pages * pageSize * width, 17), (v) => Math.round(v * 1e6));
  const shape = [pages, pageSize, width];
  const poolOf = () =>
    dtype === 'int8'
      ? gpu.fromHost(fill, shape, 'i32')
      : dtype === 'bf16'
        ? gpu.fromHost(
            Uint16Array.from(fill, (v) => v & 0x3fff),
            shape,
            'bf16',
          )
        : gpu.fromHost(
            Float32Array.from(fill, (v) => v / 1e6),
            shape,
          );
  return { seq, pos, table, poolOf };
}
