/**
 * Reference for the int8 latent cache (int8Layout.ts) and absorbed MLA decode over it (decodeInt8.wgsl.ts).
 *
 * Quantisation of a vector part x (c_kv or k_pe of a row, or of a query head): absmax a = max |x|,
 * scale s = a / 127, code = round_half_even(x * (127 / a)) in [-127, 127] (all zero when a = 0).
 *
 * Decode, per sequence b and head h, with the query quantised the same way (q ~ sq * q8 per part):
 *   S[t]  = sqL skL[t] (q8L . k8L[t]) + sqR skR[t] (q8R . k8R[t])      (integer dot products, exact)
 *   p[t]  = exp(scale (S[t] - max S)),   l = sum_t p[t]
 * and the values (c_kv = skL[t] k8L[t]) are weighed by p quantised again, per block of MLA_INT8_TT tokens
 * (blocks aligned to multiples of MLA_INT8_TT, as the kernel's chunks are): with p'[t] = p[t] skL[t] and
 * m = max over the block of p', P8[t] = round_half_even(127 p'[t] / m), so
 *   o[h] = (1 / l) sum_blocks (m / 127) sum_t P8[t] k8L[t]          (again integer dot products)
 * Rounding p at 8 bits costs at most m / 254 per weight of a block, relative to the block's largest weight;
 * the error averages out over blocks and is measured against f32 attention in test/mla-int8.test.ts.
 */
import { int8RowLayout } from './int8Layout.js';
import type { MlaDecodeDims } from './reference.js';

/** Tokens per block of the int8 decode kernel: the granularity at which p is quantised. */
export const MLA_INT8_TT = 32;

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Codes of x[from, to) into bytes of `words` starting at word `w0` (channel i in byte i % 4 of word i / 4). */
function quantizePart(x: Float32Array, from: number, to: number, words: Int32Array, w0: number): number {
  let a = 0;
  for (let c = from; c < to; c++) a = Math.max(a, Math.abs(x[c]));
  const inv = a > 0 ? Math.fround(127 / a) : 0;
  for (let c = from; c < to; c++) {
    const code = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(x[c] * inv))));
    const i = c - from;
    words[w0 + (i >> 2)] |= (code & 0xff) << (8 * (i & 3));
  }
  return Math.fround(a / 127);
}

/** One row [R] (f32) as the int8 cache stores it: RW words (int8Layout.ts). */
export function quantizeRowInt8(x: Float32Array, R: number, Rv: number): Int32Array {
  const L = int8RowLayout(R, Rv);
  const w = new Int32Array(L.RW);
  const f = new Float32Array(w.buffer);
  f[L.SW] = quantizePart(x, 0, Rv, w, 0);
  f[L.SW + 1] = quantizePart(x, Rv, R, w, L.LWp);
  return w;
}

/** The values a stored row stands for: scale * code, [R] f32. */
export function dequantizeRowInt8(words: Int32Array, R: number, Rv: number): Float32Array {
  const L = int8RowLayout(R, Rv);
  const f = new Float32Array(words.buffer, words.byteOffset, words.length);
  const out = new Float32Array(R);
  const byte = (w: number, i: number) => (words[w + (i >> 2)] << (24 - 8 * (i & 3))) >> 24;
  for (let c = 0; c < Rv; c++) out[c] = f[L.SW] * byte(0, c);
  for (let c = Rv; c < R; c++) out[c] = f[L.SW + 1] * byte(L.LWp, c - Rv);
  return out;
}

/** Reference cache append into an int8 pool (words [numPages, pageSize, RW]): rows [N, R] f32. */
export function cacheWriteInt8Reference(
  pool: Int32Array,
  values: Float32Array,
  seq: Int32Array,
  pos: Int32Array,
  pageTable: Int32Array,
  d: { R: number; Rv: number; pageSize: number; maxPages: number },
): void {
  const { RW } = int8RowLayout(d.R, d.Rv);
  for (let i = 0; i < seq.length; i++) {
    const page = pageTable[seq[i] * d.maxPages + Math.floor(pos[i] / d.pageSize)];
    const row = quantizeRowInt8(values.subarray(i * d.R, (i + 1) * d.R), d.R, d.Rv);
    pool.set(row, (page * d.pageSize + (pos[i] % d.pageSize)) * RW);
  }
}

