/**
 * intraGram.wgsl.ts's kernel (pass 1a of the two-pass chunked KDA forward: A_qk and T per chunk and head) with the
 * products between different 16-row blocks on the f16 tensor cores (f16mma.ts; kdaForwardTuning.tc16Gram, bench
 * kda --fwd-tc16-gram on). For the bf16 inputs only (tc16Applies): q and k are read as bf16 words, gc, beta, A_qk
 * and T are f32 in the layouts intraGram writes (A_qk row-major 64 x 64 times scale, zero above the diagonal and
 * past the end; T transposed for pass 1b; T row-major for the backward where p.storeT asks), so every later pass
 * is unchanged.
 *
 * FLA's secondary chunking (intraGramSecondary.wgsl.ts tried it in f32): the chunk's 64 rows as four 16-row blocks.
 * For rows i in block I (first row N = 16 I) and j in an earlier block J < I, j < N <= i, so
 *    exp(gc_i - gc_j) = exp(gc_i - gc_N) exp(gc_N - gc_j),     both factors in [0, 1]
 * (gc is a running sum of log-gates <= 0, non-increasing along the chunk): never the exp of a positive argument.
 * So the 6 block pairs (I, J) of A_kk and of A_qk are plain products of staged operands,
 *    A_kk[I, J] = KS_I KN_{I,J}^T,  A_qk[I, J] = QS_I KN_{I,J}^T,
 *    QS_i = q_i exp(gc_i - gc_N(i)),  KS_i = k_i exp(gc_i - gc_N(i)),  KN_{I,j} = k_j exp(gc_16I - gc_j)  (j < 16 I),
 * one 16 x 16 x 16 tensor-core product a K tile each (16 channels a tile). The 4 diagonal 16 x 16 blocks stay f32 on
 * the CUDA cores in intraGram's per-element form (its 4-row factoring and diagChain diagonal), as does step B.
 *
 * Range (f16: max 65504, normal min 6.1e-5): the decay factors are in [0, 1], but q and k are not bounded in the
 * core op. So every row of q and of k gets a power-of-two scale (exact) before the K loop: 2^-e with
 * 2^(e + 7) <= max_c |x_c| < 2^(e + 8), so the scaled row's largest element lies in [128, 256): no f16 overflow, and
 * elements down to 2^-14 of 128 (2^-21 of the row's largest) are still f16 normals. A product block is unscaled
 * elementwise once it is read back from workgroup memory (times 2^e_i 2^e_j, two multiplies: each exact, and the
 * true value's range). A row's maximum costs one extra read of the chunk's q and k (its 8 K tiles; L1/L2-hot for the
 * loop's loads). Products accumulate in f32 (the tensor cores' f16 x f16 -> f32), so the cross-block entries differ
 * from intraGram's by the operands' f16 rounding (2^-11 relative a factor, more where a decayed operand is an f16
 * subnormal, i.e. its true contribution is below 2^-21 of the row's scale): intraGramTc16Reference.ts.
 *
 * Roles (256 threads, 8 subgroups of 32; the H200's subgroup size, which the plan requires):
 *  - subgroups 2 .. 7: block pair P = sg - 2 of (1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2): its A_kk and A_qk
 *    blocks (two result matrices, one right operand KN_{I,J} shared);
 *  - the f32 units: A_kk's 24 4x4 tiles inside a 16-row block below the diagonal 4x4 blocks (6 a block), A_qk's 24,
 *    the 16 diagonal 4x4 blocks of both (intraGram's code for those roles). With `split` (the default where
 *    tc16Gram runs) four threads a unit, each one channel group of a K tile, summed by subgroup shuffles after the
 *    loop (units 0 .. 23, 24 .. 47, 48 .. 63 on threads 4 u .. 4 u + 3); else one thread a unit (threads 0 .. 63, or
 *    the diagonal blocks on lanes 0 .. 15 of subgroup 2 with diagWithMma);
 *  - every thread stages one (row, 4-channel group) slot of each K tile, f32 (gc, qs4, ks4, kn4: intraGram's 4-row
 *    factoring for the in-block tiles) and f16 (QS and KS for rows 16 .. 63, the only left operands, and
 *    KN_{I, row} for every I with 16 I > row: tc16Staging).
 * After the K loop the result matrices go through workgroup memory (st32; a result is opaque) and threads 0 .. 191
 * each read back and unscale one 4x4 tile of them into intraGram's epilogue (A_qk to global memory, Diag(beta) A_kk
 * transposed into step B's matrix).
 *
 * Workgroup memory: 16 KiB f32 staging (then T, step B's scratch in T's zero upper part: intraGram's lean layout),
 * 6.25 KiB f16 staging (192 rows) and row exponents, 12 KiB result blocks: 34.25 KiB (intraGram: 24); compact:
 * 22.25; halves 28.25; pad 37.25 (pad + halves 31.25).
 *
 * H200 (B=1, H=16, d=128, T=32768, bf16 inputs; bench/results/2026-12-02-h200-ktcgram-s{1,2,3}-*): CORRECT BUT
 * SLOWER than intraGram.wgsl.ts, whose kda_chunk_intra took 1.066-1.069 ms in the same sittings (forward 5.193-5.200):
 *    split (the default form)  1.235 / 1.237 / 1.240 / 1.240 ms   forward 5.369 / 5.371 / 5.381 / 5.370
 *    split, knT                1.248 / 1.247                      forward 5.383 / 5.376
 *    one thread a unit         1.892 / 1.885 / 1.883 (knT 1.884)  forward 6.021 / 6.016 / 6.016
 *    diagWithMma               1.669 / 1.671 / 1.657              forward 5.805 / 5.800 / 5.792
 *    compact                   2.359 / 2.364 (diagWithMma 2.021 / 2.011): the vec4 accesses as scalar ones cost more
 *                              than 12 KiB of workgroup memory saves
 * Where the time goes (one thread a unit, 1.883 ms, each part left out with `skip`, wrong results): the f32 in-block
 * products 0.79 (without them 1.089: the 64 threads that run them are the barrier's critical path, which `split`
 * spreads over all threads), the tensor-core part 0.24 (1.643 without: loads from workgroup memory and two dependent
 * products a K tile between barriers), the f16 staging 0.21 (1.676: one more exp a row, up to three for KN, 8 to
 * 20 scalar f16 stores a thread), the row scales' extra loads 0.08 (1.805). So the parts the tensor cores add cost
 * about what the f32 products they replace saved; in split the kernel stays ~0.17 ms behind intraGram.
 * --check at T=2048 (every variant the same): o against the f32 forward 2.900e-3 (off: 2.830e-3, o's own bf16
 * rounding), final state 2.51e-5 (off: 0); against the recurrent kernel o 2.901e-3, state 2.51e-5 (off 5.3e-7).
 *
 * Twelfth session (H200, same shape; bench/results/2026-12-02-h200-s12-gram-s{1,2}-*: --fwd-sweep rounds, then the
 * fastest form and the f32 kernel each in its own process twice). STILL SLOWER: the default form where tc16Gram runs
 * (split + diagPrefetch + shuffleScale) 1.161 / 1.161 ms against intraGram's 1.065 / 1.066 (forward 5.169 / 5.170
 * against 5.076 / 5.076). Sweep (kda_chunk_intra, two rounds each):
 *    split (the 192-row staging)   1.238 / 1.235      + pad 1.226 / 1.226   + halves 1.269 / 1.267
 *    split + diagPrefetch (dp)     1.196 / 1.194 (s1), 1.188 / 1.184 (s2)   dp + halves 1.223, + pad + halves 1.220
 *    dp + shuffleScale (sgs)       1.160 / 1.154      + pad + mmaOverlap 1.182 / 1.177
 *    dp + rot 1.241 / 1.236, dp + sgs + rot 1.223 / 1.220, dp + mmaOverlap 1.196 / 1.190, all four 1.219 / 1.215.
 * Readings: padding, which won the output pass (its rows 128 bytes apart: 8-way conflicts), gains 0.01 here (rows
 * 32 bytes apart: 2-way at most). halves (6 KiB less) is slower: workgroup memory does not bound this kernel's
 * occupancy at 34 KiB. The rotated stores are slower by 0.05: presumably the driver merges a lane's four in-order
 * scalar f16 stores into one wider store, which the rotation prevents. Probes of dp + sgs + rot + mmaOverlap
 * (1.215-1.219): without the row scales 1.145-1.150, without the f16 staging 1.078-1.079, without the products
 * 1.098-1.100, without the f32 units 1.103-1.105: even with the f16 staging free the kernel would only tie intraGram,
 * so this layout (the tensor cores taking 192 of the 240 off-diagonal 4x4 tiles of both matrices) cannot win by
 * tuning alone. --check at T=2048, every form: o against this kernel off 5.65e-3 (a bf16 ulp of o where the two
 * round differently), against the f32 forward 2.97e-3 (as with intraGram: 2.97e-3, bench/results/
 * 2026-12-02-h200-ktcout-s4-summary.txt: o's own bf16 rounding), final state 2.51e-5.
 */
