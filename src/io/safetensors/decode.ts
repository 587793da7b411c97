/**
 * Stored bytes -> host array of a tensor dtype (see dtypes.ts for the mapping), with an optional
 * conversion to another dtype: f32 <-> bf16 (round-to-nearest-even, as PyTorch), i32 -> f32/bf16.
 */
import { bf16ArrayToF32, type DType, f16BitsToF32, f32ArrayToBf16, type HostArray } from '../../tensor/dtype.js';
import { dtypeSize, loadedDType } from './dtypes.js';
import { SafetensorsError } from './errors.js';
import type { TensorInfo } from './header.js';

export { f16BitsToF32 } from '../../tensor/dtype.js';

/** A typed view needs its byte offset aligned to the element size; copy when a source hands out odd offsets. */
function aligned(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

function decodeNatural(info: TensorInfo, bytes: Uint8Array, file: string): HostArray {
  const n = (info.end - info.begin) / dtypeSize(info.dtype);
  const b = aligned(bytes, Math.min(dtypeSize(info.dtype), 4));
  switch (info.dtype) {
    case 'F32':
      return new Float32Array(b.buffer, b.byteOffset, n);
    case 'BF16':
      return new Uint16Array(b.buffer, b.byteOffset, n);
    case 'I32':
      return new Int32Array(b.buffer, b.byteOffset, n);
    case 'F16': {
      const h = new Uint16Array(b.buffer, b.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(h[i]);
      return out;
    }
    case 'I64': {
      // Little-endian halves: the value fits in i32 exactly when the high word is the low word's sign.
      const w = new Int32Array(b.buffer, b.byteOffset, 2 * n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = w[2 * i];
        const hi = w[2 * i + 1];
        if (hi !== lo >> 31) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          throw new SafetensorsError(
            `I64 element ${i} is ${v}, outside the i32 range [-2147483648, 2147483647] it loads into`,
            file,
            info.name,
          );
        }
        out[i] = lo;
      }
      return out;
    }
    case 'U8':
    case 'BOOL':
      return Int32Array.from(b.subarray(0, n));
    default:
      throw new SafetensorsError(
        `dtype ${info.dtype} cannot be loaded into a tensor (supported: F32, BF16, F16, I32, I64, U8, BOOL)`,
        file,
        info.name,
      );
  }
}

function convert(data: HostArray, from: DType, to: DType, info: TensorInfo, file: string): HostArray {
  if (from === to) return data;
  if (to === 'i32') {
    throw new SafetensorsError(
      `stored as ${info.dtype} (${from}); converting to i32 is not supported`,
      file,
      info.name,
    );
  }
  const f32 = from === 'bf16' ? bf16ArrayToF32(data as Uint16Array) : Float32Array.from(data as ArrayLike<number>);
  return to === 'f32' ? f32 : f32ArrayToBf16(f32);
}

/** The elements of a tensor from its stored bytes, in its loaded dtype or `dtype` if given. */
export function decodeTensor(
  info: TensorInfo,
  bytes: Uint8Array,
  file: string,
  dtype?: DType,
): { dtype: DType; data: HostArray } {
  if (bytes.byteLength !== info.end - info.begin) {
    throw new SafetensorsError(
      `read ${bytes.byteLength} bytes, expected ${info.end - info.begin}: the file is truncated`,
      file,
      info.name,
    );
  }
  const natural = loadedDType(info.dtype);
  const data = decodeNatural(info, bytes, file);
  const target = dtype ?? (natural as DType);
  return { dtype: target, data: convert(data, natural as DType, target, info, file) };
}
