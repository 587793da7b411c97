/**
 * Reference for the int8 cache's f16 tensor-core decode (decodeInt8F16.wgsl.ts, layout int8F16Plan.ts): the
 * arithmetic of its scheme in f64, independent of the fragments.
 *
 * For sequence b, head h, over chunks of chunkLen tokens, each in blocks of TB:
 *   q16[c]    = f16(f32(q[c] * scale * log2 e))            (the query kernel's pack2x16float)
 *   k16[t, c] = f16(f32(code[t, c] * scale_part[t]))       (staging: code x its part's scale; with convert
 *                                                            'half' f16(code * f16(scale_part[t])))
 *   s[t]      = sum_c q16[c] k16[t, c]                      (tensor cores: exact products, f32 sums)
 *   the lazy max: mRef = the chunk's first block's max; a later block whose max bm > mRef + tau sets
 *     alpha = 2^(mRef - bm), mRef = bm, and l, o are scaled by alpha (the kernel's rare rescale)
 *   p[t] = f16(2^(s[t] - mRef)) (<= 2^tau),  l += p,  o += p k16[t, :Rv]
 * then the chunks merged as merge.wgsl.ts does: o = sum_c 2^(m_c - M) o_c / sum_c 2^(m_c - M) l_c.
 * Against f32 attention over the rows the int8 codes stand for, the differences are the f16 roundings of q, of the
 * scaled codes (2^-11 relative, below the int8 codes' own 2^-8) and of p.
 */
import { f16Round } from '../f16mma.js';
import { f16PoolRow, f16PoolView } from './f16Layout.js';
import { int8PoolView, type MlaInt8Dims } from './int8Reference.js';
import { MLA_INT8_F16_TAU, MLA_INT8_F16_TB } from './int8F16Plan.js';

/** The query as the kernel's f16 rows: [B, H, R] -> f16 values of q * c (c = scale * log2 e as an f32). */
export function int8F16Query(q: Float32Array, d: { B: number; H: number; R: number; scale: number }): Float32Array {
  const c = Math.fround(d.scale * Math.LOG2E);
  return Float32Array.from(q.subarray(0, d.B * d.H * d.R), (x) => f16Round(Math.fround(x * c)));
}

/**
 * One code as the kernel stages it: f16(f32(code x scale)), or with convert 'half' (int8F16Plan.ts)
 * f16(code x f16(scale)) (the f16 multiply of the exact code by the rounded scale, rounded once).
 */
export function int8F16Stage(code: number, scale: number, convert: 'cvt' | 'bits' | 'half' = 'cvt'): number {
  return convert === 'half' ? f16Round(code * f16Round(scale)) : f16Round(Math.fround(code * scale));
}

/** Cached row t of sequence b as the kernel stages it: f16(code x its part's scale) (int8F16Stage), [R]. */
export function int8F16Row(
  view: ReturnType<typeof int8PoolView>,
  row: number,
  R: number,
  Rv: number,
  convert: 'cvt' | 'bits' | 'half' = 'cvt',
): Float32Array {
  const { L, poolF, byte } = view;
  const out = new Float32Array(R);
  const sL = poolF[row + L.SW];
  const sR = poolF[row + L.SW + 1];
  for (let c = 0; c < Rv; c++) out[c] = int8F16Stage(byte(row, c), sL, convert);
  for (let c = Rv; c < R; c++) out[c] = int8F16Stage(byte(row + L.LWp, c - Rv), sR, convert);
  return out;
}

export interface F16SchemeStats {
  /** Blocks where some head's max rose past tau (the kernel's rescale flushes). */
  rescales: number;
  /** The largest p formed (<= 2^tau). */
  maxP: number;
}

/** o_lat [B, H, Rv] by the f16 kernel's scheme (f64 sums). */
export function mlaDecodeInt8F16Reference(
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  o: {
    chunkLen: number;
    tau?: number;
    stats?: F16SchemeStats;
    convert?: 'cvt' | 'bits' | 'half';
    /** The pool's cache: int8 (default) or f16 (f16Layout.ts: the staged rows are the pool's f16 values as they are). */
    cache?: 'int8' | 'f16';
  },
): Float32Array {
  const { B, H, R, Rv } = d;
  const TB = MLA_INT8_F16_TB;
  const tau = o.tau ?? MLA_INT8_F16_TAU;
  const f16c = o.cache === 'f16';
  const view = f16c ? undefined : int8PoolView(pool, pageTable, d);
  const view16 = f16c ? f16PoolView(pool, pageTable, d) : undefined;
  const q16 = int8F16Query(qFull, d);
  const out = new Float32Array(B * H * Rv);
  for (let b = 0; b < B; b++) {
    const T = lengths[b];
    const rows: Float32Array[] = [];
    for (let t = 0; t < T; t++)
      rows.push(
        view16 ? f16PoolRow(view16, view16.rowOf(b, t), R) : int8F16Row(view!, view!.rowOf(b, t), R, Rv, o.convert),
      );
    for (let h = 0; h < H; h++) {
      const q = q16.subarray((b * H + h) * R, (b * H + h + 1) * R);
      const s = rows.map((k) => {
        let x = 0;
        for (let c = 0; c < R; c++) x += q[c] * k[c];
        return x;
      });
      const parts: { m: number; l: number; o: Float64Array }[] = [];
      for (let t0 = 0; t0 < T; t0 += o.chunkLen) {
        const t1 = Math.min(T, t0 + o.chunkLen);
        let mRef = Number.NEGATIVE_INFINITY;
        let l = 0;
        const acc = new Float64Array(Rv);
        for (let tb = t0; tb < t1; tb += TB) {
          const te = Math.min(t1, tb + TB);
          let bm = Number.NEGATIVE_INFINITY;
          for (let t = tb; t < te; t++) bm = Math.max(bm, s[t]);
          if (mRef === Number.NEGATIVE_INFINITY) mRef = bm;
          else if (bm > mRef + tau) {
            const alpha = 2 ** (mRef - bm);
            mRef = bm;
            l *= alpha;
            for (let c = 0; c < Rv; c++) acc[c] *= alpha;
            if (o.stats) o.stats.rescales++;
          }
          for (let t = tb; t < te; t++) {
            const p = f16Round(2 ** (s[t] - mRef));
            if (o.stats) o.stats.maxP = Math.max(o.stats.maxP, p);
            l += p;
            const k = rows[t];
            for (let c = 0; c < Rv; c++) acc[c] += p * k[c];
          }
        }
        parts.push({ m: mRef, l, o: acc });
      }
      const M = Math.max(...parts.map((x) => x.m));
      let Ls = 0;
      const num = new Float64Array(Rv);
      for (const x of parts) {
        const w = 2 ** (x.m - M);
        Ls += w * x.l;
        for (let c = 0; c < Rv; c++) num[c] += w * x.o[c];
      }
      for (let c = 0; c < Rv; c++) out[(b * H + h) * Rv + c] = Ls > 0 ? num[c] / Ls : 0;
    }
  }
  return out;
}
