/**
 * fixtures/golden/kda-op.safetensors through the project's safetensors reader (src/io/safetensors),
 * loaded whole up front (1.4 MB). `get` throws on a missing key so a renamed fixture fails loudly.
 */
import { join } from 'node:path';
import { openSafetensors } from '../src/io/safetensors/index.js';
import { FIXTURES } from './helpers.js';

export interface GoldenTensor {
  shape: number[];
  data: Float32Array;
}

export class Golden {
  constructor(private readonly tensors: ReadonlyMap<string, GoldenTensor>) {}

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get(name: string): GoldenTensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`golden: key '${name}' is missing from the fixture`);
    return t;
  }
}

export async function kdaGolden(): Promise<Golden> {
  const file = await openSafetensors(join(FIXTURES, 'golden', 'kda-op.safetensors'));
  const tensors = new Map<string, GoldenTensor>();
  try {
    for (const name of file.names) {
      const t = await file.readHost(name);
      if (t.dtype !== 'f32') throw new Error(`golden: '${name}' has dtype ${t.dtype}, expected f32`);
      tensors.set(name, { shape: t.shape, data: t.data as Float32Array });
    }
  } finally {
    await file.close();
  }
  return new Golden(tensors);
}
