import { describe, expect, it } from 'vitest';
import { mlaDecodeInt8Reference } from '../src/kernels/mla/int8Reference.js';
import {
  blockPv,
  exactPv,
  LAZY_PV_DEFAULTS,
  type LazyPvOptions,
  type LazyPvStats,
  lazyDither,
  lazyPv,
  mlaDecodeInt8LazyReference,
} from '../src/kernels/mla/int8LazyReference.js';
import { cacheWriteInt8Reference } from '../src/kernels/mla/int8Reference.js';
import { int8RowWords } from '../src/kernels/mla/int8Layout.js';
import { mlaDecodeReference } from '../src/kernels/mla/reference.js';
import { Rng } from '../src/util/random.js';
import { mlaInt8SgmWgsl } from '../src/kernels/mla/decodeInt8Sgm.wgsl.js';
import { mlaDecodeInt8SgmEmulate } from '../src/kernels/mla/int8SgmEmulate.js';
import { mlaInt8SgmKey, planMlaInt8Sgm } from '../src/kernels/mla/int8SgmPlan.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import {
  ALIGN_PROBE_CASES,
  alignProbeInputs,
  alignProbeWgsl,
  analyseAlignProbe,
  probeByte,
} from '../src/kernels/mla/int8SgmAlignProbe.js';
import { gpuContext, hasGpu, relErr } from './helpers.js';
import { type Case, cases, makePool, Rv } from './mla-int8-cases.js';

/**
 * The lazy P x V scheme (int8LazyReference.ts) against exact attention and the current per-block scheme, CPU only,
 * on the cases of mla-int8-cases.ts (one head, Rv = 16 value channels).
 */
function measure(c: Case, opts: LazyPvOptions) {
  const exact = exactPv(c.s, c.sL, c.codes, Rv);
  const stats: LazyPvStats = { rescales: 0, maxAcc: 0 };
  const lazy = relErr(lazyPv(c.s, c.sL, c.codes, Rv, opts, stats), exact);
  return { lazy, block: relErr(blockPv(c.s, c.sL, c.codes, Rv), exact), ...stats };
}

