/**
 * How the tensor-core int8 MLA decode kernel (decodeInt8Sgm.wgsl.ts) lays out its work, and every
 * fragment offset it uses, as affine expressions over the kernel's runtime indices so the WGSL generator
 * and the plain-TS emulation (int8SgmEmulate.ts, run by the tests on any machine) read the same numbers.
 *
 * Fragments (Dawn's int8 subgroup matrices, H200 config M=16, N=16, K=32, i32 results): a workgroup of
 * NS = HW / 4 subgroups of 32 lanes owns HW = 32 (default) or 16 heads of one sequence over a chunk, in
 * blocks of TT = 32 cached rows staged in workgroup memory (`kv`, the rows as stored: RW words a row).
 *   S   (parity layout, the default) subgroup sgi: token half nt = sgi & 1, head half mh = (sgi >> 1) % MH
 *       (MH = HW / 16), K-step parity half = sgi / (2 MH). The query (rows [heads, RW] in global memory,
 *       int8QueryRowsWgsl) is the left operand, the staged rows read column-major the right one. The
 *       K-steps of 32 channels alternate between the two parities (c_kv steps 2j + half, k_pe steps
 *       likewise), so both parities run the same straight-line code: LK2 c_kv and RK2 k_pe steps. Each
 *       subgroup leaves two 16 x 16 i32 tiles, c_kv and k_pe, in `sc` (4 tiles of [HW heads, 32 tokens]:
 *       c_kv parity 0, 1, k_pe 0, 1).
 *   S   (quarter layout, queryResident) subgroup sgi = 4 mh + kq: c_kv steps 4j + kq (j < LK2 / 2) for
 *       both token halves (two accumulators sharing each query fragment), k_pe steps 2j + rp (j < RK2)
 *       for token half rn (rp = kq & 1, rn = kq >> 1): the same 2 LK2 + RK2 products, LK2 / 2 + RK2 query
 *       fragments (held in registers from before the loop) instead of LK2 + RK2. `sc` holds 6 tiles of
 *       [HW heads, 32 tokens]: c_kv quarters 0-3, k_pe parities 0, 1.
 *   S   (wide, the default since the seventh session where c_kv splits over 16 subgroups) twice the subgroups:
 *       sgi = 4 (MH nt + mh) + kq takes c_kv quarter kq of head half mh for token half nt alone (one accumulator
 *       of 4 products), and the k_pe step kq of that tile if kq < 2; `sc` as the quarter layout's.
 *       The layouts are data (sgmRoles, sgmFrags' query and accs) read by the generator and the emulation.
 *   softmax  thread (head quad hq = sgi, token t = lane) as the dp4a kernel (decodeInt8.wgsl.ts) with
 *       4 heads a thread, the integer dot products summed over the partials: the same scores, p, l and
 *       P8 words (one head, 4 tokens) bit for bit, P8 written row-major [HW heads, 8 words] to `pw`.
 *   P x V  subgroup sgi owns value columns [16 CFS sgi, 16 CFS (sgi + 1)) = CFS fragments of 16 columns,
 *       for each head half: CFS MH fragments (P8 left [16 heads, 32 tokens] times rows read row-major
 *       [32 tokens, 16 columns]), `fold` at a time stored to the subgroup's 16 x 16 i32 slots in `sc`
 *       (two sets, alternating, so one barrier a round), from where lane (orow = lane & 15,
 *       ocol = 8 (lane >> 4)) folds 8 values each into its f32 O: o = fma(sigma, c, o * alpha), as the
 *       dp4a kernel does. O is 64 f32 a lane either way (HW x 512 columns over 32 NS lanes).
 * Offsets and strides are in 32-bit words (Dawn in npm webgpu 0.6.2 counts int8 operands read from
 * array<i32> that way, src/kernels/int8/subgroupMatrix.wgsl.ts); the generator multiplies the int8
 * operands' by 4 for a Dawn that counts elements.
 */
import type { SgmVariant } from '../int8/subgroupMatrix.wgsl.js';
import { type Int8RowLayout, int8RowLayout } from './int8Layout.js';
import { MLA_INT8_TT } from './int8Reference.js';

/** Affine expression c + sum_v k_v * v over named u32 runtime values ('' is the constant). */
export type Aff = Record<string, number>;

export function affWgsl(a: Aff): string {
  const terms: string[] = [];
  for (const [v, k] of Object.entries(a)) {
    if (k === 0) continue;
    if (v === '') terms.push(`${k}u`);
    else terms.push(k === 1 ? v : `${k}u * ${v}`);
  }
  return terms.length ? `(${terms.join(' + ')})` : '0u';
}

export function affEval(a: Aff, env: Record<string, number>): number {
  let x = 0;
  for (const [v, k] of Object.entries(a)) {
    if (v === '') x += k;
    else {
      const e = env[v];
      if (e === undefined) throw new Error(`affEval: no value for '${v}'`);
      x += k * e;
    }
  }
  return x;
}

/** One fragment access: where (affine, words), the row stride (words) and the layout. */
export interface Frag {
  offset: Aff;
  stride: number;
  colMajor: boolean;
}

