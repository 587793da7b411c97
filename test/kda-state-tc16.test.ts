/**
 * The Kt form's state pass on f16 tensor cores (stateTc16.wgsl.ts, kdaForwardTuning.tc16State):
 *  - its plain-TS reference (stateTc16Reference.ts: f16 operands under power-of-two scales, f32 sums) against the
 *    f64 Kt-form step (ktFormReference.ts) over whole sequences of T = 1, 7, 63, 65 (one head, K = 128, V = 16),
 *    every per-chunk state, Y and the final state within 3e-3 of max |value|; with v times 1e4 .. 1e6, the initial
 *    state times 1e6 and k times 1e3 (Kb, Kt large; beta over 1e6, a stable delta rule) the same, every value finite (f16's range never reached);
 *  - the plan takes the kernel only where asked for, tc16Applies (bf16 inputs, f16 subgroup matrices) and the Kt
 *    form runs with the tiled pass (never in the shared pipeline);
 *  - its WGSL (exact and skeleton) compiles on lavapipe with the subgroup matrices stubbed (sgmStubWgsl).
 * The kernel itself is checked on the H200: bench kda --check --dtype bf16 --unsafe-apis --fwd-tc16-state on.
 */
import { describe, expect, it } from 'vitest';
import { type ForwardDevice, planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { ktChunkReference, ktStateChunkReference } from '../src/kernels/kda/ktFormReference.js';
import { stateTc16Bytes, stateTc16Wgsl, TC16_STATE_PROBES } from '../src/kernels/kda/stateTc16.wgsl.js';
import { stateTc16Emulate } from '../src/kernels/kda/stateTc16Emulate.js';
import { frexpExp, stateTc16ChunkReference } from '../src/kernels/kda/stateTc16Reference.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { randomCase } from './kda-random.js';
import { forwardDeviceFacts } from './kda-devices.js';

const [K, V] = [128, 16];

/** One head's sequence of T tokens through both state steps, chunk by chunk: states entering each chunk, Y, final S. */
function runSequence(T: number, vScale: number, sScale: number, kScale: number, seed: number) {
  const c = randomCase(seed, T, 1, K, V, K);
  const S0 = new Rng(seed + 1).normalArray(K * V, 0.5).map((x) => x * sScale);
  const exact = { hB: [] as number[], Y: [] as number[], S: Float64Array.from(S0) as ArrayLike<number> };
  const tc16 = { hB: [] as number[], Y: [] as number[], S: Float32Array.from(S0) as ArrayLike<number> };
  for (let t0 = 0; t0 < T; t0 += 64) {
    const L = Math.min(64, T - t0);
    const rows = (x: ArrayLike<number>, W: number, f = 1) =>
      Float64Array.from({ length: L * W }, (_, e) => x[t0 * W + e] * f);
    const gRows = rows(c.g, K);
    const gc = new Float64Array(L * K);
    for (let ch = 0; ch < K; ch++) for (let i = 0, a = 0; i < L; i++) gc[i * K + ch] = a += gRows[i * K + ch];
    const chunk = { L, K, V, q: rows(c.q, K), k: rows(c.k, K, kScale), v: rows(c.v, V, vScale), gc, GK: K };
    // beta / kScale^2: the delta rule's step beta |k|^2 as with unit k (stable), Kb and Kt kScale times larger.
    const beta = rows(c.beta, 1, kScale ** -2);
    const pre = ktChunkReference({ ...chunk, beta, scale: K ** -0.5 });
    const step = { L, K, V, Kb: pre.Kb, Kt: pre.Kt, v: chunk.v, beta, gcLast: pre.gcLast };
    exact.hB.push(...Array.from(exact.S));
    tc16.hB.push(...Array.from(tc16.S));
    const a = ktStateChunkReference({ ...step, S: exact.S });
    const b = stateTc16ChunkReference({ ...step, S: tc16.S });
    exact.Y.push(...a.Y);
    tc16.Y.push(...b.Y);
    exact.S = a.S;
    tc16.S = b.S;
  }
  return { exact, tc16 };
}

describe('kda state pass on f16 tensor cores (reference)', () => {
  it('frexpExp is the exponent of frexp', () => {
    for (const [x, e] of [
      [0, 0],
      [1, 1],
      [0.5, 0],
      [0.75, 0],
      [3, 2],
      [-4, 3],
      [1e-30, -99],
      [65504, 16],
    ])
      expect(frexpExp(x), String(x)).toBe(e);
  });

  for (const T of [1, 7, 63, 65])
    for (const [vScale, sScale, kScale] of [
      [1, 1, 1],
      [1e4, 1, 1],
      [1e6, 1e6, 1],
      [1e5, 1, 1e3],
    ])
      it(`T=${T}, v x ${vScale}, S0 x ${sScale}, k x ${kScale}: within 3e-3 of the f64 Kt form, finite`, () => {
        const { exact, tc16 } = runSequence(T, vScale, sScale, kScale, 40 + T);
        for (const [what, got, want] of [
          ['hB', tc16.hB, exact.hB],
          ['Y', tc16.Y, exact.Y],
          ['S', tc16.S, exact.S],
        ] as const) {
          expect(Array.from(got).every(Number.isFinite), `${what} finite`).toBe(true);
          expectClose(got, want, 3e-3, what);
        }
      });
});

describe('kda state pass on f16 tensor cores (work layout emulated)', () => {
  for (const T of [1, 7, 63, 65, 130])
    it(`T=${T}: the fragments, staging and lane maps give the reference's results (to f32 summation order)`, () => {
      const rng = new Rng(900 + T);
      const c = randomCase(800 + T, T, 1, K, V, K);
      // gc per chunk (cumulative from each chunk's first row), Kt of large and small rows and channels.
      const gc = new Float32Array(T * K);
      for (let i = 0; i < T; i++)
        for (let ch = 0; ch < K; ch++) gc[i * K + ch] = (i % 64 === 0 ? 0 : gc[(i - 1) * K + ch]) + c.g[i * K + ch];
      const Kt = rng.normalArray(T * K).map((x, e) => x * 10 ** ((e % 7) - 3));
      const v = c.v.map((x) => x * 1e3);
      const S0 = rng.normalArray(K * V, 1);
      const emu = stateTc16Emulate({ T, Kt, k: c.k, gc, v, beta: c.beta, S0 });
      // Each chunk from the state the emulation entered it with (hB), so that f32 summation order, which may flip
      // an f16 rounding of S16 or Y16, does not accumulate over chunks.
      expectClose(emu.hB[0], S0, 0, 'hB 0');
      for (let t0 = 0, j = 0; t0 < T; t0 += 64, j++) {
        const L = Math.min(64, T - t0);
        const rows = (x: ArrayLike<number>, W: number) => Float64Array.from({ length: L * W }, (_, e) => x[t0 * W + e]);
        const Kb = rows(c.k, K).map((x, e) => Math.fround(x * Math.fround(Math.exp(gc[t0 * K + e]))));
        const gcLast = Float64Array.from({ length: K }, (_, ch) => gc[(t0 + L - 1) * K + ch]);
        const S = emu.hB[j];
        const r = stateTc16ChunkReference({
          L,
          K,
          V,
          S,
          Kb,
          Kt: rows(Kt, K),
          v: rows(v, V),
          beta: rows(c.beta, 1),
          gcLast,
        });
        expectClose(emu.Y.subarray(t0 * V, (t0 + L) * V), r.Y, 1e-5, `Y ${j}`);
        expectClose(t0 + 64 < T ? emu.hB[j + 1] : emu.S, r.S, 5e-5, `S after ${j}`);
      }
    });
});

const device = (f16: boolean): ForwardDevice => forwardDeviceFacts({ f16 });

describe('kda state pass on f16 tensor cores (plan)', () => {
  const d128 = { H: 2, N: 1, K: 128, V: 128, GK: 128 };
  const bf16 = { keep: false, out: true, bf16: true };
  it('runs only where asked for, with f16 subgroup matrices, bf16 inputs and the Kt form', () => {
    expect(planChunkForward(device(true), d128, bf16, { tc16State: true }).tc16State).toBe(true);
    expect(planChunkForward(device(true), d128, bf16, { tc16State: true }).shared).toBe(false);
    expect(planChunkForward(device(true), d128, bf16, {}).tc16State).toBe(false);
    expect(planChunkForward(device(false), d128, bf16, { tc16State: true }).tc16State).toBe(false);
    expect(planChunkForward(device(true), d128, { ...bf16, bf16: false }, { tc16State: true }).tc16State).toBe(false);
    expect(planChunkForward(device(true), d128, bf16, { tc16State: true, ktForm: false }).tc16State).toBe(false);
    expect(planChunkForward(device(true), { ...d128, K: 64, GK: 64 }, bf16, { tc16State: true }).tc16State).toBe(false);
  });
  it('fits in 48 KiB', () => expect(stateTc16Bytes({ K: 128 })).toBeLessThanOrEqual(49152));
});

describe.skipIf(!hasGpu)('kda state pass on f16 tensor cores (WGSL, subgroup matrices stubbed)', () => {
  for (const probe of [undefined, ...TC16_STATE_PROBES])
    for (const bitScale of [false, true])
      it(`compiles (${probe ?? 'exact'}${bitScale ? ', bit scales' : ''})`, async () => {
        const gpu = await gpuContext();
        if (!gpu) throw new Error('no GPU');
        const code = sgmStubWgsl(stateTc16Wgsl({ K, V: 128, probe, bitScale }));
        expect(code).not.toMatch(/subgroupMatrix|subgroup_matrix/);
        const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
        expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
      });
});
