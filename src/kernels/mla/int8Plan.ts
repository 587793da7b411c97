/**
 * How the int8 MLA decode kernel (decodeInt8.wgsl.ts) lays out its work; the pipeline key comes from here.
 *
 * A workgroup of 256 threads (512 with sHeads 2) handles 32 heads (one head group; more heads take more
 * groups on the grid's z) over a chunk of one sequence, in blocks of TT = 32 cached rows staged in
 * workgroup memory twice: as rows (channels packed four to a word, for the scores) and transposed (tokens
 * packed four to a word, for P x values), both read by dot4I8Packed. Thread shapes:
 *   S  thread (head group hq = lid / 32 of SH = 4 heads, or 2; token t = lid % 32): SH scores over the
 *      whole row; the query comes from global memory at an address shared by the subgroup (one broadcast
 *      load per vec4).
 *   O  thread (head octet ho = lid / NDG, column dg = lid % NDG, NDG = WG / 4): an 8-head x 4 NVU-dim tile
 *      of o in f32 registers, fed once per block by an i32 tile of dot products over the block's 8 token
 *      quads.
 * The softmax of a block is per head over the 32 tokens of a head group: subgroup reductions, plus a trip
 * through workgroup memory where subgroups are narrower than 32.
 * P x values either quantises p per head and block and multiplies on dot4I8Packed (`pv: 'dp4a'`, the
 * default) or keeps p in f32 and widens the value codes to f32 in registers (`pv: 'f32'`: no second
 * rounding, 4x the multiply instructions plus the widening).
 * H200, 48B shapes, 1M context (bench/results/2026-12-01-h200-mla8-int8-run{2,3,4-ssplit}.json): 1.72 ms
 * a layer (the default: straight-line scores; 1.7209 / 1.7201 / 1.7212 in three runs), with the scores'
 * WGSL loop 1.74 (1.7396 / 1.7383 / 1.7376); f32 P x values 2.11-2.14;
 * 512 threads (sHeads 2) 1.98; scores in column halves (sSplit) 1.78; O in head halves 1.79; rows loaded
 * after O 1.88; 264 chunks 1.76.
 * Two barriers a block (twoBarriers, the default since s4b; bench/results/2026-12-01-h200-mla2-int8.json,
 * one run): 1.711 ms against 1.718 for the three-barrier kernel, i.e. barriers and the staging phase are
 * not what limits it; one page-table look-up per token quad (quadRows) 1.759 / 1.785 (slower); O in head
 * halves 1.807, 512 threads 1.860, 264 chunks 1.786. What limits it (estimate, no profiler here): issue
 * and latency with 8 warps an SM: ~13.7k cycles a block of 32 rows against ~4.4k for its 8.7k warp-wide
 * dot4I8Packed at the half-rate integer pipe; the 64 f32 O accumulators a thread holds through the whole
 * loop leave few registers for loads in flight, and more threads (sHeads 2) cost more than they hide.
 * Sixth session (bench/results/2026-12-01-h200-dec8-s6-*, one sitting, bench mla at 1M, the whole call: query
 * quantisation, this kernel, merge; the kernel alone was 1.709 of the 1.713): the P x values' 8 token quads
 * written out (unrollO) 1.553 ms against 1.713 for the WGSL loop (-9%), and with arrays indexed per dimension
 * too (nested) 1.554 (nested alone 1.706: Tint's bounds clamps were not what cost; with --disable-robustness
 * the four are 1.725 / 1.686 / 1.542 / 1.546). Both are the default since: the pair is what the decode step
 * was timed with (TPOT at 1M 16.28 -> 14.92 ms in the same sitting, 7 layers x -0.19 ms), exact against the
 * loop kernel (max relative difference 0 at 4096 rows); nested adds nothing measurable on its own. Slower: 264 chunks with O in head halves 3.64 (1.75 without
 * robustness), nested with 512 threads 3.19. Diagnostics (wrong outputs, not additive: the compiler schedules
 * each differently): without the scores' products 1.586, without the P x values' products 1.956, i.e. the
 * time follows the schedule the compiler finds more than the count of products. The raw dp4a peak is not
 * known from this stack (the int8 matmul's 73.5 TOPS is a lower bound): at it, a layer's 9.1 G
 * dot4I8Packed would take ~1.0 ms.
 */
import { type Int8RowLayout, int8RowLayout } from './int8Layout.js';
import { MLA_INT8_TT } from './int8Reference.js';

