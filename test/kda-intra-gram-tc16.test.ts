/**
 * The tensor-core first kernel of the two-pass intra (intraGramTc16.wgsl.ts, kdaForwardTuning.tc16Gram): its plain-TS
 * reference (intraGramTc16Reference.ts: f16 operands with per-row power-of-two scales between 16-row blocks, f32
 * elsewhere) against the f64 reference (intraReference.ts), its work layout (the emulation: staging offsets, each
 * subgroup's fragments, the result blocks and the epilogue's tiles) against its reference, the WGSL of every variant
 * compiling with the subgroup-matrix builtins stubbed (sgmStubWgsl; no GPU here has f16 subgroup matrices: the
 * H200 check is bench kda --check --dtype bf16 --unsafe-apis --fwd-tc16-gram on), and the plan's choice.
 *
 * Tolerance (stated): A_qk and A_kk's entries within 2^-9 of sum_c |x_ic| |k_jc| exp(gc_ic - gc_jc) (two f16
 * roundings of 2^-11 a product, plus the f32 steps) plus 2^-20 of |x_i|_max |k_j|_max (the f16 subnormals, below
 * 2^-21 of a row's largest scaled element); T within 1e-3 relative to max(1, max |T|) (unit-norm rows, beta < 1).
 */
import { describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/forwardTuning.js';
import { planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import {
  intraGramTc16SharedBytes,
  intraGramTc16Wgsl,
  tc16RotChannel,
  vec4View,
} from '../src/kernels/kda/intraGramTc16.wgsl.js';
import {
  intraGramTc16Layout,
  intraGramTc16Reference,
  tc16RowExponent,
} from '../src/kernels/kda/intraGramTc16Reference.js';
import { type IntraChunk, intraChunkReference } from '../src/kernels/kda/intraReference.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { Rng } from '../src/util/random.js';
import { gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';

/** One chunk of L rows: unit-norm q and k rows times `mag`, gates in [-gMax, 0), bf16-like inputs not needed here. */
function chunk(seed: number, L: number, K: number, mag: number, gMax = 0.5, GK = K): IntraChunk {
  const rng = new Rng(seed);
  const rows = () => {
    const a = Array.from({ length: L * K }, () => rng.normal());
    for (let i = 0; i < L; i++) {
      const s = Math.sqrt(a.slice(i * K, i * K + K).reduce((x, y) => x + y * y, 0));
      for (let c = 0; c < K; c++) a[i * K + c] *= mag / s;
    }
    return Float64Array.from(a, (x) => Math.fround(x));
  };
  const q = rows();
  const k = rows();
  const gc = new Float64Array(L * GK);
  for (let i = 0; i < L; i++)
    for (let c = 0; c < GK; c++)
      gc[i * GK + c] = Math.fround((i ? gc[(i - 1) * GK + c] : 0) - rng.uniform(0.001, gMax));
  const beta = Float64Array.from({ length: L }, () => rng.uniform(0.05, 0.95));
  return { L, K, V: 4, GK, q, k, v: new Float64Array(L * 4), gc, beta, scale: K ** -0.5 };
}

/** max over i < L, j <= i of |got - want| / (2^-9 sum_c |x_i| |k_j| decay + 2^-20 max|x_i| max|k_j|): <= 1 passes. */
function boundRatio(
  c: IntraChunk,
  got: Float64Array,
  want: Float64Array,
  x: ArrayLike<number>,
  strict: boolean,
  s = 1,
) {
  const { L, K } = c;
  const g = (i: number, ch: number) => (c.GK === 1 ? c.gc[i] : c.gc[i * K + ch]);
  const mx = (a: ArrayLike<number>, i: number) =>
    Math.max(...Array.from({ length: K }, (_, ch) => Math.abs(a[i * K + ch])));
  let worst = 0;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < (strict ? i : i + 1); j++) {
      let abs = 0;
      for (let ch = 0; ch < K; ch++) abs += Math.abs(x[i * K + ch] * c.k[j * K + ch]) * Math.exp(g(i, ch) - g(j, ch));
      const tol = s * (2 ** -9 * abs + 2 ** -20 * mx(x, i) * mx(c.k, j));
      const d = Math.abs(got[i * 64 + j] - want[i * 64 + j]);
      if (!Number.isFinite(got[i * 64 + j])) return Number.POSITIVE_INFINITY;
      worst = Math.max(worst, tol > 0 ? d / tol : d > 0 ? Number.POSITIVE_INFINITY : 0);
    }
  }
  return worst;
}

/** A_kk (strictly lower, beta not applied) from the f64 reference's N = Diag(beta) A_kk via its T: recomputed. */
function akk64(c: IntraChunk): Float64Array {
  const { L, K } = c;
  const g = (i: number, ch: number) => (c.GK === 1 ? c.gc[i] : c.gc[i * K + ch]);
  const A = new Float64Array(64 * 64);
  for (let i = 0; i < L; i++)
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let ch = 0; ch < K; ch++) s += c.k[i * K + ch] * c.k[j * K + ch] * Math.exp(g(i, ch) - g(j, ch));
      A[i * 64 + j] = s;
    }
  return A;
}