export interface MlaInt8SgmPlan extends Int8RowLayout {
  H: number;
  NG: number;
  HP: number;
  TT: number;
  /** Heads per workgroup (32 or 16), and head halves of 16 (MH = HW / 16). */
  HW: number;
  MH: number;
  /**
   * Subgroups (of 32 lanes) per workgroup (HW / 4: 2 token halves x 2 parities x MH; `wide`: HW / 2) and
   * threads.
   */
  NS: number;
  WG: number;
  /** Twice the subgroups, each one token half of the quarter layout's S (MlaInt8SgmOptions.wide). */
  wide: boolean;
  /** Heads a softmax thread takes (HW / NS: 4, or 2 when wide); the lanes of a subgroup are the tokens. */
  HT: number;
  /**
   * Sets of P x V slots: 2 (alternating, one barrier a round) or 1 (wide: a second barrier after the fold).
   * kvSlots: 2, the second set in kv (MlaInt8SgmOptions.kvSlots).
   */
  slotSets: 1 | 2;
  kvSlots: boolean;
  /** The staged rows' stores to kv spread over the 32 banks (MlaInt8SgmOptions.stageSpread). */
  stageSpread: boolean;
  /** Every P x V product of a block before its first round (MlaInt8SgmOptions.pvAhead). */
  pvAhead: boolean;
  /** The softmax's two reductions at once where the block raises no max (MlaInt8SgmOptions.maxAhead). */
  maxAhead: boolean;
  /** P x V fragments (16 heads x 16 columns) folded into O per barrier (slots double-buffered). */
  fold: number;
  /** c_kv and k_pe K-steps (32 channels) per parity. */
  LK2: number;
  RK2: number;
  /** Value column fragments (16 columns) in all and per subgroup. */
  NCF: number;
  CFS: number;
  /** The query's fragments held in registers through the loop (else loaded from global memory each block). */
  qRegs: boolean;
  /**
   * The scores' K split in quarters (MlaInt8SgmOptions.queryResident): each subgroup multiplies its few
   * query fragments (held in registers, qRegs true) by both token halves' keys; else in parities (half).
   */
  queryResident: boolean;
  /** Load the next block's rows into registers during this block's math. */
  prefetch: boolean;
  /** Barrier between a P x V round's stores and the lanes' reads (MlaInt8SgmOptions.foldBarrier). */
  foldBarrier: boolean;
  /** Words between a score tile's head rows in sc: TT, or TT + 4 (MlaInt8SgmOptions.scorePad). */
  SS: number;
  /** How the lanes read a P x V slot to fold it into O (MlaInt8SgmOptions.foldSpread; sgmFrags' foldLane). */
  foldSpread: boolean;
  /** Diagnostic only (wrong outputs): stages of a block left out (MlaInt8SgmOptions.skip). */
  skip: SgmStage[];
  /** P x V in i32 accumulators across the blocks of a chunk (MlaInt8SgmOptions.lazy; int8LazyReference.ts). */
  lazy: boolean;
  /** lazy: staleness of the reference max before a rescale, log2 units (int8LazyReference.ts tau). */
  lazyTau: number;
  /** lazy: rescales inside the chunk (false: a diagnostic, MlaInt8SgmOptions.lazyFlush). */
  lazyFlush: boolean;
  /** lazy, diagnostics of its device check (MlaInt8SgmOptions.lazyEvery, lazyBarrier). */
  lazyEvery: boolean;
  lazyBarrier: boolean;
  lazyMultiply: boolean;
  lazySRef1: boolean;
  lazySRefAtomic: boolean;
  lazyNoDither: boolean;
  lazyOneDigit: boolean;
  lazyPwFirst: boolean;
  lazyLoArray: boolean;
  /** lazy: every workgroup variable a multiple of 16 bytes (MlaInt8SgmOptions.lazyAlign). */
  lazyAlign: boolean;
  /** The pool bound read_write (MlaInt8SgmOptions.poolRw). */
  poolRw: boolean;
  variant: SgmVariant;
  /** Words of `sc` (scores, then the P x V slots), `pw` and `kv`. */
  SCW: number;
  PWW: number;
  KVW: number;
  sharedBytes: number;
}

/**
 * The stages of a block (decodeInt8Sgm.wgsl.ts's schedule), named for the diagnostic `skip`:
 *   scores   the S products and the key fragments' loads (zero tiles are stored instead)
 *   softmax  max, exp2, l, P8 and the subgroup reductions (one word of sc copied to pw; alpha = sigma = 1)
 *   pv       the P x V products and the P8 / value fragments' loads (zero results are stored to the slots)
 *   fold     the lanes' reads of the slots and their f32 fold into O (O stays zero)
 *   stage    the next block's rows: storage loads and their stores to kv (kv keeps the first block)
 * Every barrier stays, so each row measures what its stage costs in the schedule as it is.
 */
export const SGM_STAGES = ['scores', 'softmax', 'pv', 'fold', 'stage'] as const;
export type SgmStage = (typeof SGM_STAGES)[number];

