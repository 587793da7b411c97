/**
 * The f16 MLA latent cache (kernels/mla/f16Layout.ts, `cacheDtype: 'f16'`):
 *  - the binary16 bits on the host against f16Round, and the cache write (kernel on lavapipe, cpu reference) bit for
 *    bit against packF16Rows, rows on awkward positions and page boundaries;
 *  - the f16 tensor-core kernel's f16 rows staging (int8F16Plan.ts cache 'f16'): its fragments walked in plain TS
 *    (int8F16Emulate.ts) against this scheme's reference (int8F16Reference.ts, cache 'f16') on awkward lengths and
 *    page boundaries, and the reference against f32 attention over the f16 values; the staging's WGSL (fetch and
 *    stage lines the kernel emits, plain and f16Rotate) run on lavapipe for a block of rows through a page table
 *    against the layout's placement; the whole kernel compiling with the subgroup-matrix stand-ins;
 *  - mlaDecode over an f16 pool on lavapipe (the tiled and split kernels reading its words by unpack2x16float: no
 *    f16 subgroup matrices here) against f32 attention over the f16 values, and on cpu;
 *  - the tiny model with an f16 cache against the f32 cache (cpu and WebGPU).
 * The tensor-core kernel itself runs only where f16 subgroup matrices exist (bench mla --cache-dtype f16 on the H200
 * checks it against this scheme's reference and f32 attention).
 */
import './lanes-default.js';
import { describe, expect, it } from 'vitest';
import {
  f16RowsFetchWgsl,
  f16RowsPreludeWgsl,
  f16RowsStageWgsl,
  mlaInt8F16Wgsl,
} from '../src/kernels/mla/decodeInt8F16.wgsl.js';
import {
  cacheWriteF16Reference,
  f16BitsToF32,
  f32ToF16Bits,
  i32PoolKind,
  packF16Rows,
  unpackF16Rows,
} from '../src/kernels/mla/f16Layout.js';
import { cacheWrite, mlaDecode } from '../src/kernels/mla/index.js';
import { mlaInt8F16Key, planMlaInt8F16 } from '../src/kernels/mla/int8F16Plan.js';
import { mlaDecodeReference } from '../src/kernels/mla/reference.js';
import { f16Round } from '../src/kernels/f16mma.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { parseF16Options } from '../src/bench/mla.js';
import { HybridCache, poolBytes } from '../src/model/hybridCache.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import type { Device } from '../src/tensor/tensor.js';
import { Params } from '../src/gpu/params.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu, relErr } from './helpers.js';
import { compareLatentCache, expectEmulationMatchesScheme, mlaOnlyCacheSpec } from './mla-latent-cache.js';

const PAGE = 16;

/** A paged f16 pool of normal rows (std `std`), pages shuffled; q scaled so the softmax is not flat. */
function problem(seed: number, lengths: number[], H: number, R: number, Rv: number, std = 1) {
  const rng = new Rng(seed);
  const len = Int32Array.from(lengths);
  const B = len.length;
  const maxPages = Math.max(1, ...lengths.map((T) => Math.ceil(T / PAGE)));
  const nPages = B * maxPages;
  const order = Array.from({ length: nPages }, (_, i) => i).sort(() => rng.next() - 0.5);
  const pageTable = Int32Array.from(order);
  const pool = new Int32Array(nPages * PAGE * (R / 2));
  const rows: Float32Array[] = [];
  for (let b = 0; b < B; b++) {
    const T = len[b];
    const v = Float32Array.from(rng.normalArray(T * R, std));
    rows.push(v);
    cacheWriteF16Reference(
      pool,
      v,
      new Int32Array(T).fill(b),
      Int32Array.from({ length: T }, (_, t) => t),
      pageTable,
      { R, pageSize: PAGE, maxPages },
    );
  }
  const q = Float32Array.from(rng.normalArray(B * H * R, 3));
  const d = { B, H, R, Rv, pageSize: PAGE, maxPages, scale: 1 / Math.sqrt(192) };
  return { q, pool, pageTable, lengths: len, d, rows };
}