import { C32, F16_MMA_HEAD, L16, ld16, R16, st32 } from '../f16mma.js';
import { WGSL_BF16 } from './bf16.wgsl.js';
import { DIAG_CHAIN_PAIRS, STORE_T_ROW_MAJOR_LEAN } from './intraGram.wgsl.js';
import {
  akkDiagonalToShared,
  akkTileToShared,
  aqkDiagonalStore,
  aqkTileStore,
  INVERSE_DIAGONAL_BLOCKS,
  inverseLevelWith,
} from './intraVec.wgsl.js';
import { bindings, chunkSlotPrologue, computeMain, LOCATE, readWriteBindings } from './wgslParts.js';

const WG = 256;
/** Channels a K tile: one tensor-core K step, 4 vec4 a row (intraGram's BK). */
const BK = 16;
/** f32 staging (vec4 units, intraGram's swizzled [row][4] layout): gc, qs4, ks4, kn4; T after the loop. */
const ARR = 64 * (BK / 4);
const [AG, AQS, AKS, AKN] = [0, 1, 2, 3].map((m) => m * ARR);
const SM_VEC4 = 4 * ARR;
/** Result blocks (f32, 16 x 16 row-major): all 12 at once (pair P's A_kk at 512 P, its A_qk at 512 P + 256), or
 * with `halves` the 6 A_kk blocks, then the 6 A_qk blocks, at 256 P. */
const resultFloats = (v: Pick<IntraGramTc16Variant, 'halves'>) => (v.halves ? 6 : 12) * 256;
const R4 = [0, 1, 2, 3];
const X = 'xyzw';