export interface MlaInt8SgmOptions {
  /**
   * The parity layout's LK2 + RK2 query fragments a subgroup (9 at the 48B shapes) in registers through the
   * loop (measured slower: 2.46 ms against 2.15 at 1M context, 32 heads; 4.44 against 3.30, 16 heads).
   */
  qRegs?: boolean;
  /**
   * The quarter layout of the scores (see the header): no fragment is loaded from storage inside the block
   * loop. Each subgroup's query fragments (LK2 / 2 + RK2: 5 at the 48B shapes) are loaded once, before the
   * loop, into registers; every key fragment is loaded from workgroup memory for one product. 1.59 ms a
   * layer at 1M (H200) against dp4a's 1.55; with foldSpread and scorePad 1.20 (decodeInt8Sgm.wgsl.ts). The
   * default (false: the parity layout).
   */
  queryResident?: boolean;
  prefetch?: boolean;
  /**
   * Heads per workgroup: 32 (8 subgroups, the default) or 16 (4 subgroups: half the threads and the same
   * O registers a lane, so more workgroups fit an SM; the rows are staged and loaded twice: slower).
   */
  heads?: 16 | 32;
  /** P x V fragments a subgroup folds into O per barrier: 1, or 2 (needs the workgroup memory for 4 slots). */
  fold?: 1 | 2;
  /**
   * Diagnostic only, never the default: false drops the barrier between a round's stores and the lanes'
   * reads of them. The slots are the subgroup's own, but without a barrier the lanes read what other lanes
   * stored, a data race in WGSL's memory model; it measures what the rounds' barriers cost.
   */
  foldBarrier?: boolean;
  /**
   * The lanes' reads of a P x V slot (16 x 16 i32, rows of 16 words) without bank conflicts: lane reads words
   * lane + 32 e (e < 8: column lane & 15 of heads 2 e + (lane >> 4)) instead of 8 consecutive words of one
   * head (column 8 (lane >> 4) + e of head lane & 15), where each load instruction's 32 lanes fall on 4 of
   * the 32 banks (8-way conflicts, 64 loads a lane a block). The same f32 fold per element: bit-identical.
   * The default (false: the consecutive reads).
   */
  foldSpread?: boolean;
  /**
   * Score tiles' head rows TT + 4 = 36 words apart in sc instead of 32: a 16 x 16 i32 tile's store (8 rows of
   * 8 words an instruction on NVIDIA's accumulator layout) then spreads over all 32 banks (2 wavefronts)
   * instead of 8 (rows 32 words apart share their banks); the softmax's reads stay consecutive. 3 KiB more.
   * The default where those fit the device's workgroup memory.
   */
  scorePad?: boolean;
  /**
   * Twice the subgroups (512 threads at 32 heads, 256 at 16), the same work and workgroup memory: more warps an
   * SM to hide the latencies each stage of a block waits on (at one 256-thread workgroup an SM the block is
   * latency-bound: every stage left out saves about as much, bench/results/2026-12-01-h200-sgm4-s1-stages2.json).
   * Needs the quarter layout. Subgroup sgi = 4 (MH nt + mh) + kq takes c_kv K-quarter kq of head half mh for
   * token half nt only (4 products); those with kq < 2 also the k_pe step kq of that tile (1 product). The
   * softmax takes 2 heads a thread; P x V CFS = NCF / NS fragments a subgroup (O: 32 f32 a lane, not 64); the
   * slots in one set (2 per round do not fit beside the score tiles), so a round has two barriers. The same
   * integer partials and the same f32 code per element: bit-identical. Default false.
   */
  wide?: boolean;
  /**
   * The staging stores of a row vec4 (4 words, a lane's) in a rotated order, component (k + lane / 8) % 4 at
   * store k, so the 32 lanes of each store instruction fall on 32 banks instead of 8 (consecutive lanes store
   * words 4 apart: 4-way conflicts). The same words stored. Default false.
   */
  stageSpread?: boolean;
  /**
   * The subgroup's P x V products of a block (CFS MH: 4 when wide, 8 otherwise) all computed before its first
   * round, their value fragments loaded together, so the loads' and the MMAs' latencies overlap instead of
   * recurring in every round between two barriers; the rounds then store, wait and fold. Costs the results'
   * registers (8 a product a lane: 32 when wide). The same products: bit-identical. Default false.
   */
  pvAhead?: boolean;
  /**
   * The softmax's second reduction (the block's max of p skL, P8's scale) computed beside the first (the
   * block's max score) with p = exp2(s - m) at the running max m from before the block, and kept where the
   * block raises no head's max (then the new max is m and those are the values the kernel would compute, bit
   * for bit); recomputed after the first where it does (a few blocks of a long chunk). The two reductions'
   * latencies then overlap instead of adding up. Default false.
   */
  maxAhead?: boolean;
  /**
   * wide with pvAhead: the P x V slots in two sets again, the second in kv, which no one reads after the products
   * (all before the first round's barrier): one barrier a round instead of two (the block: S, softmax, 4
   * rounds, one before the next rows go into kv, the end: 8 barriers instead of 10), the staging at the block's
   * end again. The same values folded: bit-identical. Default false.
   */
  kvSlots?: boolean;
  /**
   * Diagnostic only, never the default (the outputs are wrong): stages of each block left out (SGM_STAGES),
   * barriers kept, to measure what each costs (bench mla --int8-variants sgm-stages).
   */
  skip?: SgmStage[];
  /**
   * The lazy P x V scheme (issue #4; numerics: int8LazyReference.ts, LAZY_PV_DEFAULTS): p quantised against a stale
   * running max m_ref (rescaled only where a block's max exceeds it by more than lazyTau) and the chunk's largest
   * value scale s_ref, in two dithered int8 digits, so the P x V products accumulate in i32 subgroup-matrix results
   * (hi and lo, 8 a subgroup when wide) across the blocks of a chunk: no per-block slot stores, rounds of barriers
   * or fold; the accumulators go through the slots into the f32 O only on a rescale (rare) and at the chunk's end.
   * A block: S, barrier, softmax (one subgroup reduction: the block max), the rescale flag's uniform load, P x V
   * products, barrier, staging, barrier (4 barriers against 10). Not bit-identical to the dp4a kernel: the emulation
   * is within int8LazyReference.ts's error (5e-3 of the int8 reference at small shapes); on the H200 3.0e-3 of max |o|
   * from the int8 reference at 4K since its workgroup variables are aligned (lazyAlign, the tenth session's fix of
   * its 0.72 error), but slower there (1.19-1.30 ms a layer at 1M against 1.06: decodeInt8Sgm.wgsl.ts's header).
   * Opt-in, for measuring only. Needs wide. Default false.
   */
  lazy?: boolean;
  /** lazy: tau (log2 units, >= 0), the staleness allowed to m_ref; default 1 (LAZY_PV_DEFAULTS). */
  lazyTau?: number;
  /**
   * Diagnostic only when false (wrong outputs where a block raises the max by more than tau after a chunk's first
   * block): the accumulators folded into O at the chunk's end only, never on a rescale: what the lazy block costs
   * without its rare branch. Default true.
   */
  lazyFlush?: boolean;
  /**
   * Diagnostic (correct outputs, slow): O rescaled at every block before its products (alpha 1 where no rescale;
   * the accumulators empty) and the block's products flushed into O after them, so no accumulator is carried
   * across the block loop's iterations: separates the carry from the rest of the lazy path.
   */
  lazyEvery?: boolean;
  /** A workgroupBarrier before the rescale flag's workgroupUniformLoad (the softmax's writes to pw ordered by it). */
  lazyBarrier?: boolean;
  /**
   * Diagnostic, with lazyEvery (where the accumulators are empty before each block's products, so the same values):
   * the products by subgroupMatrixMultiply into fresh block-local results (shadowing the function-scope
   * accumulators), as the default kernel makes them, instead of subgroupMatrixMultiplyAccumulate into the
   * accumulators: isolates the accumulate and the function-scope result matrices.
   */
  lazyMultiply?: boolean;
  /**
   * Diagnostic: s_ref = 1 instead of the chunk's largest value scale (no prologue over the chunk's rows): correct
   * outputs with fewer levels of x (c_kv scales are ~1e-2), so it tells whether the prologue is what goes wrong.
   */
  lazySRef1?: boolean;
  /**
   * Diagnostic and fix candidate of the device check (mlalazy2): s_ref reduced through a workgroup atomicMax on its
   * f32 bits (non-negative floats order as their u32 bits) instead of subgroupMax and a workgroup array: the same
   * s_ref, so the same outputs; tells whether the prologue's subgroup reduction is what goes wrong on the device.
   */
  lazySRefAtomic?: boolean;
  /**
   * Diagnostic (mlalazy2): the digits rounded with a constant 0.5 (floor(x QMAX + 0.5)) instead of the hashed dither:
   * no lazyDither call; slightly biased on a diffuse tail, within 1e-2 of the int8 reference on the bench's rows.
   */
  lazyNoDither?: boolean;
  /**
   * Diagnostic (mlalazy2): one int8 digit (QMAX 127, ~6e-2 of max |o| from the int8 reference by
   * int8LazyReference.ts) and so 4 accumulators a subgroup instead of 8 (32 registers a lane fewer): tells whether the
   * device's error follows the register pressure of the 8 loop-carried result matrices.
   */
  lazyOneDigit?: boolean;
  /**
   * Diagnostics of the workgroup layout (mlalazy2): `pw` declared first (before kv and sc), and the lo digits in their
   * own array `pwl` (pw as the default's 256 words). The same values: the emulation is unchanged. Run by the tenth
   * session's lead with the old layout (lazyAlign false then): 0.48 and 0.55 of max |o| against 0.72, heads 16-31
   * 0.4787 in all three: the misaligned layout moved, not removed (the lazyAlign doc below).
   */
  lazyPwFirst?: boolean;
  lazyLoArray?: boolean;
  /**
   * lazy: the workgroup variables it adds to the default's (the rescale flag, the s_ref reduction) padded to multiples
   * of 16 bytes (flag a vec4<u32>, sRefA an array of 4 atomics), as every other workgroup variable of the kernel is.
   * The fix of issue #4 (mlalazy3): Vulkan wants a cooperative-matrix load's pointer 16-byte aligned, WGSL cannot
   * align a workgroup variable, and the H200's driver lays later-declared variables out first, packed, so the 4-byte
   * flag put pw, sc and kv off 16 bytes and their fragment loads read from the address rounded down (shown by
   * int8SgmAlignProbe.ts; 0.7245 of max |o| off at 4K, 3.0e-3 with the padding). Default true; false: the old layout,
   * a control that the device still shows the error.
   */
  lazyAlign?: boolean;
  /**
   * The cache pool bound read_write instead of read (never written here; the same code and results): whether this
   * driver serves the latency-bound kernel's pool loads faster from a writable binding, as the KDA state pass's
   * (kda chunk.ts kdaForwardTuning.rw). Default false. H200 (tenth session, bench/results/2026-12-02-h200-kbind-*,
   * `bench mla --int8-sgm poolRw`): 4K 0.0238 ms against 0.0234, exact against dp4a (0); the 1M row ran in a slow
   * burst (every kernel of that process 2.6-4x slow, 4.40 against 1.07): no gain seen, 1M not measured cleanly.
   */
  poolRw?: boolean;
}

