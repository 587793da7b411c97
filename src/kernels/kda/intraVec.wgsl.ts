/**
 * Pass 1 of the chunked KDA forward, vec4 form (grid: chunk slots x heads; 256 threads per chunk of 64
 * rows). gc and Kd come from pass 0 (gc.wgsl.ts). Every workgroup-memory operand is a vec4 (4 channels of a
 * row in step A, 4 rows of a column in steps B and C), so one 16-byte read feeds 4 to 16 FMAs; global loads
 * and stores are vec4 too (K a multiple of 16, V of 4). The global loads of the next K tile (step A) and of
 * the next 64-column tile (step C) are issued before the current tile's products (register double buffering).
 *
 *  A. A_kk[i,j] = sum_c k_i k_j exp(gc_i - gc_j) (j < i) and A_qk (j <= i) as 4x4 tiles of 4-row blocks,
 *     one thread per tile of the lower triangle (120 off-diagonal, 16 diagonal), over K in tiles of 16
 *     channels staged as whole rows (see BK). For blocks I > J the decay factors through the last row m of
 *     block J and the first row n of block I (j <= m < n <= i):
 *        exp(gc_i - gc_j) = exp(gc_i - gc_n) exp(gc_n - gc_m) exp(gc_m - gc_j),
 *     all three <= 1, so with qs = q exp(gc - gc_n(row)), ks = k exp(gc - gc_n(row)), kn = k exp(gc_m(row) - gc)
 *     precomputed per row, a tile costs one exp per channel (the middle factor) and 32 FMAs (as dot products
 *     over 4 channels). A product of
 *     factors <= 1 can only underflow where the true decay is below f32 range anyway. Pairs inside one block
 *     take one exp per pair (exp(gc_i - gc_j), i > j).
 *  B. T = (I + Diag(beta) A_kk)^-1 (unit lower triangular) by doubling: the 4x4 diagonal blocks in closed
 *     form, then for block size s = 4, 8, 16, 32 each 2s diagonal block [[P, 0], [C, Q]] gets its lower-left
 *     block -Q^-1 C P^-1 from the already inverted P and Q (two products, two barriers per level instead of
 *     one barrier per row). The matrix is kept transposed (column j as 16 vec4 of rows), strictly lower part
 *     only, so the unit diagonal is implicit and every product reads vec4 columns.
 *  C. [W | U] = T Diag(beta) [exp(gc) K | V] in column tiles of 64, each thread a 4x4 register tile.
 * A_qk (times scale, zero above the diagonal and past the end) is stored for pass 3, T (strictly lower,
 * row-major) for the backward when `storeT` is set.
 *
 * Every exp() argument is <= 0 (gc is non-increasing along time; rows past the end reuse the last row's gc,
 * with q = k = 0). f32 throughout. Workgroup memory: 32 KiB (lavapipe's limit; the H200 has 48).
 * H200, B=1, H=16, d=128, T=32768: 2.38 ms (the scalar intra.wgsl.ts: 9.55 ms), plus 0.38 ms for pass 0.
 * Its steps (seventh session, each left out in turn with `skip`, two runs each, 2.429 / 2.428 ms whole,
 * bench/results/2026-12-01-h200-kintra-s1-summary.txt): step A's products 0.61 ms, step B 0.20, step C's
 * products 0.48; the remaining ~1.14 ms are the loads, staging, stores and barriers around them. On GPUs the
 * forward now runs intraGram.wgsl.ts + intraWU.wgsl.ts instead (kdaForwardTuning.intraTwoPass); this kernel
 * stays the state pass's register donor in the shared pipeline (statePipeline.ts) and the software adapter's.
 */
import { store4 } from './bf16.wgsl.js';
import { bindings, chunkSlotPrologue, computeMain, LOCATE } from './wgslParts.js';

const WG = 256;
/**
 * Channels per step-A tile: 4 vec4 per row, rows stored whole ([row][4] vec4), the 4 column groups of row r
 * permuted by (r / 4) % 4 (an XOR swizzle), so that the rows 4 I + a of different blocks I that one warp
 * reads at once fall on different banks.
 */
