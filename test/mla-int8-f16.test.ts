/**
 * The int8 cache's decode on f16 tensor cores (int8Kernel 'f16'; int8F16Plan.ts, decodeInt8F16.wgsl.ts):
 *  - the scheme (int8F16Reference.ts) against f64 attention over the rows the int8 codes stand for, with and without
 *    the lazy max's rescales;
 *  - the kernel's fragments walked in plain TS (int8F16Emulate.ts) against the scheme, on awkward lengths, head
 *    counts (padded groups, two groups) and chunk lengths;
 *  - the WGSL compiling on lavapipe through the subgroup-matrix stand-ins, its workgroup arrays 16-byte multiples;
 *  - the query kernel (no subgroup matrices) on lavapipe against int8F16Query.
 * The kernel itself runs only where f16 subgroup matrices exist (the H200: bench mla --int8-kernels f16 checks it
 * against the int8 reference and this scheme).
 */
import type { GpuContext } from '../src/gpu/context.js';
import { describe, expect, it } from 'vitest';
import { int8F16QueryWgsl, mlaInt8F16Wgsl } from '../src/kernels/mla/decodeInt8F16.wgsl.js';
import { MLA_INT8_F16_BY_DEFAULT, mergeChunks, mlaInt8KernelFor } from '../src/kernels/mla/index.js';
import { mlaDecodeInt8F16Emulate } from '../src/kernels/mla/int8F16Emulate.js';
import { mlaDecodeInt8F16WideEmulate } from '../src/kernels/mla/int8F16WideEmulate.js';
import { mlaInt8F16WideWgsl } from '../src/kernels/mla/decodeInt8F16Wide.wgsl.js';
import { defaultF16Chunks, F16_STAGES, mlaInt8F16Unsupported, planMlaInt8F16 } from '../src/kernels/mla/int8F16Plan.js';
import { type F16SchemeStats, int8F16Query, mlaDecodeInt8F16Reference } from '../src/kernels/mla/int8F16Reference.js';
import { int8PoolView, mlaDecodeInt8Reference } from '../src/kernels/mla/int8Reference.js';
import { dequantizeRowInt8 } from '../src/kernels/mla/int8Reference.js';
import { int8RowLayout } from '../src/kernels/mla/int8Layout.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { Params } from '../src/gpu/params.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, gpuContext, hasGpu, relErr } from './helpers.js';
import { makePool } from './mla-int8-cases.js';

const PAGE = 16;

/** A problem: q [B, H, R] (scaled up so the softmax is not flat), an int8 pool of normal rows. */
function problem(seed: number, lengths: number[], H: number, R: number, Rv: number, qStd = 1) {
  const rng = new Rng(seed);
  const len = Int32Array.from(lengths);
  const B = len.length;
  const { pool, pageTable, maxPages } = makePool(rng, len, R, Rv, PAGE);
  const q = rng.normalArray(B * H * R, qStd);
  const d = { B, H, R, Rv, pageSize: PAGE, maxPages, scale: 1 / Math.sqrt(192) };
  return { q, pool, pageTable, lengths: len, d };
}

/** f64 attention over the dequantised rows (the values the int8 cache stands for). */
function exactAttention(x: ReturnType<typeof problem>): Float32Array {
  const { B, H, R, Rv, scale } = x.d;
  const view = int8PoolView(x.pool, x.pageTable, x.d);
  const out = new Float32Array(B * H * Rv);
  for (let b = 0; b < B; b++) {
    const T = x.lengths[b];
    const L = int8RowLayout(R, Rv);
    const rows = Array.from({ length: T }, (_, t) => {
      const o = view.rowOf(b, t);
      return dequantizeRowInt8(x.pool.subarray(o, o + L.RW), R, Rv);
    });
    for (let h = 0; h < H; h++) {
      const q = x.q.subarray((b * H + h) * R, (b * H + h + 1) * R);
      const s = rows.map((k) => {
        let v = 0;
        for (let c = 0; c < R; c++) v += q[c] * k[c];
        return v * scale;
      });
      const m = Math.max(...s);
      const p = s.map((v) => Math.exp(v - m));
      const l = p.reduce((a, v) => a + v, 0);
      for (let c = 0; c < Rv; c++) {
        let v = 0;
        for (let t = 0; t < T; t++) v += p[t] * rows[t][c];
        out[(b * H + h) * Rv + c] = v / l;
      }
    }
  }
  return out;
}

