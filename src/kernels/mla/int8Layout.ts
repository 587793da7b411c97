/**
 * The int8 latent cache row: one cached token of the MLA latent [c_kv (Rv = kv_lora_rank) | k_pe (R - Rv)]
 * quantised with one absmax scale per part (c_kv is RMS-normed, k_pe is not: their ranges differ), as
 * 32-bit words of four signed bytes (channel 4w + i in byte i of word w, the order dot4I8Packed reads):
 *   words [0, LWp)          c_kv codes, channels past Rv zero (LWp: ceil(Rv / 4) rounded up to 4 words)
 *   words [LWp, LWp + RWp)  k_pe codes, zero-padded the same way
 *   word  SW = LWp + RWp    c_kv scale (f32 bits), x = scale * code
 *   word  SW + 1            k_pe scale
 *   words SW + 2, SW + 3    zero (rows stay whole vec4 of words, so kernels load them 16 bytes at a time)
 * The pool is an i32 tensor [numPages, pageSize, RW]. At the 48B shapes (Rv 512, R 576) RW = 148 words,
 * 592 bytes a token: 0.51x a bf16 row (1152 bytes), 0.26x an f32 one.
 */
export interface Int8RowLayout {
  R: number;
  Rv: number;
  /** Latent words (padded to whole vec4) and rope words (same). */
  LWp: number;
  RWp: number;
  /** Word of the c_kv scale (the k_pe scale follows). */
  SW: number;
  /** Words per row. */
  RW: number;
  /** vec4 columns of codes: latent LC, rope RC, NC = LC + RC (the scales are column NC). */
  LC: number;
  RC: number;
  NC: number;
}

export function int8RowLayout(R: number, Rv: number): Int8RowLayout {
  if (!(Number.isInteger(R) && Number.isInteger(Rv) && Rv >= 1 && Rv <= R)) {
    throw new Error(`int8 latent cache: need integers 1 <= Rv <= R, got R=${R}, Rv=${Rv}`);
  }
  const LWp = Math.ceil(Math.ceil(Rv / 4) / 4) * 4;
  const RWp = Math.ceil(Math.ceil((R - Rv) / 4) / 4) * 4;
  const SW = LWp + RWp;
  return { R, Rv, LWp, RWp, SW, RW: SW + 4, LC: LWp / 4, RC: RWp / 4, NC: SW / 4 };
}

/** Words per cached token of an int8 latent cache (the last dimension of its i32 pool). */
export function int8RowWords(R: number, Rv: number): number {
  return int8RowLayout(R, Rv).RW;
}

/**
 * The MLA latent cache's element types: f32 and bf16 hold the rows as they are, int8 quantises them, f16 rounds them
 * to binary16 pairs in an i32 pool (f16Layout.ts).
 */
export type MlaCacheDtype = 'f32' | 'bf16' | 'int8' | 'f16';

export const MLA_CACHE_DTYPES: readonly MlaCacheDtype[] = ['bf16', 'f32', 'int8', 'f16'];

/** A command's --cache-dtype value, or an error naming the flag, the value and the choices. */
export function parseMlaCacheDtype(flag: string, value: unknown): MlaCacheDtype {
  if (!MLA_CACHE_DTYPES.includes(value as MlaCacheDtype))
    throw new Error(
      `${flag}: '${value}' is not ${MLA_CACHE_DTYPES.slice(0, -1).join(', ')} or ${MLA_CACHE_DTYPES.at(-1)}`,
    );
  return value as MlaCacheDtype;
}
