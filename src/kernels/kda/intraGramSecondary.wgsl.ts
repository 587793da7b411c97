/**
 * intraGram.wgsl.ts's kernel (pass 1a of the two-pass chunked KDA forward, gc read from the gc pass) with FLA's
 * secondary chunking of the decays (IntraGramVariant.secondary): the chunk's 64 rows as four 16-row blocks.
 *
 * For rows i in 16-row block I (first row N = 16 I) and j < N, exp(gc_i - gc_j) = exp(gc_i - gc_N) exp(gc_N - gc_j),
 * both factors <= 1 (gc is non-increasing). So per K tile the staging stores, beside intraGram's arrays, the rows
 * scaled by exp(gc_i - gc_N) (q and k: qs16, ks16) and, for each N = 16, 32, 48, the rows j < N of k scaled by
 * exp(gc_N - gc_j) (kN: 16 + 32 + 48 rows). A 4x4 tile (I4, J4) whose 4-row blocks lie in different 16-row blocks
 * (96 of A_kk's 120 off-diagonal tiles, 96 of A_qk's) then reads pre-scaled operands only: pure FMA, no exp and no
 * gc read in its inner loop (intraGram's tiles: one vec4 exp of the middle factor exp(gc_n(I4) - gc_m(J4)), two gc
 * reads and four vec4 multiplies per 4 channels). The 24 + 24 tiles inside a 16-row block keep intraGram's 4-row
 * factoring (their reference row must lie between their rows: j <= r <= i, so that every exp argument is <= 0),
 * and the 16 diagonal blocks its per-pair decays (diagChain or not). Every exp argument is <= 0; where a factor
 * underflows to 0 the true product is smaller still.
 *
 * Roles (256 threads, warps of 32): 0 .. 95 A_kk's cross-block tiles, 96 .. 191 A_qk's (six warps that run one
 * branch only); 192 .. 215 A_kk's in-block tiles, 216 .. 239 A_qk's, 240 .. 255 the diagonal blocks (warps 6, 7:
 * warp 7 runs the in-block and the diagonal branch in turn, as intraGram's warp 7 does).
 *
 * Workgroup memory: the 24 KiB of intraGram (T and step B's scratch after the K loop need 1536 vec4). To fit the
 * nine staged arrays (q, k, gc, qs4, ks4, kn4, qs16, ks16, kN) the K tile is 8 channels (2 vec4 a row), not 16:
 * twice the K tiles (and barriers) of intraGram. Rows are padded (2 vec4 after each 4-row block, a block 10 vec4)
 * so that the four 4-row blocks one warp reads at once fall on different banks: 1520 vec4. Staging: 128 (row,
 * column group) slots, two threads each: threads 0 .. 127 stage q, k, gc, qs4, ks4, kn4 (intraGram's STAGE_TILE
 * expressions), threads 128 .. 255 qs16, ks16 and the row's kN.
 *
 * Values: A_kk's and A_qk's sums over the channels in the same order as intraGram's; the cross-block products'
 * factors grouped differently (exp(gc_i - gc_N) exp(gc_N - gc_j) instead of exp(gc_i - gc_n) exp(gc_n - gc_m)
 * exp(gc_m - gc_j)), so equal to a few ulps, not bit for bit.
 *
 * H200 (H=16, d=128, T=32768, one sitting, bench/results/2026-12-02-h200-kgram3-*): slower, so opt-in
 * (kdaForwardTuning.intraGramSecondary, bench kda --fwd-intra-gram-secondary on). kda_chunk_intra 1.3321 / 1.3325
 * ms against 1.1640 / 1.1674 (forward 5.644 / 5.639 against 5.474 / 5.477); without the products
 * (--fwd-intra-gram-skip products) 0.764 against kgram2's 0.584 for intraGram. So the products themselves took
 * ~0.57 ms against ~0.58: removing the middle factor's exp, gc reads and multiplies from 192 of the 240
 * off-diagonal threads saved almost nothing (they are not bound by that work), while the 8-channel K tiles (twice
 * the barriers and loop trips) and the larger staging (9 arrays, the secondary half's 5 gc loads a slot) cost
 * ~0.18. --check at T=2048: against the recurrent o 8.6e-7, state 7.3e-7; against the default path o 3.0e-7,
 * state 1.4e-7.
 */