describe('int8 MLA decode on f16 tensor cores: the scheme', () => {
  it('is within 3e-3 of f64 attention on awkward lengths, with and without rescales', () => {
    for (const T of AWKWARD) {
      const x = problem(T, [T], 32, 192, 128, 3);
      const exact = exactAttention(x);
      for (const [tau, chunkLen] of [
        [14, 256],
        [0, 64],
        [14, 16],
      ]) {
        const st: F16SchemeStats = { rescales: 0, maxP: 0 };
        const got = mlaDecodeInt8F16Reference(x.q, x.pool, x.pageTable, x.lengths, x.d, { chunkLen, tau, stats: st });
        const e = relErr(got, exact);
        expect(e, `T=${T} tau=${tau} chunk=${chunkLen}`).toBeLessThan(3e-3);
        expect(st.maxP).toBeLessThanOrEqual(2 ** tau);
        if (tau === 0 && T >= 1000) expect(st.rescales).toBeGreaterThan(0);
      }
      // The int8 kernels' scheme on the same words is as far from f64 attention (its q and p are int8).
      const i8 = mlaDecodeInt8Reference(x.q, x.pool, x.pageTable, x.lengths, x.d);
      expect(relErr(i8, exact)).toBeLessThan(3e-2);
    }
  });

  it('a large query (sharp softmax) still matches f64 attention', () => {
    const x = problem(5, [1000, 65], 32, 192, 128, 12);
    const got = mlaDecodeInt8F16Reference(x.q, x.pool, x.pageTable, x.lengths, x.d, { chunkLen: 128 });
    expect(relErr(got, exactAttention(x))).toBeLessThan(5e-3);
  });
});

describe('int8 MLA decode on f16 tensor cores: the kernel fragments (emulation) against the scheme', () => {
  const cases: [string, number[], number, number, number, number, number][] = [
    // name, lengths, H, R, Rv, chunkLen, tau
    ['awkward 1', [1], 32, 192, 128, 64, 14],
    ['awkward 7, 63', [7, 63], 32, 192, 128, 32, 14],
    ['65, two chunks', [65], 32, 192, 128, 48, 14],
    ['1000, rescales (tau 0)', [1000], 32, 192, 128, 256, 0],
    ['20 heads (padded group)', [65, 7], 20, 192, 128, 32, 14],
    ['40 heads (two groups), Rv 256', [63], 40, 320, 256, 32, 0],
  ];
  // rows and words stage the same u32 items (only which thread takes which differs: the WGSL test below), vec4 16
  // codes an item; qFold loads the query's fragments from its rows staged in kv (stride KS).
  for (const [name, lens, H, R, Rv, chunkLen, tau] of cases)
    for (const [stage, qFold] of [
      ['rows', false],
      ['vec4', false],
      ['rows', true],
    ] as const)
      it(`${name}, staged as ${stage}${qFold ? ', query folded' : ''}`, () => {
        const x = problem(lens[0] + H, lens, H, R, Rv, 3);
        const pl = planMlaInt8F16({ H, R, Rv, tau, stage, qFold });
        const emu = mlaDecodeInt8F16Emulate(pl, x.q, x.pool, x.pageTable, x.lengths, x.d, chunkLen);
        const ref = mlaDecodeInt8F16Reference(x.q, x.pool, x.pageTable, x.lengths, x.d, {
          chunkLen,
          tau,
          convert: pl.convert,
        });
        expect(relErr(emu.out, ref)).toBeLessThan(2e-5);
        expect(emu.out.every(Number.isFinite)).toBe(true);
      });
});