describe('f16 latent cache: layout and cache write', () => {
  it('f32ToF16Bits / f16BitsToF32 round to nearest f16 (normals, subnormals, ties, overflow)', () => {
    const rng = new Rng(16);
    const xs = [0, -0, 1, -1, 65504, 65519, 65520, -70000, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 + 2 ** -11];
    for (let i = 0; i < 2000; i++) xs.push(rng.normal() * 10 ** rng.uniform(-8, 5));
    for (const x of xs) {
      const r = f16Round(Math.fround(x));
      expect(Object.is(f16BitsToF32(f32ToF16Bits(x)), r), `${x}`).toBe(true);
    }
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(1);
    const w = packF16Rows([1, -2, 0.5, 3], 4);
    expect(Array.from(w, (x) => x >>> 0)).toEqual([0xc0003c00, 0x42003800]);
    expect(Array.from(unpackF16Rows(w, 4))).toEqual([1, -2, 0.5, 3]);
  });

  it('tells an i32 pool apart by the stated dtype, else by width (int8 where they coincide)', () => {
    expect(i32PoolKind(288, 576, 512)).toBe('f16');
    expect(i32PoolKind(148, 576, 512)).toBe('int8');
    // R 24, Rv 16 (the tiny model): both 12 words a row.
    expect(i32PoolKind(12, 24, 16)).toBe('int8');
    expect(i32PoolKind(12, 24, 16, 'f16')).toBe('f16');
    expect(() => i32PoolKind(148, 576, 512, 'f16')).toThrow(/R \/ 2 = 288/);
    expect(i32PoolKind(77, 576, 512)).toBeUndefined();
  });

  for (const dev of ['cpu', 'gpu'] as const)
    it.skipIf(dev === 'gpu' && !hasGpu)(
      `cacheWrite on ${dev}: bit for bit the rounded rows, at awkward positions`,
      async () => {
        const device: Device = dev === 'cpu' ? cpu : (await gpuContext())!;
        const rng = new Rng(7);
        const R = 24;
        const Rv = 16;
        const maxPages = 5;
        const table = Int32Array.from([3, 0, 4, 1, 2, 9, 8, 7, 6, 5]);
        const pos = Int32Array.from([0, 15, 16, 63, 64, 65, 79, 1, 31, 32]);
        const seq = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1, 1, 0]);
        // values over much of f16's range: subnormals (1e-6), normals up to ~1e3
        const v = Float32Array.from(rng.normalArray(pos.length * R, 1), (x, i) => x * 10 ** ((i % 10) - 6));
        const want = new Int32Array(10 * PAGE * (R / 2));
        cacheWriteF16Reference(want, v, seq, pos, table, { R, pageSize: PAGE, maxPages });
        const pool = device.zeros([10, PAGE, R / 2], 'i32');
        cacheWrite(
          pool,
          device.fromHost(v, [pos.length, R]),
          device.fromHost(seq, [pos.length], 'i32'),
          device.fromHost(pos, [pos.length], 'i32'),
          device.fromHost(table, [2, maxPages], 'i32'),
          { Rv, cacheDtype: 'f16' },
        );
        const got = (await pool.read()) as Int32Array;
        expect(Array.from(got)).toEqual(Array.from(want));
        // The rows read back are the values rounded to f16.
        const back = unpackF16Rows(want, R);
        const i = 3;
        const page = table[seq[i] * maxPages + Math.floor(pos[i] / PAGE)];
        const at = (page * PAGE + (pos[i] % PAGE)) * R;
        for (let c = 0; c < R; c++) expect(back[at + c]).toBe(f16Round(v[i * R + c]));
      },
    );
});

