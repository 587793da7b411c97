import { describe, expect, it } from 'vitest';
import {
  choosePlan,
  chooseTile,
  DEFAULT_TILE,
  epilogueKeepsPlan,
  linear,
  matmul,
  SMALL_TILE,
  setMatmulPlan,
  setMatmulWaveTile,
  TALL_TILE,
  type TileConfig,
  WAVE_TILE,
  WAVE_TILE_TALL,
  WAVE_TILE_WIDE,
  WIDE_TILE,
  waveFill,
} from '../src/kernels/matmul/index.js';
import { splitKSlices } from '../src/kernels/matmul/splitK.js';
import { matmulReference } from '../src/kernels/matmul/reference.js';
import { cpu } from '../src/tensor/cpuDevice.js';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/tensor/dtype.js';
import { Rng } from '../src/util/random.js';
import { AWKWARD, expectClose, gpuContext, hasGpu } from './helpers.js';

// f32 accumulation over K <= 1000 of unit normals: rounding ~1e-6 relative; 1e-5 leaves margin.
const TOL = 1e-5;

describe('matmul reference', () => {
  it('multiplies a hand-computed 2x3 @ 3x2', () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new Float32Array([7, 8, 9, 10, 11, 12]);
    const c = matmulReference(a, b, { batch: 1, M: 2, N: 2, K: 3, transA: false, transB: false, batchStrideB: 0 });
    expect(Array.from(c)).toEqual([58, 64, 139, 154]);
  });

  it('rejects mismatched inner dimensions with both shapes in the message', () => {
    const a = cpu.fromHost(new Float32Array(6), [2, 3]);
    const b = cpu.fromHost(new Float32Array(8), [4, 2]);
    expect(() => matmul(a, b)).toThrow(/inner dimensions differ: A \[2, 3\] and B \[4, 2\] \(3 vs 4\)/);
  });
});

