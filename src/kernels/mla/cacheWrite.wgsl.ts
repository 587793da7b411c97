import { WGSL_TO_BF16 } from '../wgslLib.js';

/** Appending rows to the paged latent cache (mla/index.ts cacheWrite). */
export const CACHE_WRITE_WG = 64;

/**
 * Writes rows [N, R] (f32) into the page pool (f32, or bf16 rounded to nearest even, or f16 by pack2x16float: the f16
 * cache's words, f16Layout.ts; R even). One generator: the dtypes differ only in the pool's element type, the words a
 * row (dst's stride) and the store loop.
 */
export function cacheWriteWgsl(R: number, cacheDtype: 'f32' | 'bf16' | 'f16'): string {
  const { elem, lib, rowWords, store } = {
    f32: {
      elem: 'f32',
      lib: `\n${WGSL_TO_BF16}`,
      rowWords: R,
      store: `  for (var c = lid; c < ${R}u; c += ${CACHE_WRITE_WG}u) { pool[dst + c] = values[i * ${R}u + c]; }`,
    },
    bf16: {
      elem: 'u32',
      lib: `\n${WGSL_TO_BF16}`,
      rowWords: R,
      store: `  for (var c = lid * 2u; c < ${R}u; c += ${CACHE_WRITE_WG * 2}u) {
    pool[(dst + c) / 2u] = toBf16(values[i * ${R}u + c]) | (toBf16(values[i * ${R}u + c + 1u]) << 16u);
  }`,
    },
    // The f16 cache's write (f16Layout.ts): channels 2w, 2w + 1 of a row as word w, pack2x16float (no f16 extension).
    f16: {
      elem: 'u32',
      lib: '',
      rowWords: R / 2,
      store: `  for (var w = lid; w < ${R / 2}u; w += ${CACHE_WRITE_WG}u) {
    pool[dst + w] = pack2x16float(vec2<f32>(values[i * ${R}u + 2u * w], values[i * ${R}u + 2u * w + 1u]));
  }`,
    },
  }[cacheDtype];
  return /* wgsl */ `
struct Params { N: u32, maxPages: u32, pageSize: u32, _a: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read> seq: array<i32>;
@group(0) @binding(3) var<storage, read> pos: array<i32>;
@group(0) @binding(4) var<storage, read> pageTable: array<i32>;
@group(0) @binding(5) var<storage, read_write> pool: array<${elem}>;${lib}
@compute @workgroup_size(${CACHE_WRITE_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = wid.x + wid.y * 65535u;
  if (i >= p.N) { return; }
  let t = u32(pos[i]);
  let page = u32(pageTable[u32(seq[i]) * p.maxPages + t / p.pageSize]);
  let dst = (page * p.pageSize + t % p.pageSize) * ${rowWords}u;
${store}
}`;
}
