/**
 * The two-pass int8 MLA decode on the tensor cores (issue #4): the work layout of its two streaming kernels and every
 * fragment offset they use, as affine expressions (int8SgmPlan.ts's Aff / Frag) read by both the WGSL generators
 * (decodeInt8Scores.wgsl.ts, decodeInt8Pv.wgsl.ts) and the plain-TS emulation (int8TwoPassEmulate.ts).
 *
 * Why two passes: the fused kernel (decodeInt8Sgm.wgsl.ts) runs per 32-token block a chain of ~10 latency-bound
 * phases between barriers (stage, S, softmax, P x V, the fold of every block's i32 products into an f32 O through
 * workgroup memory), ~6.7x the cache's bandwidth floor at 1M. Split in two, each kernel has ~2-3 phases a block and
 * the P x V products never leave their i32 accumulators inside a chunk, because the chunk's max is known before P is
 * quantised (no rescale; int8LazyReference.ts with mRef 'chunkMax', tau 0: TWO_PASS_PV):
 *   A (scores) workgroup (chunkA, b, head group of 32): per block of TT = 32 staged rows, S = q . k as int8 MMAs
 *     (c_kv and k_pe apart: their own row scales), formed into f32 base-2 scores exactly as the fused kernel forms
 *     them, written to `scores` [B, HP, Tpad] (f32), plus each (block, head)'s max and the block's largest value scale
 *     (c_kv's) to `stats` [B, nBlk, SA]. 4 subgroups (the default, 128 threads): sgi = 2 kh + mh takes head half mh
 *     and the c_kv K-steps [kh LK / 2, (kh + 1) LK / 2) and the k_pe steps kh + 2 i for both token halves (two
 *     independent chains sharing each query fragment, held in registers from before the loop); or 8 (sgi = 4 kh +
 *     2 nt + mh: one token half each). The i32 tiles meet in `sc` (c_kv partial kh, then k_pe partial kh), where the
 *     threads (LPH lanes a head, TPL tokens a lane) sum them and form the scores. Streams the cache once (RW words a
 *     token).
 *   B (P x V) workgroup (chunk, b, head group x column split): m = its chunk's max per head and s_ref = its largest
 *     value scale, both from A's block stats (a subgroup reduction, no barrier); per block, thread (lane = token,
 *     subgroup = HT heads) makes p = 2^(s - m), x = min(1, p s_t / s_ref), Q = floor(16383 x + u_t) (dithered,
 *     lazyDither) and writes its two 7-bit digits to `pw` (hi: words [0, 256), lo: [256, 512), [32 heads, 8 words]
 *     row-major as the fused kernel's P8); the block's c_kv codes are staged to `kv` (the workgroup's columns only,
 *     rows KSB words apart); then each subgroup accumulates P_hi x V and P_lo x V into i32 result matrices (its CFS
 *     value fragments x MH head halves x 2 digits) that live across the whole chunk. At the chunk's end each
 *     accumulator goes once through the subgroup's slot in kv into o = unit (128 A_hi + A_lo), unit = s_ref / 16383,
 *     written with m and l (sum of p, f32) as the partials merge.wgsl.ts takes. Streams S (4 HP bytes a token) and the
 *     c_kv codes (Rv bytes + the scale a token).
 * Offsets and strides in 32-bit words (as Dawn in npm webgpu 0.6.2 counts int8 operands read from array<i32>); the
 * generators multiply the int8 operands' by 4 for a Dawn that counts elements.
 *
 * Measured (tenth session, mla2k; H200, 48B shapes, batch 1, int8 cache; bench/results/2026-12-02-h200-mla2k-s*):
 *   EXACT on the device: within 3.0e-3 of max |o| of the int8 reference at 4K (the fused kernel's scheme; the two-pass
 *   reference int8LazyReference.ts TWO_PASS_PV: 3.2e-6), every variant below alike; kernel A's scores and block stats
 *   equal their emulation to 6.3e-8 / 6.9e-8 (f32 rounding). No sign of the lazy kernel's device error (every
 *   workgroup array here is 16-byte sized, mlalazy3's suspect).
 *   NOT FASTER: at 1M, per layer (decode profile, 7 layers): 8 scores subgroups 0.795 (A) + 0.531 (B) = 1.33 ms, 4
 *   subgroups (the default since) 0.565 + 0.533 = 1.10 ms, against 1.071 for the fused kernel; hybrid TPOT at 1M
 *   13.17 / 11.44 against 11.35-11.36 ms (same sittings). Both kernels are latency-bound chains again, far from the
 *   ~0.16 ms a kernel their bytes need: A takes ~6.4k SM cycles a block (8 subgroups), B ~4.1k. What each stage costs
 *   (bench mla --int8-variants two-pass-stages at 1M, 8 scores subgroups: A 0.70, B 0.53 ms): A without its products
 *   0.385, without the combine 0.450, without the staging 0.388, without products and combine 0.309; B without P
 *   0.375, without the products 0.340, without the staging 0.438, without P and products 0.236. Every stage costs
 *   about as much as the others (as in the fused kernel: the sum of what each saves exceeds what they take together).
 *   Not better: B with 2 blocks a step (0.546), 8 P x V subgroups (0.518-0.529), columns split (0.72), 264 chunks
 *   (0.538); A without the prefetch (0.72), more or fewer chunks (132: 0.665, 1056: 0.71), stageSpread (1.68: its
 *   dynamic vector index), the full-K layout (4.0: 18 query fragments a subgroup, registers spilt, it seems).
 */