/** The same problem as the f32/bf16 pool's (reference.ts): only the pool's encoding differs. */
export type MlaInt8Dims = MlaDecodeDims;

/**
 * A paged int8 pool read as the kernels read it: the row layout, the words as f32 (the scales), the signed byte i of
 * the row starting at word w, and the first word of sequence b's row t (through its page table).
 */
export function int8PoolView(
  pool: Int32Array,
  pageTable: Int32Array,
  d: Pick<MlaInt8Dims, 'R' | 'Rv' | 'pageSize' | 'maxPages'>,
) {
  const L = int8RowLayout(d.R, d.Rv);
  return {
    L,
    poolF: new Float32Array(pool.buffer, pool.byteOffset, pool.length),
    byte: (w: number, i: number) => (pool[w + (i >> 2)] << (24 - 8 * (i & 3))) >> 24,
    rowOf: (b: number, t: number) =>
      (pageTable[b * d.maxPages + Math.floor(t / d.pageSize)] * d.pageSize + (t % d.pageSize)) * L.RW,
  };
}

/**
 * Absorbed MLA decode over an int8 pool (words), quantised as the kernel does; o_lat [B, H, Rv].
 * `pv: 'f32'` leaves p unquantised (the kernel's f32 P x values variant).
 */
export function mlaDecodeInt8Reference(
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  opts: { pv?: 'dp4a' | 'f32' } = {},
): Float32Array {
  const f32P = opts.pv === 'f32';
  const { B, H, R, Rv, scale } = d;
  const { L, poolF, byte, rowOf } = int8PoolView(pool, pageTable, d);
  const out = new Float32Array(B * H * Rv);
  for (let b = 0; b < B; b++) {
    const T = lengths[b];
    const row = (t: number) => rowOf(b, t);
    for (let h = 0; h < H; h++) {
      const qw = quantizeRowInt8(qFull.subarray((b * H + h) * R, (b * H + h + 1) * R), R, Rv);
      const qf = new Float32Array(qw.buffer);
      const qb = (w: number, i: number) => (qw[w + (i >> 2)] << (24 - 8 * (i & 3))) >> 24;
      const s = new Float64Array(T);
      let max = Number.NEGATIVE_INFINITY;
      for (let t = 0; t < T; t++) {
        const o = row(t);
        let dl = 0;
        for (let c = 0; c < Rv; c++) dl += qb(0, c) * byte(o, c);
        let dr = 0;
        for (let c = 0; c < R - Rv; c++) dr += qb(L.LWp, c) * byte(o + L.LWp, c);
        s[t] = scale * (qf[L.SW] * poolF[o + L.SW] * dl + qf[L.SW + 1] * poolF[o + L.SW + 1] * dr);
        max = Math.max(max, s[t]);
      }
      let sum = 0;
      for (let t = 0; t < T; t++) sum += s[t] = Math.exp(s[t] - max);
      const acc = new Float64Array(Rv);
      for (let t0 = 0; t0 < T; t0 += MLA_INT8_TT) {
        const t1 = Math.min(T, t0 + MLA_INT8_TT);
        let m = 0;
        for (let t = t0; t < t1; t++) m = Math.max(m, Math.fround(s[t] * poolF[row(t) + L.SW]));
        const inv = m > 0 ? 127 / m : 0;
        for (let t = t0; t < t1; t++) {
          const pt = Math.fround(s[t] * poolF[row(t) + L.SW]);
          const w = f32P ? pt : (m / 127) * roundHalfEven(pt * inv);
          const o = row(t);
          for (let c = 0; c < Rv; c++) acc[c] += w * byte(o, c);
        }
      }
      for (let c = 0; c < Rv; c++) out[(b * H + h) * Rv + c] = T ? acc[c] / sum : 0;
    }
  }
  return out;
}
