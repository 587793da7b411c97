/**
 * Tiled matmul for prefill and training shapes: C = op(A) @ op(B), A f32, B f32 or bf16.
 *
 * Each workgroup computes a BM x BN tile of C; each of its (BM/TM)*(BN/TN) threads a TM x TN block
 * held in registers as vec4s. Per step of BK along K the workgroup stages A^T (BK x BM) and B (BK x BN)
 * in workgroup memory, laid out so that the inner loop reads whole vec4s: a thread's rows are
 * {g*4*TY + ty*4 + r} and columns {h*4*TX + tx*4 + c}, so neighbouring threads read neighbouring vec4s
 * (no bank conflicts) and every loaded element is used TM (or TN) times from registers. The next
 * step's tile is fetched into registers while the current one is multiplied (register double
 * buffering), hiding global-memory latency behind the FMAs.
 *
 * Three variants: `aligned` (M % BM, N % BN, K % BK all zero: vector loads, no bounds checks), `aligned`
 * with `edge` (K % BK zero and the vector dimensions multiples of 4, but M or N not whole tiles: vector
 * loads with the row / column index clamped into the matrix, guarded stores; the 1023-token loss chunk
 * and the 288-wide kv_a projection took the scalar path before) and `checked` (any shape: scalar loads
 * with zero fill, guarded stores).
 *
 * `kSplit` (split-K for any layout, batch 1): workgroup z sums k in [z Ks, z Ks + Ks) (Ks = the
 * parameter after strideC, a multiple of BK) and writes partial product z at z strideC; the rows of A
 * and B keep their full pitch K. splitK.ts sums the partials.
 *
 * Two options serve Muon's Newton-Schulz chain (optim/muon.ts), whose products are mostly symmetric:
 * `symmetric` (square output, square tile, the caller vouches that C = C^T, as for X X^T or A A with A
 * symmetric): workgroups below the block diagonal return at once and those above it also write their
 * tile transposed. Entry (j, i) of such a product sums the same products in the same k order as (i, j)
 * (fma(a, b, c) = fma(b, a, c)), so the mirrored result is bit for bit what the full grid computes.
 * `epilogue`: C = scaleD * D + scaleAcc * (A B) with D of C's shape (Newton-Schulz's b A + c A^2 and
 * a X + B X), saving the elementwise pass that would read both again; with `symmetric`, D must be too.
 */
