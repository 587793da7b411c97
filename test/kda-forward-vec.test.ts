/**
 * The chunked forward's kernel variants (chunk.ts kdaForwardTuning) against the f64 recurrent reference:
 * the vec4 intra pass (gc.wgsl.ts + intraVec.wgsl.ts, the default where K % 16 == 0 and V % 4 == 0) and the
 * scalar one it replaces on those shapes (outputs, against each other too); at K = 64, V = 128 every intermediate
 * of the vec4 pass that the later passes and the backward read, against the f64 intra reference. T not a multiple
 * of the chunk (1, 7, 63, 65, 130), a per-head gate (GK = 1), and a varlen batch with an empty sequence. The pipelined output pass alone (outputPipelined.wgsl.ts) in its layout variants
 * against its f64 reference (outputReference.ts) and the default layout; its bf16 storage variant
 * (OutputPipelinedVariant.bf16: q, hB, V' in, o out as bf16) against its f32 variant on bf16-representable inputs:
 * o the f32 variant's rounded to bf16 (f32ToBf16Bits) bit for bit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { dispatchChunkForward, groupParams, kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import {
  type OutputPipelinedVariant,
  outputPipelinedBV,
  outputPipelinedFits,
  outputPipelinedGrid,
  outputPipelinedKey,
  outputPipelinedWgsl,
} from '../src/kernels/kda/outputPipelined.wgsl.js';
import { intraChunkReference } from '../src/kernels/kda/intraReference.js';
import { outputChunkReference } from '../src/kernels/kda/outputReference.js';
import { kdaCore, kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { cuTensor } from '../src/kernels/kda/slots.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { uploadPacked } from './kda-forward-run.js';
import { randomCase } from './kda-random.js';

afterEach(() => {
  kdaForwardTuning.intra = undefined;
});

async function chunked(
  c: ReturnType<typeof randomCase>,
  cu: number[],
  S0: Float32Array,
): Promise<{ o: Float32Array; S: Float32Array }> {
  const gpu = (await gpuContext())!;
  const { T, H, K, V, GK } = c;
  const N = cu.length - 1;
  const r = kdaCore(
    gpu.fromHost(c.q, [1, T, H, K]),
    gpu.fromHost(c.k, [1, T, H, K]),
    gpu.fromHost(c.v, [1, T, H, V]),
    gpu.fromHost(c.g, GK === 1 ? [1, T, H] : [1, T, H, K]),
    gpu.fromHost(c.beta, [1, T, H]),
    {
      mode: 'chunk',
      initialState: gpu.fromHost(S0, [N, H, K, V]),
      ...(N > 1 ? { cuSeqlens: gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32') } : {}),
    },
  );
  return { o: await r.o.toFloat32(), S: await r.finalState!.toFloat32() };
}

describe('kda chunked forward: kernel variants = reference', () => {
  for (const T of [1, 7, 63, 65, 130]) {
    it.skipIf(!hasGpu)(`vec4 and scalar intra: T=${T}, K=16, V=8`, async () => {
      const [H, K, V] = [2, 16, 8];
      const c = randomCase(T * 3 + K, T, H, K, V);
      const S0 = new Rng(T).normalArray(H * K * V, 0.5);
      const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { H, K, V, GK: K, cu: [0, T] }, K ** -0.5, S0);
      kdaForwardTuning.intra = 'vec4';
      const vec = await chunked(c, [0, T], S0);
      expectClose(vec.o, ref.o, 2e-3, 'o (vec4 intra)');
      expectClose(vec.S, ref.S, 2e-3, 'S (vec4 intra)');
      kdaForwardTuning.intra = 'scalar';
      const sc = await chunked(c, [0, T], S0);
      // Two orders of the same f32 sums: far closer to each other than to the f64 reference's tolerance.
      expectClose(vec.o, sc.o, 1e-4, 'o (vec4 = scalar intra)');
      expectClose(vec.S, sc.S, 1e-4, 'S (vec4 = scalar intra)');
    });
  }

  it.skipIf(!hasGpu)('vec4 intra, one gate per head: T=130, K=16, V=8', async () => {
    const [T, H, K, V] = [130, 2, 16, 8];
    const c = randomCase(9, T, H, K, V, 1);
    const S0 = new Rng(4).normalArray(H * K * V, 0.5);
    const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { H, K, V, GK: 1, cu: [0, T] }, K ** -0.5, S0);
    kdaForwardTuning.intra = 'vec4';
    const got = await chunked(c, [0, T], S0);
    expectClose(got.o, ref.o, 2e-3, 'o');
    expectClose(got.S, ref.S, 2e-3, 'S');
  });

  it.skipIf(!hasGpu)('varlen batch (5, 70, 0, 58 tokens), vec4 intra', async () => {
    const lens = [5, 70, 0, 58];
    const cu = [0];
    for (const l of lens) cu.push(cu[cu.length - 1] + l);
    const [H, K, V] = [2, 16, 8];
    const T = cu[cu.length - 1];
    const c = randomCase(77, T, H, K, V);
    const S0 = new Rng(6).normalArray(lens.length * H * K * V, 0.5);
    const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { H, K, V, GK: K, cu }, K ** -0.5, S0);
    kdaForwardTuning.intra = 'vec4';
    const got = await chunked(c, cu, S0);
    expectClose(got.o, ref.o, 2e-3, 'o');
    expectClose(got.S, ref.S, 2e-3, 'S');
  });

  // K = 64, V = 128: 4 K tiles in step A and 3 column tiles of [W | U] in step C (two of U), each fetched
  // while the one before it computes. The intra kernel's outputs (A_qk, T, W, U: what the later passes and the
  // backward read) against the f64 reference (intraReference.ts) per chunk, the gc pass's gc against the f32
  // running sum bit for bit. (Against the scalar intra kernel before: a second lavapipe compile at this shape,
  // ~1.5x the vec4 one's; the scalar kernel is checked against the vec4 one and the reference above, at K16/V8.)
  it.skipIf(!hasGpu)('vec4 intra intermediates = reference: T=130, K=64, V=128', { timeout: 300_000 }, async () => {
    const gpu = (await gpuContext())!;
    const [T, H, K, V] = [130, 1, 64, 128];
    const c = randomCase(13, T, H, K, V);
    const p = { Ttot: T, N: 1, H, K, V, GK: K, B: 1, T };
    kdaForwardTuning.intra = 'vec4';
    const x = uploadPacked(gpu, c);
    const s = dispatchChunkForward(gpu, p, cuTensor(gpu, p), x, gpu.zeros([1, H, K, V]), undefined, K ** -0.5, true);
    const got: Record<string, Float32Array> = {};
    for (const n of ['gc', 'W', 'U', 'Aqk', 'T'] as const) got[n] = await s![n].toFloat32();
    // One sequence: chunk slot j holds rows 64 j .. 64 j + 63 (slots 0, 1, 2; the last of 2 rows).
    const Aqk = new Float64Array(3 * 4096);
    const Tm = new Float64Array(3 * 4096);
    const W = new Float64Array(T * K);
    const U = new Float64Array(T * V);
    const gc = new Float32Array(T * K);
    for (let j = 0; j * 64 < T; j++) {
      const [t0, L] = [64 * j, Math.min(64, T - 64 * j)];
      const rows = (a: Float32Array, w: number) => Float64Array.from(a.subarray(t0 * w, (t0 + L) * w));
      const g = new Float64Array(L * K);
      for (let ch = 0; ch < K; ch++) {
        let acc = 0;
        for (let i = 0; i < L; i++) {
          acc = Math.fround(acc + c.g[(t0 + i) * K + ch]);
          gc[(t0 + i) * K + ch] = acc;
          g[i * K + ch] = acc;
        }
      }
      const r = intraChunkReference({
        L,
        K,
        V,
        GK: K,
        q: rows(c.q, K),
        k: rows(c.k, K),
        v: rows(c.v, V),
        gc: g,
        beta: rows(c.beta, 1),
        scale: K ** -0.5,
      });
      Aqk.set(r.Aqk, j * 4096);
      Tm.set(r.T, j * 4096);
      W.set(r.W, t0 * K);
      U.set(r.U, t0 * V);
    }
    expect(Array.from(got.gc), 'gc (the f32 running sum)').toEqual(Array.from(gc));
    const want: Record<string, Float64Array> = { Aqk, T: Tm, W, U };
    for (const n of Object.keys(want)) {
      expect(got[n].every(Number.isFinite), `${n} finite`).toBe(true);
      expectClose(got[n], want[n], 1e-5, `${n} (vec4 intra = reference)`);
    }
  });
});

/**
 * The pipelined output pass alone (outputPipelined.wgsl.ts) on sequences bounded by cu: q, gc, the per-chunk
 * states S_in, A_qk (lower triangle with the diagonal, zero above, the intra pass's layout) and V' random,
 * uploaded in the layouts the forward's passes leave (chunk slots as chunk.wgsl.ts numbers them); o read back,
 * with its f64 reference (outputReference.ts). With `bf16Values` (and always for a bf16 variant) q, S_in and V' are
 * bf16-representable (rounded), the bf16 variant's uploaded as bf16; `bits`: o's raw bits (bf16 or f32 patterns).
 */
