/**
 * The f16 latent cache (`cacheDtype: 'f16'`): each cached token's latent row [c_kv (Rv channels) | k_pe (R - Rv)]
 * rounded to the nearest IEEE binary16 (pack2x16float: ties to even on the devices measured), two channels a 32-bit
 * word: word w holds channel 2w in its low 16 bits and channel 2w + 1 in its high 16 bits. The pool is an i32 tensor
 * [numPages, pageSize, R / 2] (R even), so WGSL may bind it as array<f16> (channel c of a row is its element c) or as
 * vec4<u32> (R 576: 1152 bytes a row, 72 vec4), with the same page table and lengths as the other cache dtypes.
 * FIXED FORMAT: two decode kernels read it (the f16 tensor-core kernel's f16 staging, int8F16Plan.ts `cache: 'f16'`,
 * and a subgroup-matrix kernel loading straight from the pool).
 *
 * Range: f16 holds |x| <= 65504; larger values would round to infinity (pack2x16float's result is not even defined
 * there). c_kv is RMS-normed (kv_a_layernorm: values of order the norm weight, far below) and k_pe is a projection of
 * the hidden state (the 48B checkpoint's are of order 1-10), so neither comes near it. Precision: 2^-11 relative,
 * the rounding the f16 tensor-core kernel applies to every staged row anyway (an int8 row is coarser: 2^-8 of its
 * part's absmax). The size: 2 bytes a channel, a bf16 row's; about 2x an int8 row (592 bytes at R 576).
 *
 * An i32 pool is the f16 cache where the caller says so (`cacheDtype: 'f16'` in mlaDecode's, cacheWrite's and
 * rmsnormCacheWrite's options: the model's sessions always do), else told apart from an int8 one (int8Layout.ts) by
 * its row width: R / 2 words here, int8RowWords(R, Rv) there. The two coincide at tiny R (R 24, Rv 16: the tiny test
 * model), where a pool of unstated kind is taken as int8 (as before the f16 cache existed).
 */
import { f16Round } from '../f16mma.js';
import { int8RowWords } from './int8Layout.js';
import { f16BitsToF32 } from '../../tensor/dtype.js';

/** The value of binary16 bits h (one definition for the cache and the safetensors reader: tensor/dtype.ts). */
export { f16BitsToF32 };

/** Words a cached token takes in an f16 pool: R / 2 (R must be even). */
export function f16RowWords(R: number): number {
  if (!(Number.isInteger(R) && R >= 2 && R % 2 === 0))
    throw new Error(`f16 latent cache: R = kv_lora_rank + qk_rope_head_dim must be an even integer, got R=${R}`);
  return R / 2;
}

/**
 * Which latent cache an i32 pool of `width` words a token holds for rows of R channels. `stated` (the caller's
 * cacheDtype): 'f16' must have width R / 2 (an error naming both otherwise), 'int8' is int8; unstated: 'int8' where
 * width is the int8 row's (int8RowWords(R, Rv), Rv given), else 'f16' where it is R / 2, else undefined.
 */
export function i32PoolKind(width: number, R: number, Rv?: number, stated?: string): 'int8' | 'f16' | undefined {
  if (stated === 'f16') {
    if (width !== R / 2)
      throw new Error(`f16 latent cache: the pool's rows are ${width} words, R=${R} needs R / 2 = ${R / 2}`);
    return 'f16';
  }
  if (stated === 'int8') return 'int8';
  if (Rv !== undefined && Rv >= 1 && Rv <= R && width === int8RowWords(R, Rv)) return 'int8';
  if (R % 2 === 0 && width === R / 2) return 'f16';
  return undefined;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits of x rounded to nearest even (f16Round; past 65504 infinity, NaN a quiet NaN). */
export function f32ToF16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const r = f16Round(Math.fround(x));
  const sign = r < 0 || Object.is(r, -0) ? 0x8000 : 0;
  const a = Math.abs(r);
  if (a === Number.POSITIVE_INFINITY) return sign | 0x7c00;
  if (a === 0) return sign;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24); // subnormal: exact multiple of 2^-24
  f32[0] = a;
  const e = ((u32[0] >>> 23) & 0xff) - 127;
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return sign | ((e + 15) << 10) | m;
}

/** Rows [N, R] (f32 values) as f16 row words [N, R / 2] (channel 2w low, 2w + 1 high). */
export function packF16Rows(values: ArrayLike<number>, R: number): Int32Array {
  const W = f16RowWords(R);
  const N = values.length / R;
  const out = new Int32Array(N * W);
  for (let i = 0; i < N * W; i++) {
    const r = Math.floor(i / W);
    const c = 2 * (i % W);
    out[i] = f32ToF16Bits(values[r * R + c]) | (f32ToF16Bits(values[r * R + c + 1]) << 16);
  }
  return out;
}

/** f16 row words [N, R / 2] back to f32 values [N, R] (a whole pool's words: its rows for the f32 reference decode). */
export function unpackF16Rows(words: Int32Array, R: number): Float32Array {
  const out = new Float32Array(2 * words.length);
  for (let i = 0; i < words.length; i++) {
    out[2 * i] = f16BitsToF32(words[i] & 0xffff);
    out[2 * i + 1] = f16BitsToF32((words[i] >>> 16) & 0xffff);
  }
  return out.subarray(0, (words.length / (R / 2)) * R);
}

/**
 * Appends rows [N, R] at (seq[i], pos[i]) of an f16 pool's words (as the cache-write kernel does: each value rounded
 * to nearest f16).
 */
export function cacheWriteF16Reference(
  pool: Int32Array,
  values: Float32Array,
  seq: Int32Array,
  pos: Int32Array,
  pageTable: Int32Array,
  d: { R: number; pageSize: number; maxPages: number },
): void {
  const W = f16RowWords(d.R);
  const rows = packF16Rows(values, d.R);
  for (let i = 0; i < seq.length; i++) {
    const t = pos[i];
    const page = pageTable[seq[i] * d.maxPages + Math.floor(t / d.pageSize)];
    pool.set(rows.subarray(i * W, (i + 1) * W), (page * d.pageSize + (t % d.pageSize)) * W);
  }
}

/**
 * A paged f16 pool read as the kernels read it: channel c of the row starting at word w (f16 value), and the first
 * word of sequence b's row t (through its page table).
 */
export function f16PoolView(
  pool: Int32Array,
  pageTable: Int32Array,
  d: { R: number; pageSize: number; maxPages: number },
) {
  const W = f16RowWords(d.R);
  return {
    W,
    channel: (w: number, c: number) => f16BitsToF32((pool[w + (c >> 1)] >>> (16 * (c & 1))) & 0xffff),
    rowOf: (b: number, t: number) =>
      (pageTable[b * d.maxPages + Math.floor(t / d.pageSize)] * d.pageSize + (t % d.pageSize)) * W,
  };
}

/** Cached row t of sequence b as f32 values [R]. */
export function f16PoolRow(view: ReturnType<typeof f16PoolView>, row: number, R: number): Float32Array {
  const out = new Float32Array(R);
  for (let c = 0; c < R; c++) out[c] = view.channel(row, c);
  return out;
}