const BK = 16;
const ARR = 64 * (BK / 4);
const [AQ, AK, AG, AQS, AKS, AKN] = [0, 1, 2, 3, 4, 5].map((m) => m * ARR);
/** Step B/C layout (vec4 units): the transposed 64x64 matrix, then the 64x64 operand tile / scratch. */
const MT = 0;
const R4 = [0, 1, 2, 3];
const X = 'xyzw';

/*
 * Step A's epilogue in the gram kernels (this file's, intraGram.wgsl.ts, intraGramSecondary.wgsl.ts), one definition:
 * A_qk's diagonal block to its store, and Diag(beta) A_kk into workgroup memory at MT, transposed (column j as 16
 * vec4 of rows) for step B. `I4`, `J4`, `beta4`, `abase`, `L` and `p.scale` are the kernel's.
 */
/** A_qk's diagonal block (I4, I4) from rows `${aqk}0..3`: scaled, zero above the diagonal and past the end, stored at `at(a)`. */
export const aqkDiagonalStore = (
  aqk: string,
  at: (a: number) => string = (a) => `Aqk[abase + (4u * I4 + ${a}u) * 16u + I4]`,
) =>
  R4.map(
    (a) =>
      `${at(a)} = select(vec4<f32>(0.0), ${aqk}${a} * p.scale * vec4<f32>(${R4.map((b) => (b <= a ? '1.0' : '0.0')).join(', ')}), 4u * I4 + ${a}u < L);`,
  ).join('\n    ');
/** Diag(beta) A_kk's diagonal block (I4, I4) from rows `${acc}0..3`, strictly lower. */
export const akkDiagonalToShared = (acc: string) =>
  R4.map(
    (b) =>
      `sm[${MT}u + (4u * I4 + ${b}u) * 16u + I4] = vec4<f32>(${R4.map((a) => (a > b ? `${acc}${a}.${X[b]} * beta4.${X[a]}` : '0.0')).join(', ')});`,
  ).join('\n    ');
/**
 * A_qk's tile (I4, J4), I4 > J4, from rows `${aqk}0..3`: scaled, zero past the end; and the zero tile (J4, I4) above
 * the diagonal. `indent`: the generated lines' indentation (the callers' nesting).
 */
export const aqkTileStore = (aqk: string, indent = '    ') =>
  R4.map(
    (a) =>
      `Aqk[abase + (4u * I4 + ${a}u) * 16u + J4] = select(vec4<f32>(0.0), ${aqk}${a} * p.scale, 4u * I4 + ${a}u < L);\n${indent}Aqk[abase + (4u * J4 + ${a}u) * 16u + I4] = vec4<f32>(0.0);`,
  ).join(`\n${indent}`);
/** Diag(beta) A_kk's tile (I4, J4), I4 > J4, from rows `${acc}0..3`, and the zero tile (J4, I4) above the diagonal. */
export const akkTileToShared = (acc: string) =>
  R4.map(
    (
      b,
    ) => `sm[${MT}u + (4u * J4 + ${b}u) * 16u + I4] = vec4<f32>(${R4.map((a) => `${acc}${a}.${X[b]}`).join(', ')}) * beta4;
    sm[${MT}u + (4u * I4 + ${b}u) * 16u + J4] = vec4<f32>(0.0);`,
  ).join('\n    ');
const BT = 1024;

