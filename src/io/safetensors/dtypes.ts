/**
 * Safetensors element types and how each maps onto the project's tensor dtypes.
 *
 *   F32 -> f32   BF16 -> bf16 (raw bits)   I32 -> i32
 *   F16 -> f32   (widened on load: exact, every f16 is an f32; there is no f16 tensor dtype)
 *   I64 -> i32   (values outside the i32 range are an error naming the tensor and the value)
 *   U8, BOOL -> i32 (widened; `readRaw` gives the bytes as stored when a byte view is wanted)
 * Every other dtype of the format (F64, I8, I16, U16, U32, U64, F8_*) is recognised, so its offsets are
 * validated and `inspect` can count it, but loading it into a tensor is refused.
 */
import type { DType } from '../../tensor/dtype.js';

export type SafetensorsDType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

const SIZES: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export const SAFETENSORS_DTYPES = Object.keys(SIZES) as SafetensorsDType[];

export function isSafetensorsDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.hasOwn(SIZES, s);
}

export function dtypeSize(dtype: SafetensorsDType): number {
  return SIZES[dtype];
}

/** The tensor dtype a stored dtype loads as, or undefined when loading it is not supported. */
export function loadedDType(dtype: SafetensorsDType): DType | undefined {
  switch (dtype) {
    case 'F32':
    case 'F16':
      return 'f32';
    case 'BF16':
      return 'bf16';
    case 'I32':
    case 'I64':
    case 'U8':
    case 'BOOL':
      return 'i32';
    default:
      return undefined;
  }
}

/** The stored dtype a tensor dtype is written as. */
export function storedDType(dtype: DType): SafetensorsDType {
  return dtype === 'f32' ? 'F32' : dtype === 'bf16' ? 'BF16' : 'I32';
}