/** Why these latent shapes cannot take the tensor-core kernel, or undefined when they can. */
export function mlaInt8SgmUnsupported(R: number, Rv: number): string | undefined {
  const L = int8RowLayout(R, Rv);
  if (L.LWp % 32)
    return `c_kv of ${Rv} channels: the tensor-core kernel needs it padded to a multiple of 128 (8 subgroups x 16 value columns), the row has ${4 * L.LWp}`;
  if (L.RWp === 0 || L.RWp % 16)
    return `k_pe of ${R - Rv} channels: the tensor-core kernel needs a non-empty multiple of 64 (two parities of 32-channel K-steps)`;
  return undefined;
}

export function planMlaInt8Sgm(
  v: { H: number; R: number; Rv: number; variant: SgmVariant } & MlaInt8SgmOptions,
  maxSharedBytes: number,
  /** The device's maxComputeInvocationsPerWorkgroup: `wide` (512 threads) is the default only where it fits. */
  maxInvocations = 512,
): MlaInt8SgmPlan {
  const { H, R, Rv } = v;
  if (!(H >= 1)) throw new Error(`mlaDecode (int8, subgroup-matrix): need H >= 1, got ${H}`);
  const why = mlaInt8SgmUnsupported(R, Rv);
  if (why) throw new Error(`mlaDecode (int8, subgroup-matrix): ${why}`);
  const L = int8RowLayout(R, Rv);
  const TT = MLA_INT8_TT;
  // 32 heads a workgroup, one fragment a barrier, rows prefetched: the fastest form measured (H200, 1M
  // context, bench/results/2026-12-01-h200-dec8-run{1,3}-mla.json): 2.15 / 2.28 ms a layer; 16 heads 3.30
  // (3.11 prefetched, 4.62 one fragment a barrier, 4.44 query in registers, 3.23-3.40 over 66-528 chunks).
  const HW = v.heads ?? 32;
  if (HW !== 16 && HW !== 32)
    throw new Error(`mlaDecode (int8, subgroup-matrix): heads per workgroup 16 or 32, got ${HW}`);
  // The defaults are the fastest form measured (H200, sixth session, bench/results/2026-12-01-h200-sgm3-s3-*):
  // the quarter layout with the fold's reads spread over the banks and padded score tiles, 1.20 ms a layer at
  // 1M against 1.59 for the quarter layout alone, 2.46 for the parity layout and 1.55 for dp4a. The parity
  // layout is `queryResident: false` (it needs qRegs unset or false to mean it).
  const queryResident = v.queryResident ?? v.qRegs !== false;
  if (queryResident && v.qRegs === false)
    throw new Error('mlaDecode (int8, subgroup-matrix): queryResident holds the query in registers (qRegs)');
  // Since the seventh session, wide (512 threads) at 32 heads where the value columns split over 16 subgroups
  // (c_kv a multiple of 256): 1.078 ms a layer at 1M against 1.236 (H200, 48B shapes, exact;
  // bench/results/2026-12-01-h200-sgm4-s2-*). `wide: false` is the sixth session's form.
  const wide = v.wide ?? (queryResident && HW === 32 && (L.LWp / 4) % (HW / 2) === 0 && maxInvocations >= 512);
  if (wide && maxInvocations < 512)
    throw new Error(
      `mlaDecode (int8, subgroup-matrix): wide needs 512 threads a workgroup, the device allows ${maxInvocations}`,
    );
  const MH = HW / 16;
  const NS = wide ? HW / 2 : HW / 4;
  const NG = Math.ceil(H / HW);
  const NCF = L.LWp / 4;
  if (NCF % NS)
    throw new Error(
      `mlaDecode (int8, subgroup-matrix): ${NCF} value column fragments do not split over ${NS} subgroups (wide needs c_kv padded to a multiple of 256 at 32 heads)`,
    );
  // A subgroup's P x V products (CFS MH) in rounds of `fold` (wide at 16 heads and c_kv of 128: one product).
  const products = (NCF / NS) * MH;
  const fold = v.fold ?? (HW === 16 && products % 2 === 0 ? 2 : 1);
  if (fold !== 1 && fold !== 2) throw new Error(`mlaDecode (int8, subgroup-matrix): fold 1 or 2, got ${fold}`);
  if (products % fold)
    throw new Error(`mlaDecode (int8, subgroup-matrix): ${products} P x V products a subgroup in rounds of ${fold}`);
  const kvSlots = v.kvSlots ?? false;
  if (kvSlots && !(wide && v.pvAhead))
    throw new Error('mlaDecode (int8, subgroup-matrix): kvSlots needs wide and pvAhead');
  const slotSets = wide && !kvSlots ? 1 : 2;
  // Sets of slots in sc (kvSlots: the second is in kv).
  const scSets = kvSlots ? 1 : slotSets;
  if (wide && !queryResident) throw new Error('mlaDecode (int8, subgroup-matrix): wide needs the quarter layout');
  // scores: [HW heads, TT tokens] tiles of partial dot products, 2 parities each of c_kv and k_pe (the
  // parity layout), or 4 quarters of c_kv and 2 parities of k_pe (the quarter layout); P x V: 2 x fold
  // slots x NS subgroups x 256 words (the same words).
  // lazy: P in two digits, hi then lo ([HW heads, TT / 4 words] each).
  const lazy = v.lazy ?? false;
  if (lazy && !(wide && (v.foldSpread ?? true) && !v.pvAhead && !kvSlots && !v.maxAhead))
    throw new Error(
      'mlaDecode (int8, subgroup-matrix): lazy needs wide and foldSpread, without pvAhead, kvSlots or maxAhead',
    );
  if (lazy && v.skip?.some((st) => st !== 'scores' && st !== 'stage'))
    throw new Error('mlaDecode (int8, subgroup-matrix): lazy leaves out only the scores or the staging');
  if (lazy && v.lazySRef1 && v.lazySRefAtomic)
    throw new Error('mlaDecode (int8, subgroup-matrix): lazySRef1 and lazySRefAtomic are two forms of s_ref, not both');
  if (lazy && v.lazyMultiply && !v.lazyEvery)
    throw new Error('mlaDecode (int8, subgroup-matrix): lazyMultiply needs lazyEvery (empty accumulators each block)');
  const lazyTau = v.lazyTau ?? 1;
  if (!(lazyTau >= 0 && lazyTau <= 8))
    throw new Error(`mlaDecode (int8, subgroup-matrix): lazyTau in [0, 8], got ${lazyTau}`);
  const PWW = HW * (TT / 4) * (lazy ? 2 : 1);
  const KVW = TT * L.RW;
  const bytesFor = (SS: number) =>
    4 * (Math.max((queryResident ? 6 : 4) * HW * SS, scSets * fold * NS * 256) + PWW + KVW) + 2 * 16 * (HW / 4);
  // Padded score tiles by default where the 3 KiB more fit (they do at the 48B shapes on 48 KiB).
  const SS = (v.scorePad ?? bytesFor(TT + 4) <= maxSharedBytes) ? TT + 4 : TT;
  const SCW = Math.max((queryResident ? 6 : 4) * HW * SS, scSets * fold * NS * 256);
  if (kvSlots && fold * NS * 256 > KVW)
    throw new Error(`mlaDecode (int8, subgroup-matrix): kvSlots needs ${fold * NS * 256} words of kv, it has ${KVW}`);
  const sharedBytes = bytesFor(SS);
  if (sharedBytes > maxSharedBytes) {
    throw new Error(
      `mlaDecode (int8, subgroup-matrix): rows of R=${R} need ${sharedBytes} bytes of workgroup memory, the device allows ${maxSharedBytes}`,
    );
  }
  return {
    ...L,
    H,
    NG,
    HP: HW * NG,
    TT,
    HW,
    MH,
    NS,
    WG: 32 * NS,
    wide,
    HT: HW / NS,
    slotSets,
    kvSlots,
    stageSpread: v.stageSpread ?? false,
    pvAhead: v.pvAhead ?? false,
    maxAhead: v.maxAhead ?? false,
    fold,
    LK2: L.LWp / 16,
    RK2: L.RWp / 16,
    NCF,
    CFS: NCF / NS,
    qRegs: queryResident || (v.qRegs ?? false),
    queryResident,
    prefetch: v.prefetch ?? HW === 32,
    foldBarrier: v.foldBarrier ?? true,
    SS,
    foldSpread: v.foldSpread ?? true,
    skip: SGM_STAGES.filter((st) => v.skip?.includes(st)),
    lazy,
    lazyTau,
    lazyFlush: v.lazyFlush ?? true,
    lazyEvery: v.lazyEvery ?? false,
    lazyBarrier: v.lazyBarrier ?? false,
    lazyMultiply: v.lazyMultiply ?? false,
    lazySRef1: v.lazySRef1 ?? false,
    lazySRefAtomic: v.lazySRefAtomic ?? false,
    lazyNoDither: v.lazyNoDither ?? false,
    lazyOneDigit: v.lazyOneDigit ?? false,
    lazyPwFirst: v.lazyPwFirst ?? false,
    lazyLoArray: v.lazyLoArray ?? false,
    lazyAlign: v.lazyAlign ?? true,
    poolRw: v.poolRw ?? false,
    variant: v.variant,
    SCW,
    PWW,
    KVW,
    sharedBytes,
  };
}

