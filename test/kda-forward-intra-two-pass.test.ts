/**
 * The vec4 intra pass as two kernels (kdaForwardTuning.intraTwoPass: intraGram.wgsl.ts, then intraWU.wgsl.ts)
 * against its plain-TS reference (intraReference.ts, f64: A_qk, T, W, U per chunk) and against the one-pass
 * kernel (intraVec.wgsl.ts): o, the final state and every kept intermediate within 1e-6 (the same expressions
 * in the same order), with keep (the first kernel also stores the backward's row-major T) and without (what
 * inference runs). K16/V8, the geometry the other KDA tests compile; T = 1, 7, 63, 65, 130 (partial chunks,
 * rows past the end), a varlen batch with an empty sequence; with KIMI_SLOW_TESTS=1 also a per-head gate (GK = 1)
 * and the non-default load variants of both kernels, and K = 64 (four K tiles). The dispatches are checked to be the
 * two kernels, and the gc pass's absence where the first kernel forms gc from g (gcInGram: the default with keep),
 * whose gc and Kd must equal the gc pass's bit for bit. The first kernel's diagonal chain (the default where it reads
 * gc) at varlen 1, 7, 63, 65; with KIMI_SLOW_TESTS=1 also without it, and its lean and diagSplit variants. The
 * first kernel with FLA's secondary chunking (intraGramSecondary.wgsl.ts; opt-in, slower on the H200), with
 * KIMI_SLOW_TESTS=1 only: at varlen 1, 7, 63, 65, with extreme gates, at K = 64 and with one gate per head.
 *
 * The bf16 storage variants of the forward's first passes (the gc pass, the first kernel, the second kernel and its
 * walk: bf16 q, k, v, g in, W and U out), each kernel dispatched alone beside its f32 variant on the same
 * bf16-representable inputs (f32ToBf16Bits): its f32 outputs (gc, Kd, A_qk, T) equal the f32 variant's bit for
 * bit, its bf16 outputs (W, U) equal the f32 variant's rounded to bf16 bit for bit (only loads widen and stores
 * round), and the f32 variant's are checked against the references (gc against the f32 running sum exactly).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import { Params } from '../src/gpu/params.js';
import { intraWUVariantFor, intraWUWalkFor, kdaForwardTuning } from '../src/kernels/kda/chunk.js';
import { gcKey, gcWgsl, gcWorkgroups } from '../src/kernels/kda/gc.wgsl.js';
import {
  type IntraGramVariant,
  intraGramFits,
  intraGramKey,
  intraGramWgsl,
} from '../src/kernels/kda/intraGram.wgsl.js';
import { intraChunkReference } from '../src/kernels/kda/intraReference.js';
import {
  type IntraWUVariant,
  intraWUFits,
  intraWUGrid,
  intraWUKey,
  intraWUTileOrder,
  intraWUWgsl,
} from '../src/kernels/kda/intraWU.wgsl.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import { runChunkForward, withDispatchKeys, withForwardTuning } from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';
import { expectBits } from './bits.js';

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

/** A_qk and T ([used slots, H, 64, 64], the order runChunkForward picks them in), W and U ([T, H, .]). */
/** The f64 reference of chunk rows t0 .. t0 + L - 1 of head h (intraReference.ts), with the chunk's cumulative gates. */
function chunkReference(c: KdaCase, t0: number, L: number, h: number) {
  const { H, K, V, GK } = c;
  const rows = (a: Float32Array, w: number) =>
    Float64Array.from({ length: L * w }, (_, e) => a[((t0 + Math.floor(e / w)) * H + h) * w + (e % w)]);
  const gc = rows(c.g, GK);
  for (let i = 1; i < L; i++) for (let ch = 0; ch < GK; ch++) gc[i * GK + ch] += gc[(i - 1) * GK + ch];
  const r = intraChunkReference({
    L,
    K,
    V,
    GK,
    q: rows(c.q, K),
    k: rows(c.k, K),
    v: rows(c.v, V),
    gc,
    beta: rows(c.beta, 1),
    scale: K ** -0.5,
  });
  return { r, gc };
}

function reference(c: KdaCase, cu: readonly number[]) {
  const { H, K, V } = c;
  const Aqk: number[] = [];
  const T: number[] = [];
  const W = new Float64Array(c.T * H * K);
  const U = new Float64Array(c.T * H * V);
  for (let s = 0; s + 1 < cu.length; s++) {
    for (let t0 = cu[s]; t0 < cu[s + 1]; t0 += 64) {
      const L = Math.min(64, cu[s + 1] - t0);
      for (let h = 0; h < H; h++) {
        const { r } = chunkReference(c, t0, L, h);
        Aqk.push(...r.Aqk);
        T.push(...r.T);
        for (let i = 0; i < L; i++) {
          for (let ch = 0; ch < K; ch++) W[((t0 + i) * H + h) * K + ch] = r.W[i * K + ch];
          for (let ch = 0; ch < V; ch++) U[((t0 + i) * H + h) * V + ch] = r.U[i * V + ch];
        }
      }
    }
  }
  return { Aqk, T, W, U };
}

async function run(c: KdaCase, cu: number[], S0: Float32Array, keep: boolean, tuning: typeof kdaForwardTuning) {
  const gpu = (await gpuContext())!;
  return withForwardTuning(tuning, () => withDispatchKeys(gpu, () => runChunkForward(gpu, c, cu, S0, keep)));
}