export interface IntraGramTc16Variant {
  K: number;
  V: number;
  GK: number;
  /** Every input binding read_write (IntraGramVariant.rw). */
  rw?: boolean;
  /**
   * The f32 staging, T and the result blocks in one array<f32> (the f32 kernel's vec4 accesses rewritten as four
   * scalar ones, vec4View): 23.25 KiB of workgroup memory instead of 35.25, as intraGram's 24 (past 24 KiB its
   * variants ran ~1.4x slower on the H200). The same values.
   */
  compact?: boolean;
  /**
   * The 16 diagonal-block threads on lanes 0 .. 15 of subgroup 2 (after its block pair's products, which are short)
   * instead of threads 48 .. 63: subgroup 1 then runs 16 in-block tiles only, not those and the diagonal blocks in
   * turn (the branch every K tile's barrier waits for). The same values.
   */
  diagWithMma?: boolean;
  /**
   * The in-block tiles and diagonal blocks split over all 256 threads, four a unit (tile or diagonal block), each
   * one of a K tile's four channel groups; the parts added after the K loop by subgroup shuffles (needs subgroups).
   * Units 0 .. 23 A_kk's in-block tiles, 24 .. 47 A_qk's, 48 .. 63 the diagonal blocks (threads 4 u .. 4 u + 3):
   * a quarter of the f32 work a thread each K tile, beside the products subgroups' short tensor-core part. Not with
   * diagWithMma. Sums in another order (parts, then (p0 + p1) + (p2 + p3)): equal to a few ulps.
   */
  split?: boolean;
  /**
   * Profiling only (bench kda --fwd-tc16-gram-skip; wrong results): leave out the row scales' extra loads
   * ('scale'), the f16 staging ('f16'), the tensor-core products ('mma') or the f32 in-block products ('f32'),
   * barriers kept, so that part's time is the difference.
   */
  skip?: 'scale' | 'f16' | 'mma' | 'f32';
  /**
   * KN_I stored transposed (channel-major: 16 rows of 16 I columns at knTBase(I)), so that KN_{I,J} is a row-major
   * right operand (stride 16 I) instead of a column-major one (stride 16). The staging's scalar f16 stores go to
   * other addresses; the same values.
   */
  knT?: boolean;
  /**
   * Padded f16 staging rows: 24 elements (48 bytes, an odd multiple of 16) apart instead of 16 (32 bytes), so that
   * the 8 rows of 16 bytes a fragment load reads at a time fall on 8 different 4-bank groups (at 32 bytes rows 0 and
   * 4 share banks: two-way conflicts). outputTc16's `pad` for this kernel's 16-channel rows. Not with knT or
   * compact. The same values.
   */
  pad?: boolean;
  /**
   * The result blocks through workgroup memory in two rounds (the 6 A_kk blocks, read back by threads 0 .. 95,
   * then the 6 A_qk blocks, by threads 96 .. 191): 6 KiB of result array instead of 12, two barriers more once a
   * workgroup. For occupancy: intraGram ran ~1.4x slower past 24 KiB (one workgroup an SM fewer); 35.25 KiB
   * leaves room for two workgroups where 24 leaves four, about 29 for three. Not with compact. The same values.
   */
  halves?: boolean;
  /**
   * The diagonal-block threads' rows of q and k for K tile kt + 1 loaded at the end of tile kt (after their
   * products, so one set of 8 registers) instead of after tile kt + 1's first barrier, where their latency lies on
   * the path every K tile's second barrier waits for. With split only. The same values.
   */
  diagPrefetch?: boolean;
  /**
   * The row scales' maxima combined by subgroup shuffles among a row's four lanes (the four slots of a row are
   * lanes 4 si .. 4 si + 3 of one subgroup) instead of through workgroup memory: the prologue's two barriers go,
   * and K tile 0's loads are issued before the scale loads. With split only (subgroups). The same values.
   */
  shuffleScale?: boolean;
  /**
   * The f16 staging's scalar stores in a rotated order: at store u the lane of row si, channel group sc4 writes
   * element (u + sc4 + 2 ((si / 4) % 2)) % 4 of its four, so that the 32 lanes of a store hit 32 different banks
   * (in order, a store's lanes write channels 4 apart, 8 bytes: two lanes a bank at best). Rows 16 elements apart
   * (not with pad). Likewise the result blocks' read-back: a tile's column (b + rg) % 4 at step b, rg its row group
   * (in order, the lanes of a load in 4 row groups and 2 pairs share banks 8 ways; so 2). The same values.
   */
  rot?: boolean;
  /**
   * A K tile's fragments loaded before the f32 units' work and multiplied after it (their load latency under that
   * work, three fragments held across it) instead of loaded and multiplied at once. The same sums.
   */
  mmaOverlap?: boolean;
}

export const intraGramTc16Key = (v: IntraGramTc16Variant) =>
  `kda_chunk_intra_gram_tc16_k${v.K}_v${v.V}_gk${v.GK}${v.compact ? '_compact' : ''}${v.diagWithMma ? '_dm' : ''}${v.split ? '_split' : ''}${v.skip ? `_skip_${v.skip}` : ''}${v.knT ? '_knt' : ''}${v.pad ? '_pad' : ''}${v.halves ? '_halves' : ''}${v.diagPrefetch ? '_dp' : ''}${v.shuffleScale ? '_sgs' : ''}${v.rot ? '_rot' : ''}${v.mmaOverlap ? '_mo' : ''}${v.rw ? '_rw' : ''}`;

export function intraGramTc16Fits(v: IntraGramTc16Variant): boolean {
  return (
    v.K % BK === 0 &&
    v.V % 4 === 0 &&
    (v.GK === 1 || v.GK === v.K) &&
    !(v.split && v.diagWithMma) &&
    !(v.pad && (v.knT || v.compact)) &&
    !(v.halves && v.compact) &&
    !((v.diagPrefetch || v.shuffleScale) && !v.split) &&
    !(v.rot && v.pad)
  );
}