export function mlaInt8SgmKey(p: MlaInt8SgmPlan): string {
  return `mla_int8_sgm_h${p.H}_r${p.R}_rv${p.Rv}_hw${p.HW}_f${p.fold}_${p.variant.syntax}_${p.variant.units}${p.queryResident ? '_qres' : p.qRegs ? '_qr' : ''}${p.prefetch ? '_pf' : ''}${p.foldBarrier ? '' : '_racy'}${p.foldSpread ? '_fs' : ''}${p.wide ? '_wide' : ''}${p.stageSpread ? '_sts' : ''}${p.pvAhead ? '_pva' : ''}${p.maxAhead ? '_mxa' : ''}${p.kvSlots ? '_kvs' : ''}${p.SS !== p.TT ? `_ss${p.SS}` : ''}${p.lazy ? `_lazy${p.lazyTau}${p.lazyFlush ? '' : '_noflush'}${p.lazyEvery ? '_every' : ''}${p.lazyBarrier ? '_bar' : ''}${p.lazyMultiply ? '_mul' : ''}${p.lazySRef1 ? '_sref1' : ''}${p.lazySRefAtomic ? '_srefat' : ''}${p.lazyNoDither ? '_nodither' : ''}${p.lazyOneDigit ? '_1digit' : ''}${p.lazyPwFirst ? '_pwfirst' : ''}${p.lazyLoArray ? '_loarr' : ''}${p.lazyAlign ? '' : '_noalign'}` : ''}${p.skip.map((st) => `_no${st}`).join('')}${p.poolRw ? '_poolrw' : ''}`;
}

