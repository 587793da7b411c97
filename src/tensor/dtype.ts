/**
 * Element types a tensor can hold.
 *
 * bf16 is stored as raw 16-bit patterns. On the GPU two of them share one u32 (little-endian, element
 * 2i in the low half) because the H200's WebGPU has no `shader-f16`; shaders widen with a shift, which
 * is exact: a bf16 is the top half of an f32. On the CPU the same bytes are a Uint16Array.
 */
export type DType = 'f32' | 'bf16' | 'i32';

export const DTYPES: readonly DType[] = ['f32', 'bf16', 'i32'];

export function bytesPerElement(dtype: DType): number {
  return dtype === 'bf16' ? 2 : 4;
}

/** Bytes a tensor of `numel` elements occupies in a GPU buffer (bf16 rounds up to whole u32 words). */
export function storageBytes(dtype: DType, numel: number): number {
  const raw = numel * bytesPerElement(dtype);
  return Math.max(4, Math.ceil(raw / 4) * 4);
}

export type HostArray = Float32Array | Uint16Array | Int32Array;

export function hostArrayFor(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'bf16':
      return new Uint16Array(n);
    case 'i32':
      return new Int32Array(n);
  }
}

export function hostArrayView(dtype: DType, buf: ArrayBufferLike, byteOffset: number, n: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buf, byteOffset, n);
    case 'bf16':
      return new Uint16Array(buf, byteOffset, n);
    case 'i32':
      return new Int32Array(buf, byteOffset, n);
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 -> bf16 with round-to-nearest-even, as PyTorch's `.to(torch.bfloat16)` does; NaN stays NaN. */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  const rounding = 0x7fff + ((u >>> 16) & 1);
  return ((u + rounding) >>> 16) & 0xffff;
}

export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** An f16 bit pattern as a number (exact: f16 subnormals, infinities and NaN all widen losslessly). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function f32ArrayToBf16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]);
  return out;
}

export function bf16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}

/** Widen any host array to f32 values (bf16 decoded, i32 converted). */
export function toF32(dtype: DType, src: HostArray): Float32Array {
  if (dtype === 'bf16') return bf16ArrayToF32(src as Uint16Array);
  return Float32Array.from(src as ArrayLike<number>);
}
