/**
 * The mixed mode's per-chunk states hB in bf16 (kdaForwardTuning.hbBf16): bf16 inputs with f32 intermediates, the
 * tiled state pass storing hB rounded to bf16 (StateTiledVariant.hbBf16) and the output pass reading it so
 * (OutputPipelinedVariant.hbBf16, OutputTc16Variant.hbBf16). K16/V8 on lavapipe, T = 1, 7, 63, 65, 130 and a varlen
 * batch with an empty sequence:
 *  - the state pass alone (the Kd-from-k form and the Kt form) against its mixed-mode variant on the same inputs:
 *    the final state and V' (Y) bit for bit, hB that variant's rounded to bf16 (f32ToBf16Bits) bit for bit;
 *  - the pipelined output pass alone on a bf16 hB against its mixed-mode variant on the widened hB: o bit for bit,
 *    and against the plain-TS reference (outputChunkReference on the chunk with S rounded, bf16State) within o's
 *    bf16 rounding;
 *  - the f16 tensor-core output pass (no tensor cores on lavapipe): its emulation on the rounded state within the
 *    bound of its reference widened by bf16's rounding of S, and its hbBf16 variants' WGSL compiled through the
 *    subgroup-matrix stand-ins;
 *  - the whole forward with bf16 inputs (both state forms), against the plain-TS references with hB rounded
 *    (kdaChunkKtReference / kdaChunkReference with hbBf16) and against itself with hbBf16 off (the final state bit
 *    for bit: the carried state is never rounded);
 *  - the plan: where the option applies.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { groupParams, kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { type ForwardDevice, planChunkForward } from '../src/kernels/kda/forwardPlan.js';
import { kdaCore } from '../src/kernels/kda/index.js';
import { kdaChunkKtReference } from '../src/kernels/kda/ktFormReference.js';
import {
  type OutputPipelinedVariant,
  outputPipelinedBV,
  outputPipelinedGrid,
  outputPipelinedKey,
  outputPipelinedWgsl,
} from '../src/kernels/kda/outputPipelined.wgsl.js';
import { bf16State, type OutputChunk, outputChunkReference } from '../src/kernels/kda/outputReference.js';
import { type OutputTc16Variant, outputTc16Key, outputTc16Wgsl } from '../src/kernels/kda/outputTc16.wgsl.js';
import { outputTc16Bound, outputTc16Emulate } from '../src/kernels/kda/outputTc16Reference.js';
import { kdaChunkReference } from '../src/kernels/kda/reference.js';
import { type StateTiledVariant, stateTiledKey, stateTiledWgsl } from '../src/kernels/kda/stateTiled.wgsl.js';
import { sgmStubWgsl } from '../src/kernels/subgroupMatrixStub.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { forwardDeviceFacts } from './kda-devices.js';
import { withDispatchKeys } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

const [H, K, V] = [2, 16, 8];
const CUS = [
  [0, 1],
  [0, 7],
  [0, 63],
  [0, 65],
  [0, 130],
  [0, 5, 75, 75, 133],
] as const;

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

/** Chunk slots in use (chunk.wgsl.ts numbering): each sequence's chunks from floor(cu[s] / 64) + s. */
function usedSlots(cu: readonly number[]): number[] {
  const used: number[] = [];
  for (let n = 0; n + 1 < cu.length; n++)
    for (let j = 0; j * 64 < cu[n + 1] - cu[n]; j++) used.push(Math.floor(cu[n] / 64) + n + j);
  return used;
}

/** Raw bits: a bf16 tensor's Uint16 patterns, an f32 one's as Uint32. */
async function bits(t: { read(): Promise<ArrayLike<number>>; dtype: string }): Promise<Uint16Array | Uint32Array> {
  const a = await t.read();
  return t.dtype === 'bf16' ? (a as Uint16Array) : new Uint32Array((a as Float32Array).slice().buffer);
}

/** f32 bit patterns rounded to bf16 as f32ToBf16Bits does. */
const roundBits = (a: Uint32Array) => f32ArrayToBf16(new Float32Array(a.buffer, a.byteOffset, a.length));