/** The kernel's workgroup memory in bytes. */
export const intraGramTc16SharedBytes = (v: Pick<IntraGramTc16Variant, 'compact' | 'pad' | 'halves'>) =>
  SM_VEC4 * 16 + tc16Staging(v).size * 2 + (v.compact ? 0 : resultFloats(v) * 4);

/**
 * WGSL: `code` with every access to the vec4 array `sm` rewritten for an array<f32> `smf` of 4 times its length
 * (reads smLd(i), stores smSt(i, v); the compact variant, whose result blocks need an f32 array there).
 */
export function vec4View(code: string): string {
  let out = '';
  let at = 0;
  const re = /\bsm\[/g;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    let depth = 1;
    let e = m.index + 3;
    for (; depth > 0; e++) depth += code[e] === '[' ? 1 : code[e] === ']' ? -1 : 0;
    const index = code.slice(m.index + 3, e - 1);
    const assign = /^\s*=(?!=)\s*/.exec(code.slice(e));
    out += code.slice(at, m.index);
    if (assign) {
      const v0 = e + assign[0].length;
      const end = code.indexOf(';', v0);
      out += `smSt(${vec4View(index)}, ${vec4View(code.slice(v0, end))})`;
      at = end;
    } else {
      out += `smLd(${vec4View(index)})`;
      at = e;
    }
    re.lastIndex = at;
  }
  return out + code.slice(at);
}
const VEC4_VIEW_FNS = `fn smLd(i: u32) -> vec4<f32> { return vec4<f32>(smf[4u * i], smf[4u * i + 1u], smf[4u * i + 2u], smf[4u * i + 3u]); }
fn smSt(i: u32, v: vec4<f32>) {
  smf[4u * i] = v.x;
  smf[4u * i + 1u] = v.y;
  smf[4u * i + 2u] = v.z;
  smf[4u * i + 3u] = v.w;
}`;

/** Block pair P (0 .. 5) of (I, J), J < I, row-major: (1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2). */
export const TC16_PAIRS: readonly (readonly [number, number])[] = [
  [1, 0],
  [2, 0],
  [2, 1],
  [3, 0],
  [3, 1],
  [3, 2],
];
/** WGSL: I and J of pair `pr` (the order of TC16_PAIRS). */
const pairIJ = (pr: string) => `let I16 = 1u + select(0u, 1u, ${pr} >= 1u) + select(0u, 1u, ${pr} >= 3u);
    let J16 = ${pr} - I16 * (I16 - 1u) / 2u;`;
/**
 * The f16 staging (f16 elements, rows of BK = 16 channels SR apart: 16, or 24 with pad) for variant v. Only the rows
 * a product reads: QS and KS of rows 16 .. 63 (block 0 is never a left operand) at staging rows 0 .. 47 and
 * 48 .. 95, KN_I (rows 0 .. 16 I - 1 of k decayed to row 16 I) from staging row knRow0(I) = 96 + 8 I (I - 1):
 * 192 rows; with knT, KN_I^T (16 channel rows of 16 I columns) from knTBase(I) instead. Then the row exponents e
 * (f16: integers, |e| <= 126, exact), q's rows at SE, k's at SE + 64. Every row start a multiple of 8 elements
 * (16 bytes: subgroup-matrix loads from workgroup memory must be 16-byte aligned).
 */
export function tc16Staging(v: Pick<IntraGramTc16Variant, 'pad' | 'knT'>) {
  const SR = v.pad ? 24 : BK;
  const knRow0 = (I: number) => 96 + 8 * I * (I - 1);
  const knTBase = (I: number) => 96 * BK + 128 * I * (I - 1);
  const SE = 192 * SR;
  return {
    SR,
    knRow0,
    knTBase,
    /** QS row r >= 16, KS row r >= 16, channel c of the K tile; KN_I row r < 16 I. */
    qs: (r: number, c: number) => (r - 16) * SR + c,
    ks: (r: number, c: number) => (r + 32) * SR + c,
    kn: (I: number, r: number, c: number) => (v.knT ? knTBase(I) + c * 16 * I + r : (knRow0(I) + r) * SR + c),
    SE,
    size: SE + 128,
  };
}

/**
 * With rot: the channel (of 16) that the lane of staging row si and channel group sc4 writes at its f16 store u
 * (0 .. 3): 4 sc4 + (u + rs) % 4, rs = (sc4 + 2 ((si / 4) % 2)) % 4, as the kernel's ro0 .. ro3.
 */
export const tc16RotChannel = (si: number, sc4: number, u: number): number =>
  4 * sc4 + ((u + ((sc4 + 2 * ((si >> 2) & 1)) & 3)) & 3);

/**
 * The fragments of block pair P (run by subgroup P + 2), in f16 / f32 elements: its right operand KN_{I,J}
 * (column-major, stride SR: column j = row 16 J + j of KN_I), its left operands KS_I and QS_I (row-major, stride
 * SR), and where its A_kk and A_qk results go in the result array (row-major, stride 16; with halves both at 256 P,
 * in their two rounds). The kernel and the layout's emulation (intraGramTc16Reference.ts) both read these.
 */
export function tc16Fragments(P: number, v: Pick<IntraGramTc16Variant, 'pad' | 'knT' | 'halves'> = {}) {
  const [I, J] = TC16_PAIRS[P];
  const st = tc16Staging(v);
  return {
    I,
    J,
    right: st.kn(I, 16 * J, 0),
    /** The right operand's stride and layout (knT: row-major, stride 16 I). */
    rightStride: v.knT ? 16 * I : st.SR,
    rightColMajor: !v.knT,
    leftK: st.ks(16 * I, 0),
    leftQ: st.qs(16 * I, 0),
    leftStride: st.SR,
    outK: v.halves ? 256 * P : 512 * P,
    outQ: v.halves ? 256 * P : 512 * P + 256,
  };
}

