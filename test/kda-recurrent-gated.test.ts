/**
 * kdaRecurrentGated (the KDA decode step with f_b / g_b folded into the recurrent kernel) against its
 * definition: the two GEMVs of the low-rank columns, then kdaRecurrentSlots in layer mode. On WebGPU the
 * fused kernels (the eighth session's 'v1'; the prefetch kernel at its defaults, BV 32 where V allows and
 * norm 'split', and with norm 'one', and at BV 16 with norm 'all') must give the two-dispatch path's values
 * to the last bits (they reproduce the GEMV's summation; only the compiler's contraction of multiply-adds,
 * the norm's blocks and, for another value tile, the grouping of the sums over rows may differ): within 1e-6
 * of max |value|, of 'v1' too; all must match the cpu reference (the same ops in plain TS) within 1e-4.
 */
import { describe, expect, it } from 'vitest';
import { recurrentGatedTuning, kdaRecurrentGated } from '../src/kernels/kda/recurrentGated.js';
import { recurrentGatedFits } from '../src/kernels/kda/recurrentGated.wgsl.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import type { Device, Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';
import { expectClose, gpuContext, hasGpu } from './helpers.js';

interface Case {
  H: number;
  K: number;
  rf: number;
  rg: number;
  wd: 'f32' | 'bf16';
  slots: number[];
  /** Only the default kernel (against the two-op path), not 'v1'. */
  defaultOnly?: boolean;
  /** Also the prefetch kernel at the whole V (16) with norm 'all', and with norm 'one'. */
  others?: boolean;
}

/** Host data of one case: the pool, the conv planes, a projection row with f_a, g_a and beta placed oddly. */
function makeCase(c: Case, seed: number) {
  const { H, K, rf, rg } = c;
  const N = c.slots.length;
  const rng = new Rng(seed);
  // Columns: some leading junk, f_a, g_a, then the H betas, then a tail (ld not a multiple of 4).
  const fA = 4;
  const gA = fA + rf;
  const beta = gA + rg + 3;
  const ld = beta + H + 5;
  const pool = rng.normalArray(5 * H * K * K, 0.3);
  const qkv = rng.normalArray(3 * N * H * K);
  const proj = rng.normalArray(N * ld, 2);
  const fB = rng.normalArray(H * K * rf, 0.3);
  const gB = rng.normalArray(H * K * rg, 0.3);
  const A_log = Float32Array.from({ length: H }, (_, h) => (h % 2 ? -2 : Math.log(16)));
  const dt = rng.normalArray(H * K);
  return { N, fA, gA, beta, ld, pool, qkv, proj, fB, gB, A_log, dt };
}

function run(d: Device, c: Case, x: ReturnType<typeof makeCase>) {
  const { H, K, rf, rg } = c;
  const w = (a: Float32Array, shape: number[]) =>
    c.wd === 'bf16' ? d.fromHost(f32ArrayToBf16(a), shape, 'bf16') : d.fromHost(a, shape);
  const pool = d.fromHost(x.pool, [5, H, K, K]);
  const r = kdaRecurrentGated(pool, d.fromHost(Int32Array.from(c.slots), [x.N], 'i32'), {
    qkv: d.fromHost(x.qkv, [3, x.N, H * K]),
    proj: d.fromHost(x.proj, [x.N, x.ld]),
    fA: x.fA,
    gA: x.gA,
    beta: x.beta,
    fB: w(x.fB, [H * K, rf]),
    gB: w(x.gB, [H * K, rg]),
    A_log: d.fromHost(x.A_log, [H]),
    dt_bias: d.fromHost(x.dt, [H * K]),
  });
  return { pool, ...r };
}

const f32 = async (t: Tensor) => (await t.toFloat32()) as Float32Array;

async function values(r: { pool: Tensor; o: Tensor; gate: Tensor }) {
  return { o: await f32(r.o), gate: await f32(r.gate), pool: await f32(r.pool) };
}

