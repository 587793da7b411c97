import { describe, expect, it } from 'vitest';
import { attentionReference } from '../src/kernels/attention/reference.js';
import { cacheWrite, mlaDecode } from '../src/kernels/mla/index.js';
import { mlaDecodeReference } from '../src/kernels/mla/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import type { Device } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';

/** Build a paged cache through cacheWrite, with pages handed out in a shuffled order. */
function buildCache(dev: Device, rows: Float32Array[], R: number, pageSize: number, dtype: 'f32' | 'bf16', rng: Rng) {
  const B = rows.length;
  const maxPages = Math.max(1, ...rows.map((r) => Math.ceil(r.length / R / pageSize)));
  const numPages = B * maxPages + 1;
  const order = Array.from({ length: numPages }, (_, i) => i).sort(() => rng.next() - 0.5);
  const table = new Int32Array(B * maxPages);
  for (let i = 0; i < table.length; i++) table[i] = order[i];
  const pool = dev.fromHost(
    dtype === 'bf16' ? new Uint16Array(numPages * pageSize * R) : new Float32Array(numPages * pageSize * R),
    [numPages, pageSize, R],
    dtype,
  );
  const pageTable = dev.fromHost(table, [B, maxPages], 'i32');
  for (let b = 0; b < B; b++) {
    const T = rows[b].length / R;
    if (!T) continue;
    cacheWrite(
      pool,
      dev.fromHost(rows[b], [T, R]),
      dev.fromHost(new Int32Array(T).fill(b), [T], 'i32'),
      dev.fromHost(
        Int32Array.from({ length: T }, (_, t) => t),
        [T],
        'i32',
      ),
      pageTable,
    );
  }
  return { pool, pageTable, table, maxPages };
}

describe('absorbed MLA decode', () => {
  it('reference equals plain attention with one shared key/value head', () => {
    const rng = new Rng(1);
    const [T, H, R, Rv] = [9, 3, 6, 4];
    const q = rng.normalArray(H * R);
    const rows = rng.normalArray(T * R);
    const ref = mlaDecodeReference(q, rows, new Int32Array([0]), new Int32Array([T]), {
      B: 1,
      H,
      R,
      Rv,
      pageSize: T,
      maxPages: 1,
      scale: 0.3,
    });
    // The same as the last query row of causal attention over the rows, per head.
    for (let h = 0; h < H; h++) {
      const qs = new Float32Array(T * R);
      qs.set(q.subarray(h * R, (h + 1) * R), (T - 1) * R);
      const v = new Float32Array(T * Rv);
      for (let t = 0; t < T; t++) v.set(rows.subarray(t * R, t * R + Rv), t * Rv);
      const o = attentionReference(qs, rows, v, { B: 1, T, H: 1, Dk: R, Dv: Rv, scale: 0.3, causal: true });
      expectClose(ref.subarray(h * Rv, (h + 1) * Rv), o.subarray((T - 1) * Rv), 1e-6, `head ${h}`);
    }
  });

  const cases: [number[], number, number, number, number, 'f32' | 'bf16'][] = [
    [[1], 4, 24, 16, 4, 'f32'],
    [[7, 63, 65], 4, 24, 16, 16, 'f32'],
    [[1000, 1, 0], 32, 36, 32, 64, 'bf16'],
    [[130, 17], 8, 576, 512, 32, 'bf16'],
  ];
  for (const [lengths, H, R, Rv, pageSize, dtype] of cases) {
    it.skipIf(!hasGpu)(
      `WebGPU vs reference: lengths ${lengths.join(',')}, H=${H}, R=${R}, ${dtype} pages of ${pageSize}`,
      async () => {
        const gpu = (await gpuContext())!;
        const rng = new Rng(R + H);
        const rows = lengths.map((T) => rng.normalArray(T * R));
        const q = rng.normalArray(lengths.length * H * R, 0.3);
        const g = buildCache(gpu, rows, R, pageSize, dtype, new Rng(3));
        const lens = gpu.fromHost(Int32Array.from(lengths), [lengths.length], 'i32');
        const out = mlaDecode(gpu.fromHost(q, [lengths.length, H, R]), g.pool, g.pageTable, lens, {
          Rv,
          scale: R ** -0.5,
          maxLength: Math.max(...lengths),
          chunks: 3,
        });
        // Reference on the pool as the GPU stored it (bf16-rounded rows).
        const poolBits = await g.pool.read();
        const poolF32 = dtype === 'bf16' ? bf16ArrayToF32(poolBits as Uint16Array) : (poolBits as Float32Array);
        const ref = mlaDecodeReference(q, poolF32, g.table, Int32Array.from(lengths), {
          B: lengths.length,
          H,
          R,
          Rv,
          pageSize,
          maxPages: g.maxPages,
          scale: R ** -0.5,
        });
        expectClose(await out.read(), ref, 2e-5, 'o_lat');
        // The pool holds exactly the rows written (rounded to bf16 where the pool is bf16).
        const b0 = rows[0].subarray(0, R);
        const page0 = g.table[0];
        const stored = poolF32.subarray(page0 * pageSize * R, page0 * pageSize * R + R);
        expect(Array.from(stored)).toEqual(Array.from(dtype === 'bf16' ? bf16ArrayToF32(f32ArrayToBf16(b0)) : b0));
        // And the cpu backend agrees through the same API.
        const c = buildCache(cpu, rows, R, pageSize, dtype, new Rng(3));
        const outC = mlaDecode(
          cpu.fromHost(q, [lengths.length, H, R]),
          c.pool,
          c.pageTable,
          cpu.fromHost(Int32Array.from(lengths), [lengths.length], 'i32'),
          {
            Rv,
            scale: R ** -0.5,
            maxLength: Math.max(...lengths),
          },
        );
        expectClose(await outC.read(), ref, 1e-6, 'cpu o_lat');
      },
    );
  }
});