/** Two-pass = one-pass (and = reference with keep: the first kernel also stores T row-major), for each of `keeps`. */
async function expectTwoPass(
  c: KdaCase,
  cu: number[],
  prefetch = true,
  keeps = [true],
  loads: 'all' | 'uniform' = 'all',
  wu: {
    intraWUWalk?: 1 | 2 | 4;
    intraWUDoubleB?: boolean;
    intraWUChunks?: 1 | 2;
    intraGramStagedStores?: boolean;
    gcInGram?: boolean;
    intraGramLean?: boolean;
    intraGramDiagSplit?: 1 | 2 | 4;
    intraGramDiagChain?: boolean;
    intraGramSecondary?: boolean;
  } = {},
  /** Tolerance against the f64 reference (with keep). */
  refTol = 1e-4,
) {
  const S0 = new Rng(c.T + 1).normalArray((cu.length - 1) * c.H * c.K * c.V, 0.5);
  for (const keep of keeps) {
    const one = await run(c, cu, S0, keep, { intraTwoPass: false });
    const two = await run(c, cu, S0, keep, {
      intraTwoPass: true,
      intraGramPrefetch: prefetch,
      intraWULoads: loads,
      ...wu,
    });
    expect(one.keys.some((k) => k.startsWith('kda_chunk_intra_gram') || k.startsWith('kda_chunk_intra_wu'))).toBe(
      false,
    );
    expect(two.keys.filter((k) => k.startsWith('kda_chunk_intra_gram')).length).toBe(1);
    expect(two.keys.filter((k) => k.startsWith('kda_chunk_intra_wu')).length).toBe(1);
    // The lean layout runs exactly where asked (it reads gc: never with gcInGram).
    expect(two.keys.some((k) => k.startsWith('kda_chunk_intra_gram') && k.includes('_lean'))).toBe(!!wu.intraGramLean);
    // The diagonal chain: by default where the first kernel reads gc (the gc pass runs).
    const gcRead = two.keys.some((k) => k.startsWith('kda_chunk_gc'));
    expect(two.keys.some((k) => k.startsWith('kda_chunk_intra_gram') && k.includes('_dc'))).toBe(
      wu.intraGramDiagChain ?? gcRead,
    );
    // The secondary chunking (intraGramSecondary.wgsl.ts) runs exactly where asked.
    expect(two.keys.some((k) => k.startsWith('kda_chunk_intra_gram') && k.includes('_sec'))).toBe(
      !!wu.intraGramSecondary,
    );
    const ds = wu.intraGramDiagSplit;
    expect(two.keys.some((k) => k.startsWith('kda_chunk_intra_gram') && k.includes(`_ds${ds}`))).toBe(!!ds);
    // gc (and Kd) from the first kernel (gcInGram: by default where the forward keeps Kd, GK = K) or the gc pass.
    const gcInGram = two.keys.some((k) => k.startsWith('kda_chunk_intra_gram') && k.endsWith('_gcg'));
    expect(two.keys.some((k) => k.startsWith('kda_chunk_gc'))).toBe(!gcInGram);
    if (keep || wu.gcInGram !== undefined) expect(gcInGram).toBe((wu.gcInGram ?? true) && c.GK === c.K);
    expect(Object.keys(two.got).sort()).toEqual(Object.keys(one.got).sort());
    for (const n of Object.keys(one.got)) {
      expect(two.got[n].every(Number.isFinite), `${n} finite`).toBe(true);
      expectClose(two.got[n], one.got[n], 1e-6, `${n} (two-pass = one-pass)`);
    }
    // The first kernel's gc and Kd are the gc pass's sums in its order: equal bit for bit.
    for (const n of ['gc', 'Kd'].filter((n) => n in one.got)) expect(two.got[n], n).toEqual(one.got[n]);
    if (keep) {
      const ref = reference(c, cu);
      for (const n of ['Aqk', 'T', 'W', 'U'] as const) expectClose(two.got[n], ref[n], refTol, `${n} (reference)`);
    }
  }
}

const [H, K, V] = [2, 16, 8];
// Each kernel variant costs a lavapipe compilation (tens of seconds with an empty shader cache): the default
// pass compiles the GPU default's two (the first kernel's loads a tile ahead, one kernel with and without keep;
// the second's 'all' loads), KIMI_SLOW_TESTS=1 the others (loads not a tile ahead, 'uniform' loads, a per-head
// gate).
const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';