describe('KDA intra gram on f16 tensor cores (reference, layout, WGSL)', () => {
  it('row exponents put the scaled maximum in [128, 256)', () => {
    for (const m of [1e-30, 3e-5, 0.0625, 0.1, 1, 1.5, 2, 255, 256, 1e4, 1e6, 3e38]) {
      const e = tc16RowExponent([m, -m / 3]);
      expect(m * 2 ** -e).toBeGreaterThanOrEqual(128);
      expect(m * 2 ** -e).toBeLessThan(256);
    }
    expect(tc16RowExponent([0, 0])).toBe(-8);
  });

  for (const [L, mag, gMax, GK] of [
    [64, 1, 0.5, 16],
    [63, 1, 0.05, 16],
    [65 - 64, 1, 0.5, 16],
    [7, 1, 0.5, 16],
    [40, 1e4, 0.5, 16],
    [64, 1e6, 2, 16],
    [64, 1e-12, 0.5, 16],
    [50, 1, 0.5, 1],
  ] as const) {
    it(`reference within the stated tolerance of f64, L=${L}, |q|=|k|=${mag}, gates to -${gMax}, GK=${GK}`, () => {
      const c = chunk(L * 7 + gMax * 10, L, 16, mag, gMax, GK);
      const r = intraGramTc16Reference(c);
      const f = intraChunkReference(c);
      expect(boundRatio(c, r.Aqk, f.Aqk, c.q, false, c.scale)).toBeLessThanOrEqual(1);
      expect(boundRatio(c, r.Akk, akk64(c), c.k, true)).toBeLessThanOrEqual(1);
      // T only where it is a bounded problem (|k| <= 1; beta |k|^2 >> 1 makes T's entries grow like its powers, in
      // f64 as much as here).
      if (mag > 1) return;
      let tmax = 1;
      let dT = 0;
      for (let e = 0; e < 4096; e++) {
        expect(Number.isFinite(r.T[e])).toBe(true);
        tmax = Math.max(tmax, Math.abs(f.T[e]));
        dT = Math.max(dT, Math.abs(r.T[e] - f.T[e]));
      }
      expect(dT / tmax).toBeLessThan(1e-3);
    });
  }

  it('the work layout (staging offsets, fragments, result blocks, epilogue tiles) gives the reference', () => {
    for (const [L, mag, K, v] of [
      [64, 1, 32, {}],
      [37, 1e5, 16, {}],
      [64, 1, 32, { knT: true }],
      [50, 1e-5, 16, { knT: true }],
      // The padded rows and the two result rounds (the twelfth session's forms), on awkward chunk lengths.
      [63, 1, 32, { pad: true }],
      [17, 1e3, 16, { halves: true }],
      [64, 1, 48, { pad: true, halves: true }],
      [33, 1e-4, 16, { pad: true, halves: true }],
      [49, 1, 32, { knT: true, halves: true }],
    ] as const) {
      const c = chunk(L + K, L, K, mag);
      const lay = intraGramTc16Layout(c, v);
      const r = intraGramTc16Reference(c);
      for (let i = 0; i < L; i++)
        for (let j = 0; j < i; j++)
          if (Math.floor(j / 16) < Math.floor(i / 16)) {
            const want = r.Aqk[i * 64 + j] / c.scale;
            expect(Math.abs(lay.Aqk[i * 64 + j] - want)).toBeLessThanOrEqual(
              1e-12 * Math.max(1, Math.abs(want)) * mag * mag,
            );
          } else {
            expect(lay.Aqk[i * 64 + j]).toBe(0);
            expect(lay.Akk[i * 64 + j]).toBe(0);
          }
      for (let i = 0; i < L; i++)
        for (let j = 0; j < i; j++)
          if (Math.floor(j / 16) < Math.floor(i / 16)) {
            const want = r.Akk[i * 64 + j];
            expect(Math.abs(lay.Akk[i * 64 + j] - want)).toBeLessThanOrEqual(
              1e-12 * Math.max(1, Math.abs(want)) * mag * mag,
            );
          }
    }
  });

  it('plans the kernel only where asked, tc16Applies and it fits', () => {
    const dev = (f16: boolean, sg = 32, smem = 49152) => forwardDeviceFacts({ f16, subgroupSize: sg, smem });
    const shape = { H: 16, N: 1, K: 128, V: 128, GK: 128 };
    const run = { keep: false, out: true, bf16: true };
    const t = { ...kdaForwardTuning, tc16Gram: true };
    // 16 KiB f32 staging (then T) + f16 staging (192 rows of 32 or 48 bytes, 256 bytes of exponents) + results.
    expect(intraGramTc16SharedBytes({})).toBe(34.25 * 1024);
    expect(intraGramTc16SharedBytes({ compact: true })).toBe(22.25 * 1024);
    expect(intraGramTc16SharedBytes({ halves: true })).toBe(28.25 * 1024);
    expect(intraGramTc16SharedBytes({ pad: true })).toBe(37.25 * 1024);
    expect(intraGramTc16SharedBytes({ pad: true, halves: true })).toBe(31.25 * 1024);
    expect(planChunkForward(dev(true), shape, run, t).tc16Gram).toBe(true);
    // split: the default form where tc16Gram runs; off when asked or with diagWithMma.
    expect(planChunkForward(dev(true), shape, run, t).tc16g?.split).toBe(true);
    expect(planChunkForward(dev(true), shape, run, { ...t, tc16GramSplit: false }).tc16g?.split).toBeUndefined();
    expect(planChunkForward(dev(true), shape, run, { ...t, tc16GramDiagWithMma: true }).tc16g?.split).toBeUndefined();
    expect(planChunkForward(dev(true), shape, run, {}).tc16Gram).toBe(false);
    expect(planChunkForward(dev(false), shape, run, t).tc16Gram).toBe(false);
    expect(planChunkForward(dev(true), shape, { ...run, bf16: false }, t).tc16Gram).toBe(false);
    expect(planChunkForward(dev(true, 64), shape, run, t).tc16Gram).toBe(false);
    expect(planChunkForward(dev(true, 32, 32768), shape, run, t).tc16Gram).toBe(false);
    expect(planChunkForward(dev(true), shape, run, { ...t, tc16GramCompact: true }).tc16g?.compact).toBe(true);
    // The twelfth session's forms: each where asked; diagPrefetch only with split, halves not with compact.
    const all = { ...t, tc16GramPad: true, tc16GramHalves: true, tc16GramDiagPrefetch: true };
    expect(planChunkForward(dev(true), shape, run, all).tc16g).toMatchObject({ pad: true, halves: true, split: true });
    expect(planChunkForward(dev(true), shape, run, all).tc16g?.diagPrefetch).toBe(true);
    expect(planChunkForward(dev(true), shape, run, t).tc16g?.pad).toBeUndefined();
    // diagPrefetch and shuffleScale: on unless asked off (the split form's).
    expect(planChunkForward(dev(true), shape, run, t).tc16g).toMatchObject({ diagPrefetch: true, shuffleScale: true });
    expect(planChunkForward(dev(true), shape, run, { ...t, tc16GramDiagPrefetch: false }).tc16g?.diagPrefetch).toBe(
      undefined,
    );
    expect(
      planChunkForward(dev(true), shape, run, { ...t, tc16GramShuffleScale: false }).tc16g?.shuffleScale,
    ).toBeUndefined();
    expect(
      planChunkForward(dev(true), shape, run, { ...all, tc16GramSplit: false }).tc16g?.diagPrefetch,
    ).toBeUndefined();
    expect(planChunkForward(dev(true), shape, run, { ...all, tc16GramCompact: true }).tc16g?.halves).toBeUndefined();
    const sr = { ...t, tc16GramShuffleScale: true, tc16GramRot: true };
    expect(planChunkForward(dev(true), shape, run, sr).tc16g).toMatchObject({ shuffleScale: true, rot: true });
    expect(
      planChunkForward(dev(true), shape, run, { ...sr, tc16GramSplit: false }).tc16g?.shuffleScale,
    ).toBeUndefined();
    expect(planChunkForward(dev(true), shape, run, { ...sr, tc16GramPad: true }).tc16g?.rot).toBeUndefined();
  });

  it("rot: each lane writes its four channels once, and a store's 32 lanes hit 32 different banks", () => {
    for (let si = 0; si < 64; si++)
      for (let sc4 = 0; sc4 < 4; sc4++) {
        const ch = [0, 1, 2, 3].map((u) => tc16RotChannel(si, sc4, u));
        expect([...ch].sort((a, b) => a - b)).toEqual([0, 1, 2, 3].map((x) => 4 * sc4 + x));
      }
    // Subgroup w: lanes 32 w .. 32 w + 31 = rows 8 w .. 8 w + 7, channel groups 0 .. 3; rows 16 f16 (8 words) apart,
    // every staged array's first row a multiple of 8 rows (tc16Staging), so the bank is (8 row + channel / 2) % 32.
    for (let w = 0; w < 8; w++)
      for (let u = 0; u < 4; u++) {
        const banks = new Set<number>();
        for (let lane = 0; lane < 32; lane++) {
          const si = 8 * w + (lane >> 2);
          banks.add((8 * si + (tc16RotChannel(si, lane & 3, u) >> 1)) % 32);
        }
        expect(banks.size).toBe(32);
      }
  });

  it('vec4View rewrites the vec4 array accesses', () => {
    expect(vec4View('sm[a + b[1]] = x * sm[c][2];\nlet y = sm[d] == z; smr[3] = 1;')).toBe(
      'smSt(a + b[1], x * smLd(c)[2]);\nlet y = smLd(d) == z; smr[3] = 1;',
    );
  });

  it.skipIf(!hasGpu)('compiles (subgroup matrices stubbed) for each variant', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16) return;
    for (const v of [
      { K: 128, V: 128, GK: 128 },
      { K: 16, V: 8, GK: 16 },
      { K: 64, V: 8, GK: 1 },
      { K: 128, V: 128, GK: 128, rw: true },
      { K: 128, V: 128, GK: 128, compact: true },
      { K: 64, V: 8, GK: 1, compact: true, rw: true },
      { K: 128, V: 128, GK: 128, compact: true, diagWithMma: true },
      { K: 32, V: 8, GK: 32, diagWithMma: true },
      { K: 128, V: 128, GK: 128, split: true },
      { K: 64, V: 8, GK: 1, split: true, rw: true },
      { K: 128, V: 128, GK: 128, split: true, knT: true },
      { K: 128, V: 128, GK: 128, split: true, pad: true },
      { K: 128, V: 128, GK: 128, split: true, halves: true },
      { K: 128, V: 128, GK: 128, split: true, pad: true, halves: true, diagPrefetch: true },
      { K: 64, V: 8, GK: 1, split: true, halves: true, diagPrefetch: true, rw: true },
      { K: 32, V: 8, GK: 32, pad: true, halves: true },
      { K: 16, V: 8, GK: 16, split: true, knT: true, halves: true, diagPrefetch: true },
      { K: 128, V: 128, GK: 128, split: true, diagPrefetch: true, shuffleScale: true, rot: true },
      { K: 64, V: 8, GK: 1, split: true, shuffleScale: true, halves: true, rw: true },
      { K: 32, V: 8, GK: 32, rot: true },
      { K: 128, V: 128, GK: 128, split: true, diagPrefetch: true, shuffleScale: true, rot: true, mmaOverlap: true },
      { K: 32, V: 8, GK: 1, mmaOverlap: true, knT: true, skip: 'mma' as const },
      { K: 16, V: 8, GK: 16, split: true, rot: true, knT: true, skip: 'scale' as const, shuffleScale: true },
      ...(['scale', 'f16', 'mma', 'f32'] as const).map((skip) => ({ K: 32, V: 8, GK: 32, split: true, skip })),
    ]) {
      const code = intraGramTc16Wgsl(v);
      // Each pair's two, also with skip (mmaOverlap: the two once, after the f32 units, on every pair's fragments).
      expect(code.match(/subgroupMatrixMultiplyAccumulate/g)?.length).toBe('mmaOverlap' in v ? 2 : 12);
      const info = await gpu.device.createShaderModule({ code: sgmStubWgsl(code) }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });
});