export interface MlaInt8Plan extends Int8RowLayout {
  H: number;
  SG: number;
  WG: number;
  TT: number;
  NG: number;
  HP: number;
  /** Subgroups per S head group of 32 threads (32 / SG). */
  NSG: number;
  /** Row vec4 per row (RW / 4) and its stride in workgroup memory (odd: conflict-free 16-byte loads). */
  RW4: number;
  RS4: number;
  /** O: vec4 of value dims per thread (vt vec4 index dg + NDG u, u < NVU). */
  NVU: number;
  /** P x values: int8 p on dot4I8Packed, or f32 p times widened codes. */
  pv: 'dp4a' | 'f32';
  /** Scores: the loop over row columns written out (straight-line code) or a WGSL loop. */
  unrollS: boolean;
  /** dp4a P x values: the i32 tile of 4 heads at a time (two passes, fewer live registers) or all 8. */
  oHalves: boolean;
  /** Load the next block's rows into registers during O (true), or only after it. */
  prefetch: boolean;
  /** Scores in two halves of the row's columns, each thread 4 heads x 2 tokens (one query load, 2 tokens). */
  sSplit: boolean;
  /**
   * Two barriers per block instead of three: a block's transposed copy (vt) is written at the start of
   * its scores and the next block's rows during its P x values, from registers loaded during the scores.
   */
  twoBarriers: boolean;
  /** Row loads: one page-table look-up per token quad where pages are whole quads (else one per row). */
  quadRows: boolean;
  /**
   * Arrays of arrays indexed per dimension (q8 [B][NC][NG][NHG][SH], rows [TT][RS4], vt [Q][LWp], pw [Q][NHG],
   * pool [row][RW4]) instead of flat arrays with computed indices: the same words, but Tint's robustness
   * clamps each dynamic index once per thread (min(hq, 7) serves every column) where the flat form clamps
   * every access (min(qrow + c HP + h, len - 1) for each of the 144 query loads of a block's scores), and
   * constant indices need no clamp, so the addresses become a base plus an immediate offset. Measured: no
   * difference on the H200 (1.706 against 1.713 ms at 1M; the driver's compiler handles the flat form).
   */
  nested: boolean;
  /** P x values: the block's Q token quads written out (constant quad indices) instead of a WGSL loop. */
  unrollO: boolean;
  /** Diagnostic only (wrong outputs): leave out the scores' or the P x values' products, to time the rest. */
  diagnostic: 'none' | 'no-scores' | 'no-pv';
  /** Heads per S thread (4: 256 threads; 2: 512 threads, twice the warps, half the registers each). */
  SH: number;
  /** O threads per head octet (WG / 4): column dg owns vt vec4 dg + NDG u. */
  NDG: number;
  sharedBytes: number;
}

export interface MlaInt8Variant {
  pv?: 'dp4a' | 'f32';
  unrollS?: boolean;
  oHalves?: boolean;
  prefetch?: boolean;
  /** Scores split over two halves of the columns (4 heads x 2 tokens per thread); needs sHeads 4. */
  sSplit?: boolean;
  /**
   * Heads per S thread: 4 (default, 256 threads) or 2 (512 threads: twice the warps, half the registers
   * each; measured slower on the H200 at 1M context, 1.98 against 1.74 ms).
   */
  sHeads?: 2 | 4;
  /**
   * Two barriers per block (default; vt written at the start of S, the next rows during O, the registers
   * loading a block ahead during S, so `prefetch` does not apply), or three (load, S, O each apart).
   */
  twoBarriers?: boolean;
  /**
   * One page-table look-up per token quad (pages of a multiple of 4 rows; others fall back per row).
   * Measured slower at 1M on the H200 (1.759 against 1.711 ms with two barriers), so off by default.
   */
  quadRows?: boolean;
  /** Arrays of arrays indexed per dimension (see MlaInt8Plan.nested; default on, off with sSplit). */
  nested?: boolean;
  /** P x values' token quads written out (default on; off: the WGSL loop of the kernel before s6). */
  unrollO?: boolean;
  /**
   * Diagnostic, never a default (its outputs are wrong): without the scores' products (every score 0)
   * or without the P x values' products, so the time of each phase shows as the difference.
   */
  diagnostic?: 'none' | 'no-scores' | 'no-pv';
}

