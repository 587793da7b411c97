/**
 * The Kt form's pre-pass on the f16 tensor cores (intraKtTc16.wgsl.ts; kdaForwardTuning.tc16Kt):
 *  - its plain-TS reference (intraKtTc16Reference.ts: f16 operands, each times a power of two of its chunk, f32
 *    accumulation) against the f64 products Kt = (I + T)^T Kd, M = A_qk (I + T): each element within 2e-3 of
 *    sum |left| |right| over its terms (f16 keeps 11 significant bits: 2^-11 per operand), on chunks of 1, 7, 63,
 *    64 rows (T = 1, 7, 63 and 65 = 64 + 1), both gate widths, K of one, two and a partial 64-column item; and with
 *    operands far outside f16's range (k times 1e4, 1e6, 1e30 and 1e-30, A_qk times 1e5, T times 1e4) finite and
 *    within the same bound; the f64 products themselves equal to ktFormReference's Kt and M;
 *  - the kernel's work layout emulated (emulateIntraKtTc16: which subgroup multiplies which fragments at which
 *    offsets, where the results land) equal to the reference bit for bit, every result element of every item
 *    stored by exactly one subgroup (those of M's upper blocks by none), with 8 subgroups (the H200) and others;
 *  - the WGSL compiling on lavapipe with stand-ins for the subgroup matrices (sgmStubWgsl) for each variant;
 *  - the plan: tc16Kt only where asked, tc16Applies, the Kt form runs and the kernel fits.
 * The real check is on the H200 (bench kda --check --dtype bf16 --unsafe-apis --fwd-tc16-kt on).
 */
