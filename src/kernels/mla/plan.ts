/**
 * How the split-sequence MLA decode kernel (decode.wgsl.ts) tiles its work, from the shapes and the
 * device's workgroup-memory limit. Every number the WGSL depends on is here, so the pipeline key is
 * derived from the plan and the dispatch code and the shader cannot disagree.
 *
 * Per block of TT cached rows (staged once in workgroup memory) a workgroup computes two small matmuls:
 *   S = Q rows^T   ([HP, R] x [R, TT]): task (head quad, token quad, R slice), 4 x 4 accumulators,
 *                  the KS slices of R summed through workgroup memory;
 *   O += P rows    ([HP, TT] x [TT, Rv]): tile of THo heads x (2 vec4 of value dims) per thread, the
 *                  accumulators living in registers across the whole chunk.
 */
export interface MlaDecodeVariant {
  H: number;
  R: number;
  Rv: number;
  /** f16: the f16 cache's words (f16Layout.ts), packed in pairs as bf16's and widened by unpack2x16float. */
  cacheDtype: 'f32' | 'bf16' | 'f16';
}

export interface MlaDecodePlan extends MlaDecodeVariant {
  /** Threads per workgroup. */
  WG: number;
  /** Cached rows per block. */
  TT: number;
  /** Dims per pool word (2 for bf16 pairs packed in a u32) and words per row. */
  DPW: number;
  W: number;
  /** Row stride in workgroup memory (odd, so token quads of the S tasks fall in different banks). */
  RP: number;
  /** Pool read as vec4 words (W % 4 == 0 and a 16-byte aligned pool). */
  vecLoad: boolean;
  /** Fetch the next block's rows into registers while the current block is multiplied. */
  prefetch: boolean;
  /** Heads per O tile, heads padded to a multiple of it, and head quads (vec4 of heads). */
  THo: number;
  HP: number;
  NHT: number;
  /** S phase: token quads per block, slices of R (words per slice SL), task slots per thread. */
  NTT: number;
  KS: number;
  SL: number;
  NSS: number;
  /** O phase: words per thread per row, value-tile columns, head tiles, tile slots per thread. */
  NWT: number;
  NVT: number;
  NHO: number;
  NOS: number;
  sharedBytes: number;
}

export const MLA_SPLIT_WG = 256;

export function planMlaDecode(
  v: MlaDecodeVariant,
  maxSharedBytes: number,
  blockTokens?: number,
  prefetch = true,
): MlaDecodePlan {
  const { H, R, Rv, cacheDtype } = v;
  if (!(H >= 1 && R >= 1 && Rv >= 1 && Rv <= R)) {
    throw new Error(`mlaDecode: need H >= 1 and 1 <= Rv <= R, got H=${H}, R=${R}, Rv=${Rv}`);
  }
  // bf16 and f16 rows: two channels a u32 word.
  const bf16 = cacheDtype !== 'f32';
  if (bf16 && R % 2) throw new Error(`mlaDecode: a ${cacheDtype} cache needs an even row size R, got ${R}`);
  const WG = MLA_SPLIT_WG;
  const DPW = bf16 ? 2 : 1;
  const W = R / DPW;
  const RP = W % 2 ? W : W + 1;
  const THo = H <= 4 ? 4 : 8;
  const HP = Math.ceil(H / THo) * THo;
  const NHT = HP / 4;
  const NWT = 8 / DPW;
  const NVT = Math.ceil(Math.ceil(Rv / DPW) / NWT);
  const NHO = HP / THo;
  const NOS = Math.ceil((NHO * NVT) / WG);
  const make = (TT: number): MlaDecodePlan => {
    const NTT = TT / 4;
    const tiles = NHT * NTT;
    let KS = Math.max(1, Math.min(Math.floor(WG / tiles), W));
    const SL = Math.ceil(W / KS);
    KS = Math.ceil(W / SL);
    const NSS = Math.ceil((tiles * KS) / WG);
    const sharedBytes = 4 * (TT * RP + KS * TT * HP + TT * HP + 3 * HP);
    return {
      ...v,
      WG,
      TT,
      DPW,
      W,
      RP,
      vecLoad: W % 4 === 0,
      prefetch,
      THo,
      HP,
      NHT,
      NTT,
      KS,
      SL,
      NSS,
      NWT,
      NVT,
      NHO,
      NOS,
      sharedBytes,
    };
  };
  if (blockTokens !== undefined) {
    if (!Number.isInteger(blockTokens) || blockTokens < 4 || blockTokens % 4) {
      throw new Error(`mlaDecode: blockTokens must be a positive multiple of 4, got ${blockTokens}`);
    }
    const plan = make(blockTokens);
    if (plan.sharedBytes > maxSharedBytes) {
      throw new Error(
        `mlaDecode: blockTokens ${blockTokens} needs ${plan.sharedBytes} bytes of workgroup memory, the device allows ${maxSharedBytes}`,
      );
    }
    return plan;
  }
  // The largest block that fits: fewer barriers and softmax rounds per cached row.
  for (let TT = 32; TT >= 4; TT -= 4) {
    const plan = make(TT);
    if (plan.sharedBytes <= maxSharedBytes) return plan;
  }
  throw new Error(
    `mlaDecode: rows of R=${R} (${cacheDtype}) with H=${H} do not fit ${maxSharedBytes} bytes of workgroup memory even 4 at a time`,
  );
}

export function mlaDecodeKey(p: MlaDecodePlan): string {
  return `mla_split_h${p.H}_r${p.R}_rv${p.Rv}_${p.cacheDtype}_tt${p.TT}_${p.vecLoad ? 'v' : 's'}${p.prefetch ? '_pf' : ''}`;
}

/**
 * Chunks per sequence: about 264 workgroups in all (two per SM of an H200), at least two blocks each.
 * Measured on the H200 at 1M context (bench/RESULTS.md, one decode pass + merge): 132 chunks 5.03 ms,
 * 264 5.10, 528 5.23, 1056 5.55, 2112 6.05: the work per SM is the same at any count, while more chunks
 * cost merge traffic and a ragged last wave. Two per SM rather than one keeps the balance when the
 * sequences of a batch differ in length (a short one's chunks past its end are empty).
 */
export function defaultChunks(maxLength: number, B: number, TT: number, targetWorkgroups = 264): number {
  return Math.max(1, Math.min(Math.ceil(maxLength / (2 * TT)), Math.ceil(targetWorkgroups / B)));
}