describe('f16 latent cache: HybridCache pools and sizes', () => {
  it("pools are i32 [pages, pageSize, R / 2], a bf16 pool's bytes; odd R refused naming R", () => {
    const spec = mlaOnlyCacheSpec({ latentRank: 512, pageSize: 16, numPages: 6, maxLength: 48 });
    const c = new HybridCache(cpu, { ...spec, cacheDtype: 'f16' });
    expect(c.mlaPools[0][0].shape).toEqual([6, 16, 288]);
    expect(c.mlaPools[1][0].dtype).toBe('i32');
    const bf = new HybridCache(cpu, { ...spec, cacheDtype: 'bf16' });
    expect(c.memory().mlaPoolBytes).toBe(bf.memory().mlaPoolBytes);
    expect(poolBytes({ cacheDtype: 'f16', latentDim: 576 }, 10)).toBe(11520);
    expect(() => new HybridCache(cpu, { ...spec, latentDim: 575, cacheDtype: 'f16' })).toThrow(/R=575/);
    for (const x of [c, bf]) x.dispose();
  });
});

describe('f16 cache on the f16 tensor-core kernel: plan, emulation and reference', () => {
  it('plans the f16 staging (rows, vec4 of 8 f16) and refuses what does not apply', () => {
    const s = { H: 32, R: 576, Rv: 512 };
    const p = planMlaInt8F16({ ...s, cache: 'f16' });
    expect(p.RW).toBe(288);
    expect(p.rowItems).toBe(72);
    expect(p.sharedBytes).toBe(47248);
    // The f16 cache's defaults (MLA_F16_CACHE_DEFAULTS): f16Rotate, four blocks ahead.
    expect([p.f16Rotate, p.ahead]).toEqual([true, 4]);
    expect(mlaInt8F16Key(p)).toMatch(/^mla_decode_f16c_rot_f16_.*_a4/);
    expect(mlaInt8F16Key(planMlaInt8F16({ ...s, cache: 'f16', f16Rotate: false, ahead: 2 }))).toMatch(
      /^mla_decode_f16c_f16_.*_a2/,
    );
    // The int8 cache keeps its defaults.
    expect([planMlaInt8F16(s).f16Rotate, planMlaInt8F16(s).ahead]).toEqual([false, 2]);
    expect(mlaInt8F16Key(planMlaInt8F16(s))).toMatch(/^mla_decode_int8_f16_/);
    for (const o of [
      { stage: 'words' as const },
      { wide: true },
      { swizzle: true },
      { rowSwap: true },
      { pageAhead: true },
      { convert: 'cvt' as const },
    ])
      expect(() => planMlaInt8F16({ ...s, ...o, cache: 'f16' })).toThrow(/f16 cache/);
    expect(() => planMlaInt8F16({ ...s, cache: 'f16', skip: ['stores'] })).toThrow(/stores/);
    expect(() => planMlaInt8F16({ ...s, f16Rotate: true })).toThrow(/f16Rotate/);
    expect(parseF16Options('f16Rotate,ahead=4')).toEqual({ f16Rotate: true, ahead: 4 });
    expect(parseF16Options('f16Rotate=false')).toEqual({ f16Rotate: false });
  });

  const cases: [string, number[], number, number, number, number, number][] = [
    // name, lengths, H, R, Rv, chunkLen, tau
    ['awkward 1', [1], 32, 192, 128, 64, 14],
    ['awkward 7, 63', [7, 63], 32, 192, 128, 32, 14],
    ['65, two chunks', [65], 32, 192, 128, 48, 14],
    ['page boundaries 16, 32, 33', [16, 32, 33], 20, 192, 128, 32, 14],
    ['1000, rescales (tau 0)', [1000], 32, 192, 128, 256, 0],
    ['40 heads (two groups), R 320 (a partial vec4 slot)', [63], 40, 320, 256, 32, 0],
  ];
  for (const [name, lens, H, R, Rv, chunkLen, tau] of cases)
    for (const qFold of [false, true])
      it(`${name}${qFold ? ', query folded' : ''}: emulation = scheme, scheme ~ f32 attention over the f16 rows`, () => {
        const x = problem(lens[0] + H, lens, H, R, Rv);
        const pl = planMlaInt8F16({ H, R, Rv, tau, qFold, cache: 'f16' });
        const ref = expectEmulationMatchesScheme(pl, x, chunkLen, { tau, cache: 'f16' });
        // f32 attention over the same f16 values: the scheme differs by q and p rounded to f16.
        const exact = mlaDecodeReference(x.q, unpackF16Rows(x.pool, R), x.pageTable, x.lengths, x.d);
        expect(relErr(ref, exact)).toBeLessThan(3e-3);
      });
});

