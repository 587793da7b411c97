/**
 * The int8 cache's decode on f16 tensor cores (`int8Kernel: 'f16'`, decodeInt8F16.wgsl.ts): the layout the kernel,
 * its emulation (int8F16Emulate.ts) and the host side share. One workgroup of 256 threads (8 subgroups of 32) takes
 * one chunk of one sequence for 32 heads (a head group g), in blocks of TB = 16 tokens.
 *
 * Values. Each staged cache row is its int8 codes times their part's scale, rounded to f16 (c_kv and k_pe alike:
 * the per-token scales go into the operand, so one product gives the whole score and the same staged rows are the
 * values of P x V). The query is q * scale * log2(e) in f16 (int8F16QueryWgsl). So for head h, token t:
 *   s = sum_c q16[h, c] k16[t, c]                      (f16 x f16 -> f32 on the tensor cores)
 *   p = f16(2^(s - mRef[h])), l += p, O[h] += p k16[t, :Rv]
 * with mRef a lazy running max (int8F16Reference.ts): set by the chunk's first block, raised only when a block's
 * max exceeds it by more than tau (log2 units), so p <= 2^tau stays inside f16 and O is rescaled rarely.
 *
 * Workgroup memory (f16 and f32 arrays, each a multiple of 16 bytes; fragment loads from 16-byte aligned offsets):
 *   kv    2 x TB rows of KS = R + 8 f16 (two buffers: block n is read while block n + 1 is staged; rows 16 bytes
 *         longer than a multiple of 128 so a fragment's rows fall on different banks, as outputTc16's pad)
 *   part  8 tiles of 16 x 16 f32: the scores' partial products of subgroup sgi = 2 kq + mh (K quarter kq, head
 *         half mh); also each subgroup's scratch tile for the rescale and the chunk's output
 *   pw    P [32 heads][PS = TB + 8] f16
 *   alpha the block's rescale factor per head; flag [4] u32 (flag[0]: some head rescales this block)
 * At the 48B shapes (R 576): 37376 + 8192 + 1536 + 128 + 16 = 47248 bytes.
 *
 * Measured (H200, 48B shapes, batch 1, int8 cache; bench/results/2026-12-02-h200-s12-mlaf16-run{1,2,3}-*, the
 * defaults: rows staging, two blocks ahead, 132 chunks): 0.704 ms a layer at 1M (kernel 0.699; the default int8
 * tensor-core kernel 1.07 in the same sitting), 0.026 ms at 4K (0.031), 0.63 at 128K in a bursty row (the int8
 * kernel's read 0.90 there, 0.18 in earlier sessions: not a clean comparison); hybrid TPOT at 1M 8.52 ms with it
 * (bench decode --mla-int8-kernel f16, --unsafe-apis --f16) against 11.19 with the int8 kernel, 3.754 at 4K
 * (3.739). Outputs within 7.5e-6 of max |o| of this scheme's reference (int8F16Reference.ts), 3.5e-3 of the int8
 * reference, 2.8e-3 of f32 attention over the rows (the int8 reference: 4.6e-3) at 4K. Stage diagnostics at 1M
 * (words staging, two ahead, 264 chunks: 1.03 ms): without the staging 0.39, the staging alone 0.90, the loop and
 * its barriers alone 0.12: the staging's loads were the limit; rows cut its dependent page-table look-ups from 9
 * to 1 a thread a block.
 * Thirteenth session (bench/results/2026-12-02-h200-s13-attn-s{1,2}-*): 0.694 ms a layer at 1M with the merge's loads
 * four chunks at a time (mergeLoads, now the default: mla_merge 0.0187 -> 0.0133), 0.113 at 128K, 0.0276 at 4K (bench
 * mla, query + kernel + merge); in the decode step's profile at 1M 0.697 + 0.009 (query) + 0.014 (merge) a layer.
 * Tried and slower or even at 1M: store swizzle 0.761, qFold 0.705 (even), 264 chunks 0.711-0.728, qPerBlock at 264
 * chunks 2.31, ahead 1 1.40, 512 threads (`wide`) 1.17. The f16 output matches the int8 tensor-core kernel's within
 * 3.8e-3 of max |o| at 128K and 1M (the int8 reference itself runs at 4K only: 3.5e-3).
 * Fourteenth session (bench/results/2026-12-02-h200-s14-mla-s{1,2}-*, bench mla at 1M, query + kernel + merge; the
 * default 0.696-0.699 in both sittings): nothing beat the default, which stays. convert half 0.701, bits 0.709; ahead
 * 4 0.704, ahead 3 1.097; pageAhead 0.712 (with half 0.725); hybrid TPOT at 1M (median step) 8.32-8.36 ms default,
 * 8.34 half, 8.39 bits, 8.47 pageAhead, 8.55 pageAhead + half. Stage diagnostics: the staging alone (scores,
 * softmax, P x V left out) 0.577 (half 0.566, bits 0.594, pageAhead 0.498), without the staging 0.387, the loop's
 * skeleton (all four left out) 0.117 and 0.053 without the rescale flag's barriers (skip rescale; in the full
 * kernel skip rescale saves 0.01-0.02). Without bounds clamps (--disable-robustness, unsafe: a diagnostic) the
 * default 0.625-0.631 and convert half 0.578-0.579: the clamps cost 0.07 and keep half's packed results from paying
 * off. The safe toggles enable_integer_range_analysis_in_robustness + vulkan_use_buffer_robust_access_2 change
 * nothing (0.699). So the conversion units are not the limit (half removes them and gains nothing with clamps), nor
 * bytes in flight (ahead 4), nor the page table's dependent load in the full kernel (pageAhead).
 * Fifteenth session (bench/results/2026-12-02-h200-s15-mla3-s{1,2}-*): the clamps were Tint's robustness on the
 * workgroup arrays, kept because the indices went through shifts and masks (lid >> 4, lid & 15), which its integer
 * range analysis does not follow; written with +, x and / of lid (rangeIdx, now the default) they are proved in
 * bounds and dropped (the SPIR-V's UMin clamps 61 -> 5 at R 192, the rest outside the block loop), with Dawn's
 * default toggles. bench mla at 1M (query + kernel + merge): 0.566-0.571 ms a layer with rangeIdx and convert half
 * (the new default) against 0.693-0.696 for the fourteenth session's default in the same sittings, rangeIdx with
 * cvt 0.628-0.632, with bits 0.640; ahead 4 0.560-0.565 (even), pageAhead 0.574, 264 chunks 0.590; 128K 0.099.
 * Without any clamps (--disable-robustness) rangeIdx + half runs 0.583: nothing left to gain there. Hybrid TPOT at
 * 1M (median step) 7.412-7.415 ms against 8.324-8.344 (A/B/A/B), all-MLA / hybrid 2.54x; bench decode --check at
 * 4K: tokens equal. Stage diagnostics of the new default at 1M: the staging alone 0.500, without it 0.356, the
 * loop's skeleton 0.117, without the rescale flag's second barrier (skip rescale) 0.534, without P x V 0.536,
 * without the scores 0.512.
 */
