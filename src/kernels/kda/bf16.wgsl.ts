/**
 * bf16 storage for the chunked KDA forward (kdaForward with bf16 inputs): q, k, v, g in and o out are bf16; in the
 * storage mode the intermediates W, U, the per-chunk states and V' between the passes are stored as bf16 too, as
 * the open Triton kernels store them, in the mixed mode (the default since the tenth session, chunk.ts
 * BF16_INTERMEDIATES) they are f32 (on GPUs but for the per-chunk states, bf16 there too: kdaForwardTuning.hbBf16);
 * every product, sum and exp, the carried state S, gc, A_qk, T and beta stay f32.
 *
 * Layout: the project's bf16 storage (src/tensor/dtype.ts): element 2i in the low 16 bits of 32-bit word i,
 * element 2i + 1 in the high bits. A kernel that binds an f32 tensor as `array<vec4<f32>>` binds its bf16 form
 * as `array<vec2<u32>>` with the same index (vec4 i holds elements 4i .. 4i + 3, as vec2<u32> i does), and one
 * bound as `array<f32>` as `array<u32>` with index i >> 1 (bf16Scalar).
 *
 * Widening is exact (a bf16 is the high half of an f32); narrowing rounds to the nearest bf16, ties to even
 * (WGSL_TO_BF16, PyTorch's `.to(torch.bfloat16)`). So a kernel whose only change is that its loads widen and
 * its stores narrow gives, on bf16-representable inputs, the f32 kernel's results rounded to bf16 bit for bit:
 * that is what the bf16 variants' tests check.
 */
import { WGSL_TO_BF16 } from '../wgslLib.js';

/** WGSL element type of a vec4 binding in f32 or bf16 storage. */
export const vec4Elem = (bf16: boolean | undefined): string => (bf16 ? 'vec2<u32>' : 'vec4<f32>');

/**
 * WGSL helpers: `bf4(w: vec2<u32>) -> vec4<f32>` (4 elements widened), `pbf4(x: vec4<f32>) -> vec2<u32>`
 * (4 elements rounded and packed), `toBf16` (wgslLib) and `bf2(w: u32) -> vec2<f32>`.
 */
export const WGSL_BF16 = /* wgsl */ `${WGSL_TO_BF16}
fn bf2(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }
fn bf4(w: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u));
}
fn pbf4(x: vec4<f32>) -> vec2<u32> {
  return vec2<u32>(toBf16(x.x) | (toBf16(x.y) << 16u), toBf16(x.z) | (toBf16(x.w) << 16u));
}`;

/**
 * WGSL expression: the vec4 at index `i` of binding `arr` as vec4<f32> (widened where bf16). For generators
 * that read a tensor in either storage with one line of code.
 */
export const load4 = (arr: string, i: string, bf16: boolean | undefined): string =>
  bf16 ? `bf4(${arr}[${i}])` : `${arr}[${i}]`;

/** WGSL statement: store the vec4<f32> expression `x` at index `i` of `arr` (rounded and packed where bf16). */
export const store4 = (arr: string, i: string, x: string, bf16: boolean | undefined): string =>
  bf16 ? `${arr}[${i}] = pbf4(${x});` : `${arr}[${i}] = ${x};`;

/** WGSL expression: element `i` (an f32 index) of a bf16 binding `arr` bound as array<u32>. */
export const bf16Scalar = (arr: string, i: string): string =>
  `select(bitcast<f32>(${arr}[(${i}) >> 1u] << 16u), bitcast<f32>(${arr}[(${i}) >> 1u] & 0xffff0000u), ((${i}) & 1u) == 1u)`;