export interface IntraVecVariant {
  K: number;
  V: number;
  GK: number;
  /**
   * Profiling only (bench kda --fwd-intra-skip): leave out step A's products, step B, or step C's product
   * (loads, stores and barriers stay), so the time of that step is the difference. The results are wrong.
   */
  skip?: 'products' | 'inverse' | 'wu';
  /**
   * Compute gc and Kd here instead of in a separate pass (gc.wgsl.ts): see gcPrologue. Binds g and writes
   * gc and Kd (read_write gc: the kernel reads back what it stored). Not the default: on the H200 (H=16,
   * d=128, T=32768) 2.75 ms against 0.35 + 2.38 for the two passes (the serial walk over the chunk's rows
   * adds its latency to every workgroup of a latency-bound kernel).
   */
  fuseGc?: boolean;
  /**
   * Step A's products on all 256 threads: each off-diagonal tile by two threads, one per half of the tile's
   * 16 channels (c4 0-1 and 2-3), their sums added once after the K loop through workgroup memory; the 16
   * diagonal tiles on the 16 threads left (120 .. 127 and 248 .. 255). The default gives the 120 + 16 tiles to
   * 136 threads and leaves 120 without products. Not the default: on the H200 (H=16, d=128, T=32768) 2.79 ms
   * against 2.36 (two subgroups then mix diagonal and off-diagonal tiles and run both branches, and the sums
   * add a round trip through workgroup memory and two barriers).
   */
  splitProducts?: boolean;
}

/**
 * Step A's staging role of thread lid: row si, channels 4 sc4 .. 4 sc4 + 3 of the K tile, stored at sp (the
 * swizzled slot); srow, nrow, mrow: the rows of si, and of the first and last row of its 4-row block. Shared with
 * intraGram.wgsl.ts, as are the snippets below.
 */
export const STAGING_ROLES = `let si = lid / 4u;
  let sc4 = lid % 4u;
  let sp = si * 4u + (sc4 ^ ((si >> 2u) & 3u));
  let srow = (t0 + min(si, L - 1u)) * H + h;
  let nrow = (t0 + min(si & 0xfffffffcu, L - 1u)) * H + h;
  let mrow = (t0 + min(si | 3u, L - 1u)) * H + h;`;

/** Step A's loads of channel group cc of the staging role's rows into qv, kv, gv, gn, gm (and gl with fuseGc). */
export const stepALoad = (K4: number, cc: string, fuseGc: boolean) => `{
    let cc = ${cc};
    qv = select(vec4<f32>(0.0), q[srow * ${K4}u + cc], si < L);
    kv = select(vec4<f32>(0.0), k[srow * ${K4}u + cc], si < L);
    gv = gc4(srow, cc);
    gn = gc4(nrow, cc);
    gm = gc4(mrow, cc);${fuseGc ? '\n    gl = gc4(lrow, cc);' : ''}
  }`;

const stage = (arr: number, val: string) => `sm[${arr}u + sp] = ${val};`;
/** Step A's staging of the loaded values: q, k, gc and the decay-factored qs, ks, kn (see the header). */
export const STAGE_TILE = `let f = exp(gv - gn);
    let kn = kv * exp(gm - gv);
    let qs = qv * f;
    let ks = kv * f;
    ${stage(AQ, 'qv')}
    ${stage(AK, 'kv')}
    ${stage(AG, 'gv')}
    ${stage(AQS, 'qs')}
    ${stage(AKS, 'ks')}
    ${stage(AKN, 'kn')}`;

/**
 * A diagonal 4-row block's pairs (a, b), b < a (rows as vec4 over 4 channels): one exp a pair, into `akk` (the
 * name of the A_kk accumulators) and aqk.
 */
export const diagonalPairs = (akk: string) =>
  R4.flatMap((a) =>
    R4.filter((b) => b < a).map(
      (b) => `{
            let kk = k${b} * exp(g${a} - g${b});
            ${akk}${a}.${X[b]} += dot(k${a}, kk);
            aqk${a}.${X[b]} += dot(q${a}, kk);
          }`,
    ),
  ).join('\n          ');

/** T (transposed in workgroup memory at MT) stored row-major to Tb for the backward, where p.storeT asks. */
export const STORE_T_ROW_MAJOR = `if (p.storeT != 0u) {
    for (var e = lid; e < 1024u; e += ${WG}u) {
      let i = e / 16u;
      let j = (e % 16u) * 4u;
      let iv = i / 4u;
      let ic = i % 4u;
      Tb[abase + e] = vec4<f32>(${R4.map((u) => `sm[${MT}u + (j + ${u}u) * 16u + iv][ic]`).join(', ')});
    }
  }`;

