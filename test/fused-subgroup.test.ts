/**
 * The decode kernels' subgroup forms (fused/sweep.ts decodeTuning.subgroupSums / subgroupSort / subgroupSumsRest):
 * the row sums and the norm's sum of squares by subgroup shuffles, the router's sort with its short strides in
 * registers, and the step's other sums (KDA's head norm, norm_cache_write, add_rmsnorm, rmsnorm, swiglu_gemv). On
 * lavapipe subgroups are 4 lanes (8 without LP_NATIVE_VECTOR_WIDTH=128), so a 32- or 64-lane row spans several subgroups (the shuffles, then the
 * subgroups' sums through workgroup memory); on the H200 (32 lanes) a 32-lane row is one subgroup, the path the
 * decode bench's --check covers there.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import { GNG_WG, headNormSubgroup } from '../src/kernels/fused/gatedNormGemv.wgsl.js';
import {
  addRmsnorm,
  addRmsnormLinear,
  gatedRmsnormLinear,
  headGemv,
  moeRoutedDecode,
  moeSharedDecode,
  rmsnormCacheWrite,
  routeRanked,
  swigluLinear,
} from '../src/kernels/fused/index.js';
import {
  addRmsnormReference,
  gatedRmsnormLinearReference,
  headGemvReference,
  normConcatReference,
  swigluRowsReference,
} from '../src/kernels/fused/reference.js';
import { int8RowWords } from '../src/kernels/mla/index.js';
import { rmsnorm } from '../src/kernels/rmsnorm/index.js';
import { rmsnormReference } from '../src/kernels/rmsnorm/reference.js';
import { linear } from '../src/kernels/matmul/index.js';
import { decodeSubgroupSize, decodeTuning } from '../src/kernels/fused/sweep.js';
import { routeTailWords } from '../src/kernels/fused/routeTail.wgsl.js';
import { matmulReference } from '../src/kernels/matmul/reference.js';
import { expertsInference } from '../src/kernels/moe/index.js';
import { moeDecodeTuning } from '../src/kernels/moe/decode.wgsl.js';
import { routeReference } from '../src/kernels/moe/reference.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { expectClose, gpuContext, hasGpu, ROUTER_BASE, lcgUniform as rand } from './helpers.js';

/** Runs body with the subgroup forms on or off (the sums and the sort, or as `sort` says), restoring them after. */
async function withSubgroups<T>(on: boolean, body: () => Promise<T>, sort = on): Promise<T> {
  const saved = { sums: decodeTuning.subgroupSums, sort: decodeTuning.subgroupSort };
  decodeTuning.subgroupSums = on;
  decodeTuning.subgroupSort = sort;
  try {
    return await body();
  } finally {
    decodeTuning.subgroupSums = saved.sums;
    decodeTuning.subgroupSort = saved.sort;
  }
}

/** Runs body with decodeTuning.subgroupSumsRest on or off (the other two knobs off), restoring the three after. */
async function withRest<T>(on: boolean, body: () => Promise<T>): Promise<T> {
  const saved = { ...decodeTuning };
  Object.assign(decodeTuning, { subgroupSums: false, subgroupSort: false, subgroupSumsRest: on });
  try {
    return await body();
  } finally {
    Object.assign(decodeTuning, saved);
  }
}

const read = (ts: Tensor[]) => Promise.all(ts.map((t) => t.toFloat32() as Promise<Float32Array>));

const subgroupsHere = async () => {
  const gpu = await gpuContext();
  return (
    !!gpu &&
    withSubgroups(
      true,
      async () => decodeSubgroupSize(gpu) !== undefined && decodeSubgroupSize(gpu, 'sort') !== undefined,
    )
  );
};

