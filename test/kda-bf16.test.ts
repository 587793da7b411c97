/**
 * The chunked KDA forward with bf16 inputs (chunk.ts, bf16.wgsl.ts): bf16 q, k, v, g in, o out in bf16, arithmetic
 * and the carried state in f32; W, U, the per-chunk states and V' stored in bf16 between the passes (the storage
 * mode) or in f32 (the mixed mode, the default: bit for bit the f32 forward on the widened inputs, o rounded).
 * Sequences of 1, 7, 65 and 130 tokens packed along time (one set of compiles, K16/V8).
 * Tolerance against the f64 recurrence on the same (bf16-representable) values: 1e-2 relative to max |value|,
 * for the bf16 storage's rounding (2^-9 relative per stored value) through one chunk's products and o's own
 * rounding (lavapipe: o 3.6e-3, final state 1.1e-3; the recurrent kernel on widened inputs: o 2.1e-3, o's
 * rounding alone).
 * The per-kernel exactness of the bf16 variants (their f32 kernels' results rounded, bit for bit) is in each
 * kernel's own test; here the whole forward, that it runs the bf16 kernels, and the paths around it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { kdaCore, kdaCoreBackward, kdaRecurrentReference, kdaRecurrentSlots } from '../src/kernels/kda/index.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { uploadBatched, withDispatchKeys } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

const lens = [1, 7, 65, 130];
const cu = [0];
for (const l of lens) cu.push(cu[cu.length - 1] + l);
const T = cu[cu.length - 1];
const [H, K, V] = [2, 16, 8];
const N = lens.length;
const TOL = 1e-2;
const DIMS = { T, H, K, V };

/** A random case rounded to bf16: the bf16 bits and their exact f32 values. */
function bf16Case() {
  const c = randomCase(41, T, H, K, V);
  const round = (a: Float32Array) => f32ArrayToBf16(a);
  const bits = { q: round(c.q), k: round(c.k), v: round(c.v), g: round(c.g), beta: round(c.beta) };
  const wide = {
    q: bf16ArrayToF32(bits.q),
    k: bf16ArrayToF32(bits.k),
    v: bf16ArrayToF32(bits.v),
    g: bf16ArrayToF32(bits.g),
    beta: bf16ArrayToF32(bits.beta),
  };
  const S0 = new Rng(43).normalArray(N * H * K * V, 0.5);
  const want = kdaRecurrentReference(wide.q, wide.k, wide.v, wide.g, wide.beta, { H, K, V, GK: K, cu }, K ** -0.5, S0);
  return { bits, wide, S0, want };
}

/** The packed sequences' bounds and initial states on the GPU, for kdaCore in `mode`. */
function gpuOpts(gpu: GpuContext, mode: 'chunk' | 'recurrent', S0: Float32Array) {
  return {
    mode,
    cuSeqlens: gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
    initialState: gpu.fromHost(S0, [N, H, K, V]),
  };
}