export function intraGramTc16Wgsl(v: IntraGramTc16Variant): string {
  if (v.rw) return readWriteBindings(intraGramTc16Wgsl({ ...v, rw: undefined }));
  if (v.compact) return vec4View(intraGramTc16Wgsl({ ...v, compact: undefined, viewed: true } as IntraGramTc16Variant));
  // After vec4View: the f32 array smf for sm and the result blocks (`viewed`, internal).
  const viewed = (v as { viewed?: boolean }).viewed === true;
  const RES = viewed ? 'smf' : 'smr';
  const { K, GK } = v;
  if (!intraGramTc16Fits(v)) throw new Error(`kda intra gram tc16: K=${K} (multiple of 16), V=${v.V}, GK=${GK}`);
  const K4 = K / 4;
  const NKT = K / BK;
  const at = (arr: number, r: string, ci: string) => `sm[${arr}u + (${r}) * 4u + ${ci}]`;
  const stg = tc16Staging(v);
  const { SR, SE } = stg;
  // A diagonal thread's row 4 I4 + a of q or k (tile kt, column group c4): from global memory, widened (zero past
  // the end), as intraGram's lean layout reads them (with diagPrefetch: the words loaded at the end of the previous
  // tile, dq / dk); its gc from the staged tile.
  const diagRow = (x: 'q' | 'k', a: number, t: string, c: string) =>
    `${x}[((t0 + min(4u * I4 + ${a}u, L - 1u)) * H + h) * ${K4}u + ${t} * 4u + ${c}]`;
  const diagQK = (x: 'q' | 'k', a: number) =>
    `select(vec4<f32>(0.0), bf4(${v.diagPrefetch ? `d${x}${a}` : diagRow(x, a, 'kt', 'c4')}), 4u * I4 + ${a}u < L)`;
  const diagLoad = (t: string) =>
    `if (diag) {
      ${R4.flatMap((a) => (['q', 'k'] as const).map((x) => `d${x}${a} = ${diagRow(x, a, t, 'part')};`)).join('\n      ')}
    }`;
  // gc rows 16, 32, 48 (clamped to L - 1): the 16-row blocks' first rows, the references of QS, KS and KN.
  const GB = [1, 2, 3];
  const gbRow = (b: number) => `(t0 + min(${16 * b}u, L - 1u)) * H + h`;
  const stageLoad = (t: string) => `{
    let cc = ${t === '0u' ? 'sc4' : `${t} * 4u + sc4`};
    qw = q[srow * ${K4}u + cc];
    kw = k[srow * ${K4}u + cc];
    gv = gc4(srow, cc);
    gn = gc4(nrow, cc);
    gm = gc4(mrow, cc);
    ${GB.map((b) => `gb${b} = gc4(${gbRow(b)}, cc);`).join('\n    ')}
  }`;
  // f16 row `r` (channels 4 sc4 .. 4 sc4 + 3) of the f16 staging array at `base`.
  // With rot: element (u + rs) % 4 at store u (rot4, ro0 .. ro3: see the variant and tc16RotChannel).
  const st16 = (base: string, x: string) =>
    v.rot
      ? `{
      let hx = vec4<f16>(rot4(${x}, rs));
      ${R4.map((u) => `sh[${base} + ro${u}] = hx.${X[u]};`).join('\n      ')}
    }`
      : `{
      let hx = vec4<f16>(${x});
      ${R4.map((u) => `sh[${base} + sc4 * 4u + ${u}u] = hx.${X[u]};`).join('\n      ')}
    }`;
  const stageTile = `qv = select(vec4<f32>(0.0), bf4(qw), si < L);
    kv = select(vec4<f32>(0.0), bf4(kw), si < L);
    {
      // f32, intraGram's 4-row factoring (the in-block tiles) and gc (the diagonal blocks).
      let f = exp(gv - gn);
      sm[${AG}u + sp] = gv;
      sm[${AQS}u + sp] = qv * f;
      sm[${AKS}u + sp] = kv * f;
      sm[${AKN}u + sp] = kv * exp(gm - gv);
      // f16, the 16-row factoring (the tensor-core blocks), on the row-scaled q and k (tc16Staging: QS and KS of
      // rows 16 .. 63 only; KN_I of rows below 16 I).
      ${v.skip === 'f16' ? 'if (false) {' : ''}
      let qx = qv * qScale;
      let kx = kv * kScale;
      if (si >= 16u) {
        let b16 = si / 16u;
        let fN = exp(gv - select(gb1, select(gb2, gb3, b16 == 3u), b16 >= 2u));
        ${st16(`(si - 16u) * ${SR}u`, 'qx * fN')}
        ${st16(`(si + 32u) * ${SR}u`, 'kx * fN')}
      }
      ${GB.map((I) =>
        v.knT
          ? `if (si < ${16 * I}u) {
        let hx = vec4<f16>(kx * exp(gb${I} - gv));
        ${R4.map((u) => `sh[${stg.knTBase(I)}u + (sc4 * 4u + ${u}u) * ${16 * I}u + si] = hx.${X[u]};`).join('\n        ')}
      }`
          : `if (si < ${16 * I}u) ${st16(`${stg.knRow0(I) * SR}u + si * ${SR}u`, `kx * exp(gb${I} - gv)`)}`,
      ).join('\n      ')}
      ${v.skip === 'f16' ? '}' : ''}
    }`;
  // split: unit u of four threads (part = the channel group), else one thread a unit.
  const U = v.split ? 'un' : 'lid';
  return /* wgsl */ `${F16_MMA_HEAD}${v.split ? 'enable subgroups;\n' : ''}
${bindings(
  'H: u32, N: u32, scale: f32, storeT: u32',
  ['cu: i32', 'q: vec2<u32>', 'k: vec2<u32>', GK === 1 ? 'gcB' : 'gcB: vec4<f32>', 'beta'],
  ['Aqk: vec4<f32>', 'Tt: vec4<f32>', 'Tb: vec4<f32>'],
)}
${LOCATE}
${WGSL_BF16}
${
  v.rot
    ? `/** x rotated by r: element u is x[(u + r) % 4]. */
fn rot4(x: vec4<f32>, r: u32) -> vec4<f32> {
  let a = select(x, x.yzwx, (r & 1u) != 0u);
  return select(a, a.zwxy, (r & 2u) != 0u);
}
`
    : ''
}fn gc4(row: u32, c4: u32) -> vec4<f32> { return ${GK === 1 ? 'vec4<f32>(gcB[row])' : `gcB[row * ${K4}u + c4]`}; }
${
  viewed
    ? `var<workgroup> smf: array<f32, ${4 * SM_VEC4}>;\n${VEC4_VIEW_FNS}`
    : `var<workgroup> sm: array<vec4<f32>, ${SM_VEC4}>;\nvar<workgroup> smr: array<f32, ${resultFloats(v)}>;`
}
var<workgroup> sh: array<f16, ${stg.size}>;

${computeMain(WG)}
  ${chunkSlotPrologue(['slot', 'h'])}
  // Roles (see the header): the in-block tiles and diagonal blocks on subgroups 0, 1; block pair sg - 2 on the rest.
  let sg = lid / 32u;
  let mma = lid >= 64u;
  // The in-block tiles' threads (lid < 48: A_kk's, then A_qk's) and the diagonal blocks' (see diagWithMma).
  ${v.split ? 'let un = lid / 4u;\n  let part = lid % 4u;' : ''}
  let tile = ${U} < 48u;
  let diag = ${v.diagWithMma ? 'lid >= 64u && lid < 80u' : `${U} >= 48u && ${U} < 64u`};
  let isQ = ${U} >= 24u && tile;
  var I4 = select(0u, ${U} - ${v.diagWithMma ? 64 : 48}u, diag);
  var J4 = I4;
  if (tile) {
    let tw = select(${U}, ${U} - 24u, isQ);
    let pw = tw % 6u;
    let ia = 1u + select(0u, 1u, pw >= 1u) + select(0u, 1u, pw >= 3u);
    I4 = 4u * (tw / 6u) + ia;
    J4 = 4u * (tw / 6u) + pw - ia * (ia - 1u) / 2u;
  }
  let rowsArr = select(${AKS}u, ${AQS}u, isQ);
  ${R4.map((a) => `var acc${a} = vec4<f32>(0.0);\n  var aqk${a} = vec4<f32>(0.0);`).join('\n  ')}
  var ckk = ${C32}();
  var cqk = ${C32}();${v.mmaOverlap ? `\n  var rk = ${R16}();\n  var lk = ${L16}();\n  var lq = ${L16}();` : ''}
  // Staging role: row si, channels 4 sc4 .. 4 sc4 + 3 of the tile (intraGram's swizzled slot sp).
  let si = lid / 4u;
  let sc4 = lid % 4u;
  let sp = si * 4u + (sc4 ^ ((si >> 2u) & 3u));
  let srow = (t0 + min(si, L - 1u)) * H + h;
  let nrow = (t0 + min(si & 0xfffffffcu, L - 1u)) * H + h;
  let mrow = (t0 + min(si | 3u, L - 1u)) * H + h;${
    v.rot
      ? `
  // rot: this lane's rotation and the four channels its stores u = 0 .. 3 write.
  let rs = (sc4 + 2u * ((si >> 2u) & 1u)) & 3u;
  ${R4.map((u) => `let ro${u} = sc4 * 4u + ((${u}u + rs) & 3u);`).join('\n  ')}`
      : ''
  }
  let beta4 = vec4<f32>(${R4.map((a) => `select(0.0, beta[(t0 + min(4u * I4 + ${a}u, L - 1u)) * H + h], 4u * I4 + ${a}u < L)`).join(',\n    ')});
  // The staging registers (K tile kt's loads, widened at its staging).
  var qv: vec4<f32>;
  var kv: vec4<f32>;
  var gv: vec4<f32>;
  var gn: vec4<f32>;
  var gm: vec4<f32>;
  ${GB.map((b) => `var gb${b}: vec4<f32>;`).join('\n  ')}
  var qw: vec2<u32>;
  var kw: vec2<u32>;
  ${v.shuffleScale ? `${stageLoad('0u')}\n  ` : ''}// The row scales (see the header): each slot's largest |q| and |k| over all K tiles, the row's over its 4 slots.
  var mq = 0.0;
  var mk = 0.0;
  if (si < L${v.skip === 'scale' ? ' && false' : ''}) {
    for (var t = 0u; t < ${NKT}u; t++) {
      let a = abs(bf4(q[srow * ${K4}u + t * 4u + sc4]));
      let b = abs(bf4(k[srow * ${K4}u + t * 4u + sc4]));
      mq = max(mq, max(max(a.x, a.y), max(a.z, a.w)));
      mk = max(mk, max(max(b.x, b.y), max(b.z, b.w)));
    }
  }
  // m = f 2^x, f in [0.5, 1): e = x - 8 puts the scaled maximum in [128, 256); 0 gives e = -8 (any scale works).
${
  v.shuffleScale
    ? `  // The row's four lanes (4 si .. 4 si + 3 of this subgroup) exchange their maxima; lane sc4 = 0 keeps the
  // exponents for the epilogue (read after the K loop's barriers).
  mq = max(mq, subgroupShuffleXor(mq, 1u));
  mq = max(mq, subgroupShuffleXor(mq, 2u));
  mk = max(mk, subgroupShuffleXor(mk, 1u));
  mk = max(mk, subgroupShuffleXor(mk, 2u));
  let eq = clamp(frexp(mq).exp - 8, -126, 126);
  let ek = clamp(frexp(mk).exp - 8, -126, 126);
  if (sc4 == 0u) {
    sh[${SE}u + si] = f16(eq);
    sh[${SE + 64}u + si] = f16(ek);
  }
  let qScale = ldexp(1.0, -eq);
  let kScale = ldexp(1.0, -ek);`
    : `  ${RES}[lid] = mq;
  ${RES}[${WG}u + lid] = mk;
  workgroupBarrier();
  if (lid < 128u) {
    let b = select(0u, ${WG}u, lid >= 64u) + (lid % 64u) * 4u;
    let m = max(max(${RES}[b], ${RES}[b + 1u]), max(${RES}[b + 2u], ${RES}[b + 3u]));
    let e = clamp(frexp(m).exp - 8, -126, 126);
    sh[${SE}u + lid] = f16(e);
  }
  workgroupBarrier();
  let qScale = ldexp(1.0, -i32(sh[${SE}u + si]));
  let kScale = ldexp(1.0, -i32(sh[${SE + 64}u + si]));`
}
${v.shuffleScale ? '' : `  ${stageLoad('0u')}`}${
  v.diagPrefetch
    ? `
  ${R4.map((a) => `var dq${a}: vec2<u32>;\n  var dk${a}: vec2<u32>;`).join('\n  ')}
  ${diagLoad('0u')}`
    : ''
}
  for (var kt = 0u; kt < ${NKT}u; kt++) {
    ${stageTile}
    workgroupBarrier();
    if (kt + 1u < ${NKT}u) {
      ${stageLoad('(kt + 1u)')}
    }
    if (mma${v.skip === 'mma' ? ' && false' : ''}) {
      // Block pair sg - 2 (tc16Fragments): KN_{I,J} (rows 16 J .. 16 J + 15 of KN_I) column-major as the right
      // operand (channels x rows j), KS_I and QS_I (rows 16 I ..) row-major as the left ones.${v.mmaOverlap ? ' Loaded here, multiplied after the f32 units (mmaOverlap).' : ''}
      switch sg {
        ${[0, 1, 2, 3, 4, 5]
          .map((P) => {
            const f = tc16Fragments(P, v);
            const right = ld16('right', '&sh', `${f.right}u`, `${f.rightStride}u`, f.rightColMajor);
            const lk = ld16('left', '&sh', `${f.leftK}u`, `${f.leftStride}u`);
            const lq = ld16('left', '&sh', `${f.leftQ}u`, `${f.leftStride}u`);
            return v.mmaOverlap
              ? `case ${P + 2}u: {
          rk = ${right};
          lk = ${lk};
          lq = ${lq};
        }`
              : `case ${P + 2}u: {
          let rk = ${right};
          ckk = subgroupMatrixMultiplyAccumulate(${lk}, rk, ckk);
          cqk = subgroupMatrixMultiplyAccumulate(${lq}, rk, cqk);
        }`;
          })
          .join('\n        ')}
        default: {}
      }
    }
    if (tile${v.skip === 'f32' ? ' && false' : ''}) {
      // intraGram's off-diagonal tile (rows of one 16-row block): one exp a channel for the middle factor.
      for (var c4 = ${v.split ? 'part' : '0u'}; c4 < ${v.split ? 'part + 1u' : '4u'}; c4++) {
        let ci = c4 ^ (I4 & 3u);
        let cj = c4 ^ (J4 & 3u);
        ${R4.map((a) => `let x${a} = sm[rowsArr + (4u * I4 + ${a}u) * 4u + ci];`).join('\n        ')}
        let e = exp(${at(AG, '4u * I4', 'ci')} - ${at(AG, '4u * J4 + 3u', 'cj')});
        ${R4.map((b) => `let kn${b} = ${at(AKN, `4u * J4 + ${b}u`, 'cj')} * e;`).join('\n        ')}
        ${R4.flatMap((a) => R4.map((b) => `acc${a}.${X[b]} += dot(x${a}, kn${b});`)).join('\n        ')}
      }
    } else if (diag${v.skip === 'f32' ? ' && false' : ''}) {
      // intraGram's diagonal block (diagChain), q and k read from global memory.
      for (var c4 = ${v.split ? 'part' : '0u'}; c4 < ${v.split ? 'part + 1u' : '4u'}; c4++) {
        let ci = c4 ^ (I4 & 3u);
        ${R4.map((a) => `let q${a} = ${diagQK('q', a)};\n        let k${a} = ${diagQK('k', a)};\n        let g${a} = ${at(AG, `4u * I4 + ${a}u`, 'ci')};`).join('\n        ')}
        {
          ${DIAG_CHAIN_PAIRS}
        }
        ${R4.map((a) => `aqk${a}.${X[a]} += dot(q${a}, k${a});`).join('\n        ')}
      }
    }${
      v.mmaOverlap
        ? `
    if (mma${v.skip === 'mma' ? ' && false' : ''}) {
      ckk = subgroupMatrixMultiplyAccumulate(lk, rk, ckk);
      cqk = subgroupMatrixMultiplyAccumulate(lq, rk, cqk);
    }`
        : ''
    }${
      v.diagPrefetch
        ? `
    if (kt + 1u < ${NKT}u) {
      ${diagLoad('(kt + 1u)')}
    }`
        : ''
    }
    workgroupBarrier();
  }
  let abase = (slot * H + h) * 1024u;
  // The tensor-core blocks to workgroup memory (the staging is dead after the loop's last barrier), then the 4x4
  // tile t = lid % 96 of pair t / 16 (row group (t % 16) / 4, column group t % 4 inside the block; A_qk's for
  // lid >= 96) of each thread lid < 192 read back and unscaled, before anything writes T's matrix (in the compact
  // variant the blocks lie where it goes). With halves in two rounds: A_kk's blocks for threads 0 .. 95, then
  // A_qk's for 96 .. 191, each at 256 P (tc16Fragments' outK, outQ).
  let tq = lid >= 96u;
  let ct = lid % 96u;
  ${R4.map((a) => `var cx${a} = vec4<f32>(0.0);`).join('\n  ')}
  ${(v.halves
    ? [
        [`${st32('&smr', '(sg - 2u) * 256u', 'ckk', '16u')};`, 'lid < 96u', 'pr * 256u'],
        [`${st32('&smr', '(sg - 2u) * 256u', 'cqk', '16u')};`, 'tq && lid < 192u', 'pr * 256u'],
      ]
    : [
        [
          `${st32(`&${RES}`, '(sg - 2u) * 512u', 'ckk', '16u')};
    ${st32(`&${RES}`, '(sg - 2u) * 512u + 256u', 'cqk', '16u')};`,
          'lid < 192u',
          'pr * 512u + select(0u, 256u, tq)',
        ],
      ]
  )
    .map(
      ([store, readers, base]) => `if (mma) {
    ${store}
  }
  workgroupBarrier();
  if (${readers}) {
    let pr = ct / 16u;
    ${pairIJ('pr')}
    let I4 = 4u * I16 + (ct % 16u) / 4u;
    let J4 = 4u * J16 + ct % 4u;
    let rb = ${base} + (4u * (I4 % 4u)) * 16u + 4u * (J4 % 4u);
    let colScale = vec4<f32>(${R4.map((b) => `ldexp(1.0, i32(sh[${SE + 64}u + 4u * J4 + ${b}u]))`).join(', ')});
    let rowExp = select(${SE + 64}u, ${SE}u, tq) + 4u * I4;
    ${
      v.rot
        ? `// rot: column (b + rg) % 4 read at step b (rg = the tile's row group: lanes of a store's other row groups
    // on other banks), the vector rotated back.
    let rg = (ct % 16u) / 4u;
    ${R4.map((b) => `let rc${b} = (${b}u + rg) & 3u;`).join('\n    ')}
    ${R4.map((a) => `cx${a} = rot4(vec4<f32>(${R4.map((b) => `${RES}[rb + ${a * 16}u + rc${b}]`).join(', ')}), (4u - rg) & 3u) * ldexp(1.0, i32(sh[rowExp + ${a}u])) * colScale;`).join('\n    ')}`
        : R4.map(
            (a) =>
              `cx${a} = vec4<f32>(${R4.map((b) => `${RES}[rb + ${a * 16 + b}u]`).join(', ')}) * ldexp(1.0, i32(sh[rowExp + ${a}u])) * colScale;`,
          ).join('\n    ')
    }
  }
  workgroupBarrier();`,
    )
    .join('\n  ')}
${
  v.split
    ? `  // The four parts of each unit added (every lane of the four then holds the sum; part 0 stores it).
  ${R4.map((a) => `acc${a} += subgroupShuffleXor(acc${a}, 1u);\n  acc${a} += subgroupShuffleXor(acc${a}, 2u);\n  aqk${a} += subgroupShuffleXor(aqk${a}, 1u);\n  aqk${a} += subgroupShuffleXor(aqk${a}, 2u);`).join('\n  ')}
`
    : ''
}  // The in-block tiles and diagonal blocks as intraGram stores them.
  if (${v.split ? 'part != 0u' : 'false'}) {
  } else if (diag) {
    ${aqkDiagonalStore('aqk')}
    ${akkDiagonalToShared('acc')}
  } else if (isQ) {
    ${aqkTileStore('acc')}
  } else if (tile) {
    ${akkTileToShared('acc')}
  }
  // The tensor-core blocks' tiles, as intraGram stores its off-diagonal tiles.
  if (lid < 192u) {
    let pr = ct / 16u;
    ${pairIJ('pr')}
    let I4 = 4u * I16 + (ct % 16u) / 4u;
    let J4 = 4u * J16 + ct % 4u;
    if (tq) {
      ${aqkTileStore('cx', '      ')}
    } else {
      let beta4 = vec4<f32>(${R4.map((a) => `select(0.0, beta[(t0 + min(4u * I4 + ${a}u, L - 1u)) * H + h], 4u * I4 + ${a}u < L)`).join(',\n        ')});
      ${akkTileToShared('cx')}
    }
  }
  workgroupBarrier();
  ${INVERSE_DIAGONAL_BLOCKS}
  workgroupBarrier();
  ${[4, 8, 16, 32].map((s) => inverseLevelWith(s, true)).join('\n  ')}
  // T as it lies in workgroup memory, for pass 1b (step B's scratch in its upper part masked out).
  for (var e = lid; e < 1024u; e += ${WG}u) {
    Tt[abase + e] = select(vec4<f32>(0.0), sm[e], e % 16u >= e / 64u);
  }
  ${STORE_T_ROW_MAJOR_LEAN}
}`;
}
