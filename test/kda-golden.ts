/**
 * Test-only reader for fixtures/golden/kda-op.safetensors (until src/io/safetensors lands): 8-byte LE
 * header length, JSON header {name: {dtype, shape, data_offsets}}, then the F32 / I32 data.
 * `get` throws on a missing key so a renamed fixture fails loudly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './helpers.js';

export interface GoldenTensor {
  shape: number[];
  data: Float32Array;
}

export class Golden {
  private readonly header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  private readonly body: Buffer;

  constructor(path: string) {
    const buf = readFileSync(path);
    const n = Number(buf.readBigUInt64LE(0));
    this.header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    this.body = buf.subarray(8 + n);
  }

  has(name: string): boolean {
    return name in this.header;
  }

  get(name: string): GoldenTensor {
    const e = this.header[name];
    if (!e) throw new Error(`golden: key '${name}' is missing from the fixture`);
    if (e.dtype !== 'F32') throw new Error(`golden: '${name}' has dtype ${e.dtype}, expected F32`);
    const [a, b] = e.data_offsets;
    const bytes = this.body.subarray(a, b);
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    return { shape: e.shape, data: new Float32Array(copy.buffer) };
  }
}

export function kdaGolden(): Golden {
  return new Golden(join(FIXTURES, 'golden', 'kda-op.safetensors'));
}
