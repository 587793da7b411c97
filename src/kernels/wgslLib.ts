/**
 * WGSL snippets the row and elementwise ops share: reading f32-or-bf16 storage as f32, an
 * overflow-free sigmoid, and a workgroup tree reduction for "one workgroup per row" kernels.
 */
export type FloatDType = 'f32' | 'bf16';

/** The WGSL element type a storage binding of this dtype is declared with (bf16: two per u32). */
export function storageElem(dtype: FloatDType): 'f32' | 'u32' {
  return dtype === 'bf16' ? 'u32' : 'f32';
}

/** `fn toBf16(x: f32) -> u32`: x rounded to the nearest bf16 (ties to even), its 16 bits in the low half. */
export const WGSL_TO_BF16 = /* wgsl */ `fn toBf16(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}`;

/** `fn sigmoid(x: f32) -> f32` without overflow: e = exp(-|x|) is in (0, 1]. */
export const WGSL_SIGMOID = /* wgsl */ `fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}`;

/**
 * `fn <fnName>(i: u32) -> f32` reading element i of binding `arr`. bf16 widening is exact (a bf16 is
 * the high half of an f32): element 2i sits in the low half of word i.
 */
export function loadFn(fnName: string, arr: string, dtype: FloatDType): string {
  if (dtype === 'f32') return `fn ${fnName}(i: u32) -> f32 { return ${arr}[i]; }`;
  return `fn ${fnName}(i: u32) -> f32 {
  let w = ${arr}[i >> 1u];
  return select(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u), (i & 1u) == 1u);
}`;
}

/**
 * A tree reduction over `wg` threads in workgroup memory (wg a power of two). Declares
 * `var<workgroup> <name>: array<<type>, wg>` and `fn <name>Reduce(lid, v) -> <type>` returning the
 * combination of every thread's `v` to all threads. `combine` is a WGSL expression in `a` and `b`.
 * Must be called from uniform control flow (it contains barriers).
 */
export function workgroupReduce(name: string, wg: number, type: string, combine: string): string {
  if ((wg & (wg - 1)) !== 0) throw new Error(`workgroupReduce: workgroup size ${wg} is not a power of two`);
  return `var<workgroup> ${name}: array<${type}, ${wg}>;
fn ${name}Combine(a: ${type}, b: ${type}) -> ${type} { return ${combine}; }
fn ${name}Reduce(lid: u32, v: ${type}) -> ${type} {
  ${name}[lid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${name}[lid] = ${name}Combine(${name}[lid], ${name}[lid + s]); }
    workgroupBarrier();
  }
  let r = ${name}[0];
  workgroupBarrier();
  return r;
}`;
}

/** Number of rows and row length for a tensor reduced over its last dimension. */
export function rowsOf(shape: readonly number[]): { rows: number; D: number } {
  const D = shape.length === 0 ? 1 : shape[shape.length - 1];
  let rows = 1;
  for (let i = 0; i < shape.length - 1; i++) rows *= shape[i];
  return { rows, D };
}
