/**
 * Absorbed MLA decode over a paged latent cache, and appending rows to that cache.
 * The pool holds pages [numPages, pageSize, R] (R = kv_lora_rank + qk_rope_head_dim) in f32 or bf16;
 * a page table [B, maxPages] i32 maps each sequence's pages, so sequences of different lengths share
 * one pool without reserving their maximum length.
 */
import { Params } from '../../gpu/params.js';
import { cpu } from '../../tensor/cpuDevice.js';
import { f32ArrayToBf16 } from '../../tensor/dtype.js';
import type { CpuStorage } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { asGpu, deviceOf, expectDType, expectShape, hostF32, hostI32 } from '../common.js';
import { contiguous } from '../copy/index.js';
import { cacheWriteWgsl, MLA_TB, mlaDecodeKey, mlaDecodeWgsl, mlaMergeWgsl } from './decode.wgsl.js';
import { cacheWriteReference, mlaDecodeReference } from './reference.js';

export interface MlaDecodeOptions {
  /** Value dims (kv_lora_rank): the first Rv of each cached row. */
  Rv: number;
  scale: number;
  /** The longest sequence in the batch (host-side bookkeeping; sets how the sequence is split). */
  maxLength: number;
  /** Chunks per sequence; default spreads the work over ~512 workgroups. */
  chunks?: number;
}

export function mlaDecode(
  qFull: Tensor,
  pool: Tensor,
  pageTable: Tensor,
  lengths: Tensor,
  opts: MlaDecodeOptions,
): Tensor {
  const device = deviceOf('mlaDecode', qFull, pool, pageTable, lengths);
  const [B, H, R] = qFull.shape;
  expectShape('mlaDecode', 'qFull', qFull, [B, H, R]);
  expectShape('mlaDecode', 'cache pool', pool, [null, null, R]);
  expectShape('mlaDecode', 'page table', pageTable, [B, null]);
  expectShape('mlaDecode', 'lengths', lengths, [B]);
  expectDType('mlaDecode', 'page table', pageTable, ['i32']);
  expectDType('mlaDecode', 'lengths', lengths, ['i32']);
  const pageSize = pool.shape[1];
  const maxPages = pageTable.shape[1];
  const { Rv, scale } = opts;
  const gpu = asGpu(device);
  if (!gpu) {
    const out = mlaDecodeReference(hostF32(qFull), hostF32(pool), hostI32(pageTable), hostI32(lengths), {
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
  const maxLen = Math.max(1, opts.maxLength);
  const chunks = opts.chunks ?? Math.max(1, Math.min(Math.ceil(maxLen / (4 * MLA_TB)), Math.ceil(512 / B)));
  const chunkLen = Math.ceil(maxLen / chunks / MLA_TB) * MLA_TB;
  const partial = gpu.empty([B, chunks, H, Rv + 2]);
  const v = { H, R, Rv, cacheDtype: pool.dtype as 'f32' | 'bf16' };
  const q = contiguous(qFull);
  gpu.dispatch({
    kernel: { name: 'mla_decode', key: mlaDecodeKey(v), code: () => mlaDecodeWgsl(v) },
    tensors: [q, pool, pageTable, lengths, partial],
    params: new Params().u32(maxPages, pageSize, chunks, chunkLen).f32(scale).u32(0, 0, 0),
    workgroups: [chunks, B],
  });
  const out = gpu.empty([B, H, Rv]);
  gpu.dispatch({
    kernel: { name: 'mla_merge', key: `mla_merge_h${H}_rv${Rv}`, code: () => mlaMergeWgsl(H, Rv) },
    tensors: [partial, out],
    params: new Params().u32(chunks, 0, 0, 0),
    workgroups: [H, B],
  });
  q.dispose();
  partial.dispose();
  return out;
}

/** Append rows [N, R] at (seq[i], pos[i]) of the paged pool (bf16 pools round to nearest even). */
export function cacheWrite(pool: Tensor, values: Tensor, seq: Tensor, pos: Tensor, pageTable: Tensor): void {
  const device = deviceOf('cacheWrite', pool, values, seq, pos, pageTable);
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
  const vc = contiguous(values);
  gpu.dispatch({
    kernel: {
      name: 'mla_cache_write',
      key: `mla_cache_write_r${R}_${pool.dtype}`,
      code: () => cacheWriteWgsl(R, pool.dtype as 'f32' | 'bf16'),
    },
    tensors: [vc, seq, pos, pageTable, pool],
    params: new Params().u32(N, maxPages, pageSize, 0),
    workgroups: [Math.min(N, 65535), Math.ceil(N / 65535)],
  });
  vc.dispose();
}