describe('kda chunked forward: the intra pass as two kernels', () => {
  for (const T of [1, 7, 63, 65, 130]) {
    it.skipIf(!hasGpu)(`= one-pass kernel and reference, keep: T=${T}, K=16, V=8`, { timeout: 300_000 }, async () => {
      await expectTwoPass(randomCase(T * 5 + 3, T, H, K, V), [0, T]);
    });
  }

  // Without keep the GPU default reads the gc pass (the varlen case below); here gc from g (--fwd-gc gram: no Kd).
  it.skipIf(!hasGpu)('= one-pass kernel, no keep, gc in the first kernel: T=130', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(35, 130, H, K, V), [0, 130], true, [false], 'all', { gcInGram: true });
  });

  it.skipIf(!hasGpu)('varlen batch (5, 70, 0, 58 tokens), keep and not', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 133];
    await expectTwoPass(randomCase(33, cu[4], H, K, V), cu, true, [true, false]);
  });

  it.skipIf(slow)('loads not a tile ahead: T=130, keep and not', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(37, 130, H, K, V), [0, 130], false, [true, false]);
  });

  // The 'uniform' loads of the second kernel: at K16/V8 its one column tile holds K and V columns (the mixed
  // branch); the whole-K and whole-V branches run at d = 128 (bench kda --check on the device).
  it.skipIf(slow)('uniform loads of the second kernel: T=130, keep', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(39, 130, H, K, V), [0, 130], true, [true], 'uniform');
  });

  // K = 64: four K tiles, so the first kernel's K loop runs past its first tile (at K = 16 it has one): the gc of
  // tiles 1 .. 3 walked while the previous tile's products run (gcInGram), with its loads a tile ahead and not.
  it.skipIf(slow)('four K tiles (K=64): T=130, keep and not, loads ahead and not', { timeout: 600_000 }, async () => {
    for (const prefetch of [true, false]) {
      await expectTwoPass(randomCase(49, 130, H, 64, V), [0, 130], prefetch, [true, false]);
    }
  });

  // The first kernel reading gc from the gc pass (gcInGram off; the GK = 1 path below too).
  it.skipIf(slow)('first kernel reading the gc pass: T=130, keep and not', { timeout: 300_000 }, async () => {
    for (const intraGramDiagChain of [true, false]) {
      await expectTwoPass(randomCase(47, 130, H, K, V), [0, 130], true, [true, false], 'all', {
        gcInGram: false,
        intraGramDiagChain,
      });
    }
  });

  // The first kernel's A_qk and T stores staged through workgroup memory (A_qk's zero blocks by select).
  it.skipIf(slow)('first kernel with staged stores: T=130, keep and not', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(43, 130, H, K, V), [0, 130], true, [true, false], 'all', {
      intraGramStagedStores: true,
    });
  });

  // The lean first kernel (16 KiB: diagonal rows from global memory, step B's scratch in T's upper part, masked
  // out of both T stores): sequences of 1, 7, 63 and 65 tokens in one varlen batch, keep (T row-major against the
  // reference) and not.
  // Slow only: lean and diagSplit are slower on the H200 (kept for comparison, bench kda flags).
  it.skipIf(slow)('lean first kernel: varlen (1, 7, 63, 65), keep and not', { timeout: 300_000 }, async () => {
    const cu = [0, 1, 8, 71, 136];
    await expectTwoPass(randomCase(51, cu[4], H, K, V), cu, true, [true, false], 'all', {
      gcInGram: false,
      intraGramLean: true,
    });
  });

  // The diagonal blocks on a warp of their own, two threads a block (their parts' sums added after the K loop):
  // varlen 1, 7, 63, 65 at K = 16; with KIMI_SLOW_TESTS=1 one and four threads a block, K = 64 (four K tiles).
  // The diagonal decays as products of neighbouring rows' factors (diagChain, the default where the first kernel
  // reads gc): varlen 1, 7, 63, 65, with keep (T row-major against the reference) and not.
  it.skipIf(!hasGpu)('diagonal chain: varlen (1, 7, 63, 65), keep and not', { timeout: 300_000 }, async () => {
    const cu = [0, 1, 8, 71, 136];
    await expectTwoPass(randomCase(61, cu[4], H, K, V), cu, true, [true, false], 'all', {
      gcInGram: false,
      intraGramDiagChain: true,
    });
  });

  // Every input read_write (kdaForwardTuning.rw: the state pass's W, U, k, gc bound once as vec4; the output pass's,
  // the two intra kernels'): the inference forward's kernels, varlen 1, 7, 63, 65 from an initial state, o and the
  // final state equal bit for bit to the read-only bindings' (the same code, another binding kind), each pass's
  // kernel the rw variant. With the GPU's default first kernel (the diagonal chain) as compiled just above.
  it.skipIf(!hasGpu)(
    'every input read_write = read-only, bit for bit: varlen (1, 7, 63, 65)',
    { timeout: 300_000 },
    async () => {
      const cu = [0, 1, 8, 71, 136];
      const c = randomCase(62, cu[4], H, K, V);
      const S0 = new Rng(64).normalArray(4 * H * K * V, 0.5);
      const base = { intraTwoPass: true, gcInGram: false, intraGramDiagChain: true, sharedPipeline: false };
      const ro = await run(c, cu, S0, false, { ...base, rw: [] });
      const rw = await run(c, cu, S0, false, { ...base, rw: ['state', 'output', 'gram', 'wu'] });
      for (const name of ['kda_chunk_intra_gram', 'kda_chunk_intra_wu', 'kda_chunk_output_pipe'])
        expect(
          rw.keys.filter((k) => k.startsWith(name) && k.endsWith('_rw')).length,
          `${name}: ${rw.keys.join(', ')}`,
        ).toBe(1);
      expect(
        rw.keys.filter((k) => k.startsWith('kda_chunk_state_tiled') && k.includes('_kdk') && k.includes('_rwi')).length,
      ).toBe(1);
      expect(ro.keys.some((k) => k.includes('_rw'))).toBe(false);
      for (const n of ['o', 'S']) expect(Array.from(rw.got[n]), n).toEqual(Array.from(ro.got[n]));
    },
  );

  // FLA's secondary chunking (16-row blocks; the cross-block tiles read operands scaled against the block's first
  // row, K tiles of 8 channels): varlen 1, 7, 63, 65 (rows past the end, partial 16-row blocks), keep (against the
  // reference) and not (one compiled kernel: storeT is a uniform); K = 64 (eight K tiles) without the loads a tile
  // ahead and without the diagonal chain, and one gate per head. All with KIMI_SLOW_TESTS=1 only: the variant is
  // opt-in (1.33 ms against 1.16 on the H200) and its compile costs the default suite ~35 s.
  it.skipIf(slow)('secondary chunking: varlen (1, 7, 63, 65), keep and not', { timeout: 300_000 }, async () => {
    const cu = [0, 1, 8, 71, 136];
    await expectTwoPass(randomCase(63, cu[4], H, K, V), cu, true, [true, false], 'all', {
      gcInGram: false,
      intraGramSecondary: true,
    });
  });
  // Extreme gates (log decays down to -480 a step, as kda-gradcheck's): every exp argument must stay <= 0 (the
  // secondary chunking's factors too); where a factor underflows the true product is smaller still. The same
  // compiled kernels as the case above; every output and intermediate finite and within 1e-6 of the one-pass
  // kernel. Against the f64 reference 1e-3: T is off by 3.1e-4 here with the default first kernel as well (f32).
  it.skipIf(slow)('secondary chunking, extreme gates: T=130, keep', { timeout: 300_000 }, async () => {
    const c = randomCase(69, 130, H, K, V, K, 480);
    await expectTwoPass(c, [0, 130], true, [true], 'all', { gcInGram: false, intraGramSecondary: true }, 1e-3);
  });
  it.skipIf(slow)('secondary chunking: K=64 and GK=1, T=130, keep and not', { timeout: 600_000 }, async () => {
    await expectTwoPass(randomCase(65, 130, H, 64, V), [0, 130], false, [true, false], 'all', {
      gcInGram: false,
      intraGramSecondary: true,
      intraGramDiagChain: false,
    });
    await expectTwoPass(randomCase(67, 130, H, K, V, 1), [0, 130], true, [true, false], 'all', {
      intraGramSecondary: true,
    });
  });

  it.skipIf(slow)(
    'diagonal warp, 2 threads a block: varlen (1, 7, 63, 65), keep and not',
    { timeout: 300_000 },
    async () => {
      const cu = [0, 1, 8, 71, 136];
      await expectTwoPass(randomCase(57, cu[4], H, K, V), cu, true, [true, false], 'all', {
        gcInGram: false,
        intraGramDiagSplit: 2,
      });
    },
  );
  it.skipIf(slow)(
    'diagonal warp, 1 and 4 threads a block: K=64, T=130, keep and not',
    { timeout: 600_000 },
    async () => {
      for (const ds of [1, 4] as const) {
        await expectTwoPass(randomCase(59, 130, H, 64, V), [0, 130], ds === 1, [true, false], 'all', {
          gcInGram: false,
          intraGramDiagSplit: ds,
        });
      }
    },
  );

  // The lean first kernel over four K tiles (K = 64), and with one gate per head.
  it.skipIf(slow)('lean first kernel: K=64 and GK=1, T=130, keep and not', { timeout: 600_000 }, async () => {
    await expectTwoPass(randomCase(53, 130, H, 64, V), [0, 130], true, [true, false], 'all', {
      gcInGram: false,
      intraGramLean: true,
    });
    await expectTwoPass(randomCase(55, 130, H, K, V, 1), [0, 130], true, [true, false], 'all', { intraGramLean: true });
  });

  it.skipIf(slow)('one gate per head (GK = 1): T=130, keep and not', { timeout: 300_000 }, async () => {
    await expectTwoPass(randomCase(31, 130, H, K, V, 1), [0, 130], true, [true, false]);
  });
});

