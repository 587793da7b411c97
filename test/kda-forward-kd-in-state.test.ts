/**
 * The chunked forward without keep whose tiled state pass computes Kd = k exp(gc_last - gc) while staging its
 * tile (kdaForwardTuning.kdInState, StateTiledVariant.kdFromK) and whose gc pass then writes gc only, against
 * the forward as before (kdInState false: the gc pass writes Kd, the state pass reads it): o and the final state
 * within 1e-6 (the same expression on the same f32 values; only where exp runs differs) and against the f64
 * recurrent reference; the dispatches checked to be the gc-only pass and the kdFromK state pass (the default). K16/V8 with a gate per
 * channel (GK = K, which the option needs), the geometry the other KDA tests compile: T = 65 (two chunks, the
 * second partial, so gc_last is a short chunk's last row) in the default pass; with KIMI_SLOW_TESTS=1 also
 * T = 1, a varlen batch with an empty sequence, the state pass in its own pipeline, and keep (where the
 * option does not apply: the backward reads Kd).
 * The tiled state pass alone in bf16 storage (StateTiledVariant.bf16: W, U, k in, hB, V' out as bf16) against its
 * f32 variant on bf16-representable W, U, k: the final state bit for bit, hB and V' the f32 variant's rounded to
 * bf16 (f32ToBf16Bits) bit for bit; T = 1, 7, 63, 65, 130 and a varlen batch with an empty sequence, the variant
 * lavapipe's forward runs (the plain V' sum) in the default pass, the GPUs' (fma) with KIMI_SLOW_TESTS=1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { groupParams, kdaForwardTuning, sharedPipelineByDefault } from '../src/kernels/kda/chunk.js';
import { kdaRecurrentReference } from '../src/kernels/kda/index.js';
import { type StateTiledVariant, stateTiledKey, stateTiledWgsl } from '../src/kernels/kda/stateTiled.wgsl.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';
import {
  type ForwardTuning,
  runChunkForward,
  runChunkForwardKept,
  withDispatchKeys,
  withForwardTuning,
} from './kda-forward-run.js';
import { type KdaCase, randomCase } from './kda-random.js';

type Tuning = ForwardTuning;

afterEach(() => {
  for (const key of Object.keys(kdaForwardTuning) as (keyof typeof kdaForwardTuning)[]) delete kdaForwardTuning[key];
});

/** The forward without keep (o, final state) with `tuning`, and the kernel keys it dispatched. */
async function run(c: KdaCase, cu: number[], S0: Float32Array, tuning: Tuning) {
  const gpu = (await gpuContext())!;
  return withForwardTuning(tuning, () => withDispatchKeys(gpu, () => runChunkForward(gpu, c, cu, S0)));
}

async function expectKdInState(c: KdaCase, cu: number[], S0: Float32Array, extra: Tuning = {}) {
  const ref = kdaRecurrentReference(c.q, c.k, c.v, c.g, c.beta, { ...c, cu }, c.K ** -0.5, S0);
  const base = await run(c, cu, S0, { ...extra, kdInState: false });
  // The default (kdInState unset) is the new path.
  const got = await run(c, cu, S0, extra);
  const fused = extra.sharedPipeline ?? sharedPipelineByDefault((await gpuContext())!);
  const state = (keys: string[]) =>
    keys.filter((k) => (fused ? k.startsWith('fuse_kda_chunk_intra_state|') : k.startsWith('kda_chunk_state_tiled')));
  expect(base.keys.some((k) => k.endsWith('_nokd'))).toBe(false);
  expect(base.keys.some((k) => k.includes('_kdk'))).toBe(false);
  expect(got.keys.filter((k) => k.startsWith('kda_chunk_gc_') && k.endsWith('_nokd')).length).toBe(1);
  expect(state(got.keys).length).toBe(fused ? 2 : 1);
  for (const k of state(got.keys)) expect(k).toContain('_kdk');
  for (const n of ['o', 'S'] as const) {
    expectClose(got.got[n], base.got[n], 1e-6, `${n} (Kd in the state pass = from the gc pass)`);
    expectClose(got.got[n], ref[n], 2e-3, `${n} (reference)`);
  }
}