async function outputAlone(
  v: OutputPipelinedVariant,
  cu: number[],
  H: number,
  seed: number,
  bf16Values = v.bf16 === true,
) {
  const gpu = (await gpuContext())!;
  const { K, V, GK } = v;
  const rng = new Rng(seed);
  const N = cu.length - 1;
  const T = cu[N];
  const NS = Math.floor(T / 64) + N;
  const round = (a: Float32Array) => (bf16Values ? bf16ArrayToF32(f32ArrayToBf16(a)) : a);
  const q = round(rng.normalArray(T * H * K, 0.5));
  // A cumulative log decay: <= 0.
  const gc = rng.uniformArray(T * H * GK, -2, 0);
  const S = round(rng.normalArray(NS * H * K * V, 0.5));
  const Aqk = rng.normalArray(NS * H * 4096, 0.2);
  for (let e = 0; e < Aqk.length; e++) if (e % 64 > Math.floor(e / 64) % 64) Aqk[e] = 0;
  const Vp = round(rng.normalArray(T * H * V, 1));
  const ref = new Float64Array(T * H * V);
  for (let n = 0; n < N; n++) {
    for (let t0 = cu[n], slot = Math.floor(cu[n] / 64) + n; t0 < cu[n + 1]; t0 += 64, slot++) {
      const L = Math.min(64, cu[n + 1] - t0);
      for (let h = 0; h < H; h++) {
        const rows = (a: Float32Array, w: number) =>
          Float64Array.from({ length: L * w }, (_, e) => a[((t0 + Math.floor(e / w)) * H + h) * w + (e % w)]);
        const o = outputChunkReference({
          L,
          K,
          V,
          GK,
          q: rows(q, K),
          gc: rows(gc, GK),
          S: S.subarray((slot * H + h) * K * V, (slot * H + h + 1) * K * V),
          Aqk: Aqk.subarray((slot * H + h) * 4096, (slot * H + h + 1) * 4096),
          Vp: rows(Vp, V),
          scale: K ** -0.5,
        });
        for (let e = 0; e < L * V; e++) ref[((t0 + Math.floor(e / V)) * H + h) * V + (e % V)] = o[e];
      }
    }
  }
  // q, S_in, V' (and o) in the variant's storage.
  const up = (a: Float32Array, shape: number[]) =>
    v.bf16 ? gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16') : gpu.fromHost(a, shape);
  const ins = [
    gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
    up(q, [T, H, K]),
    gpu.fromHost(gc, GK === 1 ? [T, H] : [T, H, K]),
    up(S, [NS, H, K, V]),
    up(Vp, [T, H, V]),
    gpu.fromHost(Aqk, [NS, H, 64, 64]),
  ];
  const out = gpu.empty([T, H, V], v.bf16 ? 'bf16' : 'f32');
  const p = { Ttot: T, N, H, K, V, GK, B: 1, T };
  gpu.dispatch({
    kernel: { name: 'kda_chunk_output', key: outputPipelinedKey(v), code: () => outputPipelinedWgsl(v) },
    tensors: [...ins, out],
    params: groupParams(p, K ** -0.5, { h0: 0, HB: H }),
    workgroups: outputPipelinedGrid(v, NS, V / outputPipelinedBV(V, v.BV), H),
  });
  const raw = await out.read();
  const bits = v.bf16 ? (raw as Uint16Array) : new Uint32Array((raw as Float32Array).slice().buffer);
  const got = await out.toFloat32();
  for (const t of [...ins, out]) t.dispose();
  return { got, ref, bits };
}