/**
 * The second kernel alone (intraWU.wgsl.ts, intraWUWalk.wgsl.ts with walk > 1) on one sequence of T tokens:
 * k, v, gc (the per-chunk cumulative gate), beta and the reference's T (intraReference.ts) uploaded in the
 * layouts pass 1a leaves, W and U read back. Its own geometry, K = 64, V = 72: 34 column groups, three column
 * tiles (the third partial), so walk 2 and 4 both have a group with a real tile after the first and one with
 * tiles past the last column.
 */
async function wuAlone(v: IntraWUVariant, T: number, H: number, seed: number, rounded = !!v.bf16) {
  const gpu = (await gpuContext())!;
  const { K, V, GK } = v;
  const c = rounded ? roundedCase(randomCase(seed, T, H, K, V, GK)) : randomCase(seed, T, H, K, V, GK);
  const NS = Math.floor(T / 64) + 1;
  const gc = new Float32Array(c.g.length);
  const Tt = new Float32Array(NS * H * 4096);
  const W = new Float64Array(T * H * K);
  const U = new Float64Array(T * H * V);
  for (let t0 = 0, slot = 0; t0 < T; t0 += 64, slot++) {
    const L = Math.min(64, T - t0);
    for (let h = 0; h < H; h++) {
      const { r, gc: g } = chunkReference(c, t0, L, h);
      for (let e = 0; e < L * GK; e++) gc[((t0 + Math.floor(e / GK)) * H + h) * GK + (e % GK)] = g[e];
      // Pass 1a's layout: column j of T as 16 vec4 of rows (vec4 r4 holds rows 4 r4 .. 4 r4 + 3).
      for (let i = 0; i < 64; i++)
        for (let j = 0; j < 64; j++) Tt[(slot * H + h) * 4096 + j * 64 + i] = r.T[i * 64 + j];
      for (let i = 0; i < L; i++) {
        for (let ch = 0; ch < K; ch++) W[((t0 + i) * H + h) * K + ch] = r.W[i * K + ch];
        for (let ch = 0; ch < V; ch++) U[((t0 + i) * H + h) * V + ch] = r.U[i * V + ch];
      }
    }
  }
  const ins = [
    gpu.fromHost(Int32Array.from([0, T]), [2], 'i32'),
    upload(gpu, c.k, [T, H, K], v.bf16),
    upload(gpu, c.v, [T, H, V], v.bf16),
    gpu.fromHost(gc, GK === 1 ? [T, H] : [T, H, K]),
    gpu.fromHost(c.beta, [T, H]),
    gpu.fromHost(Tt, [NS, H, 64, 64]),
  ];
  const outs = [gpu.empty([T, H, K], v.bf16 ? 'bf16' : 'f32'), gpu.empty([T, H, V], v.bf16 ? 'bf16' : 'f32')];
  gpu.dispatch({
    kernel: { name: 'kda_chunk_intra_wu', key: intraWUKey(v), code: () => intraWUWgsl(v) },
    tensors: [...ins, ...outs],
    params: new Params()
      .u32(H, 1)
      .f32(K ** -0.5)
      .u32(0),
    workgroups: intraWUGrid(v, NS, H),
  });
  const [gotW, gotU] = [await outs[0].toFloat32(), await outs[1].toFloat32()];
  const bits = v.bf16
    ? { W: (await outs[0].read()) as Uint16Array, U: (await outs[1].read()) as Uint16Array }
    : undefined;
  for (const t of [...ins, ...outs]) t.dispose();
  return { gotW, gotU, W, U, bits };
}