/**
 * Step C's products for one 64-column tile: thread (rg, cg)'s 4 x 4 register tile acc0..acc3 of T B (B staged at
 * BT, T transposed at MT), over T's columns below j4 < `jEnd` (rg + 1u: T is zero on and above the diagonal).
 * `ind` is the indentation of the caller's block. Shared with intraWU.wgsl.ts.
 */
export function wuTileProduct(jEnd: string, ind: string): string {
  return `${R4.map((a) => `var acc${a} = sm[${BT}u + (4u * rg + ${a}u) * 16u + cg];`).join(`\n${ind}`)}
${ind}// Columns j < 4 rg + 4 (T is zero on and above the diagonal), 4 at a time: the 8 operand reads are
${ind}// issued before the 64 FMAs that use them.
${ind}for (var j4 = 0u; j4 < ${jEnd}; j4++) {
${ind}  ${R4.map((x) => `let tc${x} = sm[${MT}u + (4u * j4 + ${x}u) * 16u + rg];\n${ind}  let bj${x} = sm[${BT}u + (4u * j4 + ${x}u) * 16u + cg];`).join(`\n${ind}  `)}
${ind}  ${R4.flatMap((x) => R4.map((a) => `acc${a} = fma(vec4<f32>(tc${x}.${X[a]}), bj${x}, acc${a});`)).join(`\n${ind}  `)}
${ind}}`;
}

/**
 * Step C's stores of thread (rg, cg)'s tile, column group c4: to W (c4 < K/4) or U, rows past the end skipped;
 * with `bf16` (intraWU.wgsl.ts's bf16 variant) W and U are bf16 and each vec4 is rounded and packed (bf16.wgsl.ts).
 */
export function wuTileStore(K4: number, V4: number, ind: string, bf16 = false): string {
  return R4.map(
    (a) => `if (4u * rg + ${a}u < L) {
${ind}  let row = (t0 + 4u * rg + ${a}u) * H + h;
${ind}  if (c4 < ${K4}u) {
${ind}    ${store4('W', `row * ${K4}u + c4`, `acc${a}`, bf16)}
${ind}  } else if (c4 < ${K4 + V4}u) {
${ind}    ${store4('U', `row * ${V4}u + c4 - ${K4}u`, `acc${a}`, bf16)}
${ind}  }
${ind}}`,
  ).join(`\n${ind}`);
}

export const intraVecKey = (v: IntraVecVariant) =>
  `kda_chunk_intra_vec_k${v.K}_v${v.V}_gk${v.GK}${v.skip ? `_skip_${v.skip}` : ''}${v.fuseGc ? '_gc' : ''}${v.splitProducts ? '_split' : ''}`;

/** Rows whose g loads the gc prologue issues together (as gc.wgsl.ts). */
const GRB = 16;

/**
 * WGSL: gc = cumsum(g) over the chunk's L rows, stored to gcB, the same sums in the same order as gc.wgsl.ts
 * (one thread per gate channel walks the rows from the first; a per-head gate, GK = 1, is summed by thread 0),
 * so gc, and the Kd step A stores from it, equal the separate pass's bit for bit. The loads of 16 rows are
 * issued before their sums. What the workgroup stored it then reads back (step A, step C) after a storage
 * barrier; the rows are L1/L2-hot. One pass and one launch less than gc.wgsl.ts + this kernel, and the
 * exp(gc_last - gc) of Kd costs one exp per staged element in step A, whose k and gc are loaded there anyway.
 */