export interface TileConfig {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

export const DEFAULT_TILE: TileConfig = { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 };

/** Half tiles for mid-sized products (128x64x16/8x4: 38.2 TFLOP/s at 4096^3, 64x128x16/4x8: 38.1). */
export const TALL_TILE: TileConfig = { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 };
export const WIDE_TILE: TileConfig = { BM: 64, BN: 128, BK: 16, TM: 4, TN: 8 };

/** Smaller tiles for small matrices, where 128x128 tiles would leave most of the GPU idle. */
export const SMALL_TILE: TileConfig = { BM: 64, BN: 64, BK: 32, TM: 4, TN: 4 };

/**
 * Wave tiles (the 'wave' plan in index.ts): a 4096 x 768 output (the projections of a 4096-token sequence)
 * is 192 tiles of 128 x 128 or 384 of 128 x 64, 1.45 waves of the 264 workgroups the H200's 132 SMs hold
 * two at a time, so a third of the last wave idles. 64 x 192 (4 x 12 per thread, 256 threads) and 128 x 96
 * (8 x 12 per thread, 128 threads) cut it into 256 tiles: one wave, 97% full, without split-K partials.
 * Both stage 16 KiB or less of workgroup memory per step (BK 16), as the 128 x 128 tile does.
 */
export const WAVE_TILE: TileConfig = { BM: 64, BN: 192, BK: 16, TM: 4, TN: 12 };
export const WAVE_TILE_TALL: TileConfig = { BM: 128, BN: 96, BK: 16, TM: 8, TN: 12 };
/**
 * 128 x 192 (8 x 12 per thread, 256 threads, ~140 registers each): one workgroup per SM, so a 4096 x 768
 * output's 128 tiles are one wave of 132 (97%). The 128 x 64 tile at one workgroup per SM (4096 x 256 x 768,
 * 128 tiles) ran at 28.8 TFLOP/s against 21 for 64 x 64 at two per SM: few, fat workgroups keep up; this one
 * does 96 FMAs per 5 workgroup loads. Stages 20 KiB per step: needs more than WebGPU's default 16 KiB of
 * workgroup memory (the H200 adapter offers 48 KiB).
 */
export const WAVE_TILE_WIDE: TileConfig = { BM: 128, BN: 192, BK: 16, TM: 8, TN: 12 };

export interface TiledVariant {
  tile: TileConfig;
  transA: boolean;
  transB: boolean;
  bDtype: 'f32' | 'bf16';
  aligned: boolean;
  /** With `aligned`: M or N not a multiple of the tile (clamped loads, guarded stores). */
  edge?: boolean;
  kSplit?: boolean;
  /** XOR-swizzle the vec4 columns of the tiles that are filled by scattered scalar stores (see tiledWgsl). */
  swizzle?: boolean;
  symmetric?: boolean;
  epilogue?: boolean;
  /**
   * With `aligned`: K is not a whole number of BK steps (the loss head's last chunk of 1023 tokens, the
   * 8- and 12-wide router / gate inputs). The last step's loads past K read zeros; the operands read along
   * k have K % 4 == 0 (the vector-path condition), so each vec4 lies wholly inside or outside K.
   */
  kTail?: boolean;
}

export function tiledKey(v: TiledVariant): string {
  const t = v.tile;
  const opts = `${v.swizzle ? '_swz' : ''}${v.edge ? '_edge' : ''}${v.kSplit ? '_ks' : ''}${v.symmetric ? '_sym' : ''}${v.epilogue ? '_epi' : ''}${v.kTail ? '_kt' : ''}`;
  return `matmul_tiled_${t.BM}x${t.BN}x${t.BK}_${t.TM}x${t.TN}_${v.transA ? 'T' : 'N'}${v.transB ? 'T' : 'N'}_${v.bDtype}_${v.aligned ? 'a' : 'c'}${opts}`;
}

export function tiledWorkgroupSize(t: TileConfig): number {
  return (t.BM / t.TM) * (t.BN / t.TN);
}

export function tiledWgsl(v: TiledVariant): string {
  const { BM, BN, BK, TM, TN } = v.tile;
  const TX = BN / TN;
  const TY = BM / TM;
  const WG = TX * TY;
  const GM = TM / 4; // vec4 row groups per thread
  const GN = TN / 4;
  const aPer = (BM * BK) / WG; // A elements each thread stages per step
  const bPer = (BK * BN) / WG;
  if (TM % 4 || TN % 4 || (BM * BK) % (4 * WG) || (BK * BN) % (4 * WG)) {
    throw new Error(`matmul: tile ${JSON.stringify(v.tile)} does not divide into vec4 loads`);
  }
  const bf16 = v.bDtype === 'bf16';
  if (v.symmetric && BM !== BN) throw new Error(`matmul: a symmetric product needs a square tile, not ${BM}x${BN}`);
  if (v.kSplit && (v.epilogue || v.symmetric || !v.aligned)) {
    throw new Error('matmul: split-K goes with the vector path only, without epilogue or symmetry');
  }
  if (v.edge && !v.aligned) throw new Error('matmul: the edge variant is a form of the vector path');
  if (v.kTail && (!v.aligned || v.kSplit || bf16)) {
    throw new Error('matmul: a K tail goes with the f32 vector path only, without split-K');
  }
  // A load of step k0 at row (or vec4) k of the tile, zero past K for the kTail variant.
  const kGuard = (load: string, k: string, reg: string, zero: string) =>
    v.kTail ? `if (k0 + ${k} < p.K) { ${load} } else { ${reg} = ${zero}; }` : load;
  const edge = !!v.edge;
  // The vector path's row / column of A and B, clamped into the matrix for the edge variant (the
  // out-of-range rows and columns computed from them are never stored). m and n index whole vec4s when
  // they run along the vector, whose dimension is then a multiple of 4.
  const rowA = (m: string, vec: boolean) => (edge ? `min(${m}, p.M - ${vec ? 4 : 1}u)` : `(${m})`);
  const colB = (n: string, vec: number) => (edge ? `min(${n}, p.N - ${vec}u)` : `(${n})`);
  // A [M, K] (and an f32 B [N, K]) is loaded as vec4 along k and scattered into the k-major tile one scalar
  // per k. The BK/4 threads of a row differ only in k, whose rows of BM floats all start on bank 0, so a
  // warp's 32 stores hit 8 (BK 16) or 4 (BK 32) banks, 4 or 8 times each. Swizzled, the vec4 holding
  // (k, m) sits at column (m / 4) ^ swz(k) of row k, swz(k) = (k / 4) * V with V = 32 / BK: the groups
  // of a warp land in disjoint blocks of V vec4s out of 8, on 32 distinct banks. The inner loop reads
  // vec4 column c of row kk at c ^ swz(kk) (a permutation within aligned blocks of 8: still conflict-free).
  const swA = !!v.swizzle && !v.transA;
  const swB = !!v.swizzle && v.transB && !bf16;
  const V = Math.max(1, 32 / BK);
  const tileAt = (width: number, sw: boolean, k: string, m: string) =>
    sw ? `${k} * ${width / 4}u + ((${m} / 4u) ^ swz(${k}))` : `(${k} * ${width}u + ${m}) / 4u`;
  const lines: string[] = [];
  const L = (s: string) => lines.push(s);

  const tail = v.epilogue ? 'scaleD: f32, scaleAcc: f32' : v.kSplit ? 'Ks: u32, _p1: u32' : '_p0: u32, _p1: u32';
  L(`struct Params { M: u32, N: u32, K: u32, strideA: u32, strideB: u32, strideC: u32, ${tail} };`);
  L(`@group(0) @binding(0) var<uniform> p: Params;`);
  L(`@group(0) @binding(1) var<storage, read> A: array<${v.aligned ? 'vec4<f32>' : 'f32'}>;`);
  L(
    `@group(0) @binding(2) var<storage, read> B: array<${bf16 ? (v.aligned ? 'vec4<u32>' : 'u32') : v.aligned ? 'vec4<f32>' : 'f32'}>;`,
  );
  if (v.epilogue) L(`@group(0) @binding(3) var<storage, read> D: array<f32>;`);
  L(`@group(0) @binding(${v.epilogue ? 4 : 3}) var<storage, read_write> C: array<f32>;`);
  L(`var<workgroup> As: array<vec4<f32>, ${(BK * BM) / 4}>;`);
  L(`var<workgroup> Bs: array<vec4<f32>, ${(BK * BN) / 4}>;`);
  if (bf16) {
    L(`fn lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }`);
    L(`fn hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }`);
    if (!v.aligned) L(`fn bAt(i: u32) -> f32 { let w = B[i >> 1u]; return select(lo(w), hi(w), (i & 1u) == 1u); }`);
  } else if (!v.aligned) {
    L(`fn bAt(i: u32) -> f32 { return B[i]; }`);
  }
  if (swA || swB) L(`fn swz(k: u32) -> u32 { return (k >> 2u) * ${V}u; }`);

  L(`@compute @workgroup_size(${WG})`);
  L(`fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {`);
  // Below the block diagonal of a symmetric product: the tile is the mirror of one above it.
  if (v.symmetric) L(`  if (wid.x < wid.y) { return; }`);
  L(`  let tx = lid % ${TX}u; let ty = lid / ${TX}u;`);
  L(`  let row0 = wid.y * ${BM}u; let col0 = wid.x * ${BN}u; let z = wid.z;`);
  L(`  let aBase = z * p.strideA; let bBase = z * p.strideB;`);
  for (let g = 0; g < GM * 4; g++) for (let h = 0; h < GN; h++) L(`  var acc_${g}_${h} = vec4<f32>(0.0);`);

  // ---- global -> registers for one K step starting at k0 ----
  const regsA: string[] = [];
  const regsB: string[] = [];
  const loadA: string[] = [];
  const storeA: string[] = [];
  const loadB: string[] = [];
  const storeB: string[] = [];
  if (v.aligned) {
    const nA = aPer / 4;
    for (let j = 0; j < nA; j++) {
      regsA.push(`ra${j}`);
      if (!v.transA) {
        // A [M, K]: vec4 along k; tile has BM rows of BK/4 vec4s; stored transposed into As[k][m].
        L(`  let aM${j} = (lid + ${j * WG}u) / ${BK / 4}u; let aK${j} = ((lid + ${j * WG}u) % ${BK / 4}u) * 4u;`);
        loadA.push(
          kGuard(
            `ra${j} = A[(aBase + ${rowA(`row0 + aM${j}`, false)} * p.K + k0 + aK${j}) / 4u];`,
            `aK${j}`,
            `ra${j}`,
            'vec4<f32>(0.0)',
          ),
        );
        for (let c = 0; c < 4; c++)
          storeA.push(`As[${tileAt(BM, swA, `(aK${j} + ${c}u)`, `aM${j}`)}][aM${j} % 4u] = ra${j}[${c}];`);
      } else {
        // A stored [K, M]: vec4 along m goes straight into As[k][m..m+3].
        L(`  let aK${j} = (lid + ${j * WG}u) / ${BM / 4}u; let aM${j} = ((lid + ${j * WG}u) % ${BM / 4}u) * 4u;`);
        loadA.push(
          kGuard(
            `ra${j} = A[(aBase + (k0 + aK${j}) * p.M + ${rowA(`row0 + aM${j}`, true)}) / 4u];`,
            `aK${j}`,
            `ra${j}`,
            'vec4<f32>(0.0)',
          ),
        );
        storeA.push(`As[(aK${j} * ${BM}u + aM${j}) / 4u] = ra${j};`);
      }
    }
    const per = bf16 ? 8 : 4;
    const nB = bPer / per;
    if (bPer % per) throw new Error('matmul: bf16 tile needs 8 B elements per thread');
    for (let j = 0; j < nB; j++) {
      regsB.push(`rb${j}`);
      if (!v.transB) {
        // B [K, N]: along n.
        L(
          `  let bK${j} = (lid + ${j * WG}u) / ${BN / per}u; let bN${j} = ((lid + ${j * WG}u) % ${BN / per}u) * ${per}u;`,
        );
        loadB.push(
          kGuard(
            `rb${j} = B[(bBase + (k0 + bK${j}) * p.N + ${colB(`col0 + bN${j}`, per)}) / ${per}u];`,
            `bK${j}`,
            `rb${j}`,
            'vec4<f32>(0.0)',
          ),
        );
        if (bf16) {
          storeB.push(
            `Bs[(bK${j} * ${BN}u + bN${j}) / 4u] = vec4<f32>(lo(rb${j}.x), hi(rb${j}.x), lo(rb${j}.y), hi(rb${j}.y));`,
          );
          storeB.push(
            `Bs[(bK${j} * ${BN}u + bN${j}) / 4u + 1u] = vec4<f32>(lo(rb${j}.z), hi(rb${j}.z), lo(rb${j}.w), hi(rb${j}.w));`,
          );
        } else storeB.push(`Bs[(bK${j} * ${BN}u + bN${j}) / 4u] = rb${j};`);
      } else {
        // B stored [N, K] (weights as checkpoints keep them): along k, scattered into Bs[k][n].
        L(
          `  let bN${j} = (lid + ${j * WG}u) / ${BK / per}u; let bK${j} = ((lid + ${j * WG}u) % ${BK / per}u) * ${per}u;`,
        );
        loadB.push(
          kGuard(
            `rb${j} = B[(bBase + ${colB(`col0 + bN${j}`, 1)} * p.K + k0 + bK${j}) / ${per}u];`,
            `bK${j}`,
            `rb${j}`,
            'vec4<f32>(0.0)',
          ),
        );
        for (let c = 0; c < per; c++) {
          const val = bf16 ? `${c % 2 ? 'hi' : 'lo'}(rb${j}[${c >> 1}])` : `rb${j}[${c}]`;
          storeB.push(`Bs[${tileAt(BN, swB, `(bK${j} + ${c}u)`, `bN${j}`)}][bN${j} % 4u] = ${val};`);
        }
      }
    }
    for (const r of regsA) L(`  var ${r}: vec4<f32>;`);
    for (const r of regsB) L(`  var ${r}: ${bf16 ? 'vec4<u32>' : 'vec4<f32>'};`);
  } else {
    // Checked: one element at a time, zero outside the matrix.
    for (let j = 0; j < aPer; j++) {
      regsA.push(`ra${j}`);
      L(`  let aM${j} = (lid + ${j * WG}u) / ${BK}u; let aK${j} = (lid + ${j * WG}u) % ${BK}u;`);
      const idx = v.transA ? `(k0 + aK${j}) * p.M + row0 + aM${j}` : `(row0 + aM${j}) * p.K + k0 + aK${j}`;
      loadA.push(
        `if (row0 + aM${j} < p.M && k0 + aK${j} < p.K) { ra${j} = A[aBase + ${idx}]; } else { ra${j} = 0.0; }`,
      );
      storeA.push(`As[${tileAt(BM, swA, `aK${j}`, `aM${j}`)}][aM${j} % 4u] = ra${j};`);
    }
    for (let j = 0; j < bPer; j++) {
      regsB.push(`rb${j}`);
      L(`  let bK${j} = (lid + ${j * WG}u) / ${BN}u; let bN${j} = (lid + ${j * WG}u) % ${BN}u;`);
      const idx = v.transB ? `(col0 + bN${j}) * p.K + k0 + bK${j}` : `(k0 + bK${j}) * p.N + col0 + bN${j}`;
      loadB.push(
        `if (col0 + bN${j} < p.N && k0 + bK${j} < p.K) { rb${j} = bAt(bBase + ${idx}); } else { rb${j} = 0.0; }`,
      );
      storeB.push(`Bs[${tileAt(BN, swB, `bK${j}`, `bN${j}`)}][bN${j} % 4u] = rb${j};`);
    }
    for (const r of [...regsA, ...regsB]) L(`  var ${r}: f32;`);
  }

  // The K range of this workgroup: all of K, or slice z of a split-K product.
  const kEnd = v.kSplit ? 'kEnd' : 'p.K';
  if (v.kSplit) L(`  var k0 = z * p.Ks; let kEnd = k0 + p.Ks;`);
  else L(`  var k0 = 0u;`);
  for (const s of [...loadA, ...loadB]) L(`  ${s}`);
  L(`  loop {`);
  for (const s of [...storeA, ...storeB]) L(`    ${s}`);
  L(`    workgroupBarrier();`);
  L(`    let kNext = k0 + ${BK}u;`);
  L(`    if (kNext < ${kEnd}) {`);
  L(`      k0 = kNext;`);
  for (const s of [...loadA, ...loadB]) L(`      ${s}`);
  L(`    }`);
  L(`    for (var kk = 0u; kk < ${BK}u; kk++) {`);
  for (let g = 0; g < GM; g++) {
    const at = swA
      ? `kk * ${BM / 4}u + ((${g * TY}u + ty) ^ swz(kk))`
      : `(kk * ${BM}u + ${g * 4 * TY}u + ty * 4u) / 4u`;
    L(`      let a${g} = As[${at}];`);
  }
  for (let h = 0; h < GN; h++) {
    const at = swB
      ? `kk * ${BN / 4}u + ((${h * TX}u + tx) ^ swz(kk))`
      : `(kk * ${BN}u + ${h * 4 * TX}u + tx * 4u) / 4u`;
    L(`      let b${h} = Bs[${at}];`);
  }
  for (let g = 0; g < GM; g++)
    for (let r = 0; r < 4; r++)
      for (let h = 0; h < GN; h++)
        L(`      acc_${g * 4 + r}_${h} = fma(vec4<f32>(a${g}[${r}]), b${h}, acc_${g * 4 + r}_${h});`);
  L(`    }`);
  L(`    workgroupBarrier();`);
  L(`    if (kNext >= ${kEnd}) { break; }`);
  L(`  }`);

  // ---- write C ----
  L(`  let cBase = z * p.strideC;`);
  if (v.symmetric) L(`  let mirror = wid.x > wid.y;`);
  for (let g = 0; g < GM; g++)
    for (let r = 0; r < 4; r++)
      for (let h = 0; h < GN; h++) {
        const row = `row0 + ${g * 4 * TY + r}u + ty * 4u`;
        const acc = `acc_${g * 4 + r}_${h}`;
        L(`  { let row = ${row}; let col = col0 + ${h * 4 * TX}u + tx * 4u;`);
        // One element: the product (with the epilogue applied), and its mirror for a symmetric product.
        const store = (c: number, pad: string) => {
          const at = `cBase + row * p.N + col + ${c}u`;
          if (!v.epilogue && !v.symmetric) {
            L(`${pad}C[${at}] = ${acc}[${c}];`);
            return;
          }
          const val = v.epilogue ? `p.scaleD * D[${at}] + p.scaleAcc * ${acc}[${c}]` : `${acc}[${c}]`;
          L(`${pad}{ let val = ${val}; C[${at}] = val;`);
          if (v.symmetric) L(`${pad}  if (mirror) { C[cBase + (col + ${c}u) * p.N + row] = val; }`);
          L(`${pad}}`);
        };
        if (v.aligned && !edge) {
          for (let c = 0; c < 4; c++) store(c, '    ');
        } else {
          L(`    if (row < p.M) {`);
          for (let c = 0; c < 4; c++) {
            L(`      if (col + ${c}u < p.N) {`);
            store(c, '        ');
            L(`      }`);
          }
          L(`    }`);
        }
        L(`  }`);
      }
  L(`}`);
  return lines.join('\n');
}