import { int8RowLayout } from './int8Layout.js';

/**
 * Stages a diagnostic leaves out (wrong results; to see what the block's time is made of). 'rescale': barrier C a
 * plain barrier instead of workgroupUniformLoad(flag) (two), no rescale path (wrong only where a max rises past tau).
 */
export const F16_STAGES = ['scores', 'softmax', 'stage', 'pv', 'rescale'] as const;
/**
 * 'stores' (rows staging, not wide; a diagnostic apart from F16_STAGES): the staging's f16 stores cut to one a word
 * (its four values summed into channel 0's: the loads and conversions kept, 3 of 4 stores gone), to see what the
 * stores themselves cost (the case for rowSwap's bank parity).
 */
export type F16Stage = (typeof F16_STAGES)[number] | 'stores';

export interface MlaInt8F16Options {
  /** Lazy max threshold in log2 units (p <= 2^tau; f16 holds up to 65504): default 14. */
  tau?: number;
  /** Diagnostics: stages left out. */
  skip?: F16Stage[];
  /** Chunks per sequence (default defaultF16Chunks). */
  chunks?: number;
  /**
   * How a block's codes are staged. 'rows' (default): thread lid takes row lid / 16 and its u32 words lid % 16 + 16 n
   * (4 codes each; needs TB x 16 = 256 threads), so it looks its row up in the page table and loads its two scales
   * once a block. 'words': thread i a u32 word i + 256 n of the block, each word with its own page-table look-up
   * (a load the pool load depends on) and scale load. 'vec4': a thread 16 codes, its 16 f16 stores lanes 32 bytes
   * apart (8-way on the banks; WGSL cannot store two f16 at once into the array<f16> the fragments load from).
   * H200, 1M, 48B shapes, ahead 2, 132 chunks (third sitting): rows 0.704 ms a layer, vec4 1.293, words 1.026
   * (264 chunks); with ahead 1 words 1.332 and in the first sitting vec4 1.70 (its staging alone 1.33).
   */
  stage?: 'words' | 'vec4' | 'rows';
  /** The next block's codes loaded at the block's top (default) or just before they are staged. */
  prefetch?: boolean;
  /** The query's fragments loaded from storage for every block instead of held in registers (fewer registers). */
  qPerBlock?: boolean;
  /**
   * Blocks fetched ahead (with prefetch): 1, or 2 (default: two register sets, the loop unrolled by two). The second
   * sitting's stage diagnostics had the staging alone at ~0.8 of ~1.35 ms at 1M with one block of loads in flight
   * an SM (~9.5 KB at one workgroup an SM: too few bytes to cover the memory latency); with two, words staging
   * 1.33 -> 1.03 ms a layer, and rows 0.70 (third sitting). Without prefetch 1.58. 3 and 4 (fourteenth session:
   * block n's codes in set n % ahead, the loop unrolled by ahead; odd ahead alternates the kv buffers through a
   * variable): 1.097 and 0.704 against 0.697 at 1M (bench/results/2026-12-02-h200-s14-mla-s1-sweep.json).
   */
  ahead?: 1 | 2 | 3 | 4;
  /**
   * How a staged word's four int8 codes become f16 (rows staging). 'cvt' (the default before the fifteenth session,
   * still that of words, vec4, wide and swizzle): shifted to i32, converted to f32, times the f32 scale, converted to f16: two conversions a code, and the H200's conversion units do 16 an SM a
   * clock (a block's 9216 codes: ~1150 clocks, near the whole staging cost the stage diagnostics measured). 'bits':
   * the same values without the int -> float conversion (the code + 128 as the low mantissa byte of 2^23, minus
   * 2^23 + 128: exact) and the f32 -> f16 roundings two at a time (pack2x16float): bit-identical to 'cvt'. 'half':
   * all in packed f16 arithmetic: code + 1152 from the bits 0x6400 | (code + 128) (exact: ulp 1 in [1024, 2048)),
   * minus 1152, times the scale rounded to f16, two channels an operation; the staged value is
   * f16(code x f16(scale)), at most one f16 ulp from 'cvt' where the scale is an f16 normal (>= 2^-14); the scale's
   * rounding moves a row part's scores together (4K device check: 9.3e-6 of max |o| from its scheme, 3.42e-3 from
   * the int8 reference against 3.47e-3 for cvt; tokens equal in bench decode --check).
   * H200, 1M (bench/results/2026-12-02-h200-s14-mla-s1-*): half 0.701, bits 0.709 against 0.697 ms a layer; the
   * staging alone 0.566 / 0.594 / 0.577. Without bounds clamps (--disable-robustness, unsafe) half 0.578 against
   * 0.625: with the clamps on every f16 store the packed results do not pay off. Fifteenth session: with rangeIdx (no
   * clamps) half 0.566 against cvt 0.628 and bits 0.640, so half is the default of rows staging
   * (MLA_INT8_F16_CONVERT; words, vec4, wide and swizzle keep cvt).
   */
  convert?: 'cvt' | 'bits' | 'half';
  /**
   * Rows staging with prefetch: the page-table look-up of each fetched row a block before its codes are loaded (a
   * register rn), so the block's top issues its pool loads at once instead of waiting for the page table's load
   * first (a dependent load every warp of the workgroup waited on together, once a block). Same values.
   * H200, 1M (bench/results/2026-12-02-h200-s14-mla-s2-*): slower, 0.712 against 0.698 ms a layer (hybrid TPOT 8.47
   * against 8.36), though the staging alone gains (0.498 against 0.577): in the full kernel the look-up's latency
   * was already hidden, and the kept register or the changed schedule costs more.
   */
  pageAhead?: boolean;
  /**
   * Rows staging: threads of odd rows store their four f16 in the order z, w, x, y (exact; only the order of the
   * stores changes). A warp stages two rows KS f16 apart (an odd multiple of 16 bytes: the banks shift by 4), so with
   * one order its 32 lanes' 2-byte stores fall on the 16 even (or odd) banks twice; with the rows' orders swapped
   * one row takes the even banks and the other the odd ones. Measured slower (H200, 1M: 0.761 ms a layer against
   * 0.697-0.704; bench/results/2026-12-02-h200-s13-attn-s1-mla.json): the selects cost more than the conflicts.
   */
  swizzle?: boolean;
  /**
   * The query's f16 rows made inside the kernel (no query kernel): each workgroup reads q [B, H, R] f32, stages
   * f16(q c) (c = scale log2 e, the uniforms' spare word) for its 32 heads in the kv buffers at stride KS, loads
   * its fragments from there into registers, then stages the cache as before. Exact (the query kernel's rounding).
   * Not with qPerBlock (the fragments would be reloaded from kv after it holds cache rows). Measured even (H200,
   * 1M: 0.705 ms a layer in all against 0.697-0.704 with the query kernel's 0.0095): one dispatch less a layer.
   */
  qFold?: boolean;
  /**
   * 512 threads (16 subgroups) a workgroup (decodeInt8F16Wide.wgsl.ts): twice the subgroups an SM to hide each
   * phase's latency with the same registers in all (a subgroup holds 4 O tiles, not 8). Scores in 16 x 8 tiles
   * (subgroup (kq, mh, nh): K quarter, head half, token half), softmax a token a thread, a row's 144 words staged by
   * one subgroup (32 lanes, 4-5 words each), P x V Rv / 256 column tiles a subgroup. Needs Rv a multiple of 256; rows
   * staging, prefetch, the query in registers. Correct on the H200 (7.5e-6 of this scheme's reference at 4K) but
   * slower: 1.172 ms a layer at 1M (1.249 with swizzle, 1.226 with qFold too, 1.279 at 264 chunks) against 0.70.
   */
  wide?: boolean;
  /**
   * The merge's loads in flight a lane (merge.wgsl.ts `loads`; bit-identical): default MLA_INT8_F16_MERGE_LOADS (4).
   * H200, 48B shapes (bench/results/2026-12-02-h200-s13-attn-s1-*): mla_merge 0.0187 -> 0.0144 ms at 1M, 0.018 ->
   * 0.0126 at 4K, 0.0135 at 128K; hybrid TPOT 8.465 / 4.327 / 3.723 ms at 1M / 128K / 4K against 8.506 / 4.358 /
   * 3.749-3.762 with 1.
   */
  mergeLoads?: number;
  /**
   * Workgroup-memory indices of the block loop (the staging's f16 stores, the softmax's part loads, its pw and alpha
   * stores) written in forms Tint's integer range analysis can bound: sums, products and quotients of
   * local_invocation_index and constants (row lid / 16 and word 4 lid + (KS - 64)(lid / 16) instead of lid >> 4 and
   * lid & 15; the analysis takes no shifts or masks), so with the safe Dawn toggle
   * enable_integer_range_analysis_in_robustness Tint proves them in bounds and emits no clamp (a min and the address
   * arithmetic it forces on each of the ~36 f16 stores a thread makes a block). The npm webgpu's Dawn runs the
   * analysis without the toggle too (its SPIR-V dump on lavapipe: 61 UMin clamps -> 5 at R 192, none left in the
   * block loop's staging and softmax). Same values, same stores. The kv buffer must be a constant (ahead 2 or 4:
   * even) for the staging's stores to lose theirs. Default where it applies (rows staging, not wide, not swizzle);
   * not with swizzle or the words / vec4 staging. H200, 1M (bench/results/2026-12-02-h200-s15-mla3-s1-*): 0.628-0.630
   * against 0.692-0.693 ms a layer (cvt), with convert half 0.566 (the new default), hybrid TPOT 7.86 / 7.41 (half)
   * against 8.32-8.34 ms.
   * What is left (lavapipe's SPIR-V dump at R 192, the default): 5 UMin, 4 of them clamps in the subgroup-matrix
   * stand-ins (subgroupMatrixStub.ts), the fifth the chunk entry's own min(T, t0 + chunkLen); none on the pool, the
   * page table or the uniforms (storage is not clamped here). The real
   * subgroupMatrixLoad / Store are not clamped but predicated (Tint's robustness wraps each in an if of offset +
   * 15 stride + 16 <= length), skipped only where offset, stride and length are all constants: the range analysis
   * does not apply to them, so no index form removes it (per-subgroup offsets would need a switch on sgi);
   * --disable-robustness (no predicates either) measured no faster (0.583).
   */
  rangeIdx?: boolean;
  /**
   * Rows staging with rangeIdx (a fifteenth-session candidate, opt-in): odd rows' f16 stores in the order of channels
   * 2, 3, 0, 1 (the word rotated by 16 bits, the store offsets swapped: rowsStageWgsl), so a warp's two rows
   * (KS f16 apart, KS / 2 = 4 mod 32 words: the banks shift by 4 and keep their parity) store into the even and the
   * odd banks at each of a word's four stores instead of both into the same half of them (2-way conflicts on each of
   * the ~36 f16 stores a thread makes a block). The thirteenth session's `swizzle` did the same with a select of
   * four channels and xor'ed offsets (clamped: xor defeats the range analysis); here the offsets are sums of lid /
   * 16 terms and (lid / 16) % 2, which the analysis bounds (no clamps: lavapipe's SPIR-V dump), a select and a
   * rotate a word, and 4-byte pairs (channels 2k, 2k + 1) stay together. Same values, same places (checked bit for
   * bit against the default's staging on lavapipe: test/mla-int8-f16-s15c.test.ts). Measured slower (sixteenth
   * session, bench mla at 1M, the first rows of the sweep: 0.594 / 0.595 ms a layer against the default's 0.565 /
   * 0.566; with ahead 4 0.608, with cvt 0.618; bench/results/2026-12-03-h200-s16-lead1-mla-s15c.json, whose later
   * rows ran on a GPU slowed ~4x mid-sweep and are not comparisons): off.
   */
  rowSwap?: boolean;
  /**
   * The latent cache the kernel reads: 'int8' (default: codes and per-token scales, int8Layout.ts) or 'f16' (the f16
   * cache, f16Layout.ts: rows of f16 already, i32 [pages, pageSize, R / 2]). f16: each row copied to workgroup memory
   * as it is, no conversion and no scales: thread lid takes row lid / 16 and its vec4 (8 channels) colW + 16 n
   * (n < ceil(R / 128); at R 576 72 vec4 a row, the fifth only for colW < 8), one page-table look-up a block, two
   * blocks ahead as the int8 rows staging; each vec4 bitcast to 8 f16 and stored as 8 scalar f16 stores (WGSL stores
   * no vectors into the array<f16> the fragments load from). Rows staging only (not wide, swizzle, rowSwap or
   * pageAhead); convert does not apply. The query is the same f16 q * scale * log2(e) (int8F16QueryWgsl). Defaults
   * of the f16 cache (MLA_F16_CACHE_DEFAULTS): f16Rotate and ahead 4, its fastest measured form.
   * Measured (H200, 48B shapes, batch 1, bench/results/2026-12-03-h200-s16-f16c-s{1,2}-*; query + kernel + merge):
   * SLOWER than the int8 cache on this kernel: 0.796-0.798 ms a layer at 1M (ahead 2), f16Rotate 0.790-0.793, ahead
   * 4 0.794, f16Rotate + ahead 4 0.784-0.786, against the int8 rows' 0.567-0.568 in the same sittings; 4K even
   * (0.0264-0.0266 against ~0.027). Stage diagnostics at 1M: the f16 staging alone 0.568 (f16Rotate 0.559, with ahead
   * 4 0.549) against the int8 rows' 0.500 (fifteenth session), without the staging 0.356 (the same as int8's): a row
   * is twice the bytes (1152 against 592) and the copy saves only the conversions, so the loads stay the limit, and
   * the staging overlaps the products less (0.57 + 0.36 -> 0.79 against int8's 0.50 + 0.36 -> 0.57). Hybrid TPOT at
   * 1M (median step, --steps 32): 9.00-9.02 ms (ahead 2), 8.95 f16Rotate, 9.01 ahead 4, 8.93 f16Rotate + ahead 4,
   * against int8's 7.35-7.40; 128K 4.20 against 4.00; 4K 3.51 against 3.53. Outputs at 4K: 8.3e-6 of max |o| from
   * this scheme's reference (int8F16Reference.ts, cache 'f16'), 1.9e-4 from f32 attention over the f16 values, 2.5e-4
   * from f32 attention over the rows before rounding (the int8 cache on this kernel: 2.8e-3, twelfth session);
   * bench decode --check at 4K tokens equal.
   */
  cache?: 'int8' | 'f16';
  /**
   * f16 cache: a thread's 8 f16 stores of a vec4 in an order rotated by t = colW / 8 + 2 (row % 2) words (the vec4
   * rotated by two selects, the store offsets 2 ((k + t) % 4) + 0 / 1), so a warp's 32 lanes (two rows of 16 vec4,
   * 16 bytes apart) store into 32 different banks at each store instead of 8 (the same word k of 16-byte apart vec4
   * always falls in banks 4 c + k: 4-way conflicts). Same values, same places. The f16 cache's default
   * (MLA_F16_CACHE_DEFAULTS): 0.790-0.793 against 0.796-0.798 ms a layer at 1M (staging alone 0.559 against 0.568).
   */
  f16Rotate?: boolean;
}