import type { SgmVariant } from '../int8/subgroupMatrix.wgsl.js';
import { int8RowLayout, type Int8RowLayout } from './int8Layout.js';
import { MLA_INT8_TT } from './int8Reference.js';
import type { Aff, Frag } from './int8SgmPlan.js';
import { mlaInt8SgmUnsupported } from './int8SgmPlan.js';

/** Heads a workgroup of either kernel (two head halves of 16: the MMA's M). */
export const TWO_PASS_HW = 32;
/** Subgroups of the scores kernel's first layout (scoresSubgroups 8): 2 head halves x 2 token halves x 2 K halves. */
export const SCORES_NS = 8;
/** Q's largest value: two 7-bit digits (int8LazyReference.ts digits 2). */
export const TWO_PASS_QMAX = 128 * 127 + 127;

export interface MlaInt8TwoPassOptions {
  /** P x V: value-column splits (workgroups a chunk and head group; 1 or 2): fewer accumulators a lane. Default 1. */
  colSplit?: 1 | 2;
  /** P x V: subgroups a workgroup (8 or 16; default 16 where the columns split over them). */
  pvSubgroups?: 8 | 16;
  /** Scores: chunks a sequence (workgroups a head group); default 4 a SM of an H200 (scoresChunks). */
  scoresChunks?: number;
  /**
   * Scores: subgroups a workgroup, 4 (the default: each both token halves with the same query fragments, 128 threads,
   * so more workgroups an SM hide each other's latency; 0.565 ms a layer at 1M) or 8 (each one token half; 0.70-0.80).
   */
  scoresSubgroups?: 4 | 8;
  /**
   * Scores: 4 subgroups, each a whole tile's K (head half mh, token half nt: all c_kv and k_pe steps, 18 query
   * fragments at the 48B shapes), so sc holds one partial a part (9 KiB) and kv fits twice: the next block's rows are
   * staged into the other buffer during this block's scores, 2 barriers a block instead of 3.
   */
  scoresFullK?: boolean;
  /**
   * P x V: 32-token blocks a step between barriers, 1 (default) or 2 (each thread P of two tokens, twice the products
   * and the staged rows a step: half the barriers and more independent work in each phase).
   */
  pvBlocks?: 1 | 2;
  /**
   * Both kernels: the next block's rows loaded into registers during this block's work (default true); false loads
   * them where they are staged (fewer registers a thread, the loads' latency exposed).
   */
  prefetch?: boolean;
  /**
   * Both kernels: the staging stores of a lane's vec4 in a rotated order (component (k + lane / 8) % 4 at store k),
   * so a store instruction's 32 lanes fall on 32 banks instead of 8 (as int8SgmPlan.ts stageSpread). The same words.
   */
  stageSpread?: boolean;
  /**
   * Diagnostic only (wrong outputs): stages left out, barriers kept, to measure what each costs (TWO_PASS_STAGES).
   */
  skip?: TwoPassStage[];
}

/**
 * The stages of a block, named for the diagnostic `skip`:
 *   scores   A: the S products and their key fragments' loads (zero tiles stored)
 *   combine  A: the partials' sums, the scores' f32 form, their stores and the block maxima
 *   stage    A and B: the next block's storage loads and their stores to kv
 *   p        B: P (exp2, dither, digits, shuffles): constant digit words stored to pw instead
 *   pv       B: the P x V products and their fragments' loads
 */
export const TWO_PASS_STAGES = ['scores', 'combine', 'stage', 'p', 'pv'] as const;
export type TwoPassStage = (typeof TWO_PASS_STAGES)[number];