describe.skipIf(!hasGpu)('decode kernels with subgroup sums equal the tree sums and the references', async () => {
  const here = await subgroupsHere();
  it.skipIf(!here)(
    'addRmsnormLinear (conv; two deltas), gatedRmsnormLinear, moeSharedDecode, expertsInference, linear, headGemv',
    async () => {
      const gpu = (await gpuContext())!;
      const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
      const bfHost = async (a: Float32Array) =>
        (await gpu.fromHost(f32ArrayToBf16(a), [a.length], 'bf16').toFloat32()) as Float32Array;
      // Awkward shapes: 65 rows (a last workgroup with one row), K = 1032 (129 chunks: rounds of 4 and a tail),
      // a conv of 3 planes of 7 channels; the MoE at 1032 (two rounds of k loads at 64 lanes) and 40 wide rows.
      const [K, N] = [1032, 65];
      const x = rand(K, 1);
      const d0 = rand(K, 2);
      const d1 = rand(K, 3);
      const nw = rand(K, 4);
      const w = rand(N * K, 5, 0.3);
      const [H, d] = [4, 16];
      const o = rand(H * d, 6, 2);
      const g = rand(H * d, 7, 3);
      const onw = rand(d, 8);
      const wo = rand(N * H * d, 9, 0.3);
      const [C, W] = [21, 4];
      const cw = rand(C * W, 10, 0.5);
      const tail0 = rand((W - 1) * C, 11);
      const [D, I, Is, E, k] = [1032, 40, 48, 5, 3];
      const h = rand(D, 12);
      const e1 = rand(E * I * D, 13, 0.2);
      const e3 = rand(E * I * D, 14, 0.2);
      const e2 = rand(E * D * I, 15, 0.2);
      const gate = 8;
      const sx = rand(gate + 2 * Is, 16);
      const sdown = rand(D * Is, 17, 0.3);
      const hxHost = rand(3 * 72, 19);
      const hw = rand(3 * N * 64, 20, 0.3);
      const run = () =>
        withSubgroups(on, async () => {
          const tail = gpu.fromHost(tail0, [1, W - 1, C]);
          const r = addRmsnormLinear(
            gpu.fromHost(x, [1, K]),
            [gpu.fromHost(d0, [1, K]), gpu.fromHost(d1, [1, K])],
            gpu.fromHost(nw, [K]),
            1e-5,
            bf(w, [N, K]),
            { keepNormed: true, conv: { weight: bf(cw, [C, 1, W]), tail, planes: 3 } },
          );
          const y = gatedRmsnormLinear(
            gpu.fromHost(o, [1, H * d]),
            gpu.fromHost(g, [1, H * d]),
            gpu.fromHost(onw, [d]),
            1e-5,
            bf(wo, [N, H * d]),
            H,
          );
          const experts = { w1: bf(e1, [E, I, D]), w3: bf(e3, [E, I, D]), w2: bf(e2, [E, D, I]) };
          const routes = {
            idx: gpu.fromHost(Int32Array.from([3, 0, 4]), [1, k], 'i32'),
            weights: gpu.fromHost(Float32Array.from([0.5, 0.3, 0.2]), [1, k]),
          };
          const hh = gpu.fromHost(h, [1, D]);
          const terms = moeSharedDecode(hh, routes, experts, {
            x: gpu.fromHost(sx, [1, gate + 2 * Is]),
            gate,
            up: gate + Is,
            down: bf(sdown, [D, Is]),
          });
          expect(terms.length).toBe(1);
          // The plain GEMV (two rows: two sums a lane) and the per-head GEMV with pass-through columns.
          const lin = linear(gpu.fromHost(rand(2 * K, 18), [2, K]), bf(w, [N, K]));
          const hx = gpu.fromHost(hxHost, [1, 3, 72]);
          const hg = headGemv(hx, bf(hw, [3, N, 64]), { xOff: 4, pass: { t: hx, offset: 1, count: 2 } });
          const moe = expertsInference(hh, routes, experts);
          return read([r.y, r.sum, r.normed!, r.conv!, tail, y, terms[0], moe, lin, hg]);
        });
      let on = false;
      const trees = await run();
      on = true;
      const shuffles = await run();
      const names = ['y', 'sum', 'normed', 'conv', 'tail', 'gated', 'moe shared', 'experts', 'linear', 'headGemv'];
      for (let i = 0; i < names.length; i++) expectClose(shuffles[i], trees[i], 2e-6, `${names[i]}: shuffles vs trees`);
      // The plain-TS references: the norm GEMV's y from its normed row, the gated output projection.
      const wh = await bfHost(w);
      const yRef = matmulReference(shuffles[2], wh, {
        batch: 1,
        M: 1,
        N,
        K,
        transA: false,
        transB: true,
        batchStrideB: 0,
      });
      expectClose(shuffles[0], yRef, 2e-6, 'y vs reference');
      const woh = await bfHost(wo);
      const ref = gatedRmsnormLinearReference(o, g, onw, woh, { rows: 1, H, d, N, eps: 1e-5 });
      expectClose(shuffles[5], ref, 2e-5, 'gated vs reference');
      const hwh = await bfHost(hw);
      const hgRef = headGemvReference(hxHost, hwh, hxHost, {
        B: 1,
        H: 3,
        N,
        K: 64,
        xs: 72,
        xOff: 4,
        P: 2,
        ps: 72,
        ptOff: 1,
      });
      expectClose(shuffles[9], hgRef, 1e-5, 'headGemv vs reference');
    },
  );

  it.skipIf(!here)(
    'the router in the projection and in gate_up: the picks of routeRanked and the reference, exactly',
    async () => {
      const gpu = (await gpuContext())!;
      // The 48B's E and k (256 choices: the register sort, one an invocation), ties among the router rows.
      const [E, k, D, extra] = [256, 8, 64, 29];
      const N = E + extra;
      const w = rand(N * D, N + D, 0.3);
      for (let j = 0; j < 4; j++) w.copyWithin((2 * j + 1) * D, 2 * j * D, (2 * j + 1) * D);
      const wt = gpu.fromHost(f32ArrayToBf16(w), [N, D], 'bf16');
      const [x, d0, nw] = [rand(D, D), rand(D, D + 1), rand(D, D + 3)];
      const biasHost = Float32Array.from(rand(E, E), (v) => Math.round(v * 2) / 64);
      const bias = gpu.fromHost(biasHost, [E]);
      const cfg = { ...ROUTER_BASE, numExperts: E, topK: k, scaling: 2.5 };
      const scratch = gpu.zeros([routeTailWords(E)], 'i32');
      const plain = addRmsnormLinear(
        gpu.fromHost(x, [1, D]),
        [gpu.fromHost(d0, [1, D])],
        gpu.fromHost(nw, [D]),
        1e-5,
        wt,
      );
      const logits = ((await plain.y.toFloat32()) as Float32Array).slice(0, E);
      const ref = routeReference(logits, biasHost, 1, cfg);
      const want = routeRanked(plain.y.narrow(1, 0, E), bias, cfg);
      const wantIdx = Array.from((await want.idx.read()) as Int32Array);
      const wantW = Array.from(await want.weights.toFloat32());
      expect(wantIdx, 'routeRanked vs reference').toEqual(Array.from(ref.idx));
      // The sort alone (the sums would change the logits' last bits, and so the weights).
      await withSubgroups(
        false,
        async () => {
          const r = addRmsnormLinear(
            gpu.fromHost(x, [1, D]),
            [gpu.fromHost(d0, [1, D])],
            gpu.fromHost(nw, [D]),
            1e-5,
            wt,
            {
              route: { col: 0, bias, cfg, scratch },
            },
          );
          expect(r.routes).toBeDefined();
          expect(Array.from((await r.routes!.idx.read()) as Int32Array), 'tail picks').toEqual(wantIdx);
          expect(Array.from(await r.routes!.weights.toFloat32()), 'tail weights').toEqual(wantW);
          expect(
            Array.from((await scratch.read()) as Int32Array).every((v) => v === 0),
            'scratch zero',
          ).toBe(true);
          // gate_up's folded router (moeRoutedDecode) on the same logits: the same picks and weights.
          const [Dm, I, Is] = [64, 16, 8];
          const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
          const experts = {
            w1: bf(rand(E * I * Dm, 1, 0.2), [E, I, Dm]),
            w3: bf(rand(E * I * Dm, 2, 0.2), [E, I, Dm]),
            w2: bf(rand(E * Dm * I, 3, 0.2), [E, Dm, I]),
          };
          const packed = new Float32Array(E + 2 * Is);
          packed.set(logits);
          packed.set(rand(2 * Is, 4), E);
          const px = gpu.fromHost(packed, [1, E + 2 * Is]);
          const shared = { x: px, gate: E, up: E + Is, down: bf(rand(Dm * Is, 5, 0.3), [Dm, Is]) };
          const folded = moeRoutedDecode(
            gpu.fromHost(rand(Dm, 6), [1, Dm]),
            { x: px, col: 0, bias, cfg },
            experts,
            shared,
          );
          expect(Array.from((await folded.routes.idx.read()) as Int32Array), 'folded picks').toEqual(wantIdx);
          expect(Array.from(await folded.routes.weights.toFloat32()), 'folded weights').toEqual(wantW);
        },
        true,
      );
    },
  );
});