describe('int8 MLA decode on f16 tensor cores, 512 threads (wide): the fragments (emulation) against the scheme', () => {
  // Rv a multiple of 256 (each of 16 subgroups takes Rv / 256 value column tiles); R 320: 80 words a row, the last
  // word set partial (lanes 0-15).
  const cases: [string, number[], number, number, number, number, number, boolean][] = [
    // name, lengths, H, R, Rv, chunkLen, tau, qFold
    ['awkward 1', [1], 32, 320, 256, 64, 14, false],
    ['awkward 7, 63', [7, 63], 32, 320, 256, 32, 14, true],
    ['65, two chunks', [65], 32, 320, 256, 48, 14, false],
    ['1000, rescales (tau 0)', [1000], 32, 320, 256, 256, 0, true],
    ['20 heads (padded group), 48B row', [65, 7], 20, 576, 512, 32, 14, false],
    ['40 heads (two groups)', [63], 40, 320, 256, 32, 0, true],
  ];
  for (const [name, lens, H, R, Rv, chunkLen, tau, qFold] of cases)
    it(`${name}${qFold ? ', query folded' : ''}`, () => {
      const x = problem(lens[0] + H, lens, H, R, Rv, 3);
      const pl = planMlaInt8F16({ H, R, Rv, tau, wide: true, qFold });
      const emu = mlaDecodeInt8F16WideEmulate(pl, x.q, x.pool, x.pageTable, x.lengths, x.d, chunkLen);
      const ref = mlaDecodeInt8F16Reference(x.q, x.pool, x.pageTable, x.lengths, x.d, {
        chunkLen,
        tau,
        convert: pl.convert,
      });
      expect(relErr(emu.out, ref)).toBeLessThan(2e-5);
      expect(emu.out.every(Number.isFinite)).toBe(true);
    });
});