export interface MlaInt8TwoPassPlan extends Int8RowLayout {
  H: number;
  NG: number;
  HP: number;
  TT: number;
  /** Scores: c_kv and k_pe K-steps of 32 channels (LK even, RK even: split over the two K halves). */
  LK: number;
  RK: number;
  /** Scores: words between score tiles' head rows in sc (TT + 4: the tile stores spread over the banks), sc words. */
  SS: number;
  SCW: number;
  /** Scores: staged rows (TT x RW words). */
  KVA: number;
  /** stats row: HP head maxima then the block's largest c_kv scale (word HP), padded to a multiple of 4. */
  SA: number;
  /** Scores: the full-K layout (MlaInt8TwoPassOptions.scoresFullK), its partials a part (KP: 1, else 2 K halves). */
  fullK: boolean;
  KP: number;
  /** Scores: words of one staged block (TT x RW; kv holds KVA = 2 KV1 with fullK). */
  KV1: number;
  /** Scores: subgroups and threads a workgroup, lanes a head in the scores' combine (LPH) and tokens a lane (TPL). */
  NSA: number;
  WGA: number;
  LPH: number;
  TPL: number;
  /** P x V: 32-token blocks a step (NB) and the step's tokens (TS = 32 NB). */
  NB: number;
  TS: number;
  /** P x V: column splits, subgroups, threads, heads a thread (P), value fragments a workgroup and a subgroup. */
  CS: number;
  NSB: number;
  WGB: number;
  HT: number;
  NCFW: number;
  CFS: number;
  /** P x V: c_kv words a workgroup stages a row, the staged row stride (padded), kv words (rows or the flush slots). */
  WC: number;
  KSB: number;
  KVB: number;
  variant: SgmVariant;
  scoresChunks?: number;
  prefetch: boolean;
  stageSpread: boolean;
  skip: TwoPassStage[];
  sharedBytesA: number;
  sharedBytesB: number;
}