describe('f16 cache on the f16 tensor-core kernel: the WGSL', () => {
  it.skipIf(!hasGpu)('fetch + stage place every row of a block as the layout says (plain, f16Rotate)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16) return;
    for (const [R, T, tb] of [
      [192, 40, 16],
      [320, 23, 16],
      [448, 70, 64],
    ]) {
      const x = problem(R + T, [T], 32, R, R - 64);
      for (const f16Rotate of [false, true])
        for (const kb of ['0u', '(1u - 0u)']) {
          const pl = planMlaInt8F16({ H: 32, R, Rv: R - 64, cache: 'f16', f16Rotate });
          const { TB, KS } = pl;
          const N = 2 * TB * KS;
          const wgsl = `enable f16;
struct Params { maxPages: u32, pageSize: u32, chunks: u32, chunkLen: u32, pageShift: u32, t1: u32, tb: u32, _c: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pool: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> pageTable: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> kv: array<f16, ${N}>;
fn rowOf(b: u32, t: u32) -> u32 {
  var pg = t >> p.pageShift; var po = t & (p.pageSize - 1u);
  if (p.pageShift >= 32u) { pg = t / p.pageSize; po = t % p.pageSize; }
  return u32(pageTable[b * p.maxPages + pg]) * p.pageSize + po;
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let b = 0u; let t1 = p.t1;
  let rowT = lid >> 4u; let colW = lid & 15u;
  ${f16RowsPreludeWgsl(pl).join('\n  ')}
  ${Array.from({ length: Math.ceil(pl.rowItems / 16) }, (_, n) => `var pfa${n} = vec4<u32>(0u);`).join(' ')}
  for (var i = lid; i < ${N}u; i += 256u) { kv[i] = f16(-7.0); }
  workgroupBarrier();
  ${f16RowsFetchWgsl(pl, 'p.tb', 'a').join('\n  ')}
  ${f16RowsStageWgsl(pl, kb, 'a').join('\n  ')}
  workgroupBarrier();
  for (var i = lid; i < ${N}u; i += 256u) { out[i] = f32(kv[i]); }
}`;
          const tp = gpu.fromHost(x.pool, [x.pool.length], 'i32');
          const tt = gpu.fromHost(x.pageTable, [x.pageTable.length], 'i32');
          const to = gpu.empty([N]);
          gpu.dispatch({
            kernel: { name: 'f16c_stage_test', key: `f16c_stage_test_${mlaInt8F16Key(pl)}_${kb}`, code: () => wgsl },
            tensors: [tp, tt, to],
            params: new Params().u32(x.d.maxPages, PAGE, 1, 0, 4, T, tb, 0),
            workgroups: [1],
          });
          const got = (await to.read()) as Float32Array;
          for (const t of [tp, tt, to]) t.dispose();
          const want = new Float32Array(N).fill(-7);
          const k0 = kb === '0u' ? 0 : 1;
          const vals = unpackF16Rows(x.pool, R);
          for (let r = 0; r < TB; r++)
            for (let c = 0; c < R; c++) {
              const t = tb + r;
              const row = t < T ? x.pageTable[Math.floor(t / PAGE)] * PAGE + (t % PAGE) : -1;
              want[k0 * TB * KS + r * KS + c] = row < 0 ? 0 : vals[row * R + c];
            }
          let bad = 0;
          let first = '';
          for (let i = 0; i < N; i++)
            if (!Object.is(got[i], want[i])) {
              if (!bad) first = `R ${R} rot ${f16Rotate} kb ${kb} element ${i}: ${got[i]}, want ${want[i]}`;
              bad++;
            }
          expect(bad, first).toBe(0);
        }
    }
  });

  it.skipIf(!hasGpu)(
    'the kernel compiles with stand-ins (48B and small shapes, rotate, ahead 1 / 3 / 4, diagnostics)',
    async () => {
      const gpu = await gpuContext();
      if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
      const s = { H: 32, R: 576, Rv: 512, cache: 'f16' as const };
      const plans = [
        planMlaInt8F16(s),
        planMlaInt8F16({ ...s, f16Rotate: false, ahead: 2 }),
        planMlaInt8F16({ ...s, f16Rotate: true, ahead: 2 }),
        planMlaInt8F16({ ...s, ahead: 4, qFold: true }),
        planMlaInt8F16({ ...s, ahead: 1, f16Rotate: true }),
        planMlaInt8F16({ H: 20, R: 192, Rv: 128, cache: 'f16', ahead: 3, tau: 0, rangeIdx: false }),
        planMlaInt8F16({ ...s, skip: ['scores', 'softmax', 'pv'] }),
        planMlaInt8F16({ ...s, skip: ['stage'] }),
      ];
      for (const pl of plans) {
        const code = mlaInt8F16Wgsl(pl);
        expect(code).toContain('var<storage, read> pool: array<vec4<u32>>');
        const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(code) }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      }
    },
  );
});

