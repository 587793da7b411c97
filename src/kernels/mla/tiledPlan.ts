/**
 * How the subgroup-tiled MLA decode kernel (decodeTiled.wgsl.ts) lays out its work. Every number the
 * WGSL depends on is here, so the pipeline key comes from the plan and the dispatch cannot disagree.
 *
 * A workgroup handles 32 heads (one head group; H > 32 takes several groups along the grid's z) over a
 * chunk of one sequence, in blocks of TT = 8 cached rows widened once to f32 in workgroup memory. Its
 * 8 SG threads (SG = subgroup size) take two shapes:
 *   S = Q rows^T  thread (head quad hq = subgroup, lane): 4 heads x the lane's slice of R, the query slice
 *                 held in registers for the whole chunk (2 JS vec4); the lanes' partial scores are summed
 *                 by a reduce-scatter over subgroup shuffles, so the online softmax stays in the subgroup.
 *   O += P rows   thread (head octet ho, value column dg): 8 heads x NV2 vec2 of value dims, accumulators in
 *                 registers for the whole chunk (the [8 x 8] register tile of a matmul at SG = 32).
 * Per FMA both phases load about 1 byte of workgroup memory (f32 rows reused by 4 heads in S; p and rows
 * in O), against ~1.5 in the split kernel's S phase (which also widens bf16 at every use, q from L1).
 * Barriers per block: 3 with one row buffer (default), 2 with two.
 * H200 (48B shapes, 1M context, bench/results/2026-12-01-h200-mla-tiled-run3.json): one buffer 3.05 ms,
 * two 3.28, two + pipelined 3.37; scores in two passes + rows loaded during O 2.97 (the default).
 */
export interface MlaTiledVariant {
  H: number;
  R: number;
  Rv: number;
  /** f16: the f16 cache's words (f16Layout.ts), staged as bf16's and widened by unpack2x16float. */
  cacheDtype: 'f32' | 'bf16' | 'f16';
  /** Subgroup size of the device (fixed: min == max); 8, 16 or 32. */
  SG: number;
}

export interface MlaTiledPlan extends MlaTiledVariant {
  /** Threads per workgroup: 8 head quads x SG lanes. */
  WG: number;
  /** Cached rows per block (8 tokens x 4 heads = 32 values per lane before the reduce-scatter). */
  TT: number;
  /** Head groups of 32 (grid z) and heads padded to them. */
  NG: number;
  HP: number;
  /** S: vec2 of R per lane per row (lane owns vec2 index SG j + lane, j < JS). */
  JS: number;
  /** O: value columns (threads per head octet) and vec2 of value dims per thread (index dg + NDG u). */
  NDG: number;
  NV2: number;
  /** Row stride in workgroup memory, in vec2 (zero-padded past R). */
  RS2: number;
  /** Staging: vec2 of the row per global load (4: vec4 of bf16 pairs, 2: vec4 of f32, 1: scalar). */
  UV: number;
  /** Two row buffers (stage the next block while the current one is multiplied) or one (+1 barrier). */
  doubleBuffer: boolean;
  /** S of block k + 1 and O of block k in one barrier-free stretch (needs two row buffers, two p slots). */
  pipelined: boolean;
  /** Tokens per S pass: TT / 2 in two passes (default: half the live score accumulators), or TT. */
  sTokens: number;
  /** Load the next block's rows during this block's O only, not across S (default; not with `pipelined`). */
  lateFetch: boolean;
  sharedBytes: number;
}

export const MLA_TILED_TT = 8;

/** Whether the tiled kernel can run on a device with these subgroups (a fixed size of 8, 16 or 32). */
export function tiledSubgroupSize(hasSubgroups: boolean, min?: number, max?: number): number | undefined {
  if (!hasSubgroups || min === undefined || min !== max) return undefined;
  return min === 8 || min === 16 || min === 32 ? min : undefined;
}