export function planMlaInt8TwoPass(
  o: { H: number; R: number; Rv: number; variant: SgmVariant } & MlaInt8TwoPassOptions,
  maxSharedBytes: number,
  maxInvocations = 1024,
): MlaInt8TwoPassPlan {
  const { H, R, Rv } = o;
  const why = mlaInt8SgmUnsupported(R, Rv);
  if (why) throw new Error(`mlaDecode (int8, two-pass): ${why}`);
  const L = int8RowLayout(R, Rv);
  const TT = MLA_INT8_TT;
  const HW = TWO_PASS_HW;
  const NG = Math.ceil(H / HW);
  const LK = L.LWp / 8;
  const RK = L.RWp / 8;
  if (LK % 2 || RK % 2)
    throw new Error(
      `mlaDecode (int8, two-pass): the scores split c_kv and k_pe K-steps over two K halves; got ${LK} and ${RK} steps of 32 channels`,
    );
  const SS = TT + 4;
  const fullK = o.scoresFullK ?? false;
  if (fullK && o.scoresSubgroups === 8)
    throw new Error('mlaDecode (int8, two-pass): scoresFullK takes 4 subgroups (a whole tile each)');
  const KP = fullK ? 1 : 2;
  const SCW = 2 * KP * HW * SS;
  const KV1 = TT * L.RW;
  const KVA = fullK ? 2 * KV1 : KV1;
  const CS = o.colSplit ?? 1;
  if (CS !== 1 && CS !== 2) throw new Error(`mlaDecode (int8, two-pass): colSplit 1 or 2, got ${CS}`);
  const NCF = L.LWp / 4;
  if (NCF % CS) throw new Error(`mlaDecode (int8, two-pass): ${NCF} value fragments do not split in ${CS}`);
  const NCFW = NCF / CS;
  const NSB = o.pvSubgroups ?? (NCFW % 16 === 0 && maxInvocations >= 512 ? 16 : 8);
  // 8 subgroups at least: P's thread takes HW / NSB heads as a WGSL vector (at most 4).
  if (NSB !== 8 && NSB !== 16) throw new Error(`mlaDecode (int8, two-pass): pvSubgroups 8 or 16, got ${NSB}`);
  if (32 * NSB > maxInvocations)
    throw new Error(`mlaDecode (int8, two-pass): ${32 * NSB} threads a workgroup, the device allows ${maxInvocations}`);
  if (NCFW % NSB)
    throw new Error(
      `mlaDecode (int8, two-pass): ${NCFW} value fragments a workgroup do not split over ${NSB} subgroups`,
    );
  const WC = L.LWp / CS;
  // Rows 4 words longer than the columns staged: a fragment's 32 token rows over the banks (stride % 32 = 4).
  const KSB = WC + 4;
  const NB = o.pvBlocks ?? 1;
  if (NB !== 1 && NB !== 2) throw new Error(`mlaDecode (int8, two-pass): pvBlocks 1 or 2, got ${NB}`);
  const TS = NB * TT;
  const KVB = Math.max(TS * KSB, NSB * 256);
  // 4 by default since the tenth session's sitting (bench/results/2026-12-02-h200-mla2k-s3-*): the same outputs.
  const NSA = fullK ? 4 : (o.scoresSubgroups ?? 4);
  if (NSA !== 4 && NSA !== 8) throw new Error(`mlaDecode (int8, two-pass): scoresSubgroups 4 or 8, got ${NSA}`);
  const WGA = 32 * NSA;
  // The combine: 32 heads x TT tokens over the threads, a head's tokens on consecutive lanes.
  const TPL = (HW * TT) / WGA;
  const LPH = TT / TPL;
  const SA = Math.ceil((NG * HW + 1) / 4) * 4;
  // Every workgroup array a multiple of 16 bytes: Vulkan wants a cooperative-matrix load's pointer 16-byte aligned,
  // and WGSL cannot place a variable (mlalazy3's suspect for the lazy kernel's wrong outputs, tenth session: its
  // 4-byte flag and 64-byte s_ref array beside the arrays would leave them 8 bytes off). No scalars in either kernel.
  for (const words of [KVA, SCW, KVB, NB * 2 * HW * (TT / 4)])
    if (words % 4)
      throw new Error(`mlaDecode (int8, two-pass): a workgroup array of ${words} words is not 16-byte sized`);
  const sharedBytesA = 4 * (KVA + SCW);
  const sharedBytesB = 4 * (KVB + NB * 2 * HW * (TT / 4));
  for (const [k, bytes] of [
    ['scores', sharedBytesA],
    ['P x V', sharedBytesB],
  ] as const)
    if (bytes > maxSharedBytes)
      throw new Error(
        `mlaDecode (int8, two-pass): the ${k} kernel needs ${bytes} bytes of workgroup memory, the device allows ${maxSharedBytes}`,
      );
  if (o.scoresChunks !== undefined && !(Number.isInteger(o.scoresChunks) && o.scoresChunks >= 1))
    throw new Error(`mlaDecode (int8, two-pass): scoresChunks must be a positive integer, got ${o.scoresChunks}`);
  return {
    ...L,
    H,
    NG,
    HP: NG * HW,
    TT,
    LK,
    RK,
    SS,
    SCW,
    KVA,
    fullK,
    KP,
    KV1,
    SA,
    NSA,
    WGA,
    LPH,
    TPL,
    NB,
    TS,
    CS,
    NSB,
    WGB: 32 * NSB,
    HT: HW / NSB,
    NCFW,
    CFS: NCFW / NSB,
    WC,
    KSB,
    KVB,
    variant: o.variant,
    scoresChunks: o.scoresChunks,
    prefetch: o.prefetch ?? true,
    stageSpread: o.stageSpread ?? false,
    skip: TWO_PASS_STAGES.filter((st) => o.skip?.includes(st)),
    sharedBytesA,
    sharedBytesB,
  };
}

/** What both kernels' WGSL shares from the options: prefetch, stageSpread and the diagnostic skips. */
const codeOptions = (p: MlaInt8TwoPassPlan) =>
  `${p.prefetch ? '' : '_nopf'}${p.stageSpread ? '_sts' : ''}${p.skip.map((st) => `_no${st}`).join('')}`;

export function mlaInt8ScoresKey(p: MlaInt8TwoPassPlan): string {
  return `mla_int8_scores_h${p.H}_r${p.R}_rv${p.Rv}_ns${p.NSA}${p.fullK ? '_fullk' : ''}_${p.variant.syntax}_${p.variant.units}${codeOptions(p)}`;
}

export function mlaInt8PvKey(p: MlaInt8TwoPassPlan): string {
  return `mla_int8_pv_h${p.H}_r${p.R}_rv${p.Rv}_cs${p.CS}_ns${p.NSB}_nb${p.NB}_${p.variant.syntax}_${p.variant.units}${codeOptions(p)}`;
}

/**
 * Chunks of the scores kernel: ~4 workgroups a SM of an H200 (528; its outputs are per token, so more chunks cost
 * no merge), at least one block each.
 */
export function defaultScoresChunks(maxLength: number, B: number, NG: number): number {
  return Math.max(1, Math.min(Math.ceil(maxLength / MLA_INT8_TT), Math.ceil(528 / (B * NG))));
}