export interface MlaInt8F16Plan {
  H: number;
  R: number;
  Rv: number;
  /** Head groups of 32 and heads padded to them. */
  NG: number;
  HP: number;
  /** Cache row words, the scales' word, latent code words, vec4 of codes a row (R / 16). */
  RW: number;
  SW: number;
  LC: number;
  NCV: number;
  /** Tokens a block, threads a workgroup. */
  TB: number;
  WG: number;
  /** f16 stride of a staged row, of a P row. */
  KS: number;
  PS: number;
  /** K steps of 16 channels (R / 16) and a quarter's (R / 64). */
  KST: number;
  KPQ: number;
  /** Value column tiles of 16 a subgroup (Rv / 128), for each head half. */
  CPS: number;
  /** Staging items (u32 or vec4 of codes) a block and register slots a thread; items a row. */
  items: number;
  slots: number;
  rowItems: number;
  stage: 'words' | 'vec4' | 'rows';
  prefetch: boolean;
  qPerBlock: boolean;
  ahead: 1 | 2 | 3 | 4;
  convert: 'cvt' | 'bits' | 'half';
  pageAhead: boolean;
  swizzle: boolean;
  qFold: boolean;
  wide: boolean;
  /** wide: value column tiles of 16 a subgroup (Rv / 256), for each head half. */
  CPW: number;
  mergeLoads: number;
  rangeIdx: boolean;
  rowSwap: boolean;
  cache: 'int8' | 'f16';
  f16Rotate: boolean;
  tau: number;
  skip: F16Stage[];
  /** Workgroup memory in bytes. */
  sharedBytes: number;
}