const slow = !hasGpu || process.env.KIMI_SLOW_TESTS !== '1';
const [H, K, V] = [2, 16, 8];

describe('kda chunked forward: Kd computed in the tiled state pass', () => {
  it.skipIf(!hasGpu)('= Kd from the gc pass: T=65', { timeout: 300_000 }, async () => {
    await expectKdInState(randomCase(21, 65, H, K, V), [0, 65], new Rng(22).normalArray(H * K * V, 0.5));
  });

  it.skipIf(slow)('= Kd from the gc pass: T=1', { timeout: 300_000 }, async () => {
    await expectKdInState(randomCase(23, 1, H, K, V), [0, 1], new Rng(24).normalArray(H * K * V, 0.5));
  });

  it.skipIf(slow)('= Kd from the gc pass: varlen (5, 70, 0, 58 tokens)', { timeout: 300_000 }, async () => {
    const cu = [0, 5, 75, 75, 133];
    await expectKdInState(randomCase(25, cu[4], H, K, V), cu, new Rng(26).normalArray(4 * H * K * V, 0.5));
  });

  it.skipIf(slow)('= Kd from the gc pass: state pass in its own pipeline, T=130', { timeout: 300_000 }, async () => {
    const S0 = new Rng(28).normalArray(H * K * V, 0.5);
    await expectKdInState(randomCase(27, 130, H, K, V), [0, 130], S0, { sharedPipeline: false });
  });

  it.skipIf(slow)('keep: the option does not apply (the gc pass writes Kd)', { timeout: 300_000 }, async () => {
    const gpu = (await gpuContext())!;
    const c = randomCase(29, 65, H, K, V);
    const { keys } = await withDispatchKeys(gpu, () =>
      runChunkForwardKept(gpu, c, [0, 65], new Rng(30).normalArray(H * K * V, 0.5)),
    );
    expect(keys.some((k) => k.endsWith('_nokd') || k.includes('_kdk'))).toBe(false);
  });
});

/**
 * The tiled state pass alone (kdFromK: W, U, k, gc in; the final state, hB, V' out) over sequences bounded by cu,
 * variant `f32v` in f32 and `bf16v` (bf16 set) in bf16 storage, on the same bf16-representable W, U, k (gc and the
 * initial state f32 as in both). Returns each run's final state, V' and the used chunk slots' hB, as f32 bits (f32
 * run) or bf16 bits (bf16 run).
 */