/** The walking kernel = the reference; with `exact`, also = the one-tile kernel, bit for bit (same order). */
async function expectWalk(v: IntraWUVariant, T: number, exact: boolean) {
  const walk = await wuAlone(v, T, 2, T + 11);
  expectClose(walk.gotW, walk.W, 1e-4, `W (${intraWUKey(v)} = reference)`);
  expectClose(walk.gotU, walk.U, 1e-4, `U (${intraWUKey(v)} = reference)`);
  if (exact) {
    const one = await wuAlone({ K: v.K, V: v.V, GK: v.GK }, T, 2, T + 11);
    expect(Array.from(walk.gotW)).toEqual(Array.from(one.gotW));
    expect(Array.from(walk.gotU)).toEqual(Array.from(one.gotU));
  }
}

describe('kda two-pass intra: the second kernel walking column tiles (intraWU walk)', () => {
  it('the default walk: 4 at d = 128, never more than the column tiles', () => {
    expect([intraWUWalkFor(128, 128), intraWUWalkFor(64, 72), intraWUWalkFor(16, 8), intraWUWalkFor(64, 64)]).toEqual([
      4, 2, 1, 2,
    ]);
  });
  it('the default W | U variant: static tiles, 2 ahead, double-buffered where it fits', () => {
    const v = { K: 128, V: 128, GK: 128 };
    const pick = (smem: number) => {
      const w = intraWUVariantFor(v, smem);
      return [w.walk, w.staticTiles, w.ahead, w.doubleB];
    };
    expect(pick(49152)).toEqual([4, true, 2, true]);
    expect(pick(32768)).toEqual([4, true, 2, undefined]);
    expect(intraWUVariantFor({ K: 16, V: 8, GK: 16 }, 49152).staticTiles).toBeUndefined();
    kdaForwardTuning.intraWUStatic = false;
    expect(pick(49152)).toEqual([4, undefined, undefined, undefined]);
    kdaForwardTuning.intraWUStatic = undefined;
    kdaForwardTuning.intraWUWalk = 2;
    expect(pick(49152)).toEqual([2, undefined, undefined, undefined]);
  });

  // Default pass: walk 4 (the default at d = 128) against the reference at 3 column tiles (one group with a tile
  // past the end); two chunks, the second partial (rows past the end).
  it.skipIf(!hasGpu)('walk 4 = reference: T=100, K=64, V=72', { timeout: 300_000 }, async () => {
    await expectWalk({ K: 64, V: 72, GK: 64, walk: 4 }, 100, false);
  });

  // Static tile kinds (staticTiles): at K = 64, V = 72 the walk visits tiles 1 (V), 0 (K), 2 (V, partial), 3
  // (past the end), each loading only its kind; with ahead 2 two tiles' loads in flight. The same expressions
  // for every element: W and U equal the 'all' walk's bit for bit; T = 1, 65, 130 (partial chunks).
  it('static tiles: fits only where one group covers every tile; V and K tiles alternate', () => {
    expect(intraWUFits({ K: 128, V: 128, GK: 128, walk: 4, staticTiles: true, ahead: 2 })).toBe(true);
    expect(intraWUFits({ K: 128, V: 128, GK: 128, walk: 2, staticTiles: true })).toBe(false);
    expect(intraWUFits({ K: 128, V: 128, GK: 128, walk: 4, ahead: 2 })).toBe(false);
    expect(intraWUTileOrder({ K: 128, V: 128, GK: 128, walk: 4 })).toEqual([2, 0, 3, 1]);
    expect(intraWUTileOrder({ K: 64, V: 72, GK: 64, walk: 4 })).toEqual([1, 0, 2, 3]);
  });
  // Default pass: ahead 2 with the head-first grid (one compile); KIMI_SLOW_TESTS=1 also ahead 1, 2 and 3 alone.
  it.skipIf(!hasGpu)('static tiles = walk 4 exactly: K=64, V=72', { timeout: 300_000 }, async () => {
    for (const T of [1, 65, 130]) {
      const all = await wuAlone({ K: 64, V: 72, GK: 64, walk: 4 }, T, 2, T + 11);
      const variants: IntraWUVariant[] = [
        { K: 64, V: 72, GK: 64, walk: 4, staticTiles: true, ahead: 2, headFirst: true },
        ...(slow
          ? []
          : ([1, 2, 3] as const).map(
              (ahead): IntraWUVariant => ({ K: 64, V: 72, GK: 64, walk: 4, staticTiles: true, ahead }),
            )),
      ];
      for (const v of variants) {
        const r = await wuAlone(v, T, 2, T + 11);
        expectClose(r.gotW, r.W, 1e-4, `W (${intraWUKey(v)} = reference, T=${T})`);
        expectClose(r.gotU, r.U, 1e-4, `U (${intraWUKey(v)} = reference, T=${T})`);
        expect(Array.from(r.gotW), `W (${intraWUKey(v)} = walk 4, T=${T})`).toEqual(Array.from(all.gotW));
        expect(Array.from(r.gotU), `U (${intraWUKey(v)} = walk 4, T=${T})`).toEqual(Array.from(all.gotU));
      }
    }
  });

  // The double-buffered operand needs 48 KiB of workgroup memory (lavapipe allows 32: checked on the device).
  it.skipIf(slow)(
    'walk 2, 4 (double-buffered where it fits) = one-tile kernel exactly',
    { timeout: 600_000 },
    async () => {
      const gpu = (await gpuContext())!;
      const doubles = gpu.limits.maxComputeWorkgroupStorageSize >= 49152 ? [false, true] : [false];
      for (const T of [65, 130]) {
        for (const walk of [2, 4] as const) {
          for (const doubleB of doubles) await expectWalk({ K: 64, V: 72, GK: 64, walk, doubleB }, T, true);
        }
        // The forward's default on GPUs since the eighth session (chunk.ts intraWUVariantFor).
        for (const doubleB of doubles) {
          await expectWalk({ K: 64, V: 72, GK: 64, walk: 4, staticTiles: true, ahead: 2, doubleB }, T, true);
        }
      }
      await expectWalk({ K: 64, V: 72, GK: 1, walk: 4 }, 7, true);
      // Two chunks a workgroup (T = 65: the second has one row; 130: the last group's second slot is past the end).
      for (const T of [65, 130]) {
        for (const walk of [1, 2] as const) await expectWalk({ K: 64, V: 72, GK: 64, walk, chunks: 2 }, T, true);
      }
    },
  );

  // A static walk whose one real tile holds K and V columns (K = 24, V = 40: 6 and 10 column groups), the second
  // past the end; and a per-head gate.
  it.skipIf(slow)('static tiles with a mixed tile = one-tile kernel exactly: T=130', { timeout: 600_000 }, async () => {
    await expectWalk({ K: 24, V: 40, GK: 24, walk: 2, staticTiles: true, ahead: 2 }, 130, true);
    await expectWalk({ K: 64, V: 72, GK: 1, walk: 4, staticTiles: true }, 65, true);
  });

  // 'uniform' loads around whole walks: at K = 128, V = 64 (tiles K, K, V) walk 2 has a group wholly of K
  // columns and one wholly of V columns (the third branch, of both, is the 'all' walk above).
  it.skipIf(slow)('walk 2 with uniform loads = one-tile kernel exactly: T=130', { timeout: 600_000 }, async () => {
    await expectWalk({ K: 128, V: 64, GK: 128, walk: 2, loads: 'uniform' }, 130, true);
    await expectWalk({ K: 128, V: 64, GK: 128, walk: 2, loads: 'uniform', chunks: 2 }, 130, true);
  });

  // Through the whole forward at K16/V8 (one real tile). Two chunks a workgroup over a varlen batch whose slot 0
  // is unused (an empty first sequence: the pair's first chunk stores nothing, its second does) and whose slot 5
  // is past the last.
  it.skipIf(slow)(
    'forward with 2 chunks a workgroup: varlen (0, 70, 5, 58), keep and not',
    { timeout: 600_000 },
    async () => {
      const cu = [0, 0, 70, 75, 133];
      await expectTwoPass(randomCase(45, cu[4], H, K, V), cu, true, [true, false], 'all', { intraWUChunks: 2 });
    },
  );

  // Walk 4's other three tiles store nothing.
  it.skipIf(slow)('forward with walk 4: T=130, keep and not', { timeout: 600_000 }, async () => {
    await expectTwoPass(randomCase(41, 130, H, K, V), [0, 130], true, [true, false], 'all', { intraWUWalk: 4 });
  });
});