describe('int8 MLA decode on f16 tensor cores: plan and WGSL', () => {
  it('wide: 512 threads, Rv a multiple of 256, every word of a row staged once, workgroup arrays 16-byte multiples', () => {
    const pl = planMlaInt8F16({ H: 32, R: 576, Rv: 512, wide: true });
    expect(pl.WG).toBe(512);
    expect(pl.CPW).toBe(2);
    expect(pl.sharedBytes).toBe(47248);
    expect(() => planMlaInt8F16({ H: 32, R: 192, Rv: 128, wide: true })).toThrow(/multiple of 256/);
    expect(() => planMlaInt8F16({ H: 32, R: 576, Rv: 512, wide: true, qPerBlock: true })).toThrow(/wide/);
    const code = mlaInt8F16WideWgsl(pl);
    expect(code).toContain('@workgroup_size(512)');
    // The fetch's word offsets colW + 32 n (n < 5; the last for lanes 0-15 only) cover the 144 words of a row once.
    const offs = [...code.matchAll(/pfa(\d+) = pool\[r \+ colW \+ (\d+)u\]/g)].map((m) => +m[2]).slice(0, 5);
    expect(offs).toEqual([0, 32, 64, 96, 128]);
    expect(code).toContain('if (colW + 128u < 144u) { pfa4 = pool[r + colW + 128u]; }');
    const seen = new Uint8Array(144);
    for (let colW = 0; colW < 32; colW++) for (const o of offs) if (colW + o < 144) seen[colW + o]++;
    expect([...seen].every((v) => v === 1)).toBe(true);
    // Sets 0-3 are c_kv words (scale L), set 4 the rope's (scale R).
    expect(code).toMatch(/vec4<u32>\(pfa3\)[^;]*\* psLa\)/);
    expect(code).toMatch(/vec4<u32>\(pfa4\)[^;]*\* psRa\)/);
    const bytes: Record<string, number> = { f16: 2, f32: 4, u32: 4, i32: 4 };
    for (const [, , t, n] of code.matchAll(/var<workgroup> (\w+): array<(\w+), (\d+)>/g))
      expect((bytes[t] * Number(n)) % 16).toBe(0);
    expect(mlaInt8F16WideWgsl(planMlaInt8F16({ H: 32, R: 576, Rv: 512, wide: true, swizzle: true }))).toContain(
      'let swz = select(0u, 2u, colW >= 16u);',
    );
  });

  it('fits 48 KiB at the 48B shapes, refuses shapes it does not cover', () => {
    const p = planMlaInt8F16({ H: 32, R: 576, Rv: 512 });
    expect(p.sharedBytes).toBe(47248);
    expect(p.KPQ).toBe(9);
    expect(p.CPS).toBe(4);
    expect(p.slots).toBe(9);
    expect(planMlaInt8F16({ H: 32, R: 576, Rv: 512, stage: 'vec4' }).slots).toBe(3);
    expect(mlaInt8F16Unsupported(576, 512)).toBeUndefined();
    expect(mlaInt8F16Unsupported(560, 512)).toMatch(/multiple of 64/);
    expect(mlaInt8F16Unsupported(192, 96)).toMatch(/multiple of 128/);
    expect(() => planMlaInt8F16({ H: 32, R: 576, Rv: 512, tau: 16 })).toThrow(/tau/);
    expect(defaultF16Chunks(1 << 20, 1, 1)).toBe(132);
    expect(p.ahead).toBe(2);
    expect(p.mergeLoads).toBe(4);
    expect(planMlaInt8F16({ H: 32, R: 576, Rv: 512, prefetch: false }).ahead).toBe(1);
    expect(defaultF16Chunks(1000, 1, 1)).toBe(32);
    expect(defaultF16Chunks(4096, 1, 1)).toBe(128);
    expect(defaultF16Chunks(1 << 20, 1, 2)).toBe(66);
  });

  it('rows staging: thread lid takes row lid / 16 and words lid % 16 + 16 n, every word of the block once', () => {
    for (const [R, Rv] of [
      [576, 512],
      [192, 128],
    ]) {
      // cvt's staging lines (convert half, the default since the fifteenth session, stages the same words).
      const pl = planMlaInt8F16({ H: 32, R, Rv, convert: 'cvt' });
      expect(pl.stage).toBe('rows');
      const code = mlaInt8F16Wgsl(pl);
      expect(code).toContain('let rowT = lid >> 4u; let colW = lid & 15u;');
      // The fetch's word offsets (colW + 16 n) and the staging's f16 offsets (base + 64 n + i) of set a.
      const words = [...code.matchAll(/pfa(\d+) = pool\[r \+ colW \+ (\d+)u\]/g)].map((m) => [+m[1], +m[2]]);
      const n = R / 64;
      expect(words.slice(0, n)).toEqual(Array.from({ length: n }, (_, k) => [k, 16 * k]));
      const seen = new Uint8Array(pl.TB * (R / 4));
      for (let lid = 0; lid < pl.WG; lid++)
        for (const [, off] of words.slice(0, n)) seen[(lid >> 4) * (R / 4) + (lid & 15) + off]++;
      expect([...seen].every((x) => x === 1)).toBe(true);
      // Each slot scaled by its own part (slots below Rv / 64 by the c_kv scale).
      for (let k = 0; k < n; k++)
        expect(code).toContain(
          `vec4<u32>(pfa${k}) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u)) * ${k < Rv / 64 ? 'psLa' : 'psRa'})`,
        );
    }
  });

  it('swizzle: odd rows store channels 2, 3, 0, 1 of each word, every channel of the row once', () => {
    const pl = planMlaInt8F16({ H: 32, R: 576, Rv: 512, swizzle: true });
    const code = mlaInt8F16Wgsl(pl);
    expect(code).toContain('let swz = (rowT & 1u) << 1u;');
    expect(code).toContain('let c2 = select(c, c.zwxy, swz != 0u);');
    // Store k of word n writes channel (64 n + k) ^ swz the value c2[k] = c[k ^ swz]: each value at its own channel.
    expect(code).toMatch(/kv\[base \+ \(64u \^ swz\)\] = c2\.x; kv\[base \+ \(65u \^ swz\)\] = c2\.y;/);
    expect(() => planMlaInt8F16({ H: 32, R: 576, Rv: 512, swizzle: true, stage: 'words' })).toThrow(/rows/);
    expect(() => planMlaInt8F16({ H: 32, R: 576, Rv: 512, qFold: true, qPerBlock: true })).toThrow(/qPerBlock/);
  });

  it('every workgroup array is a multiple of 16 bytes (unaligned fragment loads read rounded down)', () => {
    const code = mlaInt8F16Wgsl(planMlaInt8F16({ H: 32, R: 576, Rv: 512 }));
    const bytes: Record<string, number> = { f16: 2, f32: 4, u32: 4, i32: 4 };
    const decls = [...code.matchAll(/var<workgroup> (\w+): array<(\w+), (\d+)>/g)];
    expect(decls.length).toBe(5);
    for (const [, , t, n] of decls) expect((bytes[t] * Number(n)) % 16).toBe(0);
  });

  it('is refused where the device has no f16 subgroup matrices', async () => {
    const gpu = await gpuContext();
    if (!gpu || gpu.features.subgroupMatrixF16) return;
    expect(() => mlaInt8KernelFor(gpu, { H: 32, R: 576, Rv: 512, int8Kernel: 'f16' })).toThrow(/f16 kernel/);
  });

  it('is the int8 kernel by default where the device offers f16 subgroup matrices of 32 lanes, else not', () => {
    // The device facts mlaInt8KernelFor reads (an H200 under --unsafe-apis --f16, and without --f16).
    const device = (f16: boolean, lanes: number) =>
      ({
        features: { subgroupMatrixF16: f16, subgroups: true },
        adapterInfo: { subgroupMinSize: lanes, subgroupMaxSize: lanes },
      }) as unknown as GpuContext;
    const d48 = { H: 32, R: 576, Rv: 512 };
    expect(MLA_INT8_F16_BY_DEFAULT).toBe(true);
    expect(mlaInt8KernelFor(device(true, 32), d48)).toBe('f16');
    // A caller's choice wins over the default; shapes the kernel does not cover fall back (no error unasked).
    expect(mlaInt8KernelFor(device(true, 32), { ...d48, int8Kernel: 'dp4a' })).toBe('dp4a');
    expect(mlaInt8KernelFor(device(true, 32), { H: 4, R: 72, Rv: 64 })).toBe('dp4a');
    expect(() => mlaInt8KernelFor(device(true, 32), { H: 4, R: 72, Rv: 64, int8Kernel: 'f16' })).toThrow(
      /multiple of 128/,
    );
    // No f16 subgroup matrices, or subgroups of 16: the int8 kernels decide (dp4a where none was prepared).
    expect(mlaInt8KernelFor(device(false, 32), d48)).toBe('dp4a');
    expect(mlaInt8KernelFor(device(true, 16), d48)).toBe('dp4a');
    expect(() => mlaInt8KernelFor(device(true, 16), { ...d48, int8Kernel: 'f16' })).toThrow(/subgroups of 32/);
  });

  it.skipIf(!hasGpu)(
    'compiles with stand-ins for the subgroup matrices (48B shapes, small ones, each probe)',
    async () => {
      const gpu = await gpuContext();
      if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
      const plans = [
        planMlaInt8F16({ H: 32, R: 576, Rv: 512 }),
        planMlaInt8F16({ H: 20, R: 192, Rv: 128, tau: 0 }),
        ...F16_STAGES.map((s) => planMlaInt8F16({ H: 32, R: 576, Rv: 512, skip: [s] })),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, stage: 'vec4', skip: ['stage'] }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, stage: 'vec4', prefetch: false, qPerBlock: true }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, prefetch: false, qPerBlock: true }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, stage: 'words' }),
        planMlaInt8F16({ H: 20, R: 192, Rv: 128, stage: 'rows', prefetch: false }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, stage: 'rows', skip: ['stage'] }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, ahead: 1 }),
        planMlaInt8F16({ H: 20, R: 192, Rv: 128, stage: 'vec4', ahead: 1, tau: 3 }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, swizzle: true }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, qFold: true }),
        planMlaInt8F16({ H: 20, R: 192, Rv: 128, swizzle: true, qFold: true, ahead: 1 }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, wide: true }),
        planMlaInt8F16({ H: 32, R: 576, Rv: 512, wide: true, swizzle: true, qFold: true }),
        planMlaInt8F16({ H: 20, R: 320, Rv: 256, wide: true, ahead: 1, tau: 0 }),
        ...F16_STAGES.map((s) => planMlaInt8F16({ H: 32, R: 576, Rv: 512, wide: true, skip: [s] })),
      ];
      for (const pl of plans) {
        const code = sgmStubWgsl(pl.wide ? mlaInt8F16WideWgsl(pl) : mlaInt8F16Wgsl(pl));
        expect(code).not.toMatch(/subgroupMatrix|subgroup_matrix/);
        const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      }
    },
  );

  it.skipIf(!hasGpu)('the merge with its loads four chunks at a time is bit-identical to one at a time', async () => {
    const gpu = await gpuContext();
    if (!gpu) return;
    // Partials [B, chunks, H, Rv + 2]: m in log2 units (some chunks empty: -3e38, l = o = 0), l > 0, o any.
    for (const chunks of [1, 7, 37, 132]) {
      const [B, H, Rv] = [2, 3, 128];
      const rng = new Rng(chunks);
      const x = new Float32Array(B * chunks * H * (Rv + 2));
      for (let i = 0; i < B * chunks * H; i++) {
        const at = i * (Rv + 2);
        const empty = chunks > 1 && i % 5 === 3;
        x[at] = empty ? -3e38 : 4 * rng.normal();
        x[at + 1] = empty ? 0 : 1 + Math.abs(rng.normal());
        for (let d = 0; d < Rv; d++) x[at + 2 + d] = empty ? 0 : rng.normal();
      }
      const run = async (loads: number) => {
        const out = mergeChunks(gpu, gpu.fromHost(x, [B, chunks, H, Rv + 2]), Rv, loads);
        const got = (await out.read()) as Float32Array;
        out.dispose();
        return got;
      };
      const one = await run(1);
      const four = await run(4);
      expect(new Uint32Array(four.buffer)).toEqual(new Uint32Array(one.buffer));
      // And against the merge's formula in f64.
      const want = new Float32Array(B * H * Rv);
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++) {
          const at = (c: number) => ((b * chunks + c) * H + h) * (Rv + 2);
          let M = -3e38;
          for (let c = 0; c < chunks; c++) M = Math.max(M, x[at(c)]);
          let L = 0;
          for (let c = 0; c < chunks; c++) L += x[at(c) + 1] * 2 ** (x[at(c)] - M);
          for (let d = 0; d < Rv; d++) {
            let o = 0;
            for (let c = 0; c < chunks; c++) o += x[at(c) + 2 + d] * 2 ** (x[at(c)] - M);
            want[(b * H + h) * Rv + d] = o / L;
          }
        }
      expect(relErr(one, want)).toBeLessThan(1e-5);
    }
  });

  it.skipIf(!hasGpu)('the query kernel writes f16(q scale log2 e), heads past H zero', async () => {
    const gpu = await gpuContext();
    if (!gpu) return;
    const [B, H, HP, R] = [2, 5, 32, 192];
    const q = new Rng(3).normalArray(B * H * R, 4);
    const scale = 1 / Math.sqrt(192);
    const qt = gpu.fromHost(q, [B, H, R]);
    const qh = gpu.empty([B, HP, R / 2], 'i32');
    gpu.dispatch({
      kernel: { name: 'f16q_test', key: `f16q_test_${H}_${HP}_${R}`, code: () => int8F16QueryWgsl(H, HP, R) },
      tensors: [qt, qh],
      params: new Params().f32(scale * Math.LOG2E).u32(0, 0, 0),
      workgroups: [HP, B],
    });
    const words = new Uint32Array(((await qh.read()) as Int32Array).buffer);
    const want = int8F16Query(q, { B, H, R, scale });
    const half = (u: number) => {
      const s = u & 0x8000 ? -1 : 1;
      const e = (u >> 10) & 31;
      const m = u & 1023;
      return s * (e ? 2 ** (e - 15) * (1 + m / 1024) : 2 ** -14 * (m / 1024));
    };
    let bad = 0;
    for (let b = 0; b < B; b++)
      for (let h = 0; h < HP; h++)
        for (let c = 0; c < R; c++) {
          const w = words[((b * HP + h) * R + c) >> 1];
          const got = half(c & 1 ? w >>> 16 : w & 0xffff);
          const ref = h < H ? want[(b * H + h) * R + c] : 0;
          if (got !== ref) bad++;
        }
    expect(bad).toBe(0);
    qt.dispose();
    qh.dispose();
  });
});