/**
 * The fragments. Runtime names: b (sequence), g (head group), and the scores' roles mh, nt, kh of subgroup sgi
 * (scoresRoles), or the P x V subgroup sgi. qr: query rows [B, HP, RW]; kv: staged rows; sc: score tiles; pw: digits.
 */
export function twoPassFrags(p: MlaInt8TwoPassPlan) {
  const { RW, HP, SS, LK, RK, LWp, KSB, CFS } = p;
  const HW = TWO_PASS_HW;
  const qRow = { b: HP * RW, g: HW * RW, mh: 16 * RW };
  const steps = (n: number) => Array.from({ length: n }, (_, j) => j);
  const { KP } = p;
  // K halves (kh: c_kv steps kh LK / 2 + j, k_pe steps kh + 2 i) or, fullK, every step (kh absent); the staged block
  // at kv word kvb (fullK: 0 or KV1, the buffer of the block).
  const [lq, rq, kStep, kRope] = p.fullK ? [LK, RK, 0, 0] : [LK / 2, RK / 2, 4 * LK, 8];
  const rStep = p.fullK ? 8 : 16;
  const kvb: Aff = p.fullK ? { kvb: 1 } : {};
  return {
    /** Scores: the subgroup's query fragments (c_kv steps, then k_pe steps), row-major. */
    query: [
      ...steps(lq).map((j): Frag => ({ offset: { ...qRow, kh: kStep, '': 8 * j }, stride: RW, colMajor: false })),
      ...steps(rq).map(
        (i): Frag => ({ offset: { ...qRow, kh: kRope, '': LWp + rStep * i }, stride: RW, colMajor: false }),
      ),
    ],
    /** Scores: the key fragment of query fragment i (the 16 staged rows of token half nt, column-major). */
    key: (i: number): Frag =>
      i < lq
        ? { offset: { ...kvb, nt: 16 * RW, kh: kStep, '': 8 * i }, stride: RW, colMajor: true }
        : { offset: { ...kvb, nt: 16 * RW, kh: kRope, '': LWp + rStep * (i - lq) }, stride: RW, colMajor: true },
    /** Scores: query fragments of c_kv (the first lq), the rest k_pe. */
    lq,
    /** Scores: where the subgroup's c_kv (part 0) or k_pe (part 1) tile of [heads, tokens] goes in sc. */
    tile: (part: 0 | 1): Frag => ({
      offset: { '': KP * part * HW * SS, kh: KP === 2 ? HW * SS : 0, mh: 16 * SS, nt: 16 },
      stride: SS,
      colMajor: false,
    }),
    /** Scores: word of sc holding partial kh (< KP) of part (0 c_kv, 1 k_pe) for head h, token t. */
    scoreWord: (part: 0 | 1, kh: number, h: number, t: number) => (KP * part + kh) * HW * SS + h * SS + t,
    /** P x V: digit d (0 hi, 1 lo) of head half m of the step's block k, row-major [16 heads, TT tokens]. */
    pLeft: (m: number, d: number, k = 0): Frag => ({
      offset: { '': (2 * k + d) * HW * (p.TT / 4) + 16 * m * (p.TT / 4) },
      stride: p.TT / 4,
      colMajor: false,
    }),
    /** P x V: value fragment j of subgroup sgi, row-major [TT tokens, 16 columns] of the step's block k's codes. */
    v: (j: number, k = 0): Frag => ({
      offset: { sgi: 4 * CFS, '': 4 * j + k * p.TT * KSB },
      stride: KSB,
      colMajor: false,
    }),
    /** P x V flush: the subgroup's 16 x 16 i32 slot in kv. */
    slot: { offset: { sgi: 256 }, stride: 16, colMajor: false } as Frag,
  };
}

/**
 * The scores kernel's roles of subgroup sgi: head half mh, K half kh, and the token halves it takes (8 subgroups: one,
 * nt = (sgi >> 1) & 1; 4 subgroups: both, with the same query fragments).
 */
export function scoresRoles(sgi: number, NSA = SCORES_NS, fullK = false): { mh: number; kh: number; nts: number[] } {
  if (fullK) return { mh: sgi & 1, kh: 0, nts: [sgi >> 1] };
  return NSA === 8 ? { mh: sgi & 1, kh: sgi >> 2, nts: [(sgi >> 1) & 1] } : { mh: sgi & 1, kh: sgi >> 1, nts: [0, 1] };
}

/** A fragment with one runtime name fixed to a value (folded into the constant). */
export function fixFrag(f: Frag, name: string, value: number): Frag {
  const { [name]: k = 0, ...rest } = f.offset;
  return { ...f, offset: { ...rest, '': (rest[''] ?? 0) + k * value } };
}