describe.skipIf(!hasGpu)("the decode step's other sums by subgroup shuffles (subgroupSumsRest)", async () => {
  const gpu = await gpuContext();
  const sg = gpu ? await withRest(true, async () => decodeSubgroupSize(gpu, 'rest')) : undefined;
  it.skipIf(!sg)(
    'gatedRmsnormLinear (head norm in one subgroup and across), rmsnormCacheWrite, addRmsnorm, rmsnorm, swigluLinear',
    async () => {
      const g = gpu!;
      const bf = (a: Float32Array, shape: number[]) => g.fromHost(f32ArrayToBf16(a), shape, 'bf16');
      const bfHost = async (a: Float32Array) =>
        (await g.fromHost(f32ArrayToBf16(a), [a.length], 'bf16').toFloat32()) as Float32Array;
      // KDA's head norm: 64 heads of 8 (4 invocations a head: within a subgroup of 4 or 32, the shuffle form),
      // and 2 heads of 8 (128 a head: larger than the subgroup, so the partials; its result must not move).
      const heads = [
        [64, 8],
        [2, 8],
      ] as const;
      expect(headNormSubgroup({ H: 64, d: 8, normDtype: 'f32', wDtype: 'bf16', normSg: sg }), 'shuffle form').toBe(sg);
      expect(GNG_WG / 2 > sg!, 'the partials case').toBe(true);
      const N = 65;
      const gated = heads.map(([H, d], j) => ({
        H,
        d,
        o: rand(H * d, 30 + j, 2),
        gate: rand(H * d, 40 + j, 3),
        nw: rand(d, 50 + j),
        w: rand(N * H * d, 60 + j, 0.3),
      }));
      // The MLA latent row: 2 rows of 60 columns, the normed 40 from column 5, 8 passed through, an f32 pool.
      const [B, ld, off, r, pass, pages, pageSize, maxPages] = [2, 60, 5, 40, 8, 4, 4, 2];
      const R = r + pass;
      const lx = rand(B * ld, 70);
      const lw = rand(r, 71);
      // addRmsnorm and rmsnorm: 3 rows of 1000 (not a multiple of the 256 invocations); swiglu: I = 72, N = 65.
      const [rows, D] = [3, 1000];
      const [ax, a0, a1, aw] = [rand(rows * D, 80), rand(rows * D, 81), rand(rows * D, 82), rand(D, 83)];
      const [I, sgate, sup, sld] = [72, 4, 80, 156];
      const sx = rand(2 * sld, 90);
      const sw = rand(N * I, 91, 0.3);
      const run = (on: boolean) =>
        withRest(on, async () => {
          const ys = gated.map((c) =>
            gatedRmsnormLinear(
              g.fromHost(c.o, [1, c.H * c.d]),
              g.fromHost(c.gate, [1, c.H * c.d]),
              g.fromHost(c.nw, [c.d]),
              1e-5,
              bf(c.w, [N, c.H * c.d]),
              c.H,
            ),
          );
          const pool = g.zeros([pages, pageSize, R]);
          const i8 = g.zeros([pages, pageSize, int8RowWords(R, r)], 'i32');
          for (const to of [pool, i8])
            rmsnormCacheWrite(g.fromHost(lx, [B, ld]), off, r, pass, g.fromHost(lw, [r]), 1e-6, {
              pool: to,
              seq: g.fromHost(Int32Array.from([0, 1]), [B], 'i32'),
              pos: g.fromHost(Int32Array.from([1, 6]), [B], 'i32'),
              pageTable: g.fromHost(Int32Array.from([2, 0, 1, 3]), [2, maxPages], 'i32'),
              Rv: r,
            });
          words.push(Array.from((await i8.read()) as Int32Array));
          const an = addRmsnorm(
            g.fromHost(ax, [rows, D]),
            [g.fromHost(a0, [rows, D]), g.fromHost(a1, [rows, D])],
            bf(aw, [D]),
            1e-5,
          );
          const rn = rmsnorm(g.fromHost(ax, [rows, D]), g.fromHost(aw, [D]), 1e-5, { decode: true });
          const sy = swigluLinear(g.fromHost(sx, [2, sld]), sgate, sup, bf(sw, [N, I]));
          return read([...ys, pool, an.sum, an.normed, rn, sy]);
        });
      const words: number[][] = [];
      const trees = await run(false);
      const shuffles = await run(true);
      // The int8 pool (the H200's default cache): the same codes; a scale word may move by its last bits.
      const moved = words[0].filter((w, i) => w !== words[1][i]).length;
      expect(words[1].some((w) => w !== 0) && moved <= 2 * B, `int8 words moved: ${moved}`).toBe(true);
      const names = ['gated 64x8', 'gated 2x8', 'cache pool', 'add sum', 'add normed', 'rmsnorm', 'swiglu'];
      for (let i = 0; i < names.length; i++) expectClose(shuffles[i], trees[i], 2e-6, `${names[i]}: shuffles vs trees`);
      // The plain-TS references.
      for (const [j, c] of gated.entries()) {
        const ref = gatedRmsnormLinearReference(c.o, c.gate, c.nw, await bfHost(c.w), {
          rows: 1,
          H: c.H,
          d: c.d,
          N,
          eps: 1e-5,
        });
        expectClose(shuffles[j], ref, 2e-5, `${names[j]} vs reference`);
      }
      const lat = normConcatReference(lx, lw, { B, ld, off, r, pass, eps: 1e-6 });
      const pool = shuffles[2];
      // Row 0 at page 2 slot 1, row 1 at page 3 slot 2 (table row b, entry pos / pageSize); the rest stays zero.
      const slots = [2 * pageSize + 1, 3 * pageSize + 2];
      for (let b = 0; b < B; b++)
        expectClose(
          pool.subarray(slots[b] * R, (slots[b] + 1) * R),
          lat.subarray(b * R, (b + 1) * R),
          2e-6,
          `row ${b}`,
        );
      expect(pool.filter((v) => v !== 0).length, 'untouched slots').toBeLessThanOrEqual(B * R);
      const awh = await bfHost(aw);
      const add = addRmsnormReference(ax, [a0, a1], awh, rows, D, 1e-5);
      expectClose(shuffles[3], add.sum, 1e-7, 'add sum vs reference');
      expectClose(shuffles[4], add.normed, 2e-6, 'add normed vs reference');
      expectClose(shuffles[5], rmsnormReference(ax, aw, rows, D, 1e-5), 2e-6, 'rmsnorm vs reference');
      const h = swigluRowsReference(sx, 2, sld, sgate, sup, I);
      const swRef = matmulReference(h, await bfHost(sw), {
        batch: 1,
        M: 2,
        N,
        K: I,
        transA: false,
        transB: true,
        batchStrideB: 0,
      });
      expectClose(shuffles[6], swRef, 2e-5, 'swiglu vs reference');
    },
  );
});