// The pipelined output pass's layouts (OutputPipelinedVariant BK, wg, lanes, headFirst, chunks, doubleBuffer) at
// K = 32, V = 32 (8 column groups: 32 row groups of 2 rows at 256 threads, 64 of 1 at 512), where every variant
// differs from the default. Each compile costs lavapipe tens of seconds: the default pass runs all the options
// together against the f64 reference, on T = 1, 7, 63, 65, 130 and a varlen batch whose first sequence is empty
// (a chunk pair whose first slot is unused); KIMI_SLOW_TESTS=1 each alone, and each bit for bit against the
// default (the same sums in the same order), but the FMA chains (fmaChain: within 1e-6 of it).
const VARLEN = [0, 0, 70, 75, 133];
describe('kda chunked forward: pipelined output pass variants', () => {
  const base: OutputPipelinedVariant = { K: 32, V: 32, GK: 32 };
  const ALL: Partial<OutputPipelinedVariant> = {
    wg: 512,
    lanes: 'square',
    BK: 16,
    headFirst: true,
    chunks: 2,
    doubleBuffer: true,
    fmaChain: true,
  };
  it.skipIf(!hasGpu)(
    'every option at once = reference: K=32, V=32',
    {
      timeout: 300_000,
    },
    async () => {
      const v: OutputPipelinedVariant = { ...ALL, ...base };
      expect(outputPipelinedFits(v)).toBe(true);
      for (const cu of [[0, 1], [0, 7], [0, 63], [0, 65], [0, 130], VARLEN]) {
        const r = await outputAlone(v, cu, 2, cu[cu.length - 1] + 5);
        expectClose(r.got, r.ref, 1e-5, `o (${outputPipelinedKey(v)} = reference, cu=${cu})`);
      }
    },
  );

  it.skipIf(!hasGpu || process.env.KIMI_SLOW_TESTS !== '1')(
    'each option = reference and default exactly: K=32, V=32',
    { timeout: 600_000 },
    async () => {
      const variants: OutputPipelinedVariant[] = [
        { ...base, lanes: 'square' },
        { ...base, BK: 16 },
        { ...base, wg: 512 },
        { ...base, headFirst: true },
        { ...base, chunks: 2 },
        { ...base, doubleBuffer: true },
        { ...ALL, ...base, fmaChain: undefined },
      ];
      for (const cu of [[0, 1], [0, 65], [0, 130], VARLEN]) {
        const want = await outputAlone(base, cu, 2, cu[cu.length - 1] + 5);
        expectClose(want.got, want.ref, 1e-5, `o (${outputPipelinedKey(base)} = reference, cu=${cu})`);
        for (const v of variants) {
          const r = await outputAlone(v, cu, 2, cu[cu.length - 1] + 5);
          expectClose(r.got, r.ref, 1e-5, `o (${outputPipelinedKey(v)} = reference, cu=${cu})`);
          expect(Array.from(r.got), `${outputPipelinedKey(v)} = default, cu=${cu}`).toEqual(Array.from(want.got));
        }
        // The FMA chains round differently: within f32 rounding of the default.
        const fma = await outputAlone({ ...base, fmaChain: true }, cu, 2, cu[cu.length - 1] + 5);
        expectClose(fma.got, want.got, 1e-6, `o (fmaChain = default, cu=${cu})`);
      }
    },
  );
});

