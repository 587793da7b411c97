/** Bad safetensors input: each case gives a SafetensorsError naming the file, the tensor and what was expected. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors, SafetensorsError, serializeSafetensors } from '../src/io/safetensors/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kimi-st-bad-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file from a raw header (any JSON-able value or text) and a data region of `dataBytes` bytes. */
function rawFile(header: unknown, dataBytes: number, headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

async function openBytes(name: string, bytes: Uint8Array) {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, open: () => openSafetensors(path) };
}

async function expectError(name: string, bytes: Uint8Array, pattern: RegExp): Promise<SafetensorsError> {
  const { path, open } = await openBytes(name, bytes);
  const err = await open().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SafetensorsError);
  const e = err as SafetensorsError;
  expect(e.message.startsWith(path)).toBe(true);
  expect(e.message).toMatch(pattern);
  return e;
}

const good = () =>
  serializeSafetensors({
    a: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
    b: { dtype: 'BF16', shape: [4], data: new Uint16Array(4) },
  });

describe('bad safetensors files', () => {
  it('file shorter than the length field', async () => {
    await expectError('tiny.safetensors', new Uint8Array(5), /truncated file: 5 bytes, expected at least 8/);
  });

  it('header length past the end of the file', async () => {
    const bytes = rawFile({}, 0, 1000n);
    await expectError('hlen.safetensors', bytes, /header length 1000 runs past the end of the file \(10 bytes/);
    await expectError('huge.safetensors', rawFile({}, 0, 2n ** 63n), /header length 9223372036854775808 runs past/);
  });

  it('truncated data region', async () => {
    const full = good();
    const e = await expectError(
      'trunc.safetensors',
      full.subarray(0, full.byteLength - 3),
      /tensor 'b': data_offsets \[24, 32\] run past the end of the data region \(29 bytes\): the file is truncated/,
    );
    expect(e.tensor).toBe('b');
  });

  it('truncated inside the header', async () => {
    const full = good();
    await expectError(
      'trunc-h.safetensors',
      full.subarray(0, 20),
      /header length \d+ runs past the end of the file \(20 bytes/,
    );
  });

  it('header that is not JSON or not an object', async () => {
    await expectError('json.safetensors', rawFile('{"a": {"dtype": "F32",', 0), /header is not valid UTF-8 JSON/);
    await expectError('arr.safetensors', rawFile([1, 2], 0), /header is \[1,2\], expected a JSON object of tensors/);
  });

  it('unknown dtype', async () => {
    const bytes = rawFile({ w: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16);
    await expectError(
      'dtype.safetensors',
      bytes,
      /tensor 'w': unknown dtype "F128", expected one of F64, F32, F16, BF16/,
    );
  });

  it('byte count not matching dtype x shape', async () => {
    const bytes = rawFile({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 20);
    await expectError(
      'count.safetensors',
      bytes,
      /tensor 'w': data_offsets \[0, 20\] hold 20 bytes, expected 24 \(F32 is 4 bytes x shape \[2, 3\] = 6 elements\)/,
    );
  });

  it('overlapping offsets', async () => {
    const bytes = rawFile(
      {
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
      },
      24,
    );
    await expectError(
      'overlap.safetensors',
      bytes,
      /tensor 'b': data_offsets \[8, 24\] overlap tensor 'a' at \[0, 16\]; expected it to begin at 16/,
    );
  });

  it('offsets out of range', async () => {
    const bytes = rawFile(
      {
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        b: { dtype: 'U8', shape: [4], data_offsets: [16, 20] },
      },
      16,
    );
    await expectError(
      'range.safetensors',
      bytes,
      /tensor 'b': data_offsets \[16, 20\] run past the end of the data region \(16 bytes\)/,
    );
    await expectError(
      'neg.safetensors',
      rawFile({ a: { dtype: 'U8', shape: [4], data_offsets: [4, 0] } }, 4),
      /tensor 'a': data_offsets \[4,0\], expected \[begin, end\] with integers 0 <= begin <= end/,
    );
  });

  it('gaps and trailing bytes (offsets must cover the data region contiguously)', async () => {
    await expectError(
      'gap.safetensors',
      rawFile({ a: { dtype: 'U8', shape: [4], data_offsets: [4, 8] } }, 8),
      /tensor 'a': data_offsets \[4, 8\] leave a gap of 4 bytes; expected it to begin at 0/,
    );
    await expectError(
      'trail.safetensors',
      rawFile({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, 6),
      /data region is 6 bytes but the tensors cover 4; expected no trailing bytes/,
    );
  });

  it('bad shape and bad __metadata__', async () => {
    await expectError(
      'shape.safetensors',
      rawFile({ a: { dtype: 'U8', shape: [2, -1], data_offsets: [0, 0] } }, 0),
      /tensor 'a': shape \[2,-1\], expected an array of non-negative integers/,
    );
    await expectError(
      'meta.safetensors',
      rawFile({ __metadata__: { format: 1 } }, 0),
      /__metadata__.format is 1, expected a string/,
    );
  });

  it('missing file', async () => {
    await expect(openSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: file not found/);
  });

  it('accepts a valid file with an empty tensor list and metadata only', async () => {
    const { open } = await openBytes('empty.safetensors', rawFile({ __metadata__: { format: 'pt' } }, 0));
    const f = await open();
    expect(f.names).toEqual([]);
    expect(f.metadata).toEqual({ format: 'pt' });
    await f.close();
  });
});