import { DIAG_CHAIN_PAIRS, type IntraGramVariant } from './intraGram.wgsl.js';
import {
  akkDiagonalToShared,
  akkTileToShared,
  aqkDiagonalStore,
  aqkTileStore,
  diagonalPairs,
  INVERSE_DIAGONAL_BLOCKS,
  inverseLevelWith,
  STORE_T_ROW_MAJOR,
} from './intraVec.wgsl.js';
import { bindings, chunkSlotPrologue, computeMain, LOCATE } from './wgslParts.js';

const WG = 256;
/** Channels per staged K tile (2 vec4 a row). */
const BK = 8;
/** vec4 a padded 64-row array: 16 blocks of 4 rows x 2 vec4, plus 2 vec4 of padding each. */
const ARRP = 160;
const [RQ, RK, RG, QS4, KS4, KN4, QS16, KS16] = [0, 1, 2, 3, 4, 5, 6, 7].map((m) => m * ARRP);
/** kN for N = 16, 32, 48: rows 0 .. N - 1 of k at row offsets 0, 16, 48 (kNBase), 96 rows padded as above. */
const KNN = 8 * ARRP;
/** T (transposed) and step B's scratch after the K loop (intraVec.wgsl.ts's layout: 1536 vec4). */
const MT = 0;
const SM_SIZE = 1536;
const R4 = [0, 1, 2, 3];
const X = 'xyzw';

export function intraGramSecondaryFits(v: IntraGramVariant): boolean {
  return (
    v.K % BK === 0 &&
    v.V % 4 === 0 &&
    (v.GK === 1 || v.GK === v.K) &&
    !v.bf16 &&
    !v.gcFromG &&
    !v.lean &&
    !v.stagedStores &&
    !v.diagSplit &&
    KNN + 240 <= SM_SIZE
  );
}

/** WGSL: the padded vec4 index of column group c of row r (see the header). */
const at = (arr: number | string, r: string, c: string) =>
  `sm[${typeof arr === 'number' ? `${arr}u` : arr} + 2u * (${r}) + 2u * ((${r}) >> 2u) + ${c}]`;