/**
 * Variant fields mlaDecode's callers leave unset take from here (the plan's defaults otherwise): how `bench
 * decode --mla-int8-variant` times a whole decode step with a variant of this kernel. Empty by default.
 */
export const mlaInt8Overrides: MlaInt8Variant = {};

export function planMlaInt8(
  given: { H: number; R: number; Rv: number; SG: number } & MlaInt8Variant,
  maxSharedBytes: number,
): MlaInt8Plan {
  const v = { ...mlaInt8Overrides, ...given };
  const { H, R, Rv, SG } = v;
  const pv = v.pv ?? 'dp4a';
  if (SG !== 8 && SG !== 16 && SG !== 32) throw new Error(`mlaDecode (int8): subgroup size ${SG} is not 8, 16 or 32`);
  if (!(H >= 1)) throw new Error(`mlaDecode (int8): need H >= 1, got ${H}`);
  const L = int8RowLayout(R, Rv);
  const TT = MLA_INT8_TT;
  const SH = v.sHeads ?? 4;
  if (SH !== 2 && SH !== 4) throw new Error(`mlaDecode (int8): sHeads must be 2 or 4, got ${SH}`);
  const WG = (32 / SH) * 32;
  const sSplit = v.sSplit ?? false;
  if (sSplit && SH !== 4) throw new Error('mlaDecode (int8): sSplit needs sHeads 4');
  // Default on (with unrollO): the pair measured 1.554 against 1.713 ms at 1M, see the header.
  const nested = v.nested ?? !sSplit;
  if (nested && sSplit) throw new Error('mlaDecode (int8): nested indexing is not written for sSplit');
  const NDG = WG / 4;
  const NG = Math.ceil(H / 32);
  const RW4 = L.RW / 4;
  const RS4 = RW4 % 2 ? RW4 : RW4 + 1;
  const NVU = Math.ceil(L.LWp / NDG);
  const NSG = 32 / SG;
  // rows and vt in vec4; p, alpha, sigma and the reductions in SH-vectors of 4 bytes each.
  const NHG = 32 / SH;
  const pVecs = pv === 'dp4a' ? (TT / 4) * NHG : TT * NHG;
  const sharedBytes =
    16 * (TT * RS4 + (TT / 4) * L.LWp + (sSplit ? 2 * TT * 8 : 0)) +
    4 * SH * (pVecs + 2 * NHG + (NSG > 1 ? 2 * NHG * NSG : 0));
  if (sharedBytes > maxSharedBytes) {
    throw new Error(
      `mlaDecode (int8): rows of R=${R} need ${sharedBytes} bytes of workgroup memory, the device allows ${maxSharedBytes}`,
    );
  }
  return {
    ...L,
    H,
    SG,
    WG,
    TT,
    NG,
    HP: 32 * NG,
    NSG,
    RW4,
    RS4,
    NVU,
    pv,
    // Straight-line scores by default: 1.72 against 1.74 ms at 1M in each of three H200 runs.
    unrollS: v.unrollS ?? true,
    oHalves: v.oHalves ?? false,
    prefetch: v.prefetch ?? true,
    SH,
    NDG,
    sSplit,
    twoBarriers: v.twoBarriers ?? true,
    quadRows: v.quadRows ?? false,
    nested,
    unrollO: v.unrollO ?? true,
    diagnostic: v.diagnostic ?? 'none',
    sharedBytes,
  };
}

export function mlaInt8Key(p: MlaInt8Plan): string {
  return `mla_int8_h${p.H}_r${p.R}_rv${p.Rv}_sg${p.SG}_pv${p.pv}${p.unrollS ? '_us' : ''}${p.oHalves ? '_oh' : ''}${p.prefetch ? '_pf' : ''}_sh${p.SH}${p.sSplit ? '_ss' : ''}${p.twoBarriers ? '_b2' : ''}${p.quadRows ? '_qr' : ''}${p.nested ? '_nx' : ''}${p.unrollO ? '_uo' : ''}${p.diagnostic === 'none' ? '' : `_diag_${p.diagnostic}`}`;
}

/** Chunks per sequence: about one workgroup per SM of an H200 (132) over the batch and head groups. */
export function defaultInt8Chunks(maxLength: number, B: number, NG: number, targetWorkgroups = 132): number {
  return Math.max(1, Math.min(Math.ceil(maxLength / (2 * MLA_INT8_TT)), Math.ceil(targetWorkgroups / (B * NG))));
}