/** Case c with q, k, v and g rounded to bf16 (what a bf16 forward reads; beta stays f32, as the forward casts it). */
function roundedCase(c: KdaCase): KdaCase {
  const r = (a: Float32Array) => bf16ArrayToF32(f32ArrayToBf16(a));
  return { ...c, q: r(c.q), k: r(c.k), v: r(c.v), g: r(c.g) };
}

/** a (bf16-representable where `bf16`) uploaded in f32, or in bf16 storage. */
function upload(gpu: GpuContext, a: Float32Array, shape: number[], bf16: boolean | undefined): Tensor {
  return bf16 ? gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16') : gpu.fromHost(a, shape);
}

/** Chunk slots a varlen batch uses (chunk.wgsl.ts: sequence s's chunks from floor(cu[s] / 64) + s). */
function slotsOf(cu: readonly number[]): { NS: number; used: number[] } {
  const used: number[] = [];
  for (let s = 0; s + 1 < cu.length; s++) {
    for (let j = 0; j * 64 < cu[s + 1] - cu[s]; j++) used.push(Math.floor(cu[s] / 64) + s + j);
  }
  return { NS: Math.floor(cu[cu.length - 1] / 64) + cu.length - 1, used };
}

/** The gc pass alone (gc.wgsl.ts, without Qg) on case c over sequences cu: gc, and Kd where `kd`. */
async function gcAlone(c: KdaCase, cu: number[], kd: boolean, bf16: boolean) {
  const gpu = (await gpuContext())!;
  const { T, H, K, GK } = c;
  const { NS } = slotsOf(cu);
  const cuT = gpu.fromHost(Int32Array.from(cu), [cu.length], 'i32');
  const g = upload(gpu, c.g, GK === 1 ? [T, H] : [T, H, K], bf16);
  const k = upload(gpu, c.k, [T, H, K], bf16);
  const gc = gpu.empty(GK === 1 ? [T, H] : [T, H, K]);
  const Kd = gpu.empty([T, H, K]);
  gpu.dispatch({
    kernel: { name: 'kda_chunk_gc', key: gcKey(K, GK, false, kd, bf16), code: () => gcWgsl(K, GK, false, kd, bf16) },
    tensors: kd ? [cuT, k, g, gc, Kd] : [cuT, g, gc],
    params: new Params()
      .u32(H, cu.length - 1)
      .f32(K ** -0.5)
      .u32(0),
    workgroups: [NS, H, gcWorkgroups(K)],
  });
  const out = { gc: await gc.toFloat32(), Kd: kd ? await Kd.toFloat32() : undefined };
  for (const t of [cuT, g, k, gc, Kd]) t.dispose();
  return out;
}