describe('int8 MLA decode, lazy P x V (int8LazyReference.ts): error against f64 attention', () => {
  // Measured (relative to max |o| of f64 attention, seed 7; KIMI_LAZY_TABLE=1 prints it), lazy at tau = 1, two
  // digits, 8192-token chunks unless named:
  //   case         block (now)  dither   (rescales)  nearest  1 digit  tau 0    tau 3    one chunk (nearest / dither)
  //   random       1.74e-2      8.97e-4  (2)         6.14e-4  5.97e-2  4.52e-4  3.59e-3  6.14e-4 / 8.97e-4
  //   outlierTail  6.07e-4      5.58e-3  (2)         6.10e-2  1.37e-1  1.31e-2  1.36e-1  4.74e-1 / 1.54e-2
  //   scales       6.47e-3      7.94e-4  (3)         7.75e-4  1.38e-1  4.87e-4  4.60e-3  7.75e-4 / 7.94e-4
  //   ramp         5.93e-4      1.88e-5  (20)        2.49e-5  1.65e-3  9.34e-6  4.95e-5  2.48e-5 / 1.88e-5
  // (tau 0 / 3 and one digit with round to nearest; tau 0 rescales 5, 46, 7, 78 times.) outlierTail over seeds 7-10,
  // dithered: 3.0e-3-5.6e-3 (8K chunks), 1.3e-2-1.6e-2 (one chunk); the block scheme 4.5e-4-7.0e-4. So the lazy
  // scheme is as good as or better than now on all but the adversarial tail, where it stays within 1e-2: the
  // tolerance asserted (the int8 path's own error against f32 attention is ~7e-3, its test's bound 3e-2).
  it("tau = 1, two dithered digits: within 1e-2 on every case and within the current scheme's error but on the tail", () => {
    const rows: string[] = [];
    const checks: (() => void)[] = [];
    for (const [name, make] of Object.entries(cases)) {
      const c = make(new Rng(7));
      const one = Math.ceil(c.s.length / 32) * 32;
      const d = measure(c, LAZY_PV_DEFAULTS);
      const near = { ...LAZY_PV_DEFAULTS, rounding: 'nearest' as const };
      const n = measure(c, near);
      const n1 = measure(c, { ...near, digits: 1 });
      const t0 = measure(c, { ...near, tau: 0 });
      const t3 = measure(c, { ...near, tau: 3 });
      const nw = measure(c, { ...near, chunkLen: one });
      const dw = measure(c, { ...LAZY_PV_DEFAULTS, chunkLen: one });
      const e = (x: number) => x.toExponential(2);
      rows.push(
        `${name}: block ${e(d.block)} | dither ${e(d.lazy)} (${d.rescales}, max|A| ${d.maxAcc}) | nearest ${e(n.lazy)} | 1 digit ${e(n1.lazy)} | tau0 ${e(t0.lazy)} (${t0.rescales}) | tau3 ${e(t3.lazy)} (${t3.rescales}) | one chunk ${e(nw.lazy)} / ${e(dw.lazy)}`,
      );
      checks.push(() => {
        expect(d.lazy).toBeLessThan(1e-2);
        if (name !== 'outlierTail') expect(d.lazy).toBeLessThan(d.block);
        // One digit is never enough: worse than the current scheme on every case.
        expect(n1.lazy).toBeGreaterThan(d.block);
        expect(d.maxAcc).toBeLessThan(2 ** 31);
      });
    }
    if (process.env.KIMI_LAZY_TABLE) console.log(rows.join('\n'));
    for (const check of checks) check();
  });

  it('round to nearest drops a diffuse tail against its chunk max; the dither keeps it', () => {
    const c = cases.outlierTail(new Rng(7));
    const whole = { ...LAZY_PV_DEFAULTS, chunkLen: c.s.length };
    expect(measure(c, { ...whole, rounding: 'nearest' }).lazy).toBeGreaterThan(0.3);
    expect(measure(c, whole).lazy).toBeLessThan(3e-2);
  });

  it('rescales are rare at tau = 1 on a growing max, and fewer than at tau = 0', () => {
    const c = cases.ramp(new Rng(7));
    const r1 = measure(c, LAZY_PV_DEFAULTS).rescales;
    const r0 = measure(c, { ...LAZY_PV_DEFAULTS, tau: 0 }).rescales;
    expect(r1).toBeGreaterThan(0);
    expect(r1).toBeLessThan(r0 / 2);
  });

  it('the dither is a fraction in [0, 1) spread over it', () => {
    let sum = 0;
    for (let t = 0; t < 4096; t++) {
      const u = lazyDither(t, 5);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      sum += u;
    }
    expect(Math.abs(sum / 4096 - 0.5)).toBeLessThan(0.02);
  });
  it('the full decode over a paged int8 pool, lazy tensor-core kernel emulated: equals the lazy reference', () => {
    // The lazy form's layout (wide, 16 heads a workgroup: c_kv of 128 splits over its 8 subgroups), emulated
    // fragment by fragment (int8SgmEmulate.ts), against int8LazyReference.ts with the same chunks.
    const rng = new Rng(11);
    const R = 192;
    const RvD = 128;
    const H = 20;
    const pageSize = 16;
    const lengths = Int32Array.from([300, 1, 0, 65]);
    const x = makePool(rng, lengths, R, RvD, pageSize);
    const q = rng.normalArray(lengths.length * H * R, 3);
    const d = { B: lengths.length, H, R, Rv: RvD, pageSize, maxPages: x.maxPages, scale: 0.11 };
    const variant = { syntax: 'template', units: 'words' } as const;
    const plan = planMlaInt8Sgm({ H, R, Rv: RvD, variant, heads: 16, wide: true, lazy: true }, 49152);
    expect(mlaInt8SgmKey(plan)).toContain('_lazy1');
    const noFlush = planMlaInt8Sgm(
      { H, R, Rv: RvD, variant, heads: 16, wide: true, lazy: true, lazyFlush: false },
      49152,
    );
    for (const chunkLen of [64, 256]) {
      const got = mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, plan, chunkLen);
      const ref = mlaDecodeInt8LazyReference(q, x.pool, x.pageTable, lengths, d, { ...LAZY_PV_DEFAULTS, chunkLen });
      // Measured 3.3e-7 (chunks of 64) and 3.6e-7 (256): f32 rounding (the reference's flush and merge in f64);
      // 5.0e-3 from the int8 reference; without the flush 0.97 and 1.77.
      expect(relErr(got, ref)).toBeLessThan(1e-5);
      expect(relErr(got, mlaDecodeInt8Reference(q, x.pool, x.pageTable, lengths, d))).toBeLessThan(1e-2);
      // The rescales' flush matters here (a growing max within a chunk): without it the output is wrong.
      // The device-check diagnostic without any carry (lazyEvery): the same outputs up to f32 rounding.
      const every = planMlaInt8Sgm(
        { H, R, Rv: RvD, variant, heads: 16, wide: true, lazy: true, lazyEvery: true },
        49152,
      );
      expect(relErr(mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, every, chunkLen), ref)).toBeLessThan(
        1e-5,
      );
      // s_ref = 1 (the prologue's diagnostic): coarser x, still within the int8 path's error (measured 5.7e-3, 8.1e-3).
      const one = planMlaInt8Sgm({ H, R, Rv: RvD, variant, heads: 16, wide: true, lazy: true, lazySRef1: true }, 49152);
      const i8 = mlaDecodeInt8Reference(q, x.pool, x.pageTable, lengths, d);
      const e1 = relErr(mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, one, chunkLen), i8);
      expect(e1).toBeLessThan(2e-2);
      const bad = mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, noFlush, chunkLen);
      expect(relErr(bad, ref)).toBeGreaterThan(1e-2);
      // The device check's fix candidates (mlalazy2): s_ref by an atomicMax is the same s_ref (the same outputs);
      // the constant 0.5 instead of the dither rounds to nearest (measured 5.1e-3, 4.7e-3 from the int8 reference).
      const atomic = planMlaInt8Sgm(
        { H, R, Rv: RvD, variant, heads: 16, wide: true, lazy: true, lazySRefAtomic: true },
        49152,
      );
      expect(mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, atomic, chunkLen)).toEqual(got);
      // One digit (the register-pressure diagnostic): the lazy reference with digits 1.
      const one1 = planMlaInt8Sgm(
        { H, R, Rv: RvD, variant, heads: 16, wide: true, lazy: true, lazyOneDigit: true },
        49152,
      );
      const ref1 = mlaDecodeInt8LazyReference(q, x.pool, x.pageTable, lengths, d, {
        ...LAZY_PV_DEFAULTS,
        chunkLen,
        digits: 1,
      });
      expect(relErr(mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, one1, chunkLen), ref1)).toBeLessThan(
        1e-5,
      );
      const plain = planMlaInt8Sgm(
        { H, R, Rv: RvD, variant, heads: 16, wide: true, lazy: true, lazyNoDither: true },
        49152,
      );
      expect(relErr(mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, plain, chunkLen), i8)).toBeLessThan(
        1e-2,
      );
    }
  });

  it('the 48B layout (32 heads a workgroup: two head halves, the form the device runs) emulated equals the lazy reference', () => {
    // The case above has one head half (MH = 1); the H200 runs MH = 2 (pw holds 4 left fragments: hi, lo per half).
    const rng = new Rng(5);
    const R = 576;
    const RvD = 512;
    const H = 32;
    const pageSize = 64;
    const lengths = Int32Array.from([200]);
    const x = makePool(rng, lengths, R, RvD, pageSize);
    const q = rng.normalArray(H * R, 0.5);
    const d = { B: 1, H, R, Rv: RvD, pageSize, maxPages: x.maxPages, scale: 0.07 };
    const plan = planMlaInt8Sgm({ H, R, Rv: RvD, variant: { syntax: 'template', units: 'words' }, lazy: true }, 49152);
    expect(plan.MH).toBe(2);
    const got = mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, plan, 64);
    const ref = mlaDecodeInt8LazyReference(q, x.pool, x.pageTable, lengths, d, { ...LAZY_PV_DEFAULTS, chunkLen: 64 });
    // Measured 5.3e-5: the reference forms x in f64, the kernel in f32, so a digit can land one step (2 s_ref / 16383
    // of a token's weight) apart; the 16-head layout (checked above) does the same f32 arithmetic per element.
    expect(relErr(got, ref)).toBeLessThan(2e-4);
    const half = planMlaInt8Sgm(
      { H, R, Rv: RvD, variant: { syntax: 'template', units: 'words' }, lazy: true, heads: 16, wide: true },
      49152,
    );
    expect(got).toEqual(mlaDecodeInt8SgmEmulate(q, x.pool, x.pageTable, lengths, d, half, 64));
  });

  it.skipIf(!hasGpu)(
    'the lazy kernel compiles with stand-in builtins (48B shapes: with and without the flush)',
    async () => {
      const gpu = (await gpuContext())!;
      const variant = { syntax: 'template', units: 'words' } as const;
      const checks = [
        { lazyEvery: true, lazyBarrier: true },
        { lazyEvery: true, lazyMultiply: true, lazySRef1: true },
        { lazySRefAtomic: true, lazyNoDither: true, lazyOneDigit: true, lazyPwFirst: true, lazyLoArray: true },
        { lazySRefAtomic: true, lazyAlign: false },
      ];
      for (const more of [{}, { lazyFlush: false, prefetch: false }, ...checks]) {
        const p = planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant, lazy: true, ...more }, 49152);
        expect(p.wide).toBe(true);
        expect(p.sharedBytes).toBeLessThanOrEqual(49152);
        const code = mlaInt8SgmWgsl(p);
        // No per-block fold: the only result stores are the scores' two and the flushes' (hi and lo per fragment).
        if (!('lazyMultiply' in more)) expect(code.match(/subgroupMatrixMultiply</g)).toBeNull();
        const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(code) }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      }
      expect(() => planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant, lazy: true, wide: false }, 49152)).toThrow(/wide/);
      // The alignment probe (int8SgmAlignProbe.ts), a pad before and two after its array, in both offset units.
      for (const [v, c] of [
        [variant, ALIGN_PROBE_CASES.find((c) => c.name === 'before2')!],
        [
          { syntax: 'template', units: 'elements' } as const,
          ALIGN_PROBE_CASES.find((c) => c.name === 'lazyVarsAligned')!,
        ],
      ] as const) {
        const code = alignProbeWgsl(v, c);
        const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(code) }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      }
    },
  );

  it('every workgroup variable is a multiple of 16 bytes (lazyAlign, issue #4), and was not in the old layout', () => {
    // Vulkan wants a cooperative-matrix load's pointer 16-byte aligned; the driver packs the variables, so each must
    // keep the next one aligned whatever their order. Sizes from the declarations of the generated WGSL.
    const size = (t: string): number => {
      const a = /^array<(.+), (\d+)>$/.exec(t);
      if (a) return size(a[1]) * Number(a[2]);
      const v = /^vec([234])<(.+)>$/.exec(t);
      if (v) return Number(v[1]) * size(v[2]);
      const at = /^atomic<(.+)>$/.exec(t);
      if (at) return size(at[1]);
      if (['i32', 'u32', 'f32'].includes(t)) return 4;
      throw new Error(`no size for ${t}`);
    };
    const vars = (code: string) =>
      [...code.matchAll(/^var<workgroup> (\w+): (.+);$/gm)].map(([, name, t]) => ({ name, bytes: size(t) }));
    const variant = { syntax: 'template', units: 'words' } as const;
    const plan = (more: object) => planMlaInt8Sgm({ H: 32, R: 576, Rv: 512, variant, ...more }, 49152);
    for (const more of [
      {},
      { heads: 16 },
      { wide: false },
      { queryResident: false },
      { lazy: true },
      { lazy: true, lazySRefAtomic: true },
      { lazy: true, lazyLoArray: true, lazyPwFirst: true },
      { lazy: true, heads: 16, wide: true },
    ]) {
      const v = vars(mlaInt8SgmWgsl(plan(more)));
      expect(v.length).toBeGreaterThanOrEqual(4);
      expect(v.filter((x) => x.bytes % 16)).toEqual([]);
    }
    // The old layout: a 4-byte flag (and a 4-byte atomic): 68 bytes of small variables, pw / sc / kv 4 or 8 off 16.
    const old = vars(mlaInt8SgmWgsl(plan({ lazy: true, lazyAlign: false })));
    expect(old.filter((x) => x.bytes % 16).map((x) => x.name)).toEqual(['flag']);
  });

  it('the alignment probe analysis: finds a load that reads where it should, and one that reads 8 bytes early', () => {
    const { src } = alignProbeInputs();
    const m = new Int8Array(src.buffer);
    // What the probe's kernel leaves in dst if its fragment loads read m's bytes from `at + shift` (below m: the pad
    // markers 121, as a load from before the array would read the variable laid out there).
    const run = (shift: number) => {
      const dst = new Int32Array(1024 + 32);
      for (let f = 0; f < 2; f++)
        for (let h = 0; h < 2; h++)
          for (let r = 0; r < 16; r++)
            for (let n = 0; n < 16; n++) {
              const j = 4 * (128 * f + 8 * r) + n + 16 * h + shift;
              dst[256 * (2 * f + h) + 16 * r + n] = j < 0 ? 121 : m[j];
            }
      return dst;
    };
    expect(m[5]).toBe(probeByte(5));
    expect(analyseAlignProbe('ok', run(0))).toMatchObject({ exact: true, wrong: 0, shiftBytes: 0, shiftMatches: 1024 });
    const early = analyseAlignProbe('early', run(-8));
    expect(early).toMatchObject({ exact: false, shiftBytes: -8, padBytes: 8 });
    expect(early.wrong).toBeGreaterThan(1000);
    expect(early.shiftMatches).toBe(1024 - 8);
  });

  it('the full decode over a paged int8 pool agrees with the int8 reference and f32 attention', () => {
    const rng = new Rng(3);
    const R = 24;
    const RvD = 16;
    const H = 3;
    const pageSize = 16;
    const lengths = Int32Array.from([1, 63, 300]);
    const B = lengths.length;
    const maxPages = Math.ceil(300 / pageSize);
    const numPages = B * maxPages;
    const pageTable = Int32Array.from({ length: numPages }, (_, i) => (i * 5 + 3) % numPages);
    const RW = int8RowWords(R, RvD);
    const pool = new Int32Array(numPages * pageSize * RW);
    const poolF = new Float32Array(numPages * pageSize * R);
    for (let b = 0; b < B; b++) {
      const T = lengths[b];
      const x = rng.normalArray(T * R);
      const seq = new Int32Array(T).fill(b);
      const pos = Int32Array.from({ length: T }, (_, t) => t);
      cacheWriteInt8Reference(pool, x, seq, pos, pageTable, { R, Rv: RvD, pageSize, maxPages });
      for (let t = 0; t < T; t++) {
        const row = pageTable[b * maxPages + Math.floor(t / pageSize)] * pageSize + (t % pageSize);
        poolF.set(x.subarray(t * R, (t + 1) * R), row * R);
      }
    }
    const q = rng.normalArray(B * H * R, 3);
    const d = { B, H, R, Rv: RvD, pageSize, maxPages, scale: 1 / Math.sqrt(R) };
    const lazy = mlaDecodeInt8LazyReference(q, pool, pageTable, lengths, d, { ...LAZY_PV_DEFAULTS, chunkLen: 64 });
    const now = mlaDecodeInt8Reference(q, pool, pageTable, lengths, d);
    const f32 = mlaDecodeReference(q, poolF, pageTable, lengths, d);
    // Measured: lazy vs the int8 reference 5.3e-3; against f32 attention lazy 1.20e-2, the int8 reference 1.29e-2
    // (the 8-bit rows and query dominate: the P x V scheme changes little).
    expect(relErr(lazy, now)).toBeLessThan(1e-2);
    expect(relErr(lazy, f32)).toBeLessThan(3e-2);
  });
});