export const MLA_INT8_F16_TB = 16;
export const MLA_INT8_F16_MERGE_LOADS = 4;
export const MLA_INT8_F16_TAU = 14;
/**
 * The default convert of rows staging (not wide, not swizzle): 'half' since the fifteenth session, where with
 * rangeIdx (no clamps on its stores) it pays: 0.566 against 0.629 ms a layer at 1M (rangeIdx with cvt), hybrid
 * TPOT 7.39-7.41 against 7.86 ms (bench/results/2026-12-02-h200-s15-mla3-s1-*); tokens equal in bench decode
 * --check at 4K, 9.3e-6 of max |o| from its scheme, 3.42e-3 from the int8 reference (cvt 3.47e-3).
 */
export const MLA_INT8_F16_CONVERT = 'half' as const;

/**
 * The f16 cache's staging defaults (cache 'f16'): f16Rotate and four blocks ahead, the fastest form measured (H200,
 * 1M: 0.784-0.786 ms a layer against 0.796-0.798 with neither; hybrid TPOT median 8.93 against 9.00-9.02; bench
 * decode --check at 4K tokens equal; bench/results/2026-12-03-h200-s16-f16c-s2-*). The int8 cache remains faster.
 */
export const MLA_F16_CACHE_DEFAULTS = { f16Rotate: true, ahead: 4 } as const;

