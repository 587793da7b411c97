/**
 * The chunked forward's Kt form (src/kernels/kda/ktFormReference.ts): V' = T Y, S_next = D S + Kt^T Y,
 * o = Qg S + M Y with Kt = T^T Kd, M = A_qk T, Y = Diag(beta) (V - exp(gc) K S). Plain TS (f64), no GPU:
 *  - per chunk, against the intra pass's W and U (intraReference.ts): T Y = U - W S, Kt^T Y = Kd^T V', M Y = A_qk V',
 *    to f64 rounding (1e-12 relative), on awkward chunk lengths and both gate widths;
 *  - the whole forward against the recurrence and against the chunked reference (1e-6: both f64 inside, o and S
 *    returned as f32), on packed sequences of awkward lengths with an initial state;
 *  - the golden fixtures' core cases within the chunked tolerance (2e-3, fixtures/golden/README.md).
 * And the WebGPU forward in the Kt form (kdaForwardTuning.ktForm: intraWUKt.wgsl.ts, stateTiled's ktForm, the
 * output pass on M and Y) on the same packed sequences, K16/V8 (the geometry the other KDA tests compile), against
 * this reference (f32 against f64: 1e-5 of max |value|) and against the usual GPU forward; with bf16 inputs (the
 * mixed mode) bit for bit its f32 run on the widened inputs, o rounded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { kdaCore } from '../src/kernels/kda/index.js';
import { intraChunkReference } from '../src/kernels/kda/intraReference.js';
import { kdaChunkKtReference, ktChunkReference, ktStateChunkReference } from '../src/kernels/kda/ktFormReference.js';
import { kdaChunkReference, kdaRecurrentReference } from '../src/kernels/kda/reference.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { uploadBatched, withDispatchKeys } from './kda-forward-run.js';
import { kdaGolden } from './kda-golden.js';
import { randomCase } from './kda-random.js';

describe('kda Kt form (reference)', () => {
  for (const GK of [16, 1]) {
    for (const L of [1, 7, 63, 64]) {
      it(`one chunk, L=${L}, GK=${GK}: T Y = U - W S, Kt^T Y = Kd^T V', M Y = A_qk V'`, () => {
        const [K, V] = [16, 8];
        const c = randomCase(100 + L, L, 1, K, V, GK);
        // gc: the chunk's cumulative log decay, as the gc pass gives it.
        const gc = new Float64Array(L * GK);
        for (let ch = 0; ch < GK; ch++) {
          for (let i = 0, acc = 0; i < L; i++) gc[i * GK + ch] = acc += c.g[i * GK + ch];
        }
        const chunk = { L, K, V, q: c.q, k: c.k, v: c.v, gc, GK, beta: c.beta, scale: K ** -0.5 };
        const S = new Rng(7).normalArray(K * V, 0.5);
        const { W, U, Aqk } = intraChunkReference(chunk);
        const pre = ktChunkReference(chunk);
        expect(Array.from(pre.Aqk)).toEqual(Array.from(Aqk));
        const { Y, S: Snext } = ktStateChunkReference({
          L,
          K,
          V,
          S,
          Kb: pre.Kb,
          Kt: pre.Kt,
          v: c.v,
          beta: c.beta,
          gcLast: pre.gcLast,
        });
        const g = (i: number, ch: number) => gc[GK === 1 ? i : i * K + ch];
        // The existing form: V' = U - W S, S_next = exp(gc_last) S + Kd^T V', A_qk V'.
        const Vp = new Float64Array(L * V);
        const TY = new Float64Array(L * V);
        const MY = new Float64Array(L * V);
        const AV = new Float64Array(L * V);
        for (let i = 0; i < L; i++) {
          for (let col = 0; col < V; col++) {
            let s = U[i * V + col];
            for (let r = 0; r < K; r++) s -= W[i * K + r] * S[r * V + col];
            Vp[i * V + col] = s;
            let t = Y[i * V + col];
            for (let j = 0; j < i; j++) t += pre.T[i * 64 + j] * Y[j * V + col];
            TY[i * V + col] = t;
          }
        }
        for (let i = 0; i < L; i++) {
          for (let col = 0; col < V; col++) {
            let a = 0;
            let m = 0;
            for (let j = 0; j <= i; j++) {
              a += Aqk[i * 64 + j] * Vp[j * V + col];
              m += pre.M[i * 64 + j] * Y[j * V + col];
            }
            AV[i * V + col] = a;
            MY[i * V + col] = m;
          }
        }
        const Sd = new Float64Array(K * V);
        for (let r = 0; r < K; r++) {
          for (let col = 0; col < V; col++) {
            let s = Math.exp(g(L - 1, r)) * S[r * V + col];
            for (let j = 0; j < L; j++) s += c.k[j * K + r] * Math.exp(g(L - 1, r) - g(j, r)) * Vp[j * V + col];
            Sd[r * V + col] = s;
          }
        }
        expectClose(TY, Vp, 1e-12, "T Y against V'");
        expectClose(Snext, Sd, 1e-12, 'S_next');
        expectClose(MY, AV, 1e-12, "M Y against A_qk V'");
        // M is lower triangular (the output pass reads j <= i only) and zero past row L.
        for (let i = 0; i < 64; i++) for (let j = i + 1; j < 64; j++) expect(pre.M[i * 64 + j]).toBe(0);
        for (let i = L; i < 64; i++) for (let j = 0; j < 64; j++) expect(pre.M[i * 64 + j]).toBe(0);
      });
    }
  }

  it('whole forward on packed sequences 1, 7, 63, 65, 130 from an initial state: the recurrence and the chunked reference', () => {
    const lens = [1, 7, 63, 65, 130];
    const cu = [0];
    for (const l of lens) cu.push(cu[cu.length - 1] + l);
    const T = cu[cu.length - 1];
    for (const GK of [16, 1]) {
      const [H, K, V] = [2, 16, 8];
      const c = randomCase(31 + GK, T, H, K, V, GK);
      const S0 = new Rng(9).normalArray(lens.length * H * K * V, 0.5);
      const d = { H, K, V, GK, cu };
      const got = kdaChunkKtReference(c.q, c.k, c.v, c.g, c.beta, d, K ** -0.5, S0);
      const rec = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, d, K ** -0.5, S0);
      const chk = kdaChunkReference(c.q, c.k, c.v, c.g, c.beta, d, K ** -0.5, S0);
      expectClose(got.o, rec.o, 1e-6, `o against the recurrence (GK=${GK})`);
      expectClose(got.S, rec.S, 1e-6, `S against the recurrence (GK=${GK})`);
      expectClose(got.o, chk.o, 1e-6, `o against the chunked reference (GK=${GK})`);
      expectClose(got.S, chk.S, 1e-6, `S against the chunked reference (GK=${GK})`);
    }
  });

  it('golden core cases (kda-op.safetensors) within the chunked tolerance 2e-3', async () => {
    const golden = await kdaGolden();
    for (const cs of ['a', 'b']) {
      const x = (n: string) => golden.get(`${cs}.core.${n}`);
      const [B, T, H, K] = x('q').shape;
      const V = x('v').shape[3];
      const cu = Array.from({ length: B + 1 }, (_, i) => i * T);
      const r = kdaChunkKtReference(
        x('q').data,
        x('k').data,
        x('v').data,
        x('g').data,
        x('beta').data,
        { H, K, V, GK: K, cu },
        K ** -0.5,
      );
      expectClose(r.o, x('o').data, 2e-3, `${cs}.core.o`);
      expectClose(r.S, x('S').data, 2e-3, `${cs}.core.S`);
    }
  });

  afterEach(() => {
    kdaForwardTuning.ktForm = undefined;
    kdaForwardTuning.bf16Intermediates = undefined;
    kdaForwardTuning.stateRwOperands = undefined;
    kdaForwardTuning.rw = undefined;
  });

  it.skipIf(!hasGpu)(
    'webgpu forward in the Kt form: the reference, the usual forward, bf16 inputs; keep refused',
    async () => {
      const gpu = (await gpuContext())!;
      const lens = [1, 7, 63, 65, 130];
      const cu = [0];
      for (const l of lens) cu.push(cu[cu.length - 1] + l);
      const T = cu[cu.length - 1];
      const [H, K, V, N] = [2, 16, 8, lens.length];
      const c = randomCase(53, T, H, K, V);
      const S0 = new Rng(11).normalArray(N * H * K * V, 0.5);
      const want = kdaChunkKtReference(c.q, c.k, c.v, c.g, c.beta, { H, K, V, GK: K, cu }, K ** -0.5, S0);
      const x = uploadBatched(gpu, c, c);
      const opts = {
        mode: 'chunk' as const,
        cuSeqlens: gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
        initialState: gpu.fromHost(S0, [N, H, K, V]),
      };
      kdaForwardTuning.ktForm = true;
      const r = await withDispatchKeys(gpu, async () => kdaCore(x.q, x.k, x.v, x.g, x.beta, opts));
      for (const name of ['kda_chunk_intra_wu', 'kda_chunk_state_tiled'])
        expect(
          r.keys.some((k) => k.startsWith(name) && k.includes('_kt')),
          r.keys.join(', '),
        ).toBe(true);
      const o = await r.o.toFloat32();
      const S = await r.finalState!.toFloat32();
      expectClose(o, want.o, 1e-5, 'o against the reference');
      expectClose(S, want.S, 1e-5, 'final state against the reference');
      expect(() => kdaCore(x.q, x.k, x.v, x.g, x.beta, { ...opts, saveForBackward: true })).toThrow(/forward only/);
      // Kt and v bound read_write (kdaForwardTuning.stateRwOperands): the same results, bit for bit.
      kdaForwardTuning.stateRwOperands = true;
      const rw = kdaCore(x.q, x.k, x.v, x.g, x.beta, opts);
      kdaForwardTuning.stateRwOperands = undefined;
      expect(Array.from(await rw.o.toFloat32())).toEqual(Array.from(o));
      expect(Array.from(await rw.finalState!.toFloat32())).toEqual(Array.from(S));
      for (const t of [rw.o, rw.finalState]) t?.dispose();
      // Every input read_write (kdaForwardTuning.rw: the state pass's Kt, v, k, gc once as vec4, beta; the Kt
      // kernel's; the output pass's): the same results, bit for bit.
      kdaForwardTuning.rw = ['state', 'wu', 'output'];
      const all = await withDispatchKeys(gpu, async () => kdaCore(x.q, x.k, x.v, x.g, x.beta, opts)).finally(() => {
        kdaForwardTuning.rw = undefined;
      });
      const rwKeys = all.keys;
      expect(rwKeys.some((k) => k.startsWith('kda_chunk_state_tiled') && k.includes('_kt') && k.includes('_rwi'))).toBe(
        true,
      );
      expect(rwKeys.some((k) => k.startsWith('kda_chunk_intra_wu') && k.endsWith('_kt_rw'))).toBe(true);
      expect(Array.from(await all.o.toFloat32())).toEqual(Array.from(o));
      expect(Array.from(await all.finalState!.toFloat32())).toEqual(Array.from(S));
      for (const t of [all.o, all.finalState]) t?.dispose();
      kdaForwardTuning.ktForm = undefined;
      const f = kdaCore(x.q, x.k, x.v, x.g, x.beta, opts);
      expectClose(o, await f.o.toFloat32(), 1e-5, 'o against the usual forward');
      expectClose(S, await f.finalState!.toFloat32(), 1e-5, 'final state against the usual forward');
      // bf16 inputs (the mixed mode: f32 intermediates): the Kt form's f32 forward on the widened values, o rounded,
      // bit for bit (each kernel widens its bf16 loads exactly and computes as its f32 variant).
      const bits = { q: f32ArrayToBf16(c.q), k: f32ArrayToBf16(c.k), v: f32ArrayToBf16(c.v), g: f32ArrayToBf16(c.g) };
      const xb = {
        q: gpu.fromHost(bits.q, [1, T, H, K], 'bf16'),
        k: gpu.fromHost(bits.k, [1, T, H, K], 'bf16'),
        v: gpu.fromHost(bits.v, [1, T, H, V], 'bf16'),
        g: gpu.fromHost(bits.g, [1, T, H, K], 'bf16'),
      };
      const xw = {
        q: gpu.fromHost(bf16ArrayToF32(bits.q), [1, T, H, K]),
        k: gpu.fromHost(bf16ArrayToF32(bits.k), [1, T, H, K]),
        v: gpu.fromHost(bf16ArrayToF32(bits.v), [1, T, H, V]),
        g: gpu.fromHost(bf16ArrayToF32(bits.g), [1, T, H, K]),
      };
      kdaForwardTuning.ktForm = true;
      kdaForwardTuning.bf16Intermediates = 'f32';
      const rb = await withDispatchKeys(gpu, async () => kdaCore(xb.q, xb.k, xb.v, xb.g, x.beta, opts));
      for (const name of ['kda_chunk_intra_wu', 'kda_chunk_state_tiled'])
        expect(
          rb.keys.some((k) => k.startsWith(name) && k.includes('_bf16') && k.includes('_kt')),
          rb.keys.join(', '),
        ).toBe(true);
      const fw = kdaCore(xw.q, xw.k, xw.v, xw.g, x.beta, opts);
      expect(Array.from(await rb.o.read())).toEqual(Array.from(f32ArrayToBf16(await fw.o.toFloat32())));
      expect(Array.from(await rb.finalState!.read())).toEqual(Array.from(await fw.finalState!.read()));
      for (const t of [...Object.values(xb), ...Object.values(xw), rb.o, rb.finalState, fw.o, fw.finalState])
        t?.dispose();
      for (const t of [...Object.values(x), r.o, r.finalState, f.o, f.finalState, opts.cuSeqlens, opts.initialState])
        t?.dispose();
    },
  );

  // ~100 s of shader compiles on lavapipe at K = 96: opt-in (KIMI_SLOW_TESTS=1); the plan's choice for these shapes
  // is checked without a GPU in kda-forward-plan.test.ts.
  it.skipIf(!hasGpu || process.env.KIMI_SLOW_TESTS !== '1')(
    'webgpu forward at K = 96 (K / 4 does not divide the 256 threads: Kd from the gc pass), the usual form and the Kt form',
    async () => {
      const gpu = (await gpuContext())!;
      const cu = [0, 1, 66];
      const [H, K, V, N, T] = [1, 96, 8, 2, 66];
      const c = randomCase(59, T, H, K, V);
      const S0 = new Rng(13).normalArray(N * H * K * V, 0.5);
      const want = kdaChunkReference(c.q, c.k, c.v, c.g, c.beta, { H, K, V, GK: K, cu }, K ** -0.5, S0);
      const x = uploadBatched(gpu, c, c);
      const opts = {
        mode: 'chunk' as const,
        cuSeqlens: gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
        initialState: gpu.fromHost(S0, [N, H, K, V]),
      };
      // The default path on this adapter, then the Kt form (whose state pass reads gc per row).
      for (const kt of [undefined, true]) {
        kdaForwardTuning.ktForm = kt;
        const r = kdaCore(x.q, x.k, x.v, x.g, x.beta, opts);
        expectClose(await r.o.toFloat32(), want.o, 1e-5, `o (ktForm ${kt})`);
        expectClose(await r.finalState!.toFloat32(), want.S, 1e-5, `final state (ktForm ${kt})`);
        for (const t of [r.o, r.finalState]) t?.dispose();
      }
      for (const t of [...Object.values(x), opts.cuSeqlens, opts.initialState]) t?.dispose();
    },
  );
});