async function stateAlone(f32v: StateTiledVariant, bf16v: StateTiledVariant, cu: number[], seed: number) {
  const gpu = (await gpuContext())!;
  const rng = new Rng(seed);
  const N = cu.length - 1;
  const T = cu[N];
  const NS = Math.floor(T / 64) + N;
  const bf = (a: Float32Array) => f32ArrayToBf16(a);
  const [W, U, k] = [
    bf(rng.normalArray(T * H * K, 0.3)),
    bf(rng.normalArray(T * H * V, 1)),
    bf(rng.normalArray(T * H * K, 0.3)),
  ];
  // A cumulative log decay: <= 0 (the values need not be a chunk's cumsum for the comparison).
  const gc = rng.uniformArray(T * H * K, -2, 0);
  const S0 = rng.normalArray(N * H * K * V, 0.5);
  // Chunk slots in use (chunk.wgsl.ts numbering); the others' hB hold whatever the buffer pool gave.
  const used: number[] = [];
  for (let n = 0; n < N; n++)
    for (let j = 0; j * 64 < cu[n + 1] - cu[n]; j++) used.push(Math.floor(cu[n] / 64) + n + j);
  const out: Record<'S' | 'Vp' | 'h', Uint32Array | Uint16Array>[] = [];
  for (const tv of [f32v, bf16v]) {
    const bf16 = tv.bf16 === true;
    const up = (a: Uint16Array, shape: number[]) =>
      bf16 ? gpu.fromHost(a, shape, 'bf16') : gpu.fromHost(bf16ArrayToF32(a), shape);
    const dt = bf16 ? 'bf16' : 'f32';
    const gcT = gpu.fromHost(gc, [T, H, K]);
    const ins = [
      gpu.fromHost(Int32Array.from(cu), [N + 1], 'i32'),
      up(W, [T, H, K]),
      up(U, [T, H, V]),
      up(k, [T, H, K]),
      gcT,
      gcT,
    ];
    const [state, h, Vp] = [gpu.fromHost(S0, [N, H, K, V]), gpu.empty([NS, H, K, V], dt), gpu.empty([T, H, V], dt)];
    gpu.dispatch({
      kernel: { name: 'kda_chunk_state', key: stateTiledKey(tv), code: () => stateTiledWgsl(tv) },
      tensors: [...ins, state, h, Vp],
      params: groupParams({ Ttot: T, N, H, K, V, GK: K, B: 1, T }, K ** -0.5, { h0: 0, HB: H }),
      workgroups: [V / tv.BV, H, N],
    });
    // Raw bits: bf16 tensors read as their Uint16 patterns, f32 ones viewed as Uint32.
    const bits = async (t: typeof h) => {
      const a = await t.read();
      return t.dtype === 'bf16' ? (a as Uint16Array) : new Uint32Array((a as Float32Array).slice().buffer);
    };
    const hAll = await bits(h);
    const per = H * K * V;
    const hUsed = bf16 ? new Uint16Array(used.length * per) : new Uint32Array(used.length * per);
    for (const [i, s] of used.entries()) hUsed.set(hAll.subarray(s * per, (s + 1) * per), i * per);
    out.push({ S: await bits(state), Vp: await bits(Vp), h: hUsed });
    for (const t of [...ins.slice(0, 5), state, h, Vp]) t.dispose();
  }
  return { f32: out[0], bf16: out[1] };
}

/** f32 bit patterns rounded to bf16 as f32ToBf16Bits does. */
const roundBits = (a: Uint32Array) => f32ArrayToBf16(new Float32Array(a.buffer, a.byteOffset, a.length));

/**
 * `bf16v` (bf16 storage; default: v's) = `f32v` (default: v) rounded: the final state bit for bit, hB and V' the f32
 * variant's rounded to bf16.
 */
async function expectStateBf16Exact(
  v: StateTiledVariant,
  bf16v: StateTiledVariant = { ...v, bf16: true },
  f32v: StateTiledVariant = v,
) {
  for (const cu of [
    [0, 1],
    [0, 7],
    [0, 63],
    [0, 65],
    [0, 130],
    [0, 5, 75, 75, 133],
  ]) {
    const r = await stateAlone(f32v, bf16v, cu, cu[cu.length - 1] + 40);
    const what = `${stateTiledKey(bf16v)} against ${stateTiledKey(f32v)}, cu=${cu}`;
    expect(Array.from(r.bf16.S), `final state (f32) = f32 variant's, ${what}`).toEqual(Array.from(r.f32.S));
    for (const n of ['Vp', 'h'] as const) {
      const want = roundBits(r.f32[n] as Uint32Array);
      // The f32 results are not bf16-representable already: the comparison sees the rounding.
      expect(
        want.some((b, i) => (b << 16) >>> 0 !== (r.f32[n] as Uint32Array)[i]),
        `${n} f32 not bf16 already`,
      ).toBe(true);
      expect(Array.from(r.bf16[n]), `${n} (bf16) = f32 variant's rounded, ${what}`).toEqual(Array.from(want));
    }
  }
}