/** Why these shapes cannot run the f16 kernel, or undefined. */
export function mlaInt8F16Unsupported(R: number, Rv: number): string | undefined {
  if (Rv % 128 !== 0) return `needs kv_lora_rank a multiple of 128, got ${Rv}`;
  if ((R - Rv) % 16 !== 0) return `needs rope dims a multiple of 16, got ${R - Rv}`;
  if (R % 64 !== 0) return `needs R = kv_lora_rank + rope a multiple of 64, got ${R}`;
  return undefined;
}

export function planMlaInt8F16(
  o: { H: number; R: number; Rv: number } & MlaInt8F16Options,
  maxShared = 49152,
): MlaInt8F16Plan {
  const { H, R, Rv } = o;
  const why = mlaInt8F16Unsupported(R, Rv);
  if (why) throw new Error(`mlaDecode (int8, f16): ${why}`);
  const L = int8RowLayout(R, Rv);
  const TB = MLA_INT8_F16_TB;
  const wide = o.wide ?? false;
  const WG = wide ? 512 : 256;
  const NG = Math.ceil(H / 32);
  const KS = R + 8;
  const PS = TB + 8;
  const NCV = R / 16;
  const stage = o.stage ?? 'rows';
  const cache = o.cache ?? 'int8';
  if (cache !== 'int8' && cache !== 'f16')
    throw new Error(`mlaDecode (f16 kernel): cache must be int8 or f16, got ${cache}`);
  const f16c = cache === 'f16';
  if (f16c) {
    if (stage !== 'rows' || o.wide || o.swizzle || o.rowSwap || o.pageAhead || o.convert !== undefined)
      throw new Error(
        'mlaDecode (f16 cache): stages rows of f16 (rows staging; not wide, swizzle, rowSwap, pageAhead or convert)',
      );
    if (o.skip?.includes('stores')) throw new Error('mlaDecode (f16 cache): skip stores is an int8 staging diagnostic');
  }
  if (o.f16Rotate && !f16c) throw new Error('mlaDecode (int8, f16): f16Rotate needs the f16 cache');
  const f16Rotate = f16c && (o.f16Rotate ?? MLA_F16_CACHE_DEFAULTS.f16Rotate);
  // Staging items a row: u32 words of 4 codes (rows, words), vec4 of 16 codes (vec4), or vec4 of 8 f16 (f16 cache).
  const rowItems = f16c ? R / 8 : stage === 'vec4' ? NCV : R / 4;
  const items = TB * rowItems;
  const tau = o.tau ?? MLA_INT8_F16_TAU;
  if (!(tau >= 0 && tau <= 15)) throw new Error(`mlaDecode (int8, f16): tau must be in [0, 15], got ${tau}`);
  const sharedBytes = 2 * (2 * TB * KS) + 4 * 8 * 256 + 2 * 32 * PS + 4 * 32 + 16;
  if (wide && Rv % 256 !== 0) throw new Error(`mlaDecode (int8, f16): wide needs Rv a multiple of 256, got ${Rv}`);
  if (wide && (stage !== 'rows' || o.prefetch === false || o.qPerBlock))
    throw new Error('mlaDecode (int8, f16): wide runs rows staging with prefetch and the query in registers');
  if (o.qFold && o.qPerBlock) throw new Error('mlaDecode (int8, f16): qFold and qPerBlock do not combine');
  const ahead = o.prefetch === false ? 1 : (o.ahead ?? (f16c ? MLA_F16_CACHE_DEFAULTS.ahead : 2));
  if (![1, 2, 3, 4].includes(ahead)) throw new Error(`mlaDecode (int8, f16): ahead must be 1, 2, 3 or 4, got ${ahead}`);
  if (wide && ahead > 2) throw new Error('mlaDecode (int8, f16): wide runs ahead 1 or 2');
  // The fifteenth session's defaults where they apply (rows staging, not wide, not swizzle): convert half and
  // rangeIdx (bench/results/2026-12-02-h200-s15-mla3-*); the other staging forms keep cvt and the plain indices.
  const rowsPlain = stage === 'rows' && !wide && !o.swizzle;
  const convert = o.convert ?? (rowsPlain ? MLA_INT8_F16_CONVERT : 'cvt');
  if (!['cvt', 'bits', 'half'].includes(convert))
    throw new Error(`mlaDecode (int8, f16): convert must be cvt, bits or half, got ${convert}`);
  if (convert !== 'cvt' && (stage !== 'rows' || wide || o.swizzle))
    throw new Error('mlaDecode (int8, f16): convert bits / half need rows staging (not wide, not swizzle)');
  if (o.pageAhead && (stage !== 'rows' || wide || o.prefetch === false))
    throw new Error('mlaDecode (int8, f16): pageAhead needs rows staging with prefetch (not wide)');
  if (o.rangeIdx && (stage !== 'rows' || wide || o.swizzle))
    throw new Error('mlaDecode (int8, f16): rangeIdx needs rows staging (not wide, not swizzle)');
  if (o.rowSwap && (stage !== 'rows' || wide || o.swizzle || o.rangeIdx === false))
    throw new Error('mlaDecode (int8, f16): rowSwap needs rows staging with rangeIdx (not wide, not swizzle)');
  if (o.skip?.includes('stores') && (stage !== 'rows' || wide || o.swizzle))
    throw new Error('mlaDecode (int8, f16): skip stores needs rows staging (not wide, not swizzle)');
  if (o.swizzle && stage !== 'rows') throw new Error('mlaDecode (int8, f16): swizzle needs rows staging');
  // qFold stages the query's 32 head rows at stride KS in the kv buffers (2 TB >= 32 rows).
  if (o.qFold && 2 * TB < 32) throw new Error('mlaDecode (int8, f16): qFold needs 2 TB >= 32');
  if (sharedBytes > maxShared)
    throw new Error(
      `mlaDecode (int8, f16): needs ${sharedBytes} bytes of workgroup memory, the device has ${maxShared}`,
    );
  return {
    H,
    R,
    Rv,
    NG,
    HP: 32 * NG,
    // f16 cache: R / 2 words a row (f16Layout.ts); no scales.
    RW: f16c ? R / 2 : L.RW,
    SW: L.SW,
    LC: L.LC,
    NCV,
    TB,
    WG,
    KS,
    PS,
    KST: R / 16,
    KPQ: R / 64,
    CPS: Rv / 128,
    items,
    slots: Math.ceil(items / WG),
    rowItems,
    stage,
    prefetch: o.prefetch ?? true,
    qPerBlock: o.qPerBlock ?? false,
    ahead,
    convert,
    pageAhead: o.pageAhead ?? false,
    swizzle: o.swizzle ?? false,
    qFold: o.qFold ?? false,
    wide,
    CPW: Rv / 256,
    mergeLoads: o.mergeLoads ?? MLA_INT8_F16_MERGE_LOADS,
    rangeIdx: o.rangeIdx ?? rowsPlain,
    rowSwap: o.rowSwap ?? false,
    cache,
    f16Rotate,
    tau,
    skip: [...(o.skip ?? [])],
    sharedBytes,
  };
}