function gcPrologue(K: number, GK: number): string {
  const GC = GK === 1 ? 1 : K;
  const gi = (r: string) => (GK === 1 ? `(t0 + ${r}) * H + h` : `((t0 + ${r}) * H + h) * ${K}u + c`);
  // gcB is vec4 over the channels when GK = K: one channel is component c % 4 of element idx / 4.
  const gcAt = (r: string) =>
    GK === 1 ? `gcB[(t0 + ${r}) * H + h]` : `gcB[((t0 + ${r}) * H + h) * ${K / 4}u + c / 4u][c % 4u]`;
  const rows = (body: (u: number) => string) => Array.from({ length: GRB }, (_, u) => body(u)).join('\n      ');
  return `for (var c = lid; c < ${GC}u; c += ${WG}u) {
    var acc = 0.0;
    for (var i0 = 0u; i0 < L; i0 += ${GRB}u) {
      ${rows((u) => `let g${u} = select(0.0, g[${gi(`min(i0 + ${u}u, L - 1u)`)}], i0 + ${u}u < L);`)}
      ${rows((u) => `acc += g${u};\n      if (i0 + ${u}u < L) { ${gcAt(`i0 + ${u}u`)} = acc; }`)}
    }
  }
  storageBarrier();`;
}

export function intraVecFits(v: IntraVecVariant): boolean {
  return v.K % BK === 0 && v.V % 4 === 0 && (v.GK === 1 || v.GK === v.K);
}

/**
 * WGSL: step B's first level, the 4x4 diagonal blocks of T in closed form (threads 0 .. 15, one block each);
 * also intraGram.wgsl.ts's.
 */
export const INVERSE_DIAGONAL_BLOCKS = `// Step B. The 4x4 diagonal blocks: T[i, j] = -(N[i, j] + sum_{j < m < i} N[i, m] T[m, j]); column b of
  // block d is sm[(4 d + b) * 16 + d] (rows 4 d .. 4 d + 3).
  if (lid < 16u) {
    let d = lid;
    let c0 = sm[${MT}u + (4u * d) * 16u + d];
    let c1 = sm[${MT}u + (4u * d + 1u) * 16u + d];
    let c2 = sm[${MT}u + (4u * d + 2u) * 16u + d];
    let t10 = -c0.y;
    let t21 = -c1.z;
    let t32 = -c2.w;
    let t20 = -(c0.z + c1.z * t10);
    let t31 = -(c1.w + c2.w * t21);
    let t30 = -(c0.w + c1.w * t10 + c2.w * t20);
    sm[${MT}u + (4u * d) * 16u + d] = vec4<f32>(0.0, t10, t20, t30);
    sm[${MT}u + (4u * d + 1u) * 16u + d] = vec4<f32>(0.0, 0.0, t21, t31);
    sm[${MT}u + (4u * d + 2u) * 16u + d] = vec4<f32>(0.0, 0.0, 0.0, t32);
  }`;

/**
 * WGSL: the lower-left block of level s of the doubling inverse (see B above), over the transposed matrix at
 * sm[MT..] and the scratch at sm[BT..]; also intraGram.wgsl.ts's step B.
 */
export const inverseLevel = (s: number): string => inverseLevelWith(s, false);

/** inverseLevel, with X's scratch tile at BT or (upperScratch) in the matrix's own zero upper part. */
export function inverseLevelWith(s: number, upperScratch: boolean): string {
  const S4 = s / 4;
  // X's (column c, row group r4) of block blk at xb + r4: the scratch tile at BT, or (upperScratch, for a kernel
  // without room for it) the block's upper-right s x s part of the matrix, zero in T and never read by this or
  // a later level (they read on and below the diagonal 4x4 blocks only); the caller masks it out of T's stores.
  const xBase = upperScratch ? `${MT}u + (C0 + ${s}u + c) * 16u + C0 / 4u` : `${BT}u + blk * ${s * S4}u + c * ${S4}u`;
  const n = 8 * s; // vec4 outputs of the level
  const decode = `let blk = e / ${s * S4}u;
    let c = (e % ${s * S4}u) / ${S4}u;
    let r4 = e % ${S4}u;
    let C0 = blk * ${2 * s}u;
    let R04 = (C0 + ${s}u) / 4u + r4;`;
  const col = (base: string, u: number) => `sm[${MT}u + (${base} + ${u}u) * 16u + R04]`;
  return `// s = ${s}: X = C P^-1 (P^-1 = I + stored part, zero on and above the diagonal) into the scratch tile.
  for (var e = lid; e < ${n}u; e += ${WG}u) {
    ${decode}
    var x = sm[${MT}u + (C0 + c) * 16u + R04];
    for (var m4 = c / 4u; m4 < ${S4}u; m4++) {
      let pv = sm[${MT}u + (C0 + c) * 16u + C0 / 4u + m4];
      let mc = C0 + 4u * m4;
      x += ${R4.map((u) => `${col('mc', u)} * pv.${X[u]}`).join(' + ')};
    }
    ${upperScratch ? `sm[${xBase} + r4] = x;` : `sm[${BT}u + e] = x;`}
  }
  workgroupBarrier();
  // Lower-left = -(X + Q' X), Q' the stored part of Q^-1 (zero on and above the diagonal).
  for (var e = lid; e < ${n}u; e += ${WG}u) {
    ${decode}
    let xb = ${xBase};
    var y = sm[xb + r4];
    for (var m4 = 0u; m4 <= r4; m4++) {
      let xv = sm[xb + m4];
      let mc = C0 + ${s}u + 4u * m4;
      y += ${R4.map((u) => `${col('mc', u)} * xv.${X[u]}`).join(' + ')};
    }
    sm[${MT}u + (C0 + c) * 16u + R04] = -y;
  }
  workgroupBarrier();`;
}