/** The f32 running sum of g down each chunk, in the gc pass's order (acc = 0, then acc += g row by row). */
function gcRunningSum(c: KdaCase, cu: readonly number[]): Float32Array {
  const { H, GK } = c;
  const gc = new Float32Array(c.g.length);
  for (let s = 0; s + 1 < cu.length; s++) {
    for (let t0 = cu[s]; t0 < cu[s + 1]; t0 += 64) {
      for (let h = 0; h < H; h++) {
        for (let ch = 0; ch < GK; ch++) {
          let acc = 0;
          for (let t = t0; t < Math.min(t0 + 64, cu[s + 1]); t++) {
            const e = (t * H + h) * GK + ch;
            acc = Math.fround(acc + c.g[e]);
            gc[e] = acc;
          }
        }
      }
    }
  }
  return gc;
}

/**
 * The first kernel alone (intraGram.wgsl.ts) on case c over sequences cu, reading gc (the f32 running sum): A_qk,
 * T in pass 1b's layout (Tt) and row-major (Tb: storeT set), [NS, H, 64, 64], zero where a slot is unused.
 */
async function gramAlone(c: KdaCase, cu: number[], v: IntraGramVariant) {
  const gpu = (await gpuContext())!;
  const { T, H, K, GK } = c;
  const { NS } = slotsOf(cu);
  const ins = [
    gpu.fromHost(Int32Array.from(cu), [cu.length], 'i32'),
    upload(gpu, c.q, [T, H, K], v.bf16),
    upload(gpu, c.k, [T, H, K], v.bf16),
    gpu.fromHost(gcRunningSum(c, cu), GK === 1 ? [T, H] : [T, H, K]),
    gpu.fromHost(c.beta, [T, H]),
  ];
  const outs = [0, 1, 2].map(() => gpu.fromHost(new Float32Array(NS * H * 4096), [NS, H, 64, 64]));
  gpu.dispatch({
    kernel: { name: 'kda_chunk_intra', key: intraGramKey(v), code: () => intraGramWgsl(v) },
    tensors: [...ins, ...outs],
    params: new Params()
      .u32(H, cu.length - 1)
      .f32(K ** -0.5)
      .u32(1),
    workgroups: [NS, H],
  });
  const [Aqk, Tt, Tb] = await Promise.all(outs.map((t) => t.toFloat32()));
  for (const t of [...ins, ...outs]) t.dispose();
  return { Aqk, Tt, Tb };
}

