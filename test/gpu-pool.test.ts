/**
 * The buffer pool and the bind-group cache together: a buffer destroyed past the pool's free-byte cap must
 * not take the other cached bind groups with it (ids are never reused, so a stale entry can never be hit),
 * while a trim drops them all.
 */
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/gpu/bufferPool.js';
import { add } from '../src/kernels/elementwise/index.js';
import { gpuContext, hasGpu } from './helpers.js';

describe.runIf(hasGpu)('buffer pool and bind-group cache on WebGPU', () => {
  it('destroying buffers past maxFreeBytes keeps the cache; the same dispatch hits again; trim clears it', async () => {
    const gpu = (await gpuContext())!;
    const a = gpu.fromHost(
      Float32Array.from({ length: 64 }, (_, i) => i),
      [64],
    );
    const b = gpu.fromHost(
      Float32Array.from({ length: 64 }, (_, i) => 2 * i),
      [64],
    );
    // Warm: the first add creates its output buffer and bind group; its output is freed after the submit.
    const warm = add(a, b);
    expect(Array.from(await warm.toFloat32()).slice(0, 3)).toEqual([0, 3, 6]);
    warm.dispose();
    await gpu.sync();
    const savedCap = gpu.pool.maxFreeBytes;
    try {
      // A cap of 0: every released buffer is destroyed instead of kept.
      gpu.pool.maxFreeBytes = 0;
      const big = gpu.empty([1 << 16]);
      big.dispose();
      await gpu.sync();
      expect(gpu.pool.stats().destroyed).toBeGreaterThan(0);
      expect(gpu.bindGroups.size).toBeGreaterThan(0);
    } finally {
      gpu.pool.maxFreeBytes = savedCap;
    }
    // a + b again with a fresh output buffer: a miss for the new output only, never a stale hit; the result
    // is right (a stale bind group naming a destroyed buffer would fail validation or read garbage).
    const y = add(a, b);
    expect(Array.from(await y.toFloat32()).slice(60)).toEqual([180, 183, 186, 189]);
    y.dispose();
    gpu.pool.trim();
    expect(gpu.bindGroups.size).toBe(0);
    a.dispose();
    b.dispose();
  });

  it('keepWorkingSet: a step larger than the free cap re-creates its buffers each time, until the cap is raised to the peak', async () => {
    const gpu = (await gpuContext())!;
    const pool = new BufferPool(gpu.device, 2 ** 30);
    // One "step": 1 MiB kept live across the step (a weight) and three 256 KiB transients alive together.
    const weight = pool.acquire(2 ** 20);
    const step = () => {
      const t = [pool.acquire(2 ** 18), pool.acquire(2 ** 18), pool.acquire(2 ** 18)];
      for (const b of t) pool.release(b);
      pool.recycle();
    };
    pool.maxFreeBytes = 2 ** 18; // room for one transient only
    step();
    const created1 = pool.stats().created;
    step();
    // Two of the three were destroyed past the cap and made again.
    expect(pool.stats().created - created1).toBe(2);
    pool.fixedFreeCap = true;
    pool.keepWorkingSet();
    expect(pool.maxFreeBytes).toBe(2 ** 18);
    pool.fixedFreeCap = false;
    pool.keepWorkingSet();
    // The peak held: the weight and the three transients (each step held all of them at once).
    expect(pool.maxFreeBytes).toBe(2 ** 20 + 3 * 2 ** 18);
    step();
    const created2 = pool.stats().created;
    step();
    step();
    expect(pool.stats().created).toBe(created2);
    pool.release(weight);
    pool.recycle();
    pool.trim();
  });

  it('keepWorkingSet counts every size class a step used, not only the bytes live at once', async () => {
    const gpu = (await gpuContext())!;
    const pool = new BufferPool(gpu.device, 2 ** 30);
    // Two transients of different size classes, never live together: at most 512 KiB live, 768 KiB held.
    const step = () => {
      for (const bytes of [2 ** 18, 2 ** 19]) {
        pool.release(pool.acquire(bytes));
        pool.recycle();
      }
    };
    pool.maxFreeBytes = 2 ** 18;
    step();
    pool.keepWorkingSet();
    expect(pool.maxFreeBytes).toBe(2 ** 18 + 2 ** 19);
    step();
    const created = pool.stats().created;
    step();
    step();
    expect(pool.stats().created).toBe(created);
    pool.trim();
  });
});