export function intraVecWgsl(v: IntraVecVariant): string {
  const { K, V, GK } = v;
  if (!intraVecFits(v)) throw new Error(`kda intra (vec4): K=${K} (multiple of 16), V=${V} (of 4), GK=${GK}`);
  const K4 = K / 4;
  const V4 = V / 4;
  const acc = (name: string) => R4.map((a) => `var ${name}${a} = vec4<f32>(0.0);`).join('\n  ');
  /** WGSL: vec4 column group `ci` (already swizzled) of row `r` of array `arr`. */
  const at = (arr: number, r: string, ci: string) => `sm[${arr}u + (${r}) * 4u + ${ci}]`;
  const dots = (rowsI: string, rowsJ: string) =>
    R4.flatMap((a) =>
      R4.map(
        (b) => `akk${a}.${X[b]} += dot(${rowsI.replace('#', 'ks')}${a}, ${rowsJ}${b});
          aqk${a}.${X[b]} += dot(${rowsI.replace('#', 'qs')}${a}, ${rowsJ}${b});`,
      ),
    ).join('\n          ');
  const stageLoad = (cc: string) => stepALoad(K4, cc, !!v.fuseGc);
  const NCT = Math.ceil((K4 + V4) / 16);
  // B = Diag(beta) [exp(gc) K | V] of tile ct: bx = beta k (or beta v), bg = gc (K columns), 0 past the end.
  const bLoad = (ct: string) => `{
      let c4 = (${ct}) * 16u + cg;
      ${R4.map(
        (m) => `{
        let i = lid / 16u + ${16 * m}u;
        let row = (t0 + min(i, L - 1u)) * H + h;
        let bt = select(0.0, beta[row], i < L);
        if (c4 < ${K4}u) {
          bx${m} = bt * k[row * ${K4}u + c4];
          bg${m} = gc4(row, c4);
        } else if (c4 < ${K4 + V4}u) {
          bx${m} = bt * vv[row * ${V4}u + c4 - ${K4}u];
        } else {
          bx${m} = vec4<f32>(0.0);
        }
      }`,
      ).join('\n      ')}
    }`;
  // Diagonal tile: pairs (a, b), b < a, of one 4-row block (rows as vec4 over 4 channels).
  const diagPairs = diagonalPairs('akk');
  return /* wgsl */ `
${
  v.fuseGc
    ? bindings(
        'H: u32, N: u32, scale: f32, storeT: u32',
        ['cu: i32', 'q: vec4<f32>', 'k: vec4<f32>', 'vv: vec4<f32>', 'g', 'beta'],
        [
          GK === 1 ? 'gcB' : 'gcB: vec4<f32>',
          'W: vec4<f32>',
          'U: vec4<f32>',
          'Aqk: vec4<f32>',
          'Tb: vec4<f32>',
          'Kd: vec4<f32>',
        ],
      )
    : bindings(
        'H: u32, N: u32, scale: f32, storeT: u32',
        ['cu: i32', 'q: vec4<f32>', 'k: vec4<f32>', 'vv: vec4<f32>', GK === 1 ? 'gcB' : 'gcB: vec4<f32>', 'beta'],
        ['W: vec4<f32>', 'U: vec4<f32>', 'Aqk: vec4<f32>', 'Tb: vec4<f32>'],
      )
}
${LOCATE}
fn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }
var<workgroup> sm: array<vec4<f32>, 2048>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  ${v.fuseGc ? gcPrologue(K, GK) : ''}
  // Step A roles: tile (I4, J4) of 4-row blocks; off-diagonal tiles row-major (lid < 120), diagonal ones at
  // 128 .. 143 (a warp of their own: their per-pair exps would stall the others).
  var role = 0u;
  var I4 = 0u;
  var J4 = 0u;
${
  v.splitProducts
    ? `  // Split products: tile tl = lid % 128, channel half ch = lid / 128 (c4 = 2 ch, 2 ch + 1 of each K tile).
  let tl = lid % 128u;
  let ch = lid / 128u;
  if (tl < 120u) {
    role = 1u;
    I4 = 1u;
    while ((I4 + 1u) * I4 / 2u <= tl) { I4++; }
    J4 = tl - I4 * (I4 - 1u) / 2u;
  } else {
    role = 2u;
    I4 = tl - 120u + 8u * ch;
    J4 = I4;
  }`
    : `  if (lid < 120u) {
    role = 1u;
    I4 = 1u;
    while ((I4 + 1u) * I4 / 2u <= lid) { I4++; }
    J4 = lid - I4 * (I4 - 1u) / 2u;
  } else if (lid >= 128u && lid < 144u) {
    role = 2u;
    I4 = lid - 128u;
    J4 = I4;
  }`
}
  ${acc('akk')}
  ${acc('aqk')}
  // Staging role: row si, channels 4 sc4 .. 4 sc4 + 3 of the tile; n, m = first and last row of its block.
  ${STAGING_ROLES}
  // The staging loads of tile kt + 1 are issued while tile kt's products run (register double buffering).
  var qv: vec4<f32>;
  var kv: vec4<f32>;
  var gv: vec4<f32>;
  var gn: vec4<f32>;
  var gm: vec4<f32>;
  ${
    v.fuseGc
      ? `// Kd = k exp(gc_last - gc) of the staged elements (gl: gc of the chunk's last row).
  let lrow = (t0 + L - 1u) * H + h;
  var gl: vec4<f32>;`
      : ''
  }
  ${stageLoad('sc4')}
  for (var kt = 0u; kt < ${K / BK}u; kt++) {
    ${STAGE_TILE}${
      v.fuseGc
        ? `
    if (si < L) { Kd[srow * ${K4}u + kt * 4u + sc4] = kv * exp(gl - gv); }`
        : ''
    }
    workgroupBarrier();
    if (kt + 1u < ${K / BK}u) {
      ${stageLoad('(kt + 1u) * 4u + sc4')}
    }
    if (role == 1u${v.skip === 'products' ? ' && kt > 1000u' : ''}) {
      for (var c4 = ${v.splitProducts ? '2u * ch' : '0u'}; c4 < ${v.splitProducts ? '2u * ch + 2u' : '4u'}; c4++) {
        let ci = c4 ^ (I4 & 3u);
        let cj = c4 ^ (J4 & 3u);
        ${R4.map((a) => `let qs${a} = ${at(AQS, `4u * I4 + ${a}u`, 'ci')};\n        let ks${a} = ${at(AKS, `4u * I4 + ${a}u`, 'ci')};`).join('\n        ')}
        let e = exp(${at(AG, '4u * I4', 'ci')} - ${at(AG, '4u * J4 + 3u', 'cj')});
        ${R4.map((b) => `let kn${b} = ${at(AKN, `4u * J4 + ${b}u`, 'cj')} * e;`).join('\n        ')}
        {
          ${dots('#', 'kn')}
        }
      }
    } else if (role == 2u${v.skip === 'products' ? ' && kt > 1000u' : ''}) {
      for (var c4 = 0u; c4 < 4u; c4++) {
        let ci = c4 ^ (I4 & 3u);
        ${R4.map((a) => `let q${a} = ${at(AQ, `4u * I4 + ${a}u`, 'ci')};\n        let k${a} = ${at(AK, `4u * I4 + ${a}u`, 'ci')};\n        let g${a} = ${at(AG, `4u * I4 + ${a}u`, 'ci')};`).join('\n        ')}
        {
          ${diagPairs}
        }
        ${R4.map((a) => `aqk${a}.${X[a]} += dot(q${a}, k${a});`).join('\n        ')}
      }
    }
    workgroupBarrier();
  }${
    v.splitProducts
      ? `
  // The second channel half's sums to the first (staging tiles dead after the last barrier); only the first
  // half's threads store the tiles below.
  if (role == 1u && ch == 1u) {
    ${R4.map((a) => `sm[tl * 8u + ${a}u] = akk${a};\n    sm[tl * 8u + ${4 + a}u] = aqk${a};`).join('\n    ')}
    role = 0u;
  }
  workgroupBarrier();
  if (role == 1u) {
    ${R4.map((a) => `akk${a} += sm[tl * 8u + ${a}u];\n    aqk${a} += sm[tl * 8u + ${4 + a}u];`).join('\n    ')}
  }
  workgroupBarrier();`
      : ''
  }
  // A_qk to global (scaled; zero above the diagonal and past the end); Diag(beta) A_kk, strictly lower and
  // transposed, to workgroup memory (the staging tiles are dead after the last barrier).
  let abase = (slot * H + h) * 1024u;
  var beta4 = vec4<f32>(0.0);
  ${R4.map((a) => `if (4u * I4 + ${a}u < L) { beta4.${X[a]} = beta[(t0 + 4u * I4 + ${a}u) * H + h]; }`).join('\n  ')}
  if (role == 1u) {
    ${aqkTileStore('aqk')}
    ${akkTileToShared('akk')}
  } else if (role == 2u) {
    ${aqkDiagonalStore('aqk')}
    ${akkDiagonalToShared('akk')}
  }
  workgroupBarrier();
  ${INVERSE_DIAGONAL_BLOCKS}
  workgroupBarrier();
  ${v.skip === 'inverse' ? '' : [4, 8, 16, 32].map(inverseLevel).join('\n  ')}
  ${STORE_T_ROW_MAJOR}
  // Step C. [W | U] = T B, B = Diag(beta) [exp(gc) K | V], 64 columns at a time; thread (rg, cg) owns rows
  // 4 rg .. 4 rg + 3 and columns 4 cg .. 4 cg + 3 of the tile. T is strictly lower here: the unit diagonal
  // is B itself.
  // Tile element lid + 256 m is row lid / 16 + 16 m, column group cg; its global loads for tile ct + 1 are
  // issued before tile ct's product.
  let rg = lid / 16u;
  let cg = lid % 16u;
  ${R4.map((m) => `var bx${m} = vec4<f32>(0.0);\n  var bg${m} = vec4<f32>(0.0);`).join('\n  ')}
  ${bLoad('0u')}
  for (var ct = 0u; ct < ${NCT}u; ct++) {
    ${R4.map(
      (m) => `sm[${BT}u + lid + ${m * WG}u] = select(bx${m}, bx${m} * exp(bg${m}), ct * 16u + cg < ${K4}u);`,
    ).join('\n    ')}
    workgroupBarrier();
    if (ct + 1u < ${NCT}u) {
      ${bLoad('ct + 1u')}
    }
    ${wuTileProduct(v.skip === 'wu' ? '0u' : 'rg + 1u', '    ')}
    let c4 = ct * 16u + cg;
    ${wuTileStore(K4, V4, '    ')}
    workgroupBarrier();
  }
}`;
}