/**
 * moeDecodeTuning.regSums (MoeDecodeVariant.regSums): the MoE kernels' partial dots kept in registers for the
 * shuffles, only the subgroups' sums in workgroup memory: the same bits as storing them to `red` first. On lavapipe
 * (4-lane subgroups) every row spans several subgroups; the H200's 32-lane gate_up rows (one subgroup a row) are
 * covered by the decode bench's --check there. Also at 16 and 128 lanes.
 */
describe.skipIf(!hasGpu)('MoE decode kernels with their partial dots in registers (regSums)', async () => {
  const here = await subgroupsHere();
  it.skipIf(!here)('moeSharedDecode and expertsInference: regSums on = off, bit for bit', async () => {
    const gpu = (await gpuContext())!;
    const bf = (a: Float32Array, shape: number[]) => gpu.fromHost(f32ArrayToBf16(a), shape, 'bf16');
    const [D, I, Is, E, k] = [1032, 40, 48, 5, 3];
    const experts = {
      w1: bf(rand(E * I * D, 13, 0.2), [E, I, D]),
      w3: bf(rand(E * I * D, 14, 0.2), [E, I, D]),
      w2: bf(rand(E * D * I, 15, 0.2), [E, D, I]),
    };
    const routes = {
      idx: gpu.fromHost(Int32Array.from([3, 0, 4]), [1, k], 'i32'),
      weights: gpu.fromHost(Float32Array.from([0.5, 0.3, 0.2]), [1, k]),
    };
    const hh = gpu.fromHost(rand(D, 12), [1, D]);
    const shared = {
      x: gpu.fromHost(rand(8 + 2 * Is, 16), [1, 8 + 2 * Is]),
      gate: 8,
      up: 8 + Is,
      down: bf(rand(D * Is, 17, 0.3), [D, Is]),
    };
    // [regSums, lanes gate_up, lanes down]
    const run = (reg: boolean, lanes: [number, number] | undefined) =>
      withSubgroups(true, async () => {
        const saved = { ...moeDecodeTuning };
        moeDecodeTuning.regSums = reg;
        if (lanes) [moeDecodeTuning.lanesGateUp, moeDecodeTuning.lanesDown] = lanes;
        try {
          const terms = moeSharedDecode(hh, routes, experts, shared);
          expect(terms.length).toBe(1);
          return await read([terms[0], expertsInference(hh, routes, experts)]);
        } finally {
          for (const key of Object.keys(moeDecodeTuning))
            if (!(key in saved)) delete (moeDecodeTuning as Record<string, unknown>)[key];
          Object.assign(moeDecodeTuning, saved);
        }
      });
    for (const lanes of [undefined, [16, 128]] as const) {
      const what = `lanes ${lanes ?? 'default'}`;
      const [a, b] = [
        await run(false, lanes ? [...lanes] : undefined),
        await run(true, lanes ? [...lanes] : undefined),
      ];
      expectClose(b[0], a[0], 0, `${what}: shared decode`);
      expectClose(b[1], a[1], 0, `${what}: experts`);
    }
    expect(
      gpu.pipelines.keys().filter((key) => key.startsWith('moe_decode') && key.endsWith('_rs')).length,
    ).toBeGreaterThanOrEqual(4);
  });
});

/** Guards the test above against silently testing the trees: lavapipe and the H200 both offer one subgroup size. */
describe.skipIf(!hasGpu)('decodeSubgroupSize', () => {
  it('is the adapter size where min = max and the knob is on, undefined with it off, 32 only with auto', async () => {
    const gpu = (await gpuContext()) as GpuContext;
    const { subgroupMinSize: a, subgroupMaxSize: b } = gpu.adapterInfo;
    const one = gpu.features.subgroups && a !== undefined && a === b;
    await withSubgroups(true, async () => expect(decodeSubgroupSize(gpu)).toBe(one ? a : undefined));
    await withSubgroups(false, async () => expect(decodeSubgroupSize(gpu)).toBeUndefined());
    // 'auto' (the default): only on 32-lane subgroups, the size measured.
    const saved = decodeTuning.subgroupSums;
    decodeTuning.subgroupSums = 'auto';
    try {
      expect(decodeSubgroupSize(gpu)).toBe(one && a === 32 ? 32 : undefined);
    } finally {
      decodeTuning.subgroupSums = saved;
    }
  });
});