describe.skipIf(!hasGpu)('matmul on WebGPU vs reference', () => {
  const cases: [number, number, number][] = [];
  for (const s of AWKWARD) cases.push([s, 65, 63], [7, s, 33]);
  cases.push([128, 128, 64], [256, 128, 32], [64, 64, 64], [130, 7, 1000]);
  for (const [M, N, K] of cases) {
    for (const [transA, transB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      it(`M=${M} N=${N} K=${K} transA=${transA} transB=${transB}, f32 and bf16 B`, async () => {
        const gpu = (await gpuContext())!;
        const rng = new Rng(M * 7919 + N * 31 + K);
        const a = rng.normalArray(M * K);
        const b = rng.normalArray(K * N);
        for (const bDtype of ['f32', 'bf16'] as const) {
          const bHost = bDtype === 'bf16' ? f32ArrayToBf16(b) : b;
          const bVals = bDtype === 'bf16' ? bf16ArrayToF32(bHost as Uint16Array) : b;
          const ga = gpu.fromHost(a, transA ? [K, M] : [M, K]);
          const gb = gpu.fromHost(bHost, transB ? [N, K] : [K, N], bDtype);
          const c = matmul(ga, gb, { transA, transB });
          const ref = matmulReference(a, bVals, { batch: 1, M, N, K, transA, transB, batchStrideB: 0 });
          expect(c.shape).toEqual([M, N]);
          expectClose(await c.read(), ref, TOL, `C (${bDtype})`);
          for (const t of [ga, gb, c]) t.dispose();
        }
      });
    }
  }

  it('batched A with shared and per-batch B; transposed views need no copy', async () => {
    const gpu = (await gpuContext())!;
    const rng = new Rng(5);
    const [Bt, M, N, K] = [3, 33, 65, 70];
    const a = rng.normalArray(Bt * M * K);
    const bShared = rng.normalArray(N * K);
    const bBatch = rng.normalArray(Bt * K * N);
    const ga = gpu.fromHost(a, [Bt, M, K]);
    const c1 = matmul(ga, gpu.fromHost(bShared, [N, K]).transpose());
    expectClose(
      await c1.read(),
      matmulReference(a, bShared, { batch: Bt, M, N, K, transA: false, transB: true, batchStrideB: 0 }),
      TOL,
      'shared B',
    );
    const c2 = matmul(ga, gpu.fromHost(bBatch, [Bt, K, N]));
    expectClose(
      await c2.read(),
      matmulReference(a, bBatch, { batch: Bt, M, N, K, transA: false, transB: false, batchStrideB: K * N }),
      TOL,
      'batched B',
    );
  });

  // The 128 x 64 and 64 x 128 tiles chooseTile takes for mid-sized products, forced at awkward shapes. Each
  // (tile, layout, load path) is a lavapipe compile, so the layouts are covered pairwise: the aligned path in all
  // four layouts on both tiles (256 x 128 x 64; the cases above also take 128 x 64 aligned and edge in all four),
  // the checked path (scalar loads, the code the 64 x 64 tile runs in all four layouts above) in two layouts per
  // tile, together all four: A^T B^T at M = 1 and A B at 65 x 130 x 63 on 128 x 64, A B^T and A^T B on 64 x 128.
  const layoutsFor = (tile: TileConfig, M: number): (readonly [boolean, boolean])[] =>
    M === 256
      ? [
          [false, false],
          [false, true],
          [true, false],
          [true, true],
        ]
      : tile === TALL_TILE
        ? [M === 1 ? [true, true] : [false, false]]
        : [M === 1 ? [false, true] : [true, false]];
  for (const tile of [TALL_TILE, WIDE_TILE]) {
    for (const [M, N, K] of [
      [1, 7, 5],
      [65, 130, 63],
      [256, 128, 64],
    ] as const) {
      const layouts = layoutsFor(tile, M);
      const named = layouts.length === 4 ? 'all layouts' : layouts.map(([a, b]) => (a ? 'T' : 'N') + (b ? 'T' : 'N'));
      it(`tile ${tile.BM}x${tile.BN}: M=${M} N=${N} K=${K}, ${named}`, async () => {
        const gpu = (await gpuContext())!;
        const rng = new Rng(M + N * 3 + K * 7 + tile.BN);
        const a = rng.normalArray(M * K);
        const b = rng.normalArray(K * N);
        for (const [transA, transB] of layouts) {
          const ga = gpu.fromHost(a, transA ? [K, M] : [M, K]);
          const gb = gpu.fromHost(b, transB ? [N, K] : [K, N]);
          const c = matmul(ga, gb, { transA, transB, tile });
          const ref = matmulReference(a, b, { batch: 1, M, N, K, transA, transB, batchStrideB: 0 });
          expectClose(await c.read(), ref, TOL, `C ${transA}/${transB}`);
        }
      });
    }
  }

  it('chooseTile: large, mid-sized (tall and wide) and small products; bf16 keeps two tiles', () => {
    expect(chooseTile(4096, 4096, 1)).toBe(DEFAULT_TILE);
    expect(chooseTile(4096, 768, 1)).toBe(TALL_TILE);
    expect(chooseTile(768, 4096, 1)).toBe(WIDE_TILE);
    expect(chooseTile(4096, 768, 1, true)).toBe(SMALL_TILE);
    expect(chooseTile(768, 768, 1)).toBe(SMALL_TILE);
  });

  // dW = dY^T X shapes (A read transposed, long K, few output tiles) take the split-K path (splitK.ts):
  // K cut into slices run as batch entries, then summed. Awkward M, N; K long enough to split.
  for (const [M, N, K] of [
    [1, 65, 2048],
    [7, 63, 1024],
    [65, 130, 1536],
    [64, 64, 4096],
  ] as const) {
    it(`split-K: dW-shaped M=${M} N=${N} K=${K} (transA) matches the reference`, async () => {
      const gpu = (await gpuContext())!;
      expect(splitKSlices(Math.ceil(M / 64) * Math.ceil(N / 64), K, SMALL_TILE)).toBeGreaterThan(1);
      const rng = new Rng(M * 13 + N * 7 + K);
      const a = rng.normalArray(K * M);
      const b = rng.normalArray(K * N);
      const c = matmul(gpu.fromHost(a, [K, M]), gpu.fromHost(b, [K, N]), { transA: true });
      const ref = matmulReference(a, b, { batch: 1, M, N, K, transA: true, transB: false, batchStrideB: 0 });
      expectClose(await c.read(), ref, TOL, 'C');
    });
  }

  // Each (rows, weight dtype, load path) is a lavapipe compile; rows and dtype enter the generated code
  // independently (the per-row accumulators; the weight load), so the weight dtypes are covered pairwise: one row
  // (the decode step's GEMV) with both dtypes on both paths, 3 rows with bf16 on the vector path (K % 8 == 0) and
  // f32 on the scalar one (K = 1001), 8 rows the other way round.
  const gemvDtypes = (rows: number, K: number): ('f32' | 'bf16')[] =>
    rows === 1 ? ['f32', 'bf16'] : (K % 8 === 0) === (rows === 3) ? ['bf16'] : ['f32'];
  for (const rows of [1, 3, 8]) {
    for (const K of [64, 72, 1000, 1001, 1008]) {
      const dtypes = gemvDtypes(rows, K);
      it(`GEMV path (linear) rows=${rows} K=${K} N=65 for ${dtypes.join(' and ')} weights`, async () => {
        const gpu = (await gpuContext())!;
        const rng = new Rng(rows * 100 + K);
        const N = 65;
        const x = rng.normalArray(rows * K);
        const w = rng.normalArray(N * K);
        for (const dtype of dtypes) {
          const wHost = dtype === 'bf16' ? f32ArrayToBf16(w) : w;
          const wVals = dtype === 'bf16' ? bf16ArrayToF32(wHost as Uint16Array) : w;
          const gx = gpu.fromHost(x, [rows, K]);
          const gw = gpu.fromHost(wHost, [N, K], dtype);
          const y = linear(gx, gw);
          const ref = matmulReference(x, wVals, {
            batch: 1,
            M: rows,
            N,
            K,
            transA: false,
            transB: true,
            batchStrideB: 0,
          });
          expectClose(await y.read(), ref, TOL, `y (${dtype})`);
          // The cpu backend gives the same numbers through the same op.
          const yc = linear(cpu.fromHost(x, [rows, K]), cpu.fromHost(wHost, [N, K], dtype));
          expectClose(await yc.read(), ref, TOL, 'cpu y');
        }
      });
    }
  }
});

// Vector loads when M or N is not a whole number of tiles (edge variant: clamped loads, guarded stores), and
// the generic split-K (any layout, the kernel walks its slice of K), each against the reference.
describe.skipIf(!hasGpu)('edge tiles and generic split-K on WebGPU vs reference', () => {
  const layouts = [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const;
  for (const [M, N, K, split] of [
    [68, 132, 64, 1],
    [36, 200, 96, 3],
    [68, 12, 512, 8],
  ] as const) {
    it(`M=${M} N=${N} K=${K}${split > 1 ? `, ${split} K slices` : ''}: all layouts`, async () => {
      const gpu = (await gpuContext())!;
      const rng = new Rng(M * 5 + N * 11 + K * 3 + split);
      const a = rng.normalArray(M * K);
      const b = rng.normalArray(K * N);
      for (const [transA, transB] of layouts) {
        // transA reads vec4s along M: the edge path needs M % 4 == 0 there (M = 1 takes the checked path).
        const ga = gpu.fromHost(a, transA ? [K, M] : [M, K]);
        const gb = gpu.fromHost(b, transB ? [N, K] : [K, N]);
        const vec = (transA ? M % 4 === 0 : true) && (transB ? true : N % 4 === 0);
        const splitK = split > 1 && vec ? split : undefined;
        // The 64 x 64 tile throughout: the edge code is the same for every tile, and it compiles fastest.
        const c = matmul(ga, gb, { transA, transB, splitK, tile: SMALL_TILE });
        const ref = matmulReference(a, b, { batch: 1, M, N, K, transA, transB, batchStrideB: 0 });
        expectClose(await c.read(), ref, TOL, `C ${transA}/${transB}`);
        for (const t of [ga, gb, c]) t.dispose();
      }
    });
  }

  it('choosePlan (tuned): the measured rules for long-K, few-tile and x W^T products; others keep chooseTile', () => {
    setMatmulPlan('tuned');
    try {
      tunedPlanExpectations();
    } finally {
      setMatmulPlan('wave');
    }
  });
  function tunedPlanExpectations() {
    const nn = { bf16: false, vec4: true, special: false, transA: false, transB: false };
    const nt = { ...nn, transB: true };
    const tn = { ...nn, transA: true };
    const plan = (tile: TileConfig, slices: number) => ({ tile, slices, generic: slices > 1 });
    // The loss head's dX (1024 x 768 over K = 32000) and 768 x 768 weight gradients: half tiles, 8 slices.
    expect(choosePlan(1024, 768, 32000, 1, nn, {})).toEqual(plan(TALL_TILE, 8));
    expect(choosePlan(768, 768, 4096, 1, tn, {})).toEqual(plan(TALL_TILE, 8));
    expect(choosePlan(768, 2048, 4096, 1, tn, {})).toEqual(plan(WIDE_TILE, 4));
    // x W^T at 4096 x 768 x 768: 128 x 128 tiles, 2 slices; 4096 x 256 x 768: 128 x 64, no split.
    expect(choosePlan(4096, 768, 768, 1, nt, {})).toEqual(plan(DEFAULT_TILE, 2));
    expect(choosePlan(4096, 256, 768, 1, nt, {})).toEqual(plan(TALL_TILE, 1));
    expect(choosePlan(4096, 64, 768, 1, nt, {})).toEqual(plan(TALL_TILE, 4));
    expect(choosePlan(4096, 768, 768, 1, nn, {})).toEqual(plan(TALL_TILE, 1));
    // Enough 128 x 128 tiles, a narrow side, no vector path, bf16 or a batch: chooseTile (A^T B split).
    expect(choosePlan(4096, 2048, 768, 1, nt, {})).toEqual(plan(DEFAULT_TILE, 1));
    expect(choosePlan(256, 768, 4096, 1, tn, {})).toEqual({ tile: SMALL_TILE, slices: 8, generic: false });
    expect(choosePlan(4096, 8, 768, 1, nt, {})).toEqual(plan(SMALL_TILE, 1));
    expect(choosePlan(1024, 768, 32000, 1, { ...nn, vec4: false }, {}).generic).toBe(false);
    expect(choosePlan(1024, 768, 32000, 1, { ...nn, bf16: true }, {}).generic).toBe(false);
    expect(choosePlan(1024, 768, 32000, 2, nn, {}).generic).toBe(false);
  }
});

// Newton-Schulz's products (optim/muon.ts): X X^T and A A computed as symmetric products (tiles on and above
// the block diagonal, mirrored), b A + c A A and a X + B X through the epilogue. Awkward sizes take the
// checked kernel; 128 and 256 the aligned one, with the 64 x 64 tile chosen and the 128 x 128 one forced.
describe.skipIf(!hasGpu)('symmetric products and epilogues on WebGPU vs reference', () => {
  const [a, b, c] = [3.4445, -4.775, 2.0315];
  const cases: [number, number, TileConfig | undefined][] = [
    [1, 33, undefined],
    [7, 64, undefined],
    [63, 33, undefined],
    [65, 64, undefined],
    [130, 33, undefined],
    [128, 64, undefined],
  ];
  // The 128 x 128 tile (what the device takes for the 768 x 768 Gram matrices) compiles for ~15 s on lavapipe;
  // the generator's symmetric and epilogue code is the same as for the 64 x 64 tile above.
  if (process.env.KIMI_SLOW_TESTS === '1') cases.push([256, 32, DEFAULT_TILE]);
  for (const [M, K, tile] of cases) {
    it(`batch 2, M=${M} K=${K}${tile ? ' (128 x 128 tile)' : ''}: X X^T, b A + c A A, a X + B X`, async () => {
      const gpu = (await gpuContext())!;
      const E = 2;
      const x = new Rng(M * 31 + K).normalArray(E * M * K);
      const dims = (transB: boolean, k: number, n: number) => ({
        batch: E,
        M,
        N: n,
        K: k,
        transA: false,
        transB,
        batchStrideB: k * n,
      });
      const gx = gpu.fromHost(x, [E, M, K]);
      const gA = matmul(gx, gx, { transB: true, symmetric: true, tile });
      const A = (await gA.read()) as Float32Array;
      expectClose(A, matmulReference(x, x, dims(true, K, M)), TOL, 'X X^T');
      // The mirrored half is the computed half bit for bit.
      for (let e = 0; e < E; e++)
        for (let i = 0; i < M; i++)
          for (let j = 0; j < i; j++) expect(A[e * M * M + i * M + j]).toBe(A[e * M * M + j * M + i]);
      // A and B symmetric: read transposed, as Newton-Schulz reads them (the same matrices).
      const gB = matmul(gA, gA, { transA: true, symmetric: true, tile, epilogue: { d: gA, scaleD: b, scaleAcc: c } });
      const AA = matmulReference(A, A, dims(false, M, M));
      expectClose(
        await gB.read(),
        AA.map((v, i) => b * A[i] + c * v),
        TOL,
        'b A + c A A',
      );
      const B = (await gB.read()) as Float32Array;
      const gX = matmul(gB, gx, { transA: true, tile, epilogue: { d: gx, scaleD: a, scaleAcc: 1 } });
      const BX = matmulReference(B, x, dims(false, M, K));
      expectClose(
        await gX.read(),
        BX.map((v, i) => a * x[i] + v),
        TOL,
        'a X + B X',
      );
      for (const t of [gx, gA, gB, gX]) t.dispose();
    });
  }

  it('chooseTile for a symmetric product counts only the tiles on and above the diagonal', () => {
    expect(chooseTile(768, 768, 39, false, true)).toBe(DEFAULT_TILE); // 21 x 39 live 128 x 128 tiles
    expect(chooseTile(768, 768, 3, false, true)).toBe(SMALL_TILE); // 21 x 3 would leave SMs idle
  });
});

// The 'wave' plan (index.ts): whole-wave tiles, split-K for very narrow outputs, vector loads with a K tail.
describe.skipIf(!hasGpu)('wave plan on WebGPU vs reference', () => {
  const run = async (
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    o: { tile?: TileConfig; epi?: boolean } = {},
  ) => {
    const gpu = (await gpuContext())!;
    const rng = new Rng(M * 13 + N * 7 + K * 5 + (transA ? 1 : 0) + (transB ? 2 : 0));
    const a = rng.normalArray(M * K);
    const b = rng.normalArray(K * N);
    const d = rng.normalArray(M * N);
    const ga = gpu.fromHost(a, transA ? [K, M] : [M, K]);
    const gb = gpu.fromHost(b, transB ? [N, K] : [K, N]);
    const gd = gpu.fromHost(d, [M, N]);
    try {
      const c = matmul(ga, gb, {
        transA,
        transB,
        tile: o.tile,
        epilogue: o.epi ? { d: gd, scaleD: 0.5, scaleAcc: -2 } : undefined,
      });
      const ref = matmulReference(a, b, { batch: 1, M, N, K, transA, transB, batchStrideB: 0 });
      const want = o.epi ? ref.map((v, i) => 0.5 * d[i] - 2 * v) : ref;
      expectClose(await c.read(), want, TOL, `${M}x${N}x${K} ${transA}/${transB}`);
      c.dispose();
    } finally {
      for (const t of [ga, gb, gd]) t.dispose();
    }
  };

  // 64 x 192 (4 x 12 per thread: the generator's three-vec4 rows of B): whole tiles, edge tiles, and a K tail
  // with an epilogue (the router's dX, K = 8, scaled down). Layouts with vector dims multiples of 4.
  it('64 x 192 tile: whole tiles (NT), edge tiles (TN), K tail with an epilogue (NN)', async () => {
    await run(64, 192, 48, false, true, { tile: WAVE_TILE });
    await run(68, 196, 32, true, false, { tile: WAVE_TILE });
    await run(68, 196, 8, false, false, { tile: WAVE_TILE, epi: true });
  });
  // 128 x 96 and 128 x 192 (8 x 12 per thread) compile for ~25 s per variant on lavapipe; their code is the
  // 64 x 192 one's with two vec4 rows per thread. 128 x 192 stages 20 KiB: skipped where the adapter has less.
  const slow = process.env.KIMI_SLOW_TESTS !== '1';
  it.skipIf(slow)('128 x 96 tile: edge tiles, x W^T and A B with an epilogue', async () => {
    await run(132, 100, 32, false, true, { tile: WAVE_TILE_TALL });
    await run(132, 100, 48, false, false, { tile: WAVE_TILE_TALL, epi: true });
  });
  it.skipIf(slow)('128 x 192 tile: edge tiles, x W^T', async () => {
    const gpu = (await gpuContext())!;
    if (gpu.limits.maxComputeWorkgroupStorageSize < 20480) return;
    await run(132, 196, 32, false, true, { tile: WAVE_TILE_WIDE });
  });
  // K not whole BK steps with the tile the plan picks (64 x 64): 1023-like (TN, loads along m and n), 8 and 12
  // (loads along k, K % 4 == 0), a tail after a whole step (TT, K = 36), with and without an epilogue.
  for (const [M, N, K, transA, transB, epi] of [
    [68, 20, 23, true, false, false],
    [65, 12, 8, false, false, true],
    [7, 9, 12, false, true, false],
    [64, 4, 36, true, true, false],
  ] as const) {
    it(`K tail: M=${M} N=${N} K=${K} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}${epi ? ' epilogue' : ''}`, async () => {
      await run(M, N, K, transA, transB, { epi });
    });
  }
  it('narrow output: the 64 x 64 tile with K cut into slices (router logits, scaled down)', async () => {
    await run(1028, 8, 256, false, true);
    await run(1024, 12, 512, false, true);
  });

  it('choosePlan under the wave plan (the default): whole-wave tiles, narrow-output split, the rest as tuned', () => {
    const nn = { bf16: false, vec4: true, special: false, transA: false, transB: false };
    const nt = { ...nn, transB: true };
    const tn = { ...nn, transA: true };
    const plan = (tile: TileConfig, slices: number) => ({ tile, slices, generic: slices > 1 });
    expect(waveFill(192)).toBeCloseTo(192 / 264);
    expect(waveFill(256)).toBeCloseTo(256 / 264);
    expect(waveFill(528)).toBe(1);
    try {
      // dX = dY W at 4096 x 768: 256 tiles of 64 x 192 (97% of a wave) instead of 384 of 128 x 64, with the
      // epilogue too; x W^T (B transposed) keeps the tuned 128 x 128 tiles and 2 K slices (measured no faster).
      expect(choosePlan(4096, 768, 768, 1, nn, {})).toEqual(plan(WAVE_TILE, 1));
      expect(choosePlan(4096, 768, 768, 1, { ...nn, special: true }, {})).toEqual(plan(WAVE_TILE, 1));
      expect(choosePlan(4096, 768, 1152, 1, nn, {})).toEqual(plan(WAVE_TILE, 1));
      expect(epilogueKeepsPlan(4096, 768, 768, false, false)).toBe(true);
      expect(choosePlan(4096, 768, 768, 1, nt, {})).toEqual(plan(DEFAULT_TILE, 2));
      expect(choosePlan(4096, 1536, 256, 1, nt, {})).toEqual(plan(DEFAULT_TILE, 1));
      // A symmetric product, a batch, bf16 or long K keep the tuned plan; whole waves of 128 x 128 too.
      expect(choosePlan(768, 768, 768, 1, { ...tn, special: true }, { symmetric: true }).tile).toBe(SMALL_TILE);
      expect(choosePlan(4096, 768, 768, 2, nn, {}).tile).toBe(DEFAULT_TILE);
      expect(choosePlan(1024, 768, 32000, 1, nn, {})).toEqual(plan(TALL_TILE, 8));
      expect(choosePlan(4096, 2048, 768, 1, nn, {})).toEqual(plan(DEFAULT_TILE, 1));
      expect(choosePlan(4096, 256, 768, 1, nt, {})).toEqual(plan(TALL_TILE, 1));
      // 8 router outputs over K = 768: 64 tiles of 64 x 64, K in 4 slices (256 workgroups).
      expect(choosePlan(4096, 8, 768, 1, nt, {})).toEqual(plan(SMALL_TILE, 4));
      setMatmulWaveTile('128x96');
      expect(choosePlan(4096, 768, 768, 1, nn, {})).toEqual(plan(WAVE_TILE_TALL, 1));
      // 128 x 192: 128 tiles, one per SM (97% of 132); at 8192 rows 256 (two waves); 128 x 128 at 16384.
      // It stages 20 KiB: on a device with WebGPU's default 16 KiB the plan takes 64 x 192.
      setMatmulWaveTile('128x192');
      const big = { ...nn, workgroupBytes: 49152 };
      expect(choosePlan(4096, 768, 768, 1, big, {})).toEqual(plan(WAVE_TILE_WIDE, 1));
      expect(choosePlan(8192, 768, 768, 1, big, {})).toEqual(plan(WAVE_TILE_WIDE, 1));
      expect(choosePlan(16384, 768, 768, 1, big, {}).tile).toBe(DEFAULT_TILE);
      expect(choosePlan(4096, 768, 768, 1, nn, {})).toEqual(plan(WAVE_TILE, 1));
      expect(waveFill(128, 132)).toBeCloseTo(128 / 132);
      // The tuned plan (--matmul-plan tuned): 128 x 64 for dX.
      setMatmulPlan('tuned');
      expect(choosePlan(4096, 768, 768, 1, nn, {})).toEqual(plan(TALL_TILE, 1));
    } finally {
      setMatmulPlan('wave');
      setMatmulWaveTile('64x192');
    }
  });
});

describe('matmul into a given output', () => {
  it('cpu backend: the epilogue scales and adds d; a symmetric product must be square', async () => {
    const a = cpu.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const d = cpu.fromHost(new Float32Array([1, 1, 1, 1]), [2, 2]);
    const c = matmul(a, a, { epilogue: { d, scaleD: 2, scaleAcc: -1 } });
    expect(Array.from(await c.read())).toEqual([2 - 7, 2 - 10, 2 - 15, 2 - 22]);
    expect(() => matmul(cpu.empty([2, 3]), cpu.empty([3, 3]), { symmetric: true })).toThrow(/must be square/);
    expect(() => matmul(a, a, { epilogue: { d: cpu.empty([3]), scaleD: 1, scaleAcc: 1 } })).toThrow(/epilogue d \[3\]/);
  });

  it('writes into `out` on the cpu backend and refuses an out of the wrong size', async () => {
    const a = cpu.fromHost(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const b = cpu.fromHost(new Float32Array([1, 0, 0, 1]), [2, 2]);
    const out = cpu.fromHost(new Float32Array(4).fill(Number.NaN), [2, 2]);
    matmul(a, b, { out });
    expect(Array.from(await out.read())).toEqual([1, 2, 3, 4]);
    expect(() => matmul(a, b, { out: cpu.empty([3]) })).toThrow(/does not hold the result \[2, 2\]/);
  });
});
