/**
 * Split-K for products with few output tiles and a long inner dimension: the weight gradients
 * dW = dY^T X of linearBackward ([N_out, tokens] @ [tokens, N_in], K = 4096 tokens and often a 768 x 768
 * or 64 x 768 output) give 12..144 workgroups of 64 x 64, which leaves most of the H200's 132 SMs with
 * one workgroup or none while each walks all of K. Cutting K into s slices gives s times the workgroups;
 * the s partial products are then summed by one elementwise pass.
 *
 * No new matmul kernel is needed when A is read transposed and B is not (both stored K-major, rows of
 * length M and N): slice z of K is then the contiguous block of rows [z K/s, (z+1) K/s) of each operand,
 * so the tiled kernel's batch dimension does it with batch strides (K/s) M and (K/s) N.
 */
import { linearGroup } from '../common.js';
import type { TileConfig } from './tiled.wgsl.js';

/** Workgroups the slices should add up to: about two waves of two 64 x 64 workgroups per SM on 132 SMs. */
const TARGET_GROUPS = 528;
/** Fewest K per slice: below this the partial sums' extra traffic outweighs the parallelism. */
const MIN_SLICE = 256;

/**
 * Slices to cut K into (1: no split) for an unbatched product with `groups` output tiles. Each slice is
 * a multiple of the tile's BK so the vector path stays available.
 */
export function splitKSlices(groups: number, K: number, tile: TileConfig): number {
  let s = 1;
  while (groups * s * 2 <= TARGET_GROUPS && K % (2 * s * tile.BK) === 0 && K / (2 * s) >= MIN_SLICE) s *= 2;
  return s;
}

export const SPLITK_SUM_WG = 256;

/** C[i] = sum_z P[z n + i] for the s partial products P [s, n] (summed in slice order). */
export function splitKSumWgsl(s: number): string {
  return /* wgsl */ `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> P: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${SPLITK_SUM_WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${linearGroup} * ${SPLITK_SUM_WG}u + lid;
  if (i >= p.n) { return; }
  var acc = P[i];
  for (var z = 1u; z < ${s}u; z++) { acc += P[z * p.n + i]; }
  C[i] = acc;
}`;
}
