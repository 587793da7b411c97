import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bufferSource,
  f16BitsToF32,
  openSafetensors,
  SafetensorsFile,
  serializeSafetensors,
  tensorsToData,
  writeSafetensors,
  writeTensors,
} from '../src/io/safetensors/index.js';
import { bf16BitsToF32, f32ToBf16Bits } from '../src/tensor/dtype.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { FIXTURES, gpuContext, hasGpu } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kimi-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One tensor of every stored dtype we load, with its expected decoded values. */
function everyDtype() {
  const f32 = new Float32Array([1.5, -2.25, 3e-8, Number.POSITIVE_INFINITY, 0, -0]);
  const bf16 = new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001, 0x4049]); // 1, -2, inf, subnormal, 3.140625
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000]); // 1, -2, 65504, 2^-24, inf, -0
  const i32 = new Int32Array([0, -1, 2147483647, -2147483648]);
  const i64 = new BigInt64Array([0n, -1n, 2147483647n, -2147483648n, 42n, -7n]);
  const u8 = new Uint8Array([0, 1, 255, 128, 7]);
  const bool = new Uint8Array([1, 0, 1]);
  return {
    tensors: {
      f32: { dtype: 'F32' as const, shape: [2, 3], data: f32 },
      bf16: { dtype: 'BF16' as const, shape: [5], data: bf16 },
      f16: { dtype: 'F16' as const, shape: [3, 2], data: f16 },
      i32: { dtype: 'I32' as const, shape: [2, 2], data: i32 },
      i64: { dtype: 'I64' as const, shape: [6], data: i64 },
      u8: { dtype: 'U8' as const, shape: [5], data: u8 },
      bool: { dtype: 'BOOL' as const, shape: [3], data: bool },
      empty: { dtype: 'F32' as const, shape: [0, 4], data: new Float32Array(0) },
      scalar: { dtype: 'F32' as const, shape: [], data: new Float32Array([7]) },
    },
    expected: {
      f32: { dtype: 'f32', values: [...f32] },
      bf16: { dtype: 'bf16', values: [...bf16] },
      f16: { dtype: 'f32', values: [1, -2, 65504, 2 ** -24, Number.POSITIVE_INFINITY, -0] },
      i32: { dtype: 'i32', values: [...i32] },
      i64: { dtype: 'i32', values: [0, -1, 2147483647, -2147483648, 42, -7] },
      u8: { dtype: 'i32', values: [0, 1, 255, 128, 7] },
      bool: { dtype: 'i32', values: [1, 0, 1] },
      empty: { dtype: 'f32', values: [] },
      scalar: { dtype: 'f32', values: [7] },
    } as Record<string, { dtype: string; values: number[] }>,
  };
}