export const mlaInt8F16Key = (p: MlaInt8F16Plan) =>
  `mla_decode_${p.cache === 'f16' ? `f16c${p.f16Rotate ? '_rot' : ''}` : 'int8'}_f16_h${p.H}_r${p.R}_rv${p.Rv}_tau${p.tau}_${p.stage}${p.prefetch ? '' : '_nopf'}${p.qPerBlock ? '_qpb' : ''}${p.swizzle ? '_swz' : ''}${p.qFold ? '_qf' : ''}${p.wide ? '_w512' : ''}_a${p.ahead}${p.convert === 'cvt' ? '' : `_cv${p.convert}`}${p.pageAhead ? '_pga' : ''}${p.rangeIdx ? '_ri' : ''}${p.rowSwap ? '_rsw' : ''}${p.skip.length ? `_no${p.skip.join('-')}` : ''}`;

/**
 * Chunks per sequence: one workgroup an SM of an H200 (132 SMs; its registers allow one) at long contexts (132,
 * 264, 528 took 1.70, 1.73, 1.78 ms at 1M in the first sitting with vec4 staging; 132 and 528 1.33 and 1.41 with
 * words in the second), at least 2 blocks a chunk at short ones (with 16 blocks a chunk, 4K ran 16 workgroups:
 * 0.26 ms; with 2, 0.026 ms).
 */