describe('kda tiled state pass: bf16 storage = f32 variant rounded', () => {
  const tv = { K, V, GK: K, BV: 8, RA: 2 as const, wg: 256, kdFromK: true };
  // The bf16 variant stores hB and V' from the idle threads by default (StateTiledVariant.idleStores).
  it.skipIf(!hasGpu)("plain V' sum (lavapipe default), idle stores: K=16, V=8", { timeout: 300_000 }, async () => {
    expect(stateTiledKey({ ...tv, bf16: true })).toMatch(/_bf16_is$/);
    await expectStateBf16Exact({ ...tv, fma: false });
  });

  it.skipIf(slow)("fma V' sum (GPU default), idle stores: K=16, V=8", { timeout: 300_000 }, async () => {
    await expectStateBf16Exact({ ...tv, fma: true });
  });

  it.skipIf(slow)('stores by the computing threads (idleStores false): K=16, V=8', { timeout: 300_000 }, async () => {
    await expectStateBf16Exact(tv, { ...tv, bf16: true, idleStores: false });
  });

  it.skipIf(slow)('f32 with idle stores = f32 as before, bit for bit: K=16, V=8', { timeout: 300_000 }, async () => {
    for (const cu of [
      [0, 1],
      [0, 130],
      [0, 5, 75, 75, 133],
    ]) {
      const r = await stateAlone(tv, { ...tv, idleStores: true }, cu, cu[cu.length - 1] + 41);
      for (const n of ['S', 'Vp', 'h'] as const)
        expect(Array.from(r.bf16[n]), `${n} (f32, idle stores = before), cu=${cu}`).toEqual(Array.from(r.f32[n]));
    }
  });

  it('idle stores only where both phases leave threads idle', () => {
    // 64 threads at K=16, RA=2: all of them in the V' phase.
    expect(stateTiledKey({ ...tv, wg: 64, bf16: true })).toMatch(/_bf16$/);
    expect(() => stateTiledWgsl({ ...tv, wg: 64, idleStores: true })).toThrow(/idle stores need threads idle/);
    expect(stateTiledKey({ ...tv, idleStores: true })).toMatch(/_is$/);
    expect(stateTiledKey(tv)).not.toMatch(/_is$/);
  });

  it('rwOperands: W and U (Kt and v in the Kt form) bound read_write, nothing else; needs kdFromK or ktForm', () => {
    const rw = (w: string) => [...w.matchAll(/var<storage, read_write> (\w+):/g)].map((m) => m[1]);
    expect(rw(stateTiledWgsl({ ...tv, rwOperands: true }))).toEqual(['W', 'U', 'state', 'hB', 'Vp']);
    expect(rw(stateTiledWgsl({ ...tv, kdFromK: false, ktForm: true, rwOperands: true }))).toEqual([
      'Kt',
      'vv',
      'state',
      'hB',
      'Vp',
    ]);
    expect(rw(stateTiledWgsl(tv))).toEqual(['state', 'hB', 'Vp']);
    expect(stateTiledWgsl({ ...tv, rwOperands: true }).replace(/read_write> (W|U):/g, 'read> $1:')).toBe(
      stateTiledWgsl(tv),
    );
    expect(() => stateTiledWgsl({ ...tv, kdFromK: false, rwOperands: true })).toThrow(/rwOperands needs kdFromK/);
  });

  it.skipIf(!hasGpu)('rwOperands: the forward unchanged, bit for bit: T=65', { timeout: 300_000 }, async () => {
    const c = randomCase(23, 65, H, K, V);
    const S0 = new Rng(24).normalArray(H * K * V, 0.5);
    const base = await run(c, [0, 65], S0, {});
    const got = await run(c, [0, 65], S0, { stateRwOperands: true });
    expect(got.keys.some((k) => k.startsWith('kda_chunk_state_tiled') && k.includes('_kdk') && k.includes('_rw'))).toBe(
      true,
    );
    for (const n of ['o', 'S'] as const) expect(Array.from(got.got[n]), n).toEqual(Array.from(base.got[n]));
  });

  it('bf16 needs kdFromK and no probe', () => {
    expect(() => stateTiledWgsl({ ...tv, kdFromK: false, bf16: true })).toThrow(/bf16 storage needs kdFromK/);
    expect(() => stateTiledWgsl({ ...tv, probe: 'nohb', bf16: true })).toThrow(/bf16 storage needs kdFromK/);
  });
});