/**
 * The tiled state pass alone in the mixed mode (bf16 and midF32: k, and in the Kt form v, read as bf16; W or Kt, U,
 * gc, beta f32) over sequences bounded by cu, variant tv: the final state, V' (Y) and the used slots' hB, as raw bits
 * (hB bf16 where tv.hbBf16).
 */
async function stateAlone(tv: StateTiledVariant, cu: readonly number[], seed: number) {
  const gpu = (await gpuContext())!;
  const rng = new Rng(seed);
  const N = cu.length - 1;
  const T = cu[N];
  const NS = Math.floor(T / 64) + N;
  const W = rng.normalArray(T * H * K, 0.3);
  const U = rng.normalArray(T * H * V, 1);
  const kb = f32ArrayToBf16(rng.normalArray(T * H * K, 0.3));
  const vb = f32ArrayToBf16(rng.normalArray(T * H * V, 1));
  const beta = rng.uniformArray(T * H, 0, 1);
  // A cumulative log decay: <= 0 (the values need not be a chunk's cumsum for the comparison).
  const gc = rng.uniformArray(T * H * K, -2, 0);
  const S0 = rng.normalArray(N * H * K * V, 0.5);
  const gcT = gpu.fromHost(gc, [T, H, K]);
  const cuT = gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32');
  const k = gpu.fromHost(kb, [T, H, K], 'bf16');
  const ins = tv.ktForm
    ? [cuT, gpu.fromHost(W, [T, H, K]), gpu.fromHost(vb, [T, H, V], 'bf16'), k, gcT, gcT, gpu.fromHost(beta, [T, H])]
    : [cuT, gpu.fromHost(W, [T, H, K]), gpu.fromHost(U, [T, H, V]), k, gcT, gcT];
  const state = gpu.fromHost(S0, [N, H, K, V]);
  const h = gpu.empty([NS, H, K, V], tv.hbBf16 ? 'bf16' : 'f32');
  const Vp = gpu.empty([T, H, V]);
  gpu.dispatch({
    kernel: { name: 'kda_chunk_state', key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) },
    tensors: [...ins, state, h, Vp],
    params: groupParams({ Ttot: T, N, H, K, V, GK: K, B: 1, T }, K ** -0.5, { h0: 0, HB: H }),
    workgroups: [V / tv.BV, H, N],
  });
  const hAll = await bits(h);
  const per = H * K * V;
  const used = usedSlots(cu);
  const hUsed = tv.hbBf16 ? new Uint16Array(used.length * per) : new Uint32Array(used.length * per);
  for (const [i, s] of used.entries()) hUsed.set(hAll.subarray(s * per, (s + 1) * per), i * per);
  const out = { S: await bits(state), Vp: await bits(Vp), h: hUsed };
  for (const t of new Set([...ins, state, h, Vp])) t.dispose();
  return out;
}