export function defaultF16Chunks(maxLength: number, B: number, NG: number): number {
  const target = Math.max(1, Math.floor(132 / (B * NG)));
  return Math.max(1, Math.min(target, Math.ceil(maxLength / (2 * MLA_INT8_F16_TB))));
}

/**
 * Fragment offsets (f16 elements in kv / pw, f32 elements in part), for the WGSL and the emulation alike:
 *  - query (left, row-major, stride R, storage qh [B][HP][R]): head half mh, K step ks of head group g
 *  - query staged in kv (qFold; left, row-major, stride KS): head half mh, K step ks
 *  - key (right, col-major: element (channel k, token n) at offset + n KS + k): kv buffer kb, K step ks
 *  - value (right, row-major: element (token k, column n)): kv buffer kb, column tile ct
 *  - P (left, row-major, stride PS): head half mh
 *  - part tile of subgroup sgi (row-major, stride 16)
 */
export const f16Frags = (p: MlaInt8F16Plan) => ({
  query: (b: number, g: number, mh: number, ks: number) => (b * p.HP + 32 * g + 16 * mh) * p.R + 16 * ks,
  queryKv: (mh: number, ks: number) => 16 * mh * p.KS + 16 * ks,
  key: (kb: number, ks: number) => kb * p.TB * p.KS + 16 * ks,
  value: (kb: number, ct: number) => kb * p.TB * p.KS + 16 * ct,
  p: (mh: number) => 16 * mh * p.PS,
  tile: (sgi: number) => 256 * sgi,
  /** wide: key 16 x 8 (right, col-major, stride KS): kv buffer kb, token half nh, K step ks */
  key8: (kb: number, nh: number, ks: number) => kb * p.TB * p.KS + 8 * nh * p.KS + 16 * ks,
  /** wide: the 16 x 8 score partial of (K quarter kq, head half mh, token half nh) in part [kq][32 heads][16] */
  tile8: (kq: number, mh: number, nh: number) => 512 * kq + 256 * mh + 8 * nh,
});
