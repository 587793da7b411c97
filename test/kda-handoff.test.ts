/**
 * kdaStepGatedNormLinear with the handoff (fused/kdaHandoff.wgsl.ts: the KDA step and the gated o_norm + o_proj
 * GEMV as two roles of one dispatch, o and the gate handed over through a scratch buffer) against the same op as two
 * dispatches (kdaRecurrentGated, then gatedRmsnormLinear): the same bits of y and of the state pool (the same
 * arithmetic), twice in a row from the same inputs (the scratch must be all zeros after each dispatch, or the second
 * would read stale words), and the cpu reference (the same ops in plain TS) within 1e-4. Shapes: one head of 16, two
 * of 48 (64 of 256 invocations idle in the step role, 12 bf16 chunks a row: 20 lanes without one), eight of 160
 * (128 idle, two staged chunks an invocation, a whole round of 4 W chunks and a tail chunk a lane; also with 2 held);
 * three heads fall back (256 % 3).
 *
 * On lavapipe the GEMV workgroups spin on the CPU's cores while step workgroups still run (its thread pool hands each
 * thread a contiguous range of workgroup ids, so a consumer can start before producers of another thread's range
 * finish): the spin cap is raised to 2^32 - 1 re-reads here, so that it is never what ends a wait.
 */
import { describe, expect, it } from 'vitest';
import { handoffPublishWords, handoffReadWords } from '../src/kernels/fused/handoff.js';
import { kdaHandoffScratchWords, kdaStepGatedNormLinear } from '../src/kernels/fused/kdaHandoff.js';
import { kdaHandoffGeometry, kdaHandoffTuning } from '../src/kernels/fused/kdaHandoff.wgsl.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';

interface Case {
  H: number;
  d: number;
  rf: number;
  rg: number;
  /** f_b / g_b dtype and o_proj's. */
  wd: 'f32' | 'bf16';
  od: 'f32' | 'bf16';
  /** o_proj rows. */
  N: number;
  slot: number;
  hold?: number;
}

function makeCase(c: Case, seed: number) {
  const { H, d, rf, rg, N } = c;
  const rng = new Rng(seed);
  const fA = 4;
  const gA = fA + rf;
  const beta = gA + rg + 3;
  const ld = beta + H + 5;
  return {
    fA,
    gA,
    beta,
    ld,
    pool: rng.normalArray(3 * H * d * d, 0.3),
    qkv: rng.normalArray(3 * H * d),
    proj: rng.normalArray(ld, 2),
    fB: rng.normalArray(H * d * rf, 0.3),
    gB: rng.normalArray(H * d * rg, 0.3),
    A_log: Float32Array.from({ length: H }, (_, h) => (h % 2 ? -2 : Math.log(16))),
    dt: rng.normalArray(H * d),
    normW: Float32Array.from(rng.normalArray(d, 0.2), (x) => 1 + x),
    W: rng.normalArray(N * H * d, 0.1),
  };
}

function run(dev: Device, c: Case, x: ReturnType<typeof makeCase>, handoff: boolean, scratch?: Tensor) {
  const { H, d, rf, rg } = c;
  const w = (dt: 'f32' | 'bf16', a: Float32Array, shape: number[]) =>
    dt === 'bf16' ? dev.fromHost(f32ArrayToBf16(a), shape, 'bf16') : dev.fromHost(a, shape);
  const pool = dev.fromHost(x.pool, [3, H, d, d]);
  const y = kdaStepGatedNormLinear(
    pool,
    dev.fromHost(Int32Array.from([c.slot]), [1], 'i32'),
    {
      qkv: dev.fromHost(x.qkv, [3, 1, H * d]),
      proj: dev.fromHost(x.proj, [1, x.ld]),
      fA: x.fA,
      gA: x.gA,
      beta: x.beta,
      fB: w(c.wd, x.fB, [H * d, rf]),
      gB: w(c.wd, x.gB, [H * d, rg]),
      A_log: dev.fromHost(x.A_log, [H]),
      dt_bias: dev.fromHost(x.dt, [H * d]),
    },
    { weight: dev.fromHost(x.normW, [d]), eps: 1e-6 },
    w(c.od, x.W, [c.N, H * d]),
    { handoff, scratch },
  );
  return { pool, y };
}

