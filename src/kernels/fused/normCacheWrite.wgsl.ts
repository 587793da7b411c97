/**
 * The MLA latent row of a decode step normed and appended to the paged cache in one dispatch:
 * normConcat.wgsl.ts (kv_a_layernorm on the compressed kv read from the packed projection, k_pe appended)
 * with the row kept in workgroup memory, then mla/cacheWrite.wgsl.ts (f32, bf16) or
 * mla/int8Quantize.wgsl.ts's int8CacheWriteWgsl (int8) on it. One workgroup per row, as both kernels it
 * replaces; the latent row never goes through device memory. The two kernels cost ~10 and ~12 us per MLA
 * layer as separate dispatches on the H200 (bench/results/2026-12-01-h200-decrest-final-new-i8.json
 * profile), for ~2 KB of work each.
 *
 * Exact against the pair: the norm is normConcat's code (same workgroup size, same tree), the f32 values
 * stored are the same; the int8 part takes per-part absmax (a max: any reduction order gives the same
 * value), then the same codes round(x * 127 / a) clamped to [-127, 127] and the same scale words a / 127.
 */
import type { Int8RowLayout } from '../mla/int8Layout.js';
import { int8RowStore, quantizeBody } from '../mla/int8Quantize.wgsl.js';
import { type FloatDType, loadFn, storageElem, WGSL_TO_BF16, workgroupReduce } from '../wgslLib.js';
import { NORM_CONCAT_WG, normConcatRow } from './normConcat.wgsl.js';
import { subgroupReduceWgsl } from './sweep.js';

/** The row lives in workgroup memory (4 bytes a value) beside the reductions: within 16 KB. */
export const NORM_CACHE_MAX_R = 3072;

/** f16: the f16 cache's words (mla/f16Layout.ts), pack2x16float of channel pairs. */
export type NormCachePool = { dtype: 'f32' | 'bf16' | 'f16'; R: number } | { dtype: 'int8'; L: Int8RowLayout };

/**
 * `sg`: the norm's sum of squares by subgroup shuffles for subgroups of this size (fused/sweep.ts
 * decodeTuning.subgroupSumsRest); unset: normConcat's tree. The int8 absmax stays int8Quantize's tree (mla/).
 */
export function normCacheWriteKey(wDtype: FloatDType, pool: NormCachePool, sg?: number): string {
  const where = pool.dtype === 'int8' ? `i8_r${pool.L.R}_rv${pool.L.Rv}` : `${pool.dtype}_r${pool.R}`;
  return `norm_cache_write_${wDtype}_${where}${sg ? `_sg${sg}` : ''}`;
}

export function normCacheWriteWgsl(wDtype: FloatDType, pool: NormCachePool, sg?: number): string {
  const { decls, body } = normCacheWriteParts(wDtype, pool, sg, NORM_CONCAT_WG);
  return `${sg ? '\nenable subgroups;' : ''}
struct Params { ld: u32, off: u32, r: u32, np: u32, eps: f32, maxPages: u32, pageSize: u32, _a: u32 };
@group(0) @binding(0) var<uniform> p: Params;
${normCacheWriteBindings(wDtype, pool, 1)}
${decls}
@compute @workgroup_size(${NORM_CONCAT_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.x;
${body}
}`;
}

/** The kernel's storage bindings from binding `first` on: X, NW, seq, pos, pageTable, pool. */
export function normCacheWriteBindings(wDtype: FloatDType, pool: NormCachePool, first: number): string {
  const poolElem = pool.dtype === 'f32' ? 'f32' : 'u32';
  return [
    'X: array<f32>',
    `NW: array<${storageElem(wDtype)}>`,
    'seq: array<i32>',
    'pos: array<i32>',
    'pageTable: array<i32>',
  ]
    .map((d, i) => `@group(0) @binding(${first + i}) var<storage, read> ${d};`)
    .concat(`@group(0) @binding(${first + 5}) var<storage, read_write> pool: array<${poolElem}>;`)
    .join('\n');
}

/**
 * The kernel's module-scope declarations (beside its bindings and Params p) and its body for row b (invocation
 * lid), for a workgroup of `wg` >= 128 invocations: the norm's loops and sum as with 128 (the others add 0, see
 * normConcatRow), the stores and the int8 absmax (a max: any order) spread over all wg. The same bits for any wg.
 */
export function normCacheWriteParts(
  wDtype: FloatDType,
  pool: NormCachePool,
  sg: number | undefined,
  wg: number,
): { decls: string; body: string } {
  if (wg < NORM_CONCAT_WG || wg & (wg - 1))
    throw new Error(`normCacheWrite: workgroup ${wg}, expected a power of two >= ${NORM_CONCAT_WG}`);
  const WG = wg;
  const R = pool.dtype === 'int8' ? pool.L.R : pool.R;
  let store: string;
  if (pool.dtype === 'f32') {
    store = `  for (var c = lid; c < ${R}u; c += ${WG}u) { pool[dst * ${R}u + c] = row[c]; }`;
  } else if (pool.dtype === 'bf16') {
    store = `  for (var c = lid * 2u; c < ${R}u; c += ${WG * 2}u) {
    pool[(dst * ${R}u + c) / 2u] = toBf16(row[c]) | (toBf16(row[c + 1u]) << 16u);
  }`;
  } else if (pool.dtype === 'f16') {
    store = `  for (var c = lid * 2u; c < ${R}u; c += ${WG * 2}u) {
    pool[(dst * ${R}u + c) / 2u] = pack2x16float(vec2<f32>(row[c], row[c + 1u]));
  }`;
  } else if (pool.dtype === 'int8') {
    // mla/int8Quantize.wgsl.ts's absmax, codes and word layout, on the row in workgroup memory.
    store = `  let am = absmax(0u, lid);
  let qinv = select(vec2<f32>(0.0), 127.0 / am, am > vec2<f32>(0.0));
${int8RowStore(pool.L, WG, '0u', `dst * ${pool.L.RW}u`, 'am', 'qinv')}`;
  } else store = '';
  const decls = /* wgsl */ `${loadFn('normWeight', 'NW', wDtype)}
${sg ? subgroupReduceWgsl('red', WG, sg) : workgroupReduce('red', WG, 'f32', 'a + b')}
var<workgroup> row: array<f32, ${R}>;
${pool.dtype === 'bf16' ? WGSL_TO_BF16 : ''}
${pool.dtype === 'int8' ? quantizeBody(pool.L, { WG, value: (_src, c) => `row[${c}]`, red: 'amax' }) : ''}`;
  const body = `  let src = b * p.ld + p.off;
${normConcatRow((i) => `row[${i}]`, WG)}
  workgroupBarrier();
  let t = u32(pos[b]);
  let page = u32(pageTable[u32(seq[b]) * p.maxPages + t / p.pageSize]);
  let dst = page * p.pageSize + t % p.pageSize;
${store}`;
  return { decls, body };
}
