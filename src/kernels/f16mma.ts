/**
 * f16 products on the tensor cores through Dawn's experimental subgroup matrices: the WGSL spellings the f16
 * kernels share, and the rounding their plain-TS references apply.
 *
 * What the H200 offers (scripts/probe-f16.mjs, bench/results/2026-12-02-h200-s11-f16probe.jsonl): with the
 * toggles allow_unsafe_apis and vulkan_enable_f16_on_nvidia (`--unsafe-apis --f16`) the configs
 * f16 x f16 -> f32 (and -> f16) at 16x16x16, 16x8x16, 16x8x8; products of small integers exact; ~600 TFLOP/s on
 * register-resident fragments (wall clock, one subgroup a workgroup, 4 accumulators) against 65 TFLOP/s of f32
 * fma chains and the same 65 for f16 vec4 fma (no packed-half gain). Offsets and strides count f16 elements
 * (the int8 operands' word units do not apply); a stride must be at least 16 elements (32 bytes) for a 16-wide
 * operand. The template syntax (`subgroupMatrixLoad<T, row_major>(p, offset, stride)`) compiles without the
 * deprecation warnings of the bool one. GpuContext.features.subgroupMatrixF16 says whether a device has them.
 *
 * Layouts: left M x K and right K x N are read row-major (element (r, c) at offset + r stride + c) or column-major
 * (at offset + c stride + r); the result M x N is stored row-major. Offsets need not be workgroup-uniform once
 * the module turns off the uniformity diagnostic (the MLA kernels do the same); a load from workgroup memory
 * must start 16-byte aligned (mlalazy3's finding for int8: an unaligned one silently reads from the address
 * rounded down; keep every workgroup array a multiple of 16 bytes and offsets multiples of 8 f16).
 */

/** Module head of an f16 tensor-core kernel. */
export const F16_MMA_HEAD =
  'enable f16;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, chromium.subgroup_matrix_uniformity);\n';

export const L16 = 'subgroup_matrix_left<f16, 16, 16>';
export const R16 = 'subgroup_matrix_right<f16, 16, 16>';
export const C32 = 'subgroup_matrix_result<f32, 16, 16>';

/** WGSL: load a 16 x 16 f16 operand ('left' or 'right') from `ptr` (e.g. '&sm'). */
export function ld16(kind: 'left' | 'right', ptr: string, offset: string, stride: string, colMajor = false): string {
  return `subgroupMatrixLoad<${kind === 'left' ? L16 : R16}, ${colMajor ? 'col_major' : 'row_major'}>(${ptr}, ${offset}, ${stride})`;
}

/** WGSL: store a 16 x 16 f32 result row-major. */
export function st32(ptr: string, offset: string, value: string, stride: string): string {
  return `subgroupMatrixStore<row_major>(${ptr}, ${offset}, ${value}, ${stride})`;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * x rounded to the nearest f16 (ties to even), as WGSL's f16(x) on an f32: subnormals kept, past 65504 infinite.
 * (Node 20 has no Math.f16round.)
 */
export function f16Round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity; // 65504 + half an ulp (16) rounds up to infinity
  // The f16 ulp at a: 2^(e - 10) for normals (e = floor(log2 a) >= -14), 2^-24 for subnormals.
  f32[0] = a;
  const e = Math.max(((u32[0] >>> 23) & 0xff) - 127, -14);
  const ulp = 2 ** (e - 10);
  const q = a / ulp;
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  return Math.sign(x) * r * ulp;
}