describe('kda: bf16 storage mode', () => {
  const c = bf16Case();
  afterEach(() => {
    kdaForwardTuning.intraTwoPass = undefined;
    kdaForwardTuning.bf16Intermediates = undefined;
  });

  it.skipIf(!hasGpu)('webgpu chunk: runs the bf16 kernels, o (bf16) and final state within 1e-2 of f64', async () => {
    const gpu = (await gpuContext())!;
    // The storage mode (W, U, the per-chunk states and V' in bf16); the mixed mode below.
    kdaForwardTuning.bf16Intermediates = 'bf16';
    const x = uploadBatched(gpu, c.bits, DIMS, 'bf16');
    const opts = gpuOpts(gpu, 'chunk', c.S0);
    // Which kernels ran: every pass of the GPU inference path in its bf16 variant (keys end in _bf16 or hold it).
    const r = await withDispatchKeys(gpu, async () => kdaCore(x.q, x.k, x.v, x.g, x.beta, opts));
    const { keys } = r;
    const bf16Keys = keys.filter((k) => k.includes('bf16'));
    expect(bf16Keys.length, `kernels: ${keys.join(', ')}`).toBeGreaterThanOrEqual(5);
    expect(r.o.dtype).toBe('bf16');
    expectClose(await r.o.toFloat32(), c.want.o, TOL, 'o');
    expectClose(await r.finalState!.toFloat32(), c.want.S, TOL, 'final state');

    // The same values through the f32 forward (bf16 widened): the bf16 mode differs from it by storage rounding only.
    const xf = uploadBatched(gpu, c.wide, DIMS);
    const f = kdaCore(xf.q, xf.k, xf.v, xf.g, xf.beta, opts);
    expect(keys.filter((k) => k.includes('_m32'))).toEqual([]);
    expectClose(await r.o.toFloat32(), await f.o.toFloat32(), TOL, 'o against the f32 forward');

    // Off the bf16 path (here: the one-pass intra) the inputs are widened, the f32 forward runs, o is rounded: the
    // f32 forward's o rounded to bf16, bit for bit, and its final state.
    kdaForwardTuning.intraTwoPass = false;
    const w = kdaCore(x.q, x.k, x.v, x.g, x.beta, opts);
    kdaForwardTuning.intraTwoPass = false;
    const f1 = kdaCore(xf.q, xf.k, xf.v, xf.g, xf.beta, opts);
    expect(Array.from(await w.o.read())).toEqual(Array.from(f32ArrayToBf16(await f1.o.toFloat32())));
    expect(Array.from(await w.finalState!.read())).toEqual(Array.from(await f1.finalState!.read()));
    for (const t of [...Object.values(x), ...Object.values(xf), r.o, r.finalState, f.o, f.finalState, w.o])
      t?.dispose();
    for (const t of [w.finalState, f1.o, f1.finalState, opts.cuSeqlens, opts.initialState]) t?.dispose();
  });

  it.skipIf(!hasGpu)(
    'webgpu chunk, mixed mode (bf16 inputs, f32 intermediates): the f32 forward on the widened inputs, o rounded, bit for bit',
    async () => {
      const gpu = (await gpuContext())!;
      kdaForwardTuning.bf16Intermediates = 'f32';
      const x = uploadBatched(gpu, c.bits, DIMS, 'bf16');
      const opts = gpuOpts(gpu, 'chunk', c.S0);
      const r = await withDispatchKeys(gpu, async () => kdaCore(x.q, x.k, x.v, x.g, x.beta, opts));
      const { keys } = r;
      // gc and intraGram read bf16 (their variants have no intermediates); W | U, state and output read bf16 inputs
      // with f32 intermediates.
      const all = keys.join(', ');
      for (const name of ['kda_chunk_gc', 'kda_chunk_intra_gram'])
        expect(
          keys.some((k) => k.startsWith(name) && k.endsWith('_bf16')),
          all,
        ).toBe(true);
      for (const name of ['kda_chunk_intra_wu', 'kda_chunk_state_tiled', 'kda_chunk_output_pipe'])
        expect(
          keys.some((k) => k.startsWith(name) && k.includes('_bf16_m32')),
          all,
        ).toBe(true);
      expect(r.o.dtype).toBe('bf16');
      expectClose(await r.o.toFloat32(), c.want.o, TOL, 'o');
      expectClose(await r.finalState!.toFloat32(), c.want.S, TOL, 'final state');
      // Every pass widens its bf16 loads exactly and computes as its f32 variant, with nothing rounded in between:
      // the f32 forward (the same kernels: the two-pass intra) on the widened values, o rounded at its store.
      kdaForwardTuning.intraTwoPass = true;
      const xf = uploadBatched(gpu, c.wide, DIMS);
      const f = kdaCore(xf.q, xf.k, xf.v, xf.g, xf.beta, opts);
      expect(Array.from(await r.o.read())).toEqual(Array.from(f32ArrayToBf16(await f.o.toFloat32())));
      expect(Array.from(await r.finalState!.read())).toEqual(Array.from(await f.finalState!.read()));
      for (const t of [...Object.values(x), ...Object.values(xf), r.o, r.finalState, f.o, f.finalState]) t?.dispose();
      for (const t of [opts.cuSeqlens, opts.initialState]) t.dispose();
    },
  );

  it.skipIf(!hasGpu)('webgpu recurrent with bf16 inputs: o in bf16 within 1e-2 of f64', async () => {
    const gpu = (await gpuContext())!;
    const x = uploadBatched(gpu, c.bits, DIMS, 'bf16');
    const opts = gpuOpts(gpu, 'recurrent', c.S0);
    const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, opts);
    expect(r.o.dtype).toBe('bf16');
    expectClose(await r.o.toFloat32(), c.want.o, TOL, 'o');
    expectClose(await r.finalState!.toFloat32(), c.want.S, 1e-4, 'final state');
    for (const t of [...Object.values(x), r.o, r.finalState, opts.cuSeqlens, opts.initialState]) t?.dispose();
  });

  it('cpu: bf16 in gives o in bf16 (the reference rounded); bf16 with saveForBackward, the backward or the slots op is refused', async () => {
    const x = uploadBatched(cpu, c.bits, DIMS, 'bf16');
    const opts = { mode: 'recurrent' as const, cuSeqlens: cpu.fromHost(Int32Array.from(cu), [N + 1], 'i32') };
    const S0 = cpu.fromHost(c.S0, [N, H, K, V]);
    const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, { ...opts, initialState: S0 });
    expect(r.o.dtype).toBe('bf16');
    expect(Array.from(await r.o.read())).toEqual(Array.from(f32ArrayToBf16(c.want.o)));
    expect(() => kdaCore(x.q, x.k, x.v, x.g, x.beta, { ...opts, saveForBackward: true })).toThrow(
      /bf16, which runs the forward only; saveForBackward needs them in f32/,
    );
    // The backward and the slots op read f32 only (their kernels have no bf16 variants).
    const dO = cpu.fromHost(new Float32Array(T * H * V), [1, T, H, V]);
    expect(() => kdaCoreBackward(x.q, x.k, x.v, x.g, x.beta, dO, opts)).toThrow(
      /kdaCoreBackward: q has dtype bf16, expected f32/,
    );
    const pool = cpu.fromHost(new Float32Array(N * H * K * V), [N, H, K, V]);
    const slots = cpu.fromHost(
      Int32Array.from({ length: N }, (_, i) => i),
      [N],
      'i32',
    );
    expect(() => kdaRecurrentSlots(pool, slots, x.q, x.k, x.v, x.g, x.beta)).toThrow(
      /kdaRecurrentSlots: q has dtype bf16, expected f32/,
    );
    const k32 = cpu.fromHost(c.wide.k, [1, T, H, K]);
    expect(() => kdaCore(x.q, k32, x.v, x.g, x.beta, opts)).toThrow(/k \(like q\) has dtype f32, expected bf16/);
  });
});