export function planMlaTiled(
  v: MlaTiledVariant,
  maxSharedBytes: number,
  opts: {
    vecAligned?: boolean;
    doubleBuffer?: boolean;
    pipelined?: boolean;
    sHalves?: boolean;
    lateFetch?: boolean;
  } = {},
): MlaTiledPlan {
  const { H, R, Rv, cacheDtype, SG } = v;
  if (!(H >= 1 && R >= 1 && Rv >= 1 && Rv <= R)) {
    throw new Error(`mlaDecode (tiled): need H >= 1 and 1 <= Rv <= R, got H=${H}, R=${R}, Rv=${Rv}`);
  }
  if (cacheDtype !== 'f32' && R % 2)
    throw new Error(`mlaDecode (tiled): a ${cacheDtype} cache needs an even R, got ${R}`);
  if (SG !== 8 && SG !== 16 && SG !== 32) throw new Error(`mlaDecode (tiled): subgroup size ${SG} is not 8, 16 or 32`);
  const TT = MLA_TILED_TT;
  const WG = 8 * SG;
  const NG = Math.ceil(H / 32);
  const JS = Math.ceil(R / (2 * SG));
  const NDG = WG / 4;
  const NV2 = Math.ceil(Math.ceil(Rv / 2) / NDG);
  const bf16 = cacheDtype !== 'f32';
  const vec = (opts.vecAligned ?? true) && (bf16 ? (R / 2) % 4 === 0 : R % 4 === 0);
  const UV = vec ? (bf16 ? 4 : 2) : 1;
  // Covers the S slices and the O columns, whole staging units.
  const RS2 = Math.ceil(Math.max(SG * JS, NDG * NV2) / 4) * 4;
  const pipelined = opts.pipelined ?? false;
  const bytes = (bufs: number) => 8 * bufs * TT * RS2 + 4 * (pipelined ? 2 : 1) * (TT * 32 + 32);
  const fitsDouble = bytes(2) <= maxSharedBytes;
  // One buffer by default: on the H200 it measured faster (1M context: 3.21 ms against 3.43 with two).
  const doubleBuffer = opts.doubleBuffer ?? pipelined;
  if (pipelined && !doubleBuffer) throw new Error('mlaDecode (tiled): the pipelined loop needs two row buffers');
  if (doubleBuffer && !fitsDouble) {
    throw new Error(`mlaDecode (tiled): two row buffers need ${bytes(2)} bytes, the device allows ${maxSharedBytes}`);
  }
  const sharedBytes = bytes(doubleBuffer ? 2 : 1);
  if (sharedBytes > maxSharedBytes) {
    throw new Error(`mlaDecode (tiled): rows of R=${R} need ${sharedBytes} bytes, the device allows ${maxSharedBytes}`);
  }
  // Both on by default: on the H200 at 1M context 2.97 ms against 3.05 with neither (fewer live registers).
  const sTokens = (opts.sHalves ?? true) ? TT / 2 : TT;
  const lateFetch = opts.lateFetch ?? !pipelined;
  if (lateFetch && pipelined)
    throw new Error('mlaDecode (tiled): lateFetch is for the plain loop, not the pipelined one');
  return {
    ...v,
    WG,
    TT,
    NG,
    HP: 32 * NG,
    JS,
    NDG,
    NV2,
    RS2,
    UV,
    doubleBuffer,
    pipelined,
    sTokens,
    lateFetch,
    sharedBytes,
  };
}

export function mlaTiledKey(p: MlaTiledPlan): string {
  return `mla_tiled_h${p.H}_r${p.R}_rv${p.Rv}_${p.cacheDtype}_sg${p.SG}_u${p.UV}_${p.doubleBuffer ? 'db' : 'sb'}${p.pipelined ? '_pipe' : ''}_ts${p.sTokens}${p.lateFetch ? '_late' : ''}`;
}

/**
 * Chunks per sequence for the tiled kernel: one workgroup per SM (its registers, ~200 per thread, leave
 * room for one), i.e. about 132 workgroups on an H200 over the batch and head groups, and at least two
 * blocks per chunk.
 */
export function defaultTiledChunks(maxLength: number, B: number, NG: number, targetWorkgroups = 132): number {
  return Math.max(1, Math.min(Math.ceil(maxLength / (2 * MLA_TILED_TT)), Math.ceil(targetWorkgroups / (B * NG))));
}