describe('kda forward, bf16 storage: the gc pass and the two intra kernels', () => {
  // Sequences of 1, 7, 63 and 65 tokens in one varlen batch (slot 3 unused), and 130 tokens (a partial third chunk).
  const batches = [
    [0, 1, 8, 71, 136],
    [0, 130],
  ];

  it('bf16 only with the variants the inference forward runs', () => {
    const gv: IntraGramVariant = { K, V, GK: K, prefetch: true, diagChain: true, bf16: true };
    expect(intraGramFits(gv)).toBe(true);
    for (const other of [
      { prefetch: false },
      { diagChain: false },
      { gcFromG: true },
      { stagedStores: true },
      { lean: true },
      { diagSplit: 2 as const },
      { secondary: true },
    ]) {
      expect(intraGramFits({ ...gv, ...other }), JSON.stringify(other)).toBe(false);
      expect(() => intraGramWgsl({ ...gv, ...other }), JSON.stringify(other)).toThrow(/bf16 storage only/);
    }
    expect(() => gcWgsl(K, K, true, true, true)).toThrow(/bf16/);
    expect(intraGramKey(gv)).toMatch(/_bf16$/);
    expect(gcKey(K, K, false, false, true)).toMatch(/_bf16$/);
    expect(intraWUKey({ K, V, GK: K, bf16: true })).toMatch(/_bf16$/);
  });

  // The gc pass without Kd (the inference forward's: the tiled state pass forms Kd) and with it (g and k in bf16).
  // With KIMI_SLOW_TESTS=1 also one gate per head.
  // A gate per channel runs the pair kernel (gcPairsWgsl): at K = 16 one workgroup of 8 live threads, at K = 128
  // (d = 128, the device's) two of 32.
  it.skipIf(!hasGpu)('gc pass: = f32 variant bit for bit, T = 1, 7, 63, 65, 130', { timeout: 300_000 }, async () => {
    for (const [Kc, GK] of slow
      ? [
          [K, K],
          [128, 128],
        ]
      : [
          [K, K],
          [128, 128],
          [K, 1],
        ]) {
      for (const cu of batches) {
        const c = roundedCase(randomCase(cu.length * 7 + GK, cu[cu.length - 1], H, Kc, V, GK));
        const sum = gcRunningSum(c, cu);
        for (const kd of [false, true]) {
          const f32 = await gcAlone(c, cu, kd, false);
          const bf = await gcAlone(c, cu, kd, true);
          const what = `K=${Kc}, GK=${GK}, cu=${cu}, kd=${kd}`;
          expectBits(f32.gc, sum, `gc (f32 pass = running sum, ${what})`);
          expectBits(bf.gc, f32.gc, `gc (bf16 = f32, ${what})`);
          if (kd) expectBits(bf.Kd!, f32.Kd!, `Kd (bf16 = f32, ${what})`);
        }
      }
    }
  });

  it.skipIf(!hasGpu)(
    'first kernel: = f32 variant bit for bit, T = 1, 7, 63, 65, 130',
    { timeout: 300_000 },
    async () => {
      const v: IntraGramVariant = { K, V, GK: K, prefetch: true, diagChain: true };
      for (const cu of batches) {
        const c = roundedCase(randomCase(cu.length * 11, cu[cu.length - 1], H, K, V));
        const f32 = await gramAlone(c, cu, v);
        const bf = await gramAlone(c, cu, { ...v, bf16: true });
        for (const n of ['Aqk', 'Tt', 'Tb'] as const) expectBits(bf[n], f32[n], `${n} (bf16 = f32, cu=${cu})`);
        // The f32 variant against the f64 reference on the used slots (A_qk and the row-major T).
        const ref = reference(c, cu);
        const used = slotsOf(cu).used;
        const pick = (a: Float32Array) =>
          Float32Array.from(used.flatMap((s) => Array.from(a.subarray(s * H * 4096, (s + 1) * H * 4096))));
        expectClose(pick(f32.Aqk), ref.Aqk, 1e-4, `Aqk (reference, cu=${cu})`);
        expectClose(pick(f32.Tb), ref.T, 1e-4, `T (reference, cu=${cu})`);
      }
    },
  );

  // The second kernel as the forward runs it at the tests' K16/V8 (one column tile: the one-tile kernel) and at
  // d = 128 (static tiles, 2 ahead; here at K = 64, V = 72 with the head-first grid, the walk the default pass
  // compiles; double-buffered only on the device: 48 KiB of workgroup memory); with KIMI_SLOW_TESTS=1 also the
  // walk without static tiles (the default where the column tiles outnumber the walk).
  it.skipIf(!hasGpu)(
    'second kernel: = f32 variant rounded, bit for bit, T = 1, 7, 63, 65, 130',
    { timeout: 300_000 },
    async () => {
      const variants: IntraWUVariant[] = [
        { K, V, GK: K },
        { K: 64, V: 72, GK: 64, walk: 4, staticTiles: true, ahead: 2, headFirst: true },
        ...(slow ? [] : [{ K: 64, V: 72, GK: 64, walk: 4 } as IntraWUVariant]),
      ];
      for (const v of variants) {
        for (const T of [1, 7, 63, 65, 130]) {
          const f32 = await wuAlone(v, T, 2, T + 13, true);
          const bf = await wuAlone({ ...v, bf16: true }, T, 2, T + 13);
          const what = `${intraWUKey(v)}, T=${T}`;
          expectClose(f32.gotW, f32.W, 1e-4, `W (f32 = reference, ${what})`);
          expectClose(f32.gotU, f32.U, 1e-4, `U (f32 = reference, ${what})`);
          expectBits(bf.bits!.W, f32ArrayToBf16(f32.gotW), `W (bf16 = f32 rounded, ${what})`);
          expectBits(bf.bits!.U, f32ArrayToBf16(f32.gotU), `U (bf16 = f32 rounded, ${what})`);
        }
      }
    },
  );
});
