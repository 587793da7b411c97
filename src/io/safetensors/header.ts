/**
 * The safetensors header: 8 bytes little-endian u64 N, then N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }`, then the data
 * region. Offsets are relative to the data region (byte 8 + N). Parsing is pure (bytes in, header out) so a
 * browser can feed it fetched ranges; validation checks the header against the file size.
 */
import { numel } from '../../tensor/shape.js';
import { dtypeSize, isSafetensorsDType, SAFETENSORS_DTYPES, type SafetensorsDType } from './dtypes.js';
import { SafetensorsError } from './errors.js';

/** The format's own cap (the reference implementation refuses larger headers). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Byte offsets [begin, end) relative to the start of the data region. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** Tensors in the order the header lists them. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** Absolute file offset of the data region (8 + header length). */
  readonly dataOffset: number;
  /** Bytes of the data region the tensors cover. */
  readonly dataBytes: number;
}

/** N from the first 8 bytes, checked against the file size. */
export function parseHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    throw new SafetensorsError(
      `truncated file: ${fileSize} bytes, expected at least 8 (the header length field)`,
      file,
    );
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new SafetensorsError(
      `header length ${n} runs past the end of the file (${fileSize} bytes leave ${fileSize - 8} after the length field)`,
      file,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`header length ${n} exceeds the format's limit of ${MAX_HEADER_BYTES} bytes`, file);
  }
  return Number(n);
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseEntry(name: string, raw: unknown, file: string): TensorInfo {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SafetensorsError(
      `header entry is ${describe(raw)}, expected an object {dtype, shape, data_offsets}`,
      file,
      name,
    );
  }
  const e = raw as Record<string, unknown>;
  if (!isSafetensorsDType(e.dtype)) {
    throw new SafetensorsError(
      `unknown dtype ${describe(e.dtype)}, expected one of ${SAFETENSORS_DTYPES.join(', ')}`,
      file,
      name,
    );
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    throw new SafetensorsError(`shape ${describe(shape)}, expected an array of non-negative integers`, file, name);
  }
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isNonNegInt) || off[0] > off[1]) {
    throw new SafetensorsError(
      `data_offsets ${describe(off)}, expected [begin, end] with integers 0 <= begin <= end`,
      file,
      name,
    );
  }
  const [begin, end] = off as [number, number];
  const expected = numel(shape) * dtypeSize(e.dtype);
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, expected ${expected} ` +
        `(${e.dtype} is ${dtypeSize(e.dtype)} bytes x shape [${shape.join(', ')}] = ${numel(shape)} elements)`,
      file,
      name,
    );
  }
  return { name, dtype: e.dtype, shape: [...shape], begin, end };
}

/**
 * Parse and validate the JSON header. `fileSize` is the whole file's size: the data region is
 * `fileSize - 8 - headerBytes.length` bytes and the tensors must tile it exactly, in some order, with no
 * gap, overlap or trailing bytes (what the reference implementation accepts).
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes).replace(/\s+$/, ''));
  } catch (e) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON (${(e as Error).message})`, file);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SafetensorsError(`header is ${describe(json)}, expected a JSON object of tensors`, file);
  }
  let metadata: Record<string, string> | undefined;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new SafetensorsError(`__metadata__ is ${describe(raw)}, expected an object of strings`, file);
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(`__metadata__.${k} is ${describe(v)}, expected a string`, file);
        }
      }
      metadata = { ...(raw as Record<string, string>) };
      continue;
    }
    tensors.set(name, parseEntry(name, raw, file));
  }
  const dataOffset = 8 + headerBytes.byteLength;
  const dataBytes = fileSize - dataOffset;
  checkTiling([...tensors.values()], dataBytes, file);
  return { tensors, metadata, dataOffset, dataBytes };
}

/** The tensors must cover [0, dataBytes) contiguously: sorted by offset, each begins where the last ended. */
function checkTiling(infos: TensorInfo[], dataBytes: number, file: string): void {
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: TensorInfo | undefined;
  for (const t of sorted) {
    if (t.begin < pos) {
      throw new SafetensorsError(
        `data_offsets [${t.begin}, ${t.end}] overlap tensor '${prev?.name}' at [${prev?.begin}, ${prev?.end}]; ` +
          `expected it to begin at ${pos}`,
        file,
        t.name,
      );
    }
    if (t.begin > pos) {
      throw new SafetensorsError(
        `data_offsets [${t.begin}, ${t.end}] leave a gap of ${t.begin - pos} bytes; expected it to begin at ${pos} ` +
          `(tensors must cover the data region contiguously)`,
        file,
        t.name,
      );
    }
    if (t.end > dataBytes) {
      throw new SafetensorsError(
        `data_offsets [${t.begin}, ${t.end}] run past the end of the data region (${dataBytes} bytes): ` +
          `the file is truncated or the offsets are out of range`,
        file,
        t.name,
      );
    }
    pos = t.end;
    prev = t;
  }
  if (pos !== dataBytes) {
    throw new SafetensorsError(
      `data region is ${dataBytes} bytes but the tensors cover ${pos}; expected no trailing bytes`,
      file,
    );
  }
}