export function intraGramSecondaryWgsl(v: IntraGramVariant): string {
  const { K, GK } = v;
  if (!v.secondary || !intraGramSecondaryFits(v)) {
    throw new Error(`kda intra gram (secondary): K=${K} (multiple of ${BK}), V=${v.V} (of 4), GK=${GK}`);
  }
  const K4 = K / 4;
  const NKT = K / BK;
  // Loads of K tile t: q, k, gc of the staging row, and gc of its aux rows (threads < 128: the row's 4-row block's
  // first and last rows; threads >= 128: its 16-row block's first row, rows 16, 32, 48), all clamped to L - 1.
  const stageLoad = (t: string) => `{
    let cc = ${t} * 2u + sc;
    qv = select(vec4<f32>(0.0), q[srow * ${K4}u + cc], si < L);
    kv = select(vec4<f32>(0.0), k[srow * ${K4}u + cc], si < L);
    gv = gc4(srow, cc);
    ga = gc4(arow0, cc);
    gb = gc4(arow1, cc);
    if (lid >= 128u) {
      gx = gc4(arow2, cc);
      gy = gc4(arow3, cc);
    }
  }`;
  const sp = '2u * si + 2u * (si >> 2u) + sc';
  const diagPairs = v.diagChain ? DIAG_CHAIN_PAIRS : diagonalPairs('acc');
  return /* wgsl */ `
${bindings(
  'H: u32, N: u32, scale: f32, storeT: u32',
  ['cu: i32', 'q: vec4<f32>', 'k: vec4<f32>', GK === 1 ? 'gcB' : 'gcB: vec4<f32>', 'beta'],
  ['Aqk: vec4<f32>', 'Tt: vec4<f32>', 'Tb: vec4<f32>'],
)}
${LOCATE}
fn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }
var<workgroup> sm: array<vec4<f32>, ${SM_SIZE}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  // Roles (see the header): cross-block tiles (lid < 192), in-block tiles (192 .. 239), diagonal blocks (240 ..).
  let cross = lid < 192u;
  let diag = lid >= 240u;
  let isQ = select(lid >= 216u && !diag, lid >= 96u, cross);
  var I4 = lid - 240u;
  var J4 = I4;
  // 16-row block pairs (I16, J16), J16 < I16, row-major; 4-row block pairs inside a 16-row block the same way.
  var I16 = 0u;
  if (cross) {
    let tc = select(lid, lid - 96u, isQ);
    let pr = tc / 16u;
    I16 = 1u + select(0u, 1u, pr >= 1u) + select(0u, 1u, pr >= 3u);
    let J16 = pr - I16 * (I16 - 1u) / 2u;
    I4 = 4u * I16 + (tc % 16u) / 4u;
    J4 = 4u * J16 + tc % 4u;
  } else if (!diag) {
    let tw = select(lid - 192u, lid - 216u, isQ);
    let pw = tw % 6u;
    let ia = 1u + select(0u, 1u, pw >= 1u) + select(0u, 1u, pw >= 3u);
    let ja = pw - ia * (ia - 1u) / 2u;
    I4 = 4u * (tw / 6u) + ia;
    J4 = 4u * (tw / 6u) + ja;
  }
  // Rows of the tile's left operand: qs16 / ks16 (cross), qs4 / ks4 (in-block); the cross tiles' kN rows start at
  // row offset 8 I16 (I16 - 1) (N = 16 I16: 0, 16, 48).
  let rowsArr = select(select(${KS4}u, ${QS4}u, isQ), select(${KS16}u, ${QS16}u, isQ), cross);
  let knArr = ${KNN}u + 16u * I16 * (I16 - 1u) + 4u * I16 * (I16 - 1u);
  ${R4.map((a) => `var acc${a} = vec4<f32>(0.0);\n  var aqk${a} = vec4<f32>(0.0);`).join('\n  ')}
  // Staging: row si, column group sc of the tile, two threads a slot (threads >= 128 the secondary arrays).
  let si = (lid & 127u) >> 1u;
  let sc = lid & 1u;
  let sp = ${sp};
  let srow = (t0 + min(si, L - 1u)) * H + h;
  let n16 = si & 0xfffffff0u;
  let arow0 = (t0 + min(select(si & 0xfffffffcu, n16, lid >= 128u), L - 1u)) * H + h;
  let arow1 = (t0 + min(select(si | 3u, 16u, lid >= 128u), L - 1u)) * H + h;
  let arow2 = (t0 + min(32u, L - 1u)) * H + h;
  let arow3 = (t0 + min(48u, L - 1u)) * H + h;
  let beta4 = vec4<f32>(${R4.map((a) => `select(0.0, beta[(t0 + min(4u * I4 + ${a}u, L - 1u)) * H + h], 4u * I4 + ${a}u < L)`).join(',\n    ')});
  var qv: vec4<f32>;
  var kv: vec4<f32>;
  var gv: vec4<f32>;
  var ga: vec4<f32>;
  var gb: vec4<f32>;
  var gx = vec4<f32>(0.0);
  var gy = vec4<f32>(0.0);
  ${v.prefetch ? stageLoad('0u') : ''}
  for (var kt = 0u; kt < ${NKT}u; kt++) {
    ${v.prefetch ? '' : stageLoad('kt')}
    if (lid < 128u) {
      // intraGram's STAGE_TILE: ga, gb = gc of the 4-row block's first and last rows.
      let f = exp(gv - ga);
      let kn = kv * exp(gb - gv);
      sm[${RQ}u + sp] = qv;
      sm[${RK}u + sp] = kv;
      sm[${RG}u + sp] = gv;
      sm[${QS4}u + sp] = qv * f;
      sm[${KS4}u + sp] = kv * f;
      sm[${KN4}u + sp] = kn;
    } else {
      // ga = gc of the 16-row block's first row N; gb, gx, gy = gc of rows 16, 32, 48 (kN for N > si).
      let f = exp(gv - ga);
      sm[${QS16}u + sp] = qv * f;
      sm[${KS16}u + sp] = kv * f;
      if (si < 16u) {
        sm[${KNN}u + sp] = kv * exp(gb - gv);
      }
      if (si < 32u) {
        sm[${KNN}u + 2u * 16u + 2u * 4u + sp] = kv * exp(gx - gv);
      }
      if (si < 48u) {
        sm[${KNN}u + 2u * 48u + 2u * 12u + sp] = kv * exp(gy - gv);
      }
    }
    workgroupBarrier();
    ${
      v.prefetch
        ? `if (kt + 1u < ${NKT}u) {
      ${stageLoad('(kt + 1u)')}
    }`
        : ''
    }
    ${
      v.skip === 'products'
        ? ''
        : `if (cross) {
      for (var c = 0u; c < 2u; c++) {
        ${R4.map((a) => `let x${a} = ${at('rowsArr', `4u * I4 + ${a}u`, 'c')};`).join('\n        ')}
        ${R4.map((b) => `let kn${b} = ${at('knArr', `4u * J4 + ${b}u`, 'c')};`).join('\n        ')}
        ${R4.flatMap((a) => R4.map((b) => `acc${a}.${X[b]} += dot(x${a}, kn${b});`)).join('\n        ')}
      }
    } else if (!diag) {
      for (var c = 0u; c < 2u; c++) {
        ${R4.map((a) => `let x${a} = ${at('rowsArr', `4u * I4 + ${a}u`, 'c')};`).join('\n        ')}
        let e = exp(${at(RG, '4u * I4', 'c')} - ${at(RG, '4u * J4 + 3u', 'c')});
        ${R4.map((b) => `let kn${b} = ${at(KN4, `4u * J4 + ${b}u`, 'c')} * e;`).join('\n        ')}
        ${R4.flatMap((a) => R4.map((b) => `acc${a}.${X[b]} += dot(x${a}, kn${b});`)).join('\n        ')}
      }
    } else {
      for (var c = 0u; c < 2u; c++) {
        ${R4.map((a) => `let q${a} = ${at(RQ, `4u * I4 + ${a}u`, 'c')};\n        let k${a} = ${at(RK, `4u * I4 + ${a}u`, 'c')};\n        let g${a} = ${at(RG, `4u * I4 + ${a}u`, 'c')};`).join('\n        ')}
        {
          ${diagPairs}
        }
        ${R4.map((a) => `aqk${a}.${X[a]} += dot(q${a}, k${a});`).join('\n        ')}
      }
    }`
    }
    workgroupBarrier();
  }
  // As intraGram.wgsl.ts: A_qk to global (scaled; zero above the diagonal and past the end); Diag(beta) A_kk,
  // strictly lower and transposed, to workgroup memory (the staging arrays are dead after the last barrier).
  let abase = (slot * H + h) * 1024u;
  if (diag) {
    ${aqkDiagonalStore('aqk')}
    ${akkDiagonalToShared('acc')}
  } else if (isQ) {
    ${aqkTileStore('acc')}
  } else {
    ${akkTileToShared('acc')}
  }
  workgroupBarrier();
  ${v.skip === 'inverse' ? '' : INVERSE_DIAGONAL_BLOCKS}
  workgroupBarrier();
  ${v.skip === 'inverse' ? '' : [4, 8, 16, 32].map((s) => inverseLevelWith(s, false)).join('\n  ')}
  // T as it lies in workgroup memory, for pass 1b.
  for (var e = lid; e < 1024u; e += ${WG}u) {
    Tt[abase + e] = sm[${MT}u + e];
  }
  ${STORE_T_ROW_MAJOR}
}`;
}