/** A runtime role of a subgroup in S: (sgi / div) % mod, named for the affine offsets. */
export interface SgmRole {
  name: string;
  div: number;
  mod: number;
}

/**
 * The S roles of the two layouts (the header of this file): parity (half, mh, nt from sgi) or quarter
 * (kq: c_kv K quarter, mh; for k_pe the parity rp and the token half rn, both from kq).
 */
export function sgmRoles(p: MlaInt8SgmPlan): SgmRole[] {
  const MH = p.MH;
  // wide: the token half nt from the subgroup index too; k_pe parity rp = kq (subgroups kq < 2), token half rn = nt.
  if (p.wide)
    return [
      { name: 'kq', div: 1, mod: 4 },
      { name: 'mh', div: 4, mod: MH },
      { name: 'nt', div: 4 * MH, mod: 2 },
      { name: 'rp', div: 1, mod: 2 },
      { name: 'rn', div: 4 * MH, mod: 2 },
    ];
  if (p.queryResident)
    return [
      { name: 'kq', div: 1, mod: 4 },
      { name: 'mh', div: 4, mod: MH },
      { name: 'rp', div: 1, mod: 2 },
      { name: 'rn', div: 2, mod: 2 },
    ];
  return [
    { name: 'half', div: 2 * MH, mod: 2 },
    { name: 'mh', div: 2, mod: MH },
    { name: 'nt', div: 1, mod: 2 },
  ];
}