describe('kda mixed mode, hB in bf16: the tiled state pass', () => {
  const base: StateTiledVariant = { K, V, GK: K, BV: 8, RA: 2, wg: 256, bf16: true, midF32: true };
  for (const [form, tv] of [
    ['Kd from k', { ...base, kdFromK: true }],
    ['Kt form', { ...base, ktForm: true }],
  ] as const) {
    it.skipIf(!hasGpu)(
      `${form}: final state and V' bit for bit, hB the f32 one's rounded to bf16 (idle-thread stores and not)`,
      { timeout: 300_000 },
      async () => {
        // Stores by the idle threads by default where hB is bf16 (stateTiledIdleStores), and by the computing ones.
        const hvs = [
          { ...tv, hbBf16: true },
          { ...tv, hbBf16: true, idleStores: false },
        ];
        expect(stateTiledKey(hvs[0])).toContain('_m32_hb16');
        expect(stateTiledKey(hvs[0])).toMatch(/_is$/);
        expect(stateTiledKey(hvs[1])).not.toMatch(/_is$/);
        expect(stateTiledKey(tv)).not.toMatch(/_hb16|_is$/);
        for (const [i, cu] of CUS.entries()) {
          const hv = hvs[i % 2];
          const seed = cu[cu.length - 1] + 60;
          const [f, b] = [await stateAlone(tv, cu, seed), await stateAlone(hv, cu, seed)];
          const what = `${stateTiledKey(hv)}, cu=${cu}`;
          expect(Array.from(b.S), `final state, ${what}`).toEqual(Array.from(f.S));
          expect(Array.from(b.Vp), `V', ${what}`).toEqual(Array.from(f.Vp));
          const want = roundBits(f.h as Uint32Array);
          // The f32 states are not bf16-representable already: the comparison sees the rounding.
          expect(want.some((x, i) => (x << 16) >>> 0 !== (f.h as Uint32Array)[i])).toBe(true);
          expect(Array.from(b.h), `hB, ${what}`).toEqual(Array.from(want));
        }
      },
    );
  }

  it('hbBf16 needs bf16 inputs; in the storage mode it changes nothing (hB is bf16 there anyway)', () => {
    expect(() => stateTiledWgsl({ ...base, bf16: undefined, midF32: undefined, kdFromK: true, hbBf16: true })).toThrow(
      /hbBf16 needs bf16/,
    );
    const storage = { ...base, midF32: undefined, kdFromK: true };
    expect(stateTiledWgsl({ ...storage, hbBf16: true })).toBe(stateTiledWgsl(storage));
    expect(stateTiledKey({ ...storage, hbBf16: true })).toBe(stateTiledKey(storage));
  });
});

/** A random chunk of L rows for the output pass (OutputChunk): A_qk lower triangular, gc a decreasing cumsum. */
function outputChunk(L: number, Kc: number, Vc: number, seed: number): OutputChunk {
  const r = new Rng(seed);
  const gc = new Array<number>(L * Kc);
  const steps = r.uniformArray(L * Kc, -0.1, 0);
  for (let k = 0; k < Kc; k++) for (let i = 0, acc = 0; i < L; i++) gc[i * Kc + k] = acc += steps[i * Kc + k];
  const A = r.normalArray(64 * 64, 0.3);
  for (let i = 0; i < 64; i++) for (let j = i + 1; j < 64; j++) A[i * 64 + j] = 0;
  return {
    L,
    K: Kc,
    V: Vc,
    q: bf16ArrayToF32(f32ArrayToBf16(r.normalArray(L * Kc, 1))),
    gc,
    GK: Kc,
    S: r.normalArray(Kc * Vc, 1),
    Aqk: A,
    Vp: r.normalArray(L * Vc, 1),
    scale: Kc ** -0.5,
  };
}

/**
 * The pipelined output pass alone, variant pv (bf16, midF32), over sequences bounded by cu: q bf16, gc, V', A_qk f32;
 * hB as bf16 where pv.hbBf16 (the states' bits rounded), else f32 holding the same (widened) values. Returns o's
 * bf16 bits and the chunks it was given (each slot's OutputChunk with the f32 S, for the reference).
 */
