import { describe, expect, it } from 'vitest';
import { bucketSize } from '../src/gpu/bufferPool.js';
import { KernelError } from '../src/gpu/kernelError.js';
import { Params } from '../src/gpu/params.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { bf16BitsToF32, f32ArrayToBf16, f32ToBf16Bits } from '../src/tensor/dtype.js';
import { keep, scope } from '../src/tensor/scope.js';
import { gpuContext, hasGpu } from './helpers.js';

describe('dtypes', () => {
  it('rounds f32 to bf16 to nearest even and keeps NaN and infinities', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    // 1 + 2^-8 is exactly half way between two bf16 values: ties go to the even one (1.0).
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bf16BitsToF32(f32ToBf16Bits(-2.5))).toBe(-2.5);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(Number.NaN)))).toBe(true);
    expect(bf16BitsToF32(f32ToBf16Bits(Number.POSITIVE_INFINITY))).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('tensor views and lifetimes', () => {
  it('views share storage and free it with the last handle', () => {
    const t = cpu.fromHost(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const v = t.transpose();
    expect(t.storage.refCount).toBe(2);
    t.dispose();
    expect(v.storage.refCount).toBe(1);
    v.dispose();
    expect(v.storage.refCount).toBe(0);
    expect(() => v.read()).toThrow(/used after dispose/);
  });

  it('reshape refuses a non-contiguous view instead of copying silently', () => {
    const t = cpu.fromHost(new Float32Array(6), [2, 3]);
    expect(() => t.transpose().reshape([6])).toThrow(/non-contiguous/);
    expect(t.reshape([3, -1]).shape).toEqual([3, 2]);
    expect(() => t.reshape([4, -1])).toThrow(/cannot reshape 6 elements/);
  });

  it('scope disposes everything created inside except what it returns', () => {
    let inner: ReturnType<typeof cpu.empty> | undefined;
    let kept: ReturnType<typeof cpu.empty> | undefined;
    const out = scope(() => {
      inner = cpu.empty([4]);
      kept = keep(cpu.empty([2]));
      return { result: cpu.empty([3]) };
    });
    expect(inner!.isDisposed).toBe(true);
    expect(kept!.isDisposed).toBe(false);
    expect(out.result.isDisposed).toBe(false);
  });
});

describe('buffer pool', () => {
  it('rounds sizes to buckets wasting at most a quarter', () => {
    for (const n of [1, 255, 256, 257, 1000, 4097, 1e6, 123456789]) {
      const b = bucketSize(n);
      expect(b).toBeGreaterThanOrEqual(n);
      if (n > 1024 && n < 2 ** 28) expect(b / n).toBeLessThanOrEqual(1.25 + 1e-9);
    }
  });

  it.skipIf(!hasGpu)('reuses released buffers after a submit instead of allocating', async () => {
    const gpu = (await gpuContext())!;
    await gpu.sync();
    const a = gpu.empty([1000]);
    a.dispose();
    gpu.flush();
    const before = gpu.pool.stats().created;
    const b = gpu.empty([1000]);
    expect(gpu.pool.stats().created).toBe(before);
    b.dispose();
  });
});

describe.skipIf(!hasGpu)('GPU errors become exceptions naming the kernel and WGSL line', () => {
  it('a WGSL compile error', async () => {
    const gpu = (await gpuContext())!;
    const out = gpu.empty([4]);
    gpu.dispatch({
      kernel: {
        name: 'broken_kernel',
        code: () =>
          [
            '@group(0) @binding(1) var<storage, read_write> o: array<f32>;',
            '@compute @workgroup_size(1)',
            'fn main() {',
            '  o[0] = undefined_thing;',
            '}',
          ].join('\n'),
      },
      tensors: [out],
      workgroups: [1],
    });
    const err = await gpu.sync().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).kernel).toBe('broken_kernel');
    expect((err as KernelError).wgslLine).toBe(4);
    expect((err as Error).message).toMatch(/broken_kernel.*WGSL line 4/s);
  });

  it('a binding that does not match the shader', async () => {
    const gpu = (await gpuContext())!;
    const out = gpu.empty([4]);
    gpu.dispatch({
      kernel: {
        name: 'needs_params',
        code: () =>
          [
            'struct P { n: u32, a: u32, b: u32, c: u32 };',
            '@group(0) @binding(0) var<uniform> p: P;',
            '@group(0) @binding(1) var<storage, read_write> o: array<f32>;',
            '@compute @workgroup_size(1) fn main() { o[0] = f32(p.n); }',
          ].join('\n'),
      },
      tensors: [out],
      workgroups: [1],
    });
    await expect(gpu.sync()).rejects.toThrow(/needs_params/);
    // The context stays usable afterwards.
    const ok = gpu.fromHost(new Float32Array([1, 2]), [2]);
    expect(Array.from(await ok.read())).toEqual([1, 2]);
  });

  it('uniform params reach the shader in order', async () => {
    const gpu = (await gpuContext())!;
    const out = gpu.empty([3]);
    gpu.dispatch({
      kernel: {
        name: 'params_echo',
        code: () =>
          [
            'struct P { a: u32, b: i32, c: f32, d: u32 };',
            '@group(0) @binding(0) var<uniform> p: P;',
            '@group(0) @binding(1) var<storage, read_write> o: array<f32>;',
            '@compute @workgroup_size(1) fn main() { o[0] = f32(p.a); o[1] = f32(p.b); o[2] = p.c; }',
          ].join('\n'),
      },
      tensors: [out],
      params: new Params().u32(7).i32(-3).f32(0.5).u32(0),
      workgroups: [1],
    });
    expect(Array.from(await out.read())).toEqual([7, -3, 0.5]);
  });

  it('bind groups are reused across identical steps and dropped when the pool destroys buffers', async () => {
    const gpu = (await gpuContext())!;
    const kernel = {
      name: 'bg_cache_scale',
      code: () =>
        [
          'struct P { s: f32, n: u32 };',
          '@group(0) @binding(0) var<uniform> p: P;',
          '@group(0) @binding(1) var<storage, read> a: array<f32>;',
          '@group(0) @binding(2) var<storage, read_write> o: array<f32>;',
          '@compute @workgroup_size(1) fn main() { for (var i = 0u; i < p.n; i++) { o[i] = a[i] * p.s; } }',
        ].join('\n'),
    };
    // One "step": allocate, dispatch twice with different params, read, free; as a decode step does.
    const step = async (s: number) => {
      const a = gpu.fromHost(new Float32Array([1, 2, 3]), [3]);
      const mid = gpu.empty([3]);
      const out = gpu.empty([3]);
      gpu.dispatch({ kernel, tensors: [a, mid], params: new Params().f32(s).u32(3), workgroups: [1] });
      gpu.dispatch({ kernel, tensors: [mid, out], params: new Params().f32(2).u32(3), workgroups: [1] });
      const r = Array.from(await out.read());
      for (const t of [a, mid, out]) t.dispose();
      return r;
    };
    await gpu.sync();
    // Freed buffers return to the pool only after the next submit, and it hands out the lowest-id free
    // buffer, so after a step or two every step gets the same buffers and every bind group it needs exists.
    for (let s = 1; s <= 4; s++) expect(await step(s)).toEqual([2 * s, 4 * s, 6 * s]);
    const misses = gpu.bindGroups.misses;
    // Same buffers, same uniform offsets: no new bind group, and the new params still reach the shader.
    for (let s = 5; s <= 12; s++) expect(await step(s)).toEqual([2 * s, 4 * s, 6 * s]);
    expect(gpu.bindGroups.misses).toBe(misses);
    gpu.pool.trim();
    expect(gpu.bindGroups.size).toBe(0);
    expect(await step(13)).toEqual([26, 52, 78]);
  });

  it('bf16 tensors round-trip through GPU memory, odd lengths included', async () => {
    const gpu = (await gpuContext())!;
    const bits = f32ArrayToBf16(new Float32Array([1, -2, 3.5, 0.1, 7]));
    const t = gpu.fromHost(bits, [5], 'bf16');
    expect(Array.from(await t.read())).toEqual(Array.from(bits));
    expect(Array.from(await t.narrow(0, 1, 3).read())).toEqual(Array.from(bits.slice(1, 4)));
  });

  it('a tensor larger than one binding allows is refused with the kernel named, before any GPU error', async () => {
    const gpu = (await gpuContext())!;
    const n = gpu.limits.maxStorageBufferBindingSize / 4 + 4;
    if (n * 4 > 512 * 2 ** 20) return; // only where the limit is small (lavapipe: 128 MiB)
    const big = gpu.empty([n]);
    const { contiguous } = await import('../src/kernels/copy/index.js');
    expect(() =>
      contiguous(
        big
          .transpose(0, 0)
          .narrow(0, 1, n - 1)
          .unsqueeze(1)
          .transpose(0, 1),
      ),
    ).toThrow(/copy_strided_f32.*maxStorageBufferBindingSize/);
    big.dispose();
    await gpu.sync();
  });

  it('timestamps measure recorded work', async () => {
    const gpu = (await gpuContext())!;
    const r = await gpu.time(() => {});
    expect(r.gpuMs).toBeGreaterThanOrEqual(0);
    expect(['timestamp', 'host']).toContain(r.source);
  });
});