export function sgmRoleEnv(p: MlaInt8SgmPlan, sgi: number): Record<string, number> {
  const env: Record<string, number> = { sgi };
  for (const r of sgmRoles(p)) env[r.name] = Math.floor(sgi / r.div) % r.mod;
  return env;
}

export function sgmRoleWgsl(r: SgmRole): string {
  return `let ${r.name} = (sgi / ${r.div}u) % ${r.mod}u;`;
}

/** S: one accumulator of a subgroup: its products (index into `query`, key fragment) and its tile in sc. */
export interface SgmAcc {
  part: 'L' | 'R';
  products: { q: number; k: Frag }[];
  store: Frag;
  /** Only the subgroups whose role `role` is below `below` compute it (wide: k_pe in subgroups kq < 2). */
  guard?: { role: string; below: number };
}

/**
 * The fragment accesses. Runtime names: b (sequence), g (head group), sgi (subgroup), the S roles
 * (sgmRoles). qr: the query rows [B, HP, RW]; kv: the staged rows [TT, RW]; sc, pw as above.
 */
export function sgmFrags(p: MlaInt8SgmPlan) {
  const RW = p.RW;
  const { HW, SS } = p;
  const qRow: Aff = { b: p.HP * RW, g: HW * RW, mh: 16 * RW };
  // P x V fragments of a subgroup in round order: value fragment j, head half m.
  const frags = Array.from({ length: p.CFS * p.MH }, (_, i) => ({ j: Math.floor(i / p.MH), m: i % p.MH }));
  const tile = HW * SS;
  // Score partials: c_kv then k_pe, a [HW heads, TT tokens] row-major tile per partial.
  const partials = { L: p.queryResident ? 4 : 2, R: 2 };
  const partialBase = (part: 'L' | 'R', par: number) => (part === 'R' ? partials.L : 0) * tile + par * tile;
  // Quarter layout: c_kv step 4j + kq, k_pe step 2j + rp (steps of 32 channels = 8 words).
  const qL4 = (j: number): Frag => ({ offset: { ...qRow, kq: 8, '': 32 * j }, stride: RW, colMajor: false });
  const qR4 = (j: number): Frag => ({ offset: { ...qRow, rp: 8, '': p.LWp + 16 * j }, stride: RW, colMajor: false });
  const kL4 = (nt: number, j: number): Frag => ({
    offset: { kq: 8, '': nt * 16 * RW + 32 * j },
    stride: RW,
    colMajor: true,
  });
  const kR4 = (j: number): Frag => ({ offset: { rn: 16 * RW, rp: 8, '': p.LWp + 16 * j }, stride: RW, colMajor: true });
  const f = {
    /** S (parity layout): query fragment of c_kv step 2j + half (part 'L') or k_pe step (part 'R'), row-major. */
    q: (part: 'L' | 'R', j: number): Frag => ({
      offset: { ...qRow, half: 8, '': (part === 'R' ? p.LWp : 0) + 16 * j },
      stride: RW,
      colMajor: false,
    }),
    /** S (parity layout): the 16 staged rows of token half nt, the same channels, column-major (a column = a row of kv). */
    k: (part: 'L' | 'R', j: number): Frag => ({
      offset: { nt: 16 * RW, half: 8, '': (part === 'R' ? p.LWp : 0) + 16 * j },
      stride: RW,
      colMajor: true,
    }),
    /** S (parity layout): where the subgroup's c_kv / k_pe tile of [heads, tokens] goes in sc (row-major). */
    score: (part: 'L' | 'R'): Frag => ({
      offset: { '': partialBase(part, 0), half: tile, mh: 16 * SS, nt: 16 },
      stride: SS,
      colMajor: false,
    }),
    /** softmax: partials of each part's dot products (summed as integers: exact in any order). */
    partials,
    /** softmax: word of sc holding the part's partial `par` of the dot product for head h, token t. */
    scoreWord: (part: 'L' | 'R', par: number, h: number, t: number) => partialBase(part, par) + h * SS + t,
    /** softmax: word of pw holding P8 of head h, tokens 4 q .. 4 q + 3. */
    pWord: (h: number, q: number) => h * (p.TT / 4) + q,
    /** P x V: P8 of head half m, row-major [16 heads, TT tokens] (lazy: digit 1 is lo, after the HW heads' hi). */
    pLeft: (m: number, digit = 0): Frag => ({
      offset: { '': (16 * m + digit * p.HW) * (p.TT / 4) },
      stride: p.TT / 4,
      colMajor: false,
    }),
    /** P x V: value columns of fragment cf = CFS sgi + j of the staged rows, row-major [TT tokens, 16]. */
    v: (j: number): Frag => ({ offset: { sgi: 4 * p.CFS, '': 4 * j }, stride: RW, colMajor: false }),
    /** P x V: slot k of round r of the subgroup in sc (i32 row-major [16 heads, 16 columns]). */
    slot: (r: number, k: number): Frag => ({
      offset: { '': ((p.slotSets === 2 && !p.kvSlots ? (r & 1) * p.fold : 0) + k) * p.NS * 256, sgi: 256 },
      stride: 16,
      colMajor: false,
    }),
    /** P x V: the array round r's slots are in (kvSlots: odd rounds in kv). */
    slotArray: (r: number): 'sc' | 'kv' => (p.kvSlots && r & 1 ? 'kv' : 'sc'),
    /**
     * P x V fold: element e (< 8) of a lane's share of a slot, as (row = head of the head half, col = value
     * column of the fragment); its word in the slot is 16 row + col (foldSpread: lane + 32 e).
     */
    foldLane: (lane: number, e: number) =>
      p.foldSpread ? { row: 2 * e + (lane >> 4), col: lane & 15 } : { row: lane & 15, col: 8 * (lane >> 4) + e },
    /** P x V: rounds of `fold` fragments (value fragment j of the subgroup, head half m) and a barrier. */
    rounds: (p.CFS * p.MH) / p.fold,
    roundFrags: (r: number) => frags.slice(r * p.fold, (r + 1) * p.fold),
  };
  const steps = (n: number) => Array.from({ length: n }, (_, j) => j);
  const LQ = p.LK2 / 2;
  /** S: the subgroup's query fragments, loop-invariant (one subset per subgroup in either layout). */
  const query: Frag[] = p.queryResident
    ? [...steps(LQ).map(qL4), ...steps(p.RK2).map(qR4)]
    : [...steps(p.LK2).map((j) => f.q('L', j)), ...steps(p.RK2).map((j) => f.q('R', j))];
  /** S: the subgroup's accumulators in the order they are computed. */
  const accs: SgmAcc[] = p.wide
    ? [
        {
          part: 'L',
          products: steps(LQ).map((j) => ({
            q: j,
            k: { offset: { kq: 8, nt: 16 * RW, '': 32 * j }, stride: RW, colMajor: true },
          })),
          store: { offset: { kq: tile, mh: 16 * SS, nt: 16 }, stride: SS, colMajor: false },
        },
        {
          part: 'R',
          products: steps(p.RK2).map((j) => ({ q: LQ + j, k: kR4(j) })),
          store: { offset: { '': partialBase('R', 0), rp: tile, mh: 16 * SS, rn: 16 }, stride: SS, colMajor: false },
          guard: { role: 'kq', below: 2 },
        },
      ]
    : p.queryResident
      ? [
          ...[0, 1].map(
            (nt): SgmAcc => ({
              part: 'L',
              products: steps(LQ).map((j) => ({ q: j, k: kL4(nt, j) })),
              store: { offset: { kq: tile, mh: 16 * SS, '': 16 * nt }, stride: SS, colMajor: false },
            }),
          ),
          {
            part: 'R',
            products: steps(p.RK2).map((j) => ({ q: LQ + j, k: kR4(j) })),
            store: { offset: { '': partialBase('R', 0), rp: tile, mh: 16 * SS, rn: 16 }, stride: SS, colMajor: false },
          },
        ]
      : (['L', 'R'] as const).map((part) => ({
          part,
          products: steps(part === 'L' ? p.LK2 : p.RK2).map((j) => ({
            q: (part === 'R' ? p.LK2 : 0) + j,
            k: f.k(part, j),
          })),
          store: f.score(part),
        }));
  return { ...f, query, accs };
}