describe('bench kda --dtype bf16 (CLI)', () => {
  it.skipIf(!hasGpu)(
    'times the bf16 forward with its check, each T on a device of its own; --same-device keeps one',
    async () => {
      const { cli } = await import('./helpers.js');
      const base = ['bench', 'kda', '--json', '--T', '7,70', '--batch', '1', '--skip-backward', '--reps', '1'];
      const small = ['--trials', '1', '--chunk-heads', '2', '--decode-heads', '2', '--d', '16', '--dtype', 'bf16'];
      const r = await cli(...base, ...small, '--check');
      expect(r.code, r.stderr).toBe(0);
      const rows = JSON.parse(r.stdout).chunked as Record<string, unknown>[];
      expect(rows.map((x) => [x.T, x.dtype, x.freshDevice])).toEqual([
        [7, 'bf16', true],
        [70, 'bf16', true],
      ]);
      for (const x of rows) {
        const c = x.check as { vsF32: { oRelDiff: number; stateRelDiff: number } };
        expect(c.vsF32.oRelDiff).toBeLessThan(1e-2);
        expect(c.vsF32.stateRelDiff).toBeLessThan(1e-2);
      }
      const one = await cli(...base, ...small, '--same-device');
      expect(one.code, one.stderr).toBe(0);
      expect((JSON.parse(one.stdout).chunked as Record<string, unknown>[]).map((x) => x.freshDevice)).toEqual([
        undefined,
        undefined,
      ]);
    },
    120_000,
  );
});