describe('mlaDecode over an f16 pool without f16 subgroup matrices (tiled, split) and on cpu', () => {
  for (const dev of ['cpu', 'gpu'] as const)
    for (const kernel of dev === 'cpu' ? [undefined] : (['tiled', 'split'] as const))
      it.skipIf(dev === 'gpu' && !hasGpu)(
        `${dev}${kernel ? ` ${kernel}` : ''}: f32 attention over the f16 values`,
        async () => {
          const device: Device = dev === 'cpu' ? cpu : (await gpuContext())!;
          const x = problem(3, [65, 7, 33], 20, 192, 128);
          const out = mlaDecode(
            device.fromHost(x.q, [3, 20, 192]),
            device.fromHost(x.pool, [x.pool.length / (PAGE * 96), PAGE, 96], 'i32'),
            device.fromHost(x.pageTable, [3, x.d.maxPages], 'i32'),
            device.fromHost(x.lengths, [3], 'i32'),
            { Rv: 128, scale: x.d.scale, maxLength: 65, kernel, cacheDtype: 'f16' },
          );
          const got = (await out.read()) as Float32Array;
          const exact = mlaDecodeReference(x.q, unpackF16Rows(x.pool, 192), x.pageTable, x.lengths, x.d);
          // Measured: cpu exact (the same reference), tiled / split ~1e-7 (f32 sums in another order).
          expect(relErr(got, exact)).toBeLessThan(1e-5);
        },
      );
});

describe('tiny-kimi with an f16 latent cache', () => {
  it('cpu: logits within 2e-3 of the f32 cache, greedy tokens agree', async () => {
    const { worst, agree } = await compareLatentCache(cpu, 'f16', 40, 12);
    expect(worst).toBeLessThan(2e-3);
    expect(worst).toBeGreaterThan(0);
    expect(agree).toBe(12);
  });
  it.skipIf(!hasGpu)('WebGPU (cache write fused with the norm, tiled kernel): within 2e-3, tokens agree', async () => {
    const gpu = (await gpuContext())!;
    const { worst, agree } = await compareLatentCache(gpu, 'f16', 40, 12);
    console.log(
      `f16 vs f32 latent cache, tiny-kimi, 12 greedy steps: max relative logit error ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(2e-3);
    expect(worst).toBeGreaterThan(0);
    expect(agree).toBe(12);
  });
});
