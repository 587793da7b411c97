/**
 * Tensors -> safetensors bytes. The header lists tensors in the given order with contiguous offsets and
 * is padded with spaces so the data region starts on an 8-byte boundary (as the reference writer does).
 * Pure: Node's atomic file writer (writer.ts) and in-memory serialisation both build on it.
 */
import type { DType } from '../../tensor/dtype.js';
import { numel } from '../../tensor/shape.js';
import { dtypeSize, isSafetensorsDType, type SafetensorsDType, storedDType } from './dtypes.js';
import { SafetensorsError } from './errors.js';

export interface TensorData {
  /** A stored dtype ('F32', 'BF16', ...) or a tensor dtype ('f32', 'bf16' as raw bits, 'i32'). */
  dtype: SafetensorsDType | DType;
  shape: readonly number[];
  /** The stored bytes: any typed array whose byteLength is numel x dtype size (bf16 as a Uint16Array). */
  data: ArrayBufferView;
}

export type TensorMap = ReadonlyMap<string, TensorData> | Readonly<Record<string, TensorData>>;

export interface EncodedLayout {
  /** The first 8 + N bytes of the file: length field and padded JSON header. */
  prefix: Uint8Array;
  /** Entries in file order with their validated stored dtype. */
  entries: { name: string; dtype: SafetensorsDType; shape: readonly number[]; bytes: Uint8Array }[];
  totalBytes: number;
}

export function entriesOf(tensors: TensorMap): [string, TensorData][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, TensorData>);
}

/** Validate entries and build the header; `file` names the destination in errors. */
export function encodeLayout(
  tensors: TensorMap,
  metadata: Record<string, string> | undefined,
  file: string,
): EncodedLayout {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = { ...metadata };
  const entries: EncodedLayout['entries'] = [];
  let offset = 0;
  for (const [name, t] of entriesOf(tensors)) {
    if (name === '__metadata__') throw new SafetensorsError(`'__metadata__' is reserved, not a tensor name`, file);
    const dtype = isSafetensorsDType(t.dtype) ? t.dtype : storedDType(t.dtype as DType);
    if (!isSafetensorsDType(dtype)) throw new SafetensorsError(`unknown dtype ${String(t.dtype)}`, file, name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`shape [${t.shape.join(', ')}], expected non-negative integers`, file, name);
    }
    const expected = numel(t.shape) * dtypeSize(dtype);
    if (t.data.byteLength !== expected) {
      throw new SafetensorsError(
        `data has ${t.data.byteLength} bytes, expected ${expected} (${dtype} x shape [${t.shape.join(', ')}])`,
        file,
        name,
      );
    }
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + expected] };
    entries.push({ name, dtype, shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, expected) });
    offset += expected;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.byteLength / 8) * 8;
  const prefix = new Uint8Array(8 + n).fill(0x20);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(n), true);
  prefix.set(json, 8);
  return { prefix, entries, totalBytes: prefix.byteLength + offset };
}

/** The whole file in memory (for small files, tests and browsers). */
export function serializeSafetensors(
  tensors: TensorMap,
  metadata?: Record<string, string>,
  file = '<memory>',
): Uint8Array {
  const layout = encodeLayout(tensors, metadata, file);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.prefix, 0);
  let o = layout.prefix.byteLength;
  for (const e of layout.entries) {
    out.set(e.bytes, o);
    o += e.bytes.byteLength;
  }
  return out;
}