async function outputAlone(pv: OutputPipelinedVariant, cu: readonly number[], seed: number) {
  const gpu = (await gpuContext())!;
  const N = cu.length - 1;
  const T = cu[N];
  const NS = Math.floor(T / 64) + N;
  const q = new Float32Array(T * H * K);
  const gc = new Float32Array(T * H * K);
  const Vp = new Float32Array(T * H * V);
  const Aqk = new Float32Array(NS * H * 64 * 64);
  const S = new Float32Array(NS * H * K * V);
  const chunks: { t0: number; h: number; c: OutputChunk }[] = [];
  for (let n = 0; n < N; n++)
    for (let j = 0, t0 = cu[n]; t0 < cu[n + 1]; j++, t0 += 64) {
      const slot = Math.floor(cu[n] / 64) + n + j;
      const L = Math.min(64, cu[n + 1] - t0);
      for (let h = 0; h < H; h++) {
        const c = outputChunk(L, K, V, seed + 100 * slot + h);
        chunks.push({ t0, h, c });
        for (let i = 0; i < L; i++) {
          for (let k = 0; k < K; k++) {
            q[((t0 + i) * H + h) * K + k] = c.q[i * K + k];
            gc[((t0 + i) * H + h) * K + k] = c.gc[i * K + k];
          }
          for (let x = 0; x < V; x++) Vp[((t0 + i) * H + h) * V + x] = c.Vp[i * V + x];
        }
        Aqk.set(Float32Array.from(c.Aqk), (slot * H + h) * 4096);
        S.set(Float32Array.from(c.S), (slot * H + h) * K * V);
      }
    }
  const Sb = f32ArrayToBf16(S);
  const ts = [
    gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
    gpu.fromHost(f32ArrayToBf16(q), [T, H, K], 'bf16'),
    gpu.fromHost(gc, [T, H, K]),
    pv.hbBf16 ? gpu.fromHost(Sb, [NS, H, K, V], 'bf16') : gpu.fromHost(bf16ArrayToF32(Sb), [NS, H, K, V]),
    gpu.fromHost(Vp, [T, H, V]),
    gpu.fromHost(Aqk, [NS, H, 64, 64]),
  ];
  const o = gpu.empty([T, H, V], 'bf16');
  gpu.dispatch({
    kernel: { name: 'kda_chunk_output', key: outputPipelinedKey(pv), code: () => outputPipelinedWgsl(pv) },
    tensors: [...ts, o],
    params: groupParams({ Ttot: T, N, H, K, V, GK: K, B: 1, T }, K ** -0.5, { h0: 0, HB: H }),
    workgroups: outputPipelinedGrid(pv, NS, Math.ceil(V / outputPipelinedBV(V, pv.BV)), H),
  });
  const ob = (await o.read()) as Uint16Array;
  for (const t of [...ts, o]) t.dispose();
  return { o: ob, chunks };
}