const f32 = async (t: Tensor) => Array.from((await t.toFloat32()) as Float32Array);

describe('kdaStepGatedNormLinear (KDA handoff)', () => {
  const cases: Case[] = [
    { H: 1, d: 16, rf: 8, rg: 16, wd: 'f32', od: 'bf16', N: 13, slot: 1 },
    { H: 2, d: 48, rf: 16, rg: 8, wd: 'bf16', od: 'bf16', N: 37, slot: 2 },
    { H: 8, d: 160, rf: 16, rg: 16, wd: 'bf16', od: 'bf16', N: 21, slot: 0 },
    { H: 8, d: 160, rf: 16, rg: 16, wd: 'bf16', od: 'f32', N: 9, slot: 2, hold: 2 },
    { H: 3, d: 16, rf: 8, rg: 8, wd: 'f32', od: 'f32', N: 7, slot: 1 },
  ];
  for (const c of cases) {
    const fused = 256 % c.H === 0;
    it.skipIf(!hasGpu)(
      `H=${c.H} d=${c.d} rf=${c.rf} rg=${c.rg} ${c.wd}, o_proj ${c.N} rows ${c.od}${c.hold ? `, hold ${c.hold}` : ''}: ${fused ? 'one dispatch = two, twice' : 'falls back'}, = cpu`,
      async () => {
        const gpu = (await gpuContext())!;
        const x = makeCase(c, 5 + c.H + c.d);
        const saved = { ...kdaHandoffTuning };
        if (c.hold) kdaHandoffTuning.hold = c.hold;
        kdaHandoffTuning.spin = 2 ** 32 - 1;
        try {
          const scratch = gpu.zeros([kdaHandoffScratchWords(c.H, c.d)], 'i32');
          const apart = run(gpu, c, x, false);
          const [yA, pA] = [await f32(apart.y), await f32(apart.pool)];
          for (let rep = 0; rep < 2; rep++) {
            const one = run(gpu, c, x, true, scratch);
            expect(await f32(one.y), `y, run ${rep}`).toEqual(yA);
            expect(await f32(one.pool), `pool, run ${rep}`).toEqual(pA);
            expect((await f32(scratch)).every((w) => w === 0)).toBe(true);
          }
          const ref = run(cpu, c, x, false);
          expectClose(yA, await f32(ref.y), 1e-4, 'y vs cpu');
          expectClose(pA, await f32(ref.pool), 1e-4, 'pool vs cpu');
        } finally {
          Object.assign(kdaHandoffTuning, saved);
        }
      },
    );
  }
  it('widens the step tile without changing its row groups', () => {
    // 48B: BV 32 (128 invocations) -> 64 columns on 256; d 48: BV 8 (96) -> 16 on 192 of 256; d 160: stays.
    expect(kdaHandoffGeometry({ K: 128, V: 128, BV: 32 })).toEqual({
      BV: 64,
      geo: { WG: 256, QW: 16, NRG: 16, RPT: 8 },
      tiles: 2,
    });
    expect(kdaHandoffGeometry({ K: 48, V: 48, BV: 8 })).toEqual({
      BV: 16,
      geo: { WG: 192, QW: 4, NRG: 48, RPT: 1 },
      tiles: 3,
    });
    expect(kdaHandoffGeometry({ K: 160, V: 160, BV: 32 }).BV).toBe(32);
  });
  it('publishes and reads an f32 as two tagged halves, bit for bit', () => {
    for (const v of [0, -0, 1.5, -3.25e-30, Number.NaN, Number.POSITIVE_INFINITY, 1e38]) {
      const [lo, hi] = handoffPublishWords(v);
      expect(lo & hi & 0x10000).toBe(0x10000);
      expect(Object.is(handoffReadWords(lo, hi), Math.fround(v))).toBe(true);
    }
  });
});