import { describe, expect, it } from 'vitest';
import { planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { intraChunkReference } from '../src/kernels/kda/intraReference.js';
import {
  intraKtTc16Fits,
  intraKtTc16ProbeWgsl,
  intraKtTc16Wgsl,
  ktItems,
} from '../src/kernels/kda/intraKtTc16.wgsl.js';
import { emulateIntraKtTc16, type KtTc16Chunk, ktTc16ChunkReference } from '../src/kernels/kda/intraKtTc16Reference.js';
import { intraWUKey, intraWUWgsl } from '../src/kernels/kda/intraWU.wgsl.js';
import { ktChunkReference } from '../src/kernels/kda/ktFormReference.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { gpuContext, hasGpu } from './helpers.js';
import { randomCase } from './kda-random.js';
import { forwardDeviceFacts } from './kda-devices.js';

/** A chunk of L rows: T and A_qk from the intra reference (f64, as f32), k rounded to bf16, gc its cumsum. */
function chunk(seed: number, L: number, K: number, GK: number) {
  const c = randomCase(seed, L, 1, K, 8, GK);
  const gc = new Float64Array(L * GK);
  for (let ch = 0; ch < GK; ch++) for (let i = 0, acc = 0; i < L; i++) gc[i * GK + ch] = acc += c.g[i * GK + ch];
  const k = bf16ArrayToF32(f32ArrayToBf16(c.k));
  const intra = { L, K, V: 8, q: c.q, k, v: c.v, gc, GK, beta: c.beta, scale: K ** -0.5 };
  const { T, Aqk } = intraChunkReference(intra);
  return {
    intra,
    tc: { L, K, GK, T: Float32Array.from(T), Aqk: Float32Array.from(Aqk), k, gc: Float32Array.from(gc) },
  };
}

/** The f64 products and, per element, sum |left| |right| over its terms. */
function f64Products(c: KtTc16Chunk) {
  const { L, K, GK } = c;
  const T = (i: number, j: number) => c.T[i * 64 + j] + (i === j ? 1 : 0);
  const g = (i: number, ch: number) => c.gc[GK === 1 ? i : i * K + ch];
  const Kd = (i: number, ch: number) => (i < L ? c.k[i * K + ch] * Math.exp(g(L - 1, ch) - g(i, ch)) : 0);
  const Kt = new Float64Array(L * K);
  const KtMag = new Float64Array(L * K);
  for (let j = 0; j < L; j++)
    for (let ch = 0; ch < K; ch++)
      for (let i = 0; i < 64; i++) {
        Kt[j * K + ch] += T(i, j) * Kd(i, ch);
        KtMag[j * K + ch] += Math.abs(T(i, j) * Kd(i, ch));
      }
  const M = new Float64Array(4096);
  const MMag = new Float64Array(4096);
  for (let i = 0; i < 64; i++)
    for (let j = 0; j < 64; j++)
      for (let m = 0; m < 64; m++) {
        M[i * 64 + j] += c.Aqk[i * 64 + m] * T(m, j);
        MMag[i * 64 + j] += Math.abs(c.Aqk[i * 64 + m] * T(m, j));
      }
  return { Kt, KtMag, M, MMag };
}

/** Every element finite and within tol of the f64 product, relative to its terms' magnitude. */
function expectWithin(got: Float32Array, want: Float64Array, mag: Float64Array, tol: number, what: string) {
  let worst = 0;
  for (let e = 0; e < want.length; e++) {
    expect(Number.isFinite(got[e]), `${what}[${e}] finite`).toBe(true);
    const err = Math.abs(got[e] - want[e]);
    if (err > 0) worst = Math.max(worst, err / mag[e]);
  }
  expect(worst, what).toBeLessThanOrEqual(tol);
}

const SHAPES: [number, number][] = [
  [128, 128],
  [128, 1],
  [16, 16],
  [80, 80],
];

describe('kda Kt pre-pass on f16 tensor cores: reference', () => {
  for (const [K, GK] of SHAPES) {
    for (const L of [1, 7, 63, 64]) {
      it(`L=${L}, K=${K}, GK=${GK}: within f16's rounding of the f64 products; emulation equal to it`, () => {
        const { intra, tc } = chunk(300 + L + K + GK, L, K, GK);
        const f = f64Products(tc);
        // The f64 products are ktFormReference's (on the f32 T, A_qk and gc: to their rounding, 1e-5).
        const ref = ktChunkReference(intra);
        for (let e = 0; e < L * K; e++) expect(Math.abs(f.Kt[e] - ref.Kt[e])).toBeLessThanOrEqual(1e-5 * f.KtMag[e]);
        for (let e = 0; e < 4096; e++)
          expect(Math.abs(f.M[e] - ref.M[e])).toBeLessThanOrEqual(1e-5 * f.MMag[e] + 1e-30);
        const r = ktTc16ChunkReference(tc);
        expectWithin(r.Kt, f.Kt, f.KtMag, 2e-3, 'Kt');
        expectWithin(r.M, f.M, f.MMag, 2e-3, 'M');
        const em = emulateIntraKtTc16(tc);
        expect(Array.from(em.Kt)).toEqual(Array.from(r.Kt));
        expect(Array.from(em.M)).toEqual(Array.from(r.M));
        if (K <= 128) {
          const ew = emulateIntraKtTc16(tc, 8, 'walk');
          expect(Array.from(ew.Kt)).toEqual(Array.from(r.Kt));
          expect(Array.from(ew.M)).toEqual(Array.from(r.M));
        }
      });
    }
  }

  for (const [kScale, aScale, tScale] of [
    [1e4, 1, 1],
    [1e6, 1e5, 1],
    [1e6, 1e5, 1e4],
    [1e30, 1e5, 1e4],
    [1e-30, 1e-20, 1],
  ]) {
    it(`operands outside f16's range (k x ${kScale}, A_qk x ${aScale}, T x ${tScale}): finite, same bound`, () => {
      for (const L of [7, 64]) {
        const { tc } = chunk(500 + L, L, 128, 128);
        const big = {
          ...tc,
          k: bf16ArrayToF32(f32ArrayToBf16(tc.k.map((x) => x * kScale))),
          Aqk: tc.Aqk.map((x) => x * aScale),
          T: tc.T.map((x) => x * tScale),
        };
        const f = f64Products(big);
        const r = ktTc16ChunkReference(big);
        expectWithin(r.Kt, f.Kt, f.KtMag, 2e-3, 'Kt');
        expectWithin(r.M, f.M, f.MMag, 2e-3, 'M');
        const em = emulateIntraKtTc16(big);
        expect(Array.from(em.Kt)).toEqual(Array.from(r.Kt));
      }
    });
  }
});

describe('kda Kt pre-pass on f16 tensor cores: work layout', () => {
  for (const nsg of [8, 4, 16, 3]) {
    for (const layout of ['one', 'walk'] as const)
      it(`${nsg} subgroups, ${layout} layout: every result element stored once (M's upper blocks never), emulation = reference`, () => {
        for (const [K, GK] of SHAPES) {
          const { tc } = chunk(700 + K, 64, K, GK);
          const em = emulateIntraKtTc16(tc, nsg, layout);
          expect(em.writes.length).toBe(ktItems(K) + 1);
          em.writes.forEach((count, it) => {
            const last = it === ktItems(K);
            const cols = last ? 64 : Math.min(64, K - 64 * it);
            for (let i = 0; i < 64; i++)
              for (let j = 0; j < 64; j++) {
                const want = last ? (Math.floor(j / 16) <= Math.floor(i / 16) ? 1 : 0) : j < cols ? 1 : 0;
                expect(count[i * 64 + j], `item ${it} (${i}, ${j})`).toBe(want);
              }
          });
          const r = ktTc16ChunkReference(tc);
          expect(Array.from(em.Kt)).toEqual(Array.from(r.Kt));
          expect(Array.from(em.M)).toEqual(Array.from(r.M));
        }
      });
  }

  it('8 subgroups: no subgroup multiplies more than 5 products an item (the load balance the order gives)', () => {
    const { tc } = chunk(9, 64, 128, 128);
    const em = emulateIntraKtTc16(tc, 8);
    // Products a subgroup ran: per stored fragment, the blocks summed (Kt: 4 - jb; M: ib - jb + 1).
    em.writers.forEach((who, it) => {
      const per = new Array(8).fill(0);
      for (let rb = 0; rb < 4; rb++)
        for (let cb = 0; cb < 4; cb++) {
          const sg = who[rb * 1024 + cb * 16];
          if (sg >= 0) per[sg] += it < 2 ? 4 - rb : rb - cb + 1;
        }
      expect(Math.max(...per), `item ${it}`).toBeLessThanOrEqual(it < 2 ? 5 : 4);
    });
  });
});

describe('kda Kt pre-pass on f16 tensor cores: WGSL and plan', () => {
  it.skipIf(!hasGpu)('compiles with stand-ins for the subgroup matrices (each variant)', async () => {
    const gpu = (await gpuContext())!;
    for (const [K, GK] of SHAPES) {
      for (const [rw, chunks] of [
        [undefined, undefined],
        [true, undefined],
        [true, 2],
        [undefined, 2],
      ] as const) {
        // The walk (chunks 2) only where K <= 128; its 48 KiB are over lavapipe's 32 for a pipeline, not a module.
        if (chunks && K > 128) continue;
        const v = { K, V: 128, GK, ktForm: true, bf16: true, midF32: true, tc16: true, rw, chunks };
        expect(intraWUKey(v)).toContain('_tc16');
        const code = sgmStubWgsl(intraWUWgsl(v));
        expect(code).not.toMatch(/subgroupMatrix|subgroup_matrix/);
        const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      }
    }
    // The profiling probes (wrong results) at d = 128.
    for (const probe of ['nomma', 'noload', 'rowM', 'uniform'] as const) {
      const v = { K: 128, V: 128, GK: 128, ktForm: true, bf16: true, midF32: true, tc16: true };
      const code = sgmStubWgsl(intraKtTc16ProbeWgsl(v, probe));
      const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${probe} ${m.lineNum}: ${m.message}`)).toEqual(
        [],
      );
    }
  });

  it('fits the bf16 mixed mode with K a multiple of 16 only', () => {
    const base = { K: 128, V: 128, GK: 128, ktForm: true, bf16: true, midF32: true };
    expect(intraKtTc16Fits(base)).toBe(true);
    expect(intraKtTc16Fits({ ...base, K: 120, GK: 120 })).toBe(false);
    expect(intraKtTc16Fits({ ...base, midF32: undefined })).toBe(false);
    expect(intraKtTc16Fits({ ...base, bf16: undefined })).toBe(false);
    expect(() => intraKtTc16Wgsl({ ...base, K: 120, GK: 120 })).toThrow();
  });

  it('plans tc16Kt only where asked, tc16Applies, the Kt form runs and the kernel fits', () => {
    const dev = (sgm: boolean) => forwardDeviceFacts({ f16: sgm });
    const p = { H: 16, N: 1, K: 128, V: 128, GK: 128 };
    const o = { keep: false, out: true, bf16: true };
    const plan = (d: ReturnType<typeof dev>, t: object, shape = p, opts = o) => planChunkForward(d, shape, opts, t);
    expect(plan(dev(true), { tc16Kt: true }).tc16Kt).toBe(true);
    expect(plan(dev(true), { tc16Kt: true }).wu?.tc16).toBe(true);
    expect(plan(dev(true), {}).tc16Kt).toBe(false);
    expect(plan(dev(true), {}).wu?.tc16).toBeUndefined();
    expect(plan(dev(false), { tc16Kt: true }).tc16Kt).toBe(false);
    expect(plan(dev(true), { tc16Kt: true }, p, { ...o, bf16: false }).tc16Kt).toBe(false);
    expect(plan(dev(true), { tc16Kt: true, ktForm: false }).tc16Kt).toBe(false);
    expect(plan(dev(true), { tc16Kt: true, bf16Intermediates: 'bf16' }).tc16Kt).toBe(false);
    expect(plan(dev(true), { tc16Kt: true }, { ...p, K: 120, GK: 120 }).tc16Kt).toBe(false);
    expect(plan(dev(true), { tc16Kt: true, tc16KtChunks: 2 }).wu?.chunks).toBe(2);
    expect(plan(dev(true), { tc16Kt: true }).wu?.chunks).toBeUndefined();
    const small = { ...dev(true), limits: { ...dev(true).limits, maxComputeWorkgroupStorageSize: 32768 } };
    expect(plan(small, { tc16Kt: true, tc16KtChunks: 2 }).wu?.chunks).toBeUndefined();
    expect(plan(dev(true), { tc16KtChunks: 2 }).wu?.chunks).toBeUndefined();
  });
});