describe('kda mixed mode, hB in bf16: the output passes', () => {
  const pv: OutputPipelinedVariant = { K, V, GK: K, bf16: true, midF32: true };

  it.skipIf(!hasGpu)(
    "pipelined: o = the f32-hB variant's on the widened hB, bit for bit, and the reference's within o's rounding",
    { timeout: 300_000 },
    async () => {
      const hv = { ...pv, hbBf16: true };
      expect(outputPipelinedKey(hv)).toMatch(/_m32_hb16$/);
      expect(outputPipelinedWgsl(hv)).toMatch(/hB: array<vec2<u32>>/);
      for (const cu of CUS) {
        const seed = cu[cu.length - 1] + 70;
        const [f, b] = [await outputAlone(pv, cu, seed), await outputAlone(hv, cu, seed)];
        expect(Array.from(b.o), `o, cu=${cu}`).toEqual(Array.from(f.o));
        const got = bf16ArrayToF32(b.o);
        for (const { t0, h, c } of b.chunks) {
          const want = outputChunkReference(bf16State(c));
          const row = Float32Array.from(
            { length: c.L * V },
            (_, e) => got[((t0 + Math.floor(e / V)) * H + h) * V + (e % V)],
          );
          // o's bf16 rounding (2^-9 relative) and f32 sums.
          for (let e = 0; e < row.length; e++)
            expect(Math.abs(row[e] - want[e]), `o[${e}], t0=${t0}, h=${h}, cu=${cu}`).toBeLessThanOrEqual(
              2 ** -8 * Math.abs(want[e]) + 1e-5,
            );
        }
      }
    },
  );

  it('tensor cores (emulated): o on the rounded hB within the reference bound widened by bf16 rounding of S', () => {
    for (const T of [1, 7, 63, 64, 65, 130]) {
      for (let t0 = 0, n = 0; t0 < T; t0 += 64, n++) {
        const c = outputChunk(Math.min(64, T - t0), 128, 128, 5000 + 10 * T + n);
        const exact = outputChunkReference(c);
        const bound = outputTc16Bound(c, { hbBf16: true });
        let worst = 0;
        for (const subgroups of [8, 16] as const) {
          const got = outputTc16Emulate(bf16State(c), subgroups);
          for (let i = 0; i < exact.length; i++) {
            expect(Number.isFinite(got[i])).toBe(true);
            worst = Math.max(worst, Math.abs(got[i] - exact[i]) / bound[i]);
          }
          // The rounding of S is seen: o differs from the emulation on the unrounded state.
          const f16Only = outputTc16Emulate(c, subgroups);
          expect(got.some((y, i) => y !== f16Only[i])).toBe(true);
        }
        expect(worst, `T=${T}, chunk ${n}`).toBeLessThanOrEqual(1);
      }
    }
  });

  it.skipIf(!hasGpu)('tensor cores: the hbBf16 variants compile (subgroup matrices stood in)', async () => {
    const gpu = await gpuContext();
    if (!gpu?.features.shaderF16 || !gpu.features.subgroups) return;
    for (const v of [
      { K: 128, V: 128, GK: 128, hbBf16: true },
      { K: 128, V: 128, GK: 128, hbBf16: true, pad: true, wg: 512 },
      { K: 64, V: 64, GK: 64, hbBf16: true, split: true, rw: true },
      { K: 128, V: 128, GK: 128, hbBf16: true, probe: 'loads' },
    ] as OutputTc16Variant[]) {
      expect(outputTc16Key(v)).toContain('_hb16');
      const code = sgmStubWgsl(outputTc16Wgsl(v));
      expect(code).toMatch(/hB: array<vec2<u32>>/);
      const info = await gpu.device.createShaderModule({ code }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    }
  });
});

describe('kda mixed mode, hB in bf16: the whole forward', () => {
  it.skipIf(!hasGpu)(
    'both state forms: the references with hB rounded; the final state = hbBf16 off, bit for bit',
    { timeout: 600_000 },
    async () => {
      const gpu = (await gpuContext())!;
      const lens = [1, 7, 63, 65, 130];
      const cu = [0];
      for (const l of lens) cu.push(cu[cu.length - 1] + l);
      const T = cu[cu.length - 1];
      const N = lens.length;
      const c = randomCase(71, T, H, K, V);
      const b = { q: f32ArrayToBf16(c.q), k: f32ArrayToBf16(c.k), v: f32ArrayToBf16(c.v), g: f32ArrayToBf16(c.g) };
      const w = { q: bf16ArrayToF32(b.q), k: bf16ArrayToF32(b.k), v: bf16ArrayToF32(b.v), g: bf16ArrayToF32(b.g) };
      const S0 = new Rng(72).normalArray(N * H * K * V, 0.5);
      const x = {
        q: gpu.fromHost(b.q, [1, T, H, K], 'bf16'),
        k: gpu.fromHost(b.k, [1, T, H, K], 'bf16'),
        v: gpu.fromHost(b.v, [1, T, H, V], 'bf16'),
        g: gpu.fromHost(b.g, [1, T, H, K], 'bf16'),
      };
      const beta = gpu.fromHost(c.beta, [1, T, H]);
      const opts = {
        mode: 'chunk' as const,
        cuSeqlens: gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
        initialState: gpu.fromHost(S0, [N, H, K, V]),
      };
      const d = { H, K, V, GK: K, cu };
      for (const ktForm of [true, false]) {
        const ref = (hbBf16: boolean) =>
          ktForm
            ? kdaChunkKtReference(w.q, w.k, w.v, w.g, c.beta, d, K ** -0.5, S0, { hbBf16 })
            : kdaChunkReference(w.q, w.k, w.v, w.g, c.beta, d, K ** -0.5, S0, undefined, { hbBf16 });
        const run = async (hbBf16: boolean) => {
          Object.assign(kdaForwardTuning, { ktForm, bf16Intermediates: 'f32', hbBf16 });
          const r = await withDispatchKeys(gpu, async () => kdaCore(x.q, x.k, x.v, x.g, beta, opts));
          const out = { o: await r.o.toFloat32(), S: await r.finalState!.read(), keys: r.keys };
          for (const t of [r.o, r.finalState]) t?.dispose();
          return out;
        };
        const [on, off] = [await run(true), await run(false)];
        const what = `ktForm ${ktForm}`;
        for (const name of ['kda_chunk_state_tiled', 'kda_chunk_output'])
          expect(
            on.keys.some((k) => k.startsWith(name) && k.includes('_hb16')),
            `${name} with _hb16 (${what}): ${on.keys.join(', ')}`,
          ).toBe(true);
        expect(off.keys.some((k) => k.includes('_hb16'))).toBe(false);
        expect(Array.from(on.S), `final state = off (${what})`).toEqual(Array.from(off.S));
        // o is bf16 (2^-9 relative) on hB rounded to bf16 (2^-9 of its part): the reference with hB rounded.
        const want = ref(true);
        expectClose(on.o, want.o, 4e-3, `o against the reference with hB rounded (${what})`);
        expectClose(off.o, ref(false).o, 4e-3, `o (off) against the reference (${what})`);
        // The rounding happened: o differs from the off run's.
        expect(
          on.o.some((y, i) => y !== off.o[i]),
          `o differs from off (${what})`,
        ).toBe(true);
      }
      for (const t of [...Object.values(x), beta, opts.cuSeqlens, opts.initialState]) t.dispose();
    },
  );
});

describe('kda mixed mode, hB in bf16: the plan', () => {
  const d128 = { H: 2, N: 1, K: 128, V: 128, GK: 128 };
  const bf16 = { keep: false, out: true, bf16: true };
  const plan = (dev: ForwardDevice, o = bf16, t = {}) => planChunkForward(dev, d128, o, { hbBf16: true, ...t });
  it('the default on GPUs (hbBf16ByDefault), not on a software adapter (the mixed mode stays the f32 forward)', () => {
    const none = (dev: ForwardDevice) => planChunkForward(dev, d128, bf16, {});
    expect(none(forwardDeviceFacts({ f16: true })).hbBf16).toBe(true);
    expect(none(forwardDeviceFacts({ f16: false })).hbBf16).toBe(true);
    expect(planChunkForward(forwardDeviceFacts(), d128, bf16, { hbBf16: false }).hbBf16).toBe(false);
    // A lavapipe-like adapter (32 KiB: the tiled state pass at K16/V8, the suite's shapes): off unless asked for.
    const lp = forwardDeviceFacts({ hardware: false });
    const small = { H: 2, N: 1, K: 16, V: 8, GK: 16 };
    expect(planChunkForward(lp, small, bf16, {}).hbBf16).toBe(false);
    expect(planChunkForward(lp, small, bf16, { hbBf16: true }).hbBf16).toBe(true);
  });
  it('applies in the mixed mode on the inference path, to the state pass and both output passes', () => {
    for (const f16 of [true, false]) {
      const p = plan(forwardDeviceFacts({ f16 }));
      expect(p.hbBf16).toBe(true);
      expect(p.tc16Output).toBe(f16);
      expect([p.tv.hbBf16, p.pv.hbBf16, p.tc16o.hbBf16]).toEqual([true, true, true]);
      expect(p.bf16Kernels).toBe(true);
    }
    // The W | U form too (Kd from k).
    expect(plan(forwardDeviceFacts(), bf16, { ktForm: false }).hbBf16).toBe(true);
  });
  it('not in f32, the storage mode, with keep, off, or where its kernels do not run', () => {
    const dev = forwardDeviceFacts({ f16: true });
    const no = (o: typeof bf16, t = {}) => {
      const p = plan(dev, o, t);
      expect(p.hbBf16).toBe(false);
      expect([p.tv.hbBf16, p.pv.hbBf16, p.tc16o.hbBf16]).toEqual([undefined, undefined, undefined]);
    };
    no({ ...bf16, bf16: false });
    no(bf16, { bf16Intermediates: 'bf16' });
    no({ ...bf16, keep: true });
    no({ ...bf16, out: false });
    no(bf16, { hbBf16: false });
    no(bf16, { tc16State: true });
    no(bf16, { stateProbe: 'nohb' });
    no(bf16, { sharedOutput: true });
  });
});