describe('safetensors round trip', () => {
  it('writes and reads back every dtype, in memory and on disk, with metadata', async () => {
    const { tensors, expected } = everyDtype();
    const path = join(dir, 'all.safetensors');
    await writeSafetensors(path, tensors, { metadata: { format: 'pt', note: 'x' } });
    const disk = await readFile(path);
    const mem = serializeSafetensors(tensors, { format: 'pt', note: 'x' });
    expect(Buffer.from(mem).equals(disk)).toBe(true);
    // Header padded so the data region starts on an 8-byte boundary.
    const n = Number(new DataView(disk.buffer, disk.byteOffset).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);

    for (const f of [await openSafetensors(path), await SafetensorsFile.open(bufferSource(mem, 'mem'))]) {
      expect(f.metadata).toEqual({ format: 'pt', note: 'x' });
      expect(f.names).toEqual(Object.keys(tensors));
      for (const [name, t] of Object.entries(tensors)) {
        expect(f.info(name).dtype).toBe(t.dtype);
        expect(f.info(name).shape).toEqual(t.shape);
        const raw = await f.readRaw(name);
        expect(Buffer.from(raw).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(true);
        const loaded = await f.loadTensor(name, cpu);
        expect(loaded.dtype).toBe(expected[name].dtype);
        expect(loaded.shape).toEqual(t.shape);
        expect([...(await loaded.read())]).toEqual(expected[name].values);
        loaded.dispose();
      }
      await f.close();
    }
  });

  it('converts f32 <-> bf16 on load with round-to-nearest-even', async () => {
    // 1 + 2^-8 is a tie between bf16 1 and 1 + 2^-7: even mantissa (1) wins; 1 + 3*2^-8 rounds up.
    const vals = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.5, 1e-3]);
    const bits = new Uint16Array([0x3f80, 0x4000]);
    const mem = serializeSafetensors({
      a: { dtype: 'f32', shape: [4], data: vals },
      b: { dtype: 'bf16', shape: [2], data: bits },
    });
    const f = await SafetensorsFile.open(bufferSource(mem));
    const a = await f.loadTensor('a', cpu, { dtype: 'bf16' });
    expect(a.dtype).toBe('bf16');
    expect([...(await a.read())]).toEqual([...vals].map(f32ToBf16Bits));
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    const b = await f.loadTensor('b', cpu, { dtype: 'f32' });
    expect([...(await b.read())]).toEqual([1, 2]);
    expect(bf16BitsToF32(0x4000)).toBe(2);
    await expect(f.loadTensor('a', cpu, { dtype: 'i32' })).rejects.toThrow(/tensor 'a'.*i32 is not supported/);
  });

  it('decodes f16 exactly (normals, subnormals, infinities, NaN)', () => {
    expect(f16BitsToF32(0x3555)).toBeCloseTo(0.333251953125, 12);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
  });

  it('rejects I64 values outside the i32 range, naming the tensor and the value', async () => {
    const mem = serializeSafetensors(
      { ids: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 2n ** 31n]) } },
      undefined,
    );
    const f = await SafetensorsFile.open(bufferSource(mem, 'ids.safetensors'));
    await expect(f.loadTensor('ids', cpu)).rejects.toThrow(
      /ids\.safetensors: tensor 'ids': I64 element 1 is 2147483648, outside the i32 range/,
    );
  });

  it('writes tensors read back from a device', async () => {
    const a = cpu.fromHost(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const b = cpu.fromHost(new Uint16Array([0x3f80, 0x4000, 0x4040]), [3], 'bf16');
    const c = cpu.fromHost(new Int32Array([9, -9]), [2], 'i32');
    const path = join(dir, 'tensors.safetensors');
    await writeSafetensors(path, await tensorsToData({ a, b, c: c.transpose(0, 0) }));
    const f = await openSafetensors(path);
    expect(f.info('b').dtype).toBe('BF16');
    expect([...(await (await f.loadTensor('a', cpu)).read())]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...(await (await f.loadTensor('b', cpu, { dtype: 'f32' })).read())]).toEqual([1, 2, 3]);
    expect([...(await (await f.loadTensor('c', cpu)).read())]).toEqual([9, -9]);
    await f.close();
    await writeTensors(join(dir, 'direct.safetensors'), new Map([['c', c]]), { metadata: { step: '3' } });
    const g = await openSafetensors(join(dir, 'direct.safetensors'));
    expect(g.metadata).toEqual({ step: '3' });
    expect(g.info('c')).toMatchObject({ dtype: 'I32', shape: [2] });
    await g.close();
  });

  it('overwrites atomically and leaves no temporary file', async () => {
    const path = join(dir, 'atomic.safetensors');
    await writeSafetensors(path, { x: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
    await writeSafetensors(path, { y: { dtype: 'F32', shape: [2], data: new Float32Array([2, 3]) } });
    const f = await openSafetensors(path);
    expect(f.names).toEqual(['y']);
    await f.close();
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('refuses to write data whose size does not match dtype x shape', async () => {
    await expect(
      writeSafetensors(join(dir, 'bad.safetensors'), { w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
    ).rejects.toThrow(/tensor 'w': data has 8 bytes, expected 12/);
  });
});

describe('fixtures', () => {
  it('reads fixtures/tiny-kimi/model.safetensors', async () => {
    const f = await openSafetensors(join(FIXTURES, 'tiny-kimi/model.safetensors'));
    expect(f.names.length).toBe(151);
    expect(f.parameterCount).toBe(303972);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.info('model.layers.0.self_attn.A_log').shape).toEqual([1, 1, 4, 1]);
    const w = await f.loadTensor('model.layers.3.self_attn.kv_a_proj_with_mqa.weight', cpu);
    expect(w.shape).toEqual([24, 64]);
    const v = await w.toFloat32();
    expect(v.every(Number.isFinite)).toBe(true);
    expect(v.some((x) => x !== 0)).toBe(true);
    await f.close();
  });

  it('reads the golden files (f32 and i32 tensors)', async () => {
    const g = await openSafetensors(join(FIXTURES, 'golden/tiny-kimi-golden.safetensors'));
    const ids = await g.loadTensor('case0.input_ids', cpu);
    expect(ids.dtype).toBe('i32');
    expect(ids.shape).toEqual([2, 45]);
    expect([...(await ids.read())].every((x) => x >= 0 && x < 256)).toBe(true);
    expect(g.info('case1.logits').shape).toEqual([1, 130, 256]);
    await g.close();
    const k = await openSafetensors(join(FIXTURES, 'golden/kda-op.safetensors'));
    expect(k.has('a.q') && k.has('b.S0') && k.has('a.core.o')).toBe(true);
    const s0 = await k.loadTensor('b.S0', cpu);
    expect(s0.shape).toEqual([1, 3, 32, 16]);
    await k.close();
  });
});

describe('lazy load to the GPU', () => {
  it.skipIf(!hasGpu)('loads f32 and bf16 tensors onto a GpuContext, converting on the way', async () => {
    const gpu = (await gpuContext())!;
    const f = await openSafetensors(join(FIXTURES, 'tiny-kimi/model.safetensors'));
    const name = 'model.layers.1.block_sparse_moe.gate.weight';
    const host = await (await f.loadTensor(name, cpu)).read();
    const t = await f.loadTensor(name, gpu);
    expect(t.backend).toBe('webgpu');
    expect([...(await t.read())]).toEqual([...host]);
    // Odd element count in bf16 exercises the padded upload.
    const odd = await f.loadTensor('model.layers.0.self_attn.A_log', gpu, { dtype: 'bf16' });
    const oddHost = await (await f.loadTensor('model.layers.0.self_attn.A_log', cpu)).toFloat32();
    expect([...(await odd.read())]).toEqual([...oddHost].map(f32ToBf16Bits));
    t.dispose();
    odd.dispose();
    await f.close();
  });
});