// The bf16 storage variant (q, hB, V' in, o out as bf16) = its f32 variant with o rounded, bit for bit, on
// bf16-representable q, S_in, V': the default pass at K16/V8 (the variant lavapipe's forward picks: BV 8, the
// plain sum), with KIMI_SLOW_TESTS=1 also the FMA chains (the GPUs' default) at K = V = 32.
describe('kda chunked forward: pipelined output pass, bf16 storage', () => {
  const expectBf16Exact = async (v: OutputPipelinedVariant) => {
    for (const cu of [[0, 1], [0, 7], [0, 63], [0, 65], [0, 130], VARLEN]) {
      const seed = cu[cu.length - 1] + 9;
      const f32 = await outputAlone(v, cu, 2, seed, true);
      const bf = await outputAlone({ ...v, bf16: true }, cu, 2, seed);
      const want = f32ArrayToBf16(f32.got);
      // o is not bf16-representable already: the comparison sees the rounding.
      expect(
        want.some((b, i) => (b << 16) >>> 0 !== f32.bits[i]),
        'o f32 not bf16 already',
      ).toBe(true);
      const key = outputPipelinedKey({ ...v, bf16: true });
      expect(Array.from(bf.bits), `o (${key}) = f32 variant's rounded, cu=${cu}`).toEqual(Array.from(want));
      // And within bf16 rounding (2^-9 of each value) of the f64 reference.
      expectClose(bf.got, bf.ref, 4e-3, `o (${key} = reference, cu=${cu})`);
    }
  };
  it.skipIf(!hasGpu)('= f32 variant rounded: K=16, V=8', { timeout: 300_000 }, async () => {
    await expectBf16Exact({ K: 16, V: 8, GK: 16 });
  });

  it.skipIf(!hasGpu || process.env.KIMI_SLOW_TESTS !== '1')(
    '= f32 variant rounded, fmaChain: K=32, V=32',
    { timeout: 300_000 },
    async () => {
      await expectBf16Exact({ K: 32, V: 32, GK: 32, fmaChain: true });
    },
  );

  it('bf16 only with the default layout', () => {
    const v: OutputPipelinedVariant = { K: 32, V: 32, GK: 32, bf16: true };
    expect(outputPipelinedFits({ ...v, BK: 32, wg: 256, chunks: 1, lanes: 'rows' })).toBe(true);
    for (const o of [
      { lanes: 'square' },
      { BK: 16 },
      { wg: 512 },
      { headFirst: true },
      { chunks: 2 },
      { doubleBuffer: true },
    ]) {
      expect(outputPipelinedFits({ ...v, ...o } as OutputPipelinedVariant)).toBe(false);
      expect(() => outputPipelinedWgsl({ ...v, ...o } as OutputPipelinedVariant)).toThrow(
        /bf16 storage only with the default layout/,
      );
    }
  });
});