describe('kdaRecurrentGated', () => {
  // K16-sized heads as the other KDA decode tests (bf16 weights also in test/decode-host.test.ts's step of
  // the tiny 48B structure, batch 1 and 2, against the two-op path); rf + rg over 32 chunks (72 + 64 f32)
  // falls back to the two ops.
  const cases: Case[] = [
    { H: 3, K: 16, rf: 8, rg: 12, wd: 'f32', slots: [1, 2] },
    { H: 2, K: 16, rf: 8, rg: 24, wd: 'bf16', slots: [3], others: true },
    // K = 32: the prefetch kernel's default tile (32 columns, 16 row groups) regroups the sums over rows
    // against the two-op path's (8 columns, 32 row groups), as at the 48B shapes.
    { H: 2, K: 32, rf: 12, rg: 8, wd: 'f32', slots: [4, 0], defaultOnly: true },
    { H: 2, K: 16, rf: 72, rg: 64, wd: 'f32', slots: [2] },
  ];
  for (const c of cases) {
    const fits = recurrentGatedFits({ K: c.K, V: c.K, BV: 8, rf: c.rf, rg: c.rg, wDtype: c.wd });
    it.skipIf(!hasGpu)(
      `H=${c.H} K=${c.K} rf=${c.rf} rg=${c.rg} ${c.wd}, slots [${c.slots}]: ${fits ? 'each kernel = the two-op path' : 'the two-op fallback'}, = cpu`,
      async () => {
        const gpu = (await gpuContext())!;
        const x = makeCase(c, 11 + c.slots.length);
        const saved = { ...recurrentGatedTuning };
        const runWith = async (t: Partial<typeof recurrentGatedTuning>) => {
          Object.assign(recurrentGatedTuning, t);
          try {
            return await values(run(gpu, c, x));
          } finally {
            Object.assign(recurrentGatedTuning, saved);
          }
        };
        const apart = await runWith({ fold: false });
        // The eighth session's kernel first: the others are checked against it too.
        const list: Partial<typeof recurrentGatedTuning>[] = [{}];
        if (fits && !c.defaultOnly) list.unshift({ kernel: 'v1' });
        if (fits && c.others) list.push({ bv: 16, norm: 'all' }, { norm: 'one' });
        const runs = [];
        for (const t of list) runs.push({ t, r: await runWith(t) });
        const fused = runs[list.length > 1 ? 1 : 0].r;
        // The GEMV's partials and tree, but the shader compiler may contract multiply-adds differently in
        // another kernel (lavapipe does: last-bit differences), so not bit-equal: within 1e-6 of max |value|.
        // With bf16 weights the two-op path here runs f_b and g_b as two GEMVs (the model's unfused step runs
        // the block-diagonal one the fold reproduces: test/decode-host.test.ts), whose trees differ from the
        // fold's: within 4e-6 of it (o: 1.2e-6 on lavapipe), and within 1e-6 of 'v1'.
        const tol = c.wd === 'bf16' ? 4e-6 : 1e-6;
        for (const { t, r } of runs) {
          for (const [what, b, tl] of [
            ['two ops', apart, tol],
            ['v1', runs[0].r, 1e-6],
          ] as const) {
            if (what === 'v1' && list.length === 1) continue;
            const at = `${JSON.stringify(t)} vs ${what}`;
            expectClose(r.gate, b.gate, tl, `gate, ${at}`);
            expectClose(r.o, b.o, tl, `o, ${at}`);
            expectClose(r.pool, b.pool, tl, `pool, ${at}`);
          }
        }
        const ref = await values(run(cpu, c, x));
        expectClose(fused.o, ref.o, 1e-4, 'o');
        expectClose(fused.gate, ref.gate, 1e-4, 'gate');
        expectClose(fused.pool, ref.pool, 1e-4, 'pool');
        // Slots not in the batch keep their state.
        const KV = c.H * c.K * c.K;
        for (let s = 0; s < 5; s++) {
          if (c.slots.includes(s)) continue;
          expect(Array.from(fused.pool.slice(s * KV, (s + 1) * KV))).toEqual(
            Array.from(x.pool.slice(s * KV, (s + 1) * KV)),
          );
        }
      },
    );
  }
  it('rejects columns past the projection row', () => {
    const c: Case = { H: 2, K: 16, rf: 16, rg: 16, wd: 'f32', slots: [0] };
    const x = makeCase(c, 1);
    expect(() => run(cpu, c, { ...x, beta: x.ld - 1 })).toThrow(/beta/);
  });
});
