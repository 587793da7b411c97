/**
 * The pieces the two f16 decode emulations (int8F16Emulate.ts, 256 threads; int8F16WideEmulate.ts, 512 threads) walk
 * the same way: fragment load / product / store, the padded query rows, the O rescale, the partials' write-out and
 * the cross-chunk merge, and what they set up before the walk. Each fragment is a rows x cols block, row-major in a Float64Array; products are summed in f64
 * and rounded to f32 (the tensor cores' f32 results).
 */
import { f16Frags, type MlaInt8F16Plan } from './int8F16Plan.js';
import { int8F16Query } from './int8F16Reference.js';
import { int8PoolView, type MlaInt8Dims } from './int8Reference.js';

/** A rows x cols fragment (row-major in the array), loaded row- or column-major. */
export function loadFrag(
  a: Float32Array,
  off: number,
  stride: number,
  rows = 16,
  cols = 16,
  colMajor = false,
): Float64Array {
  const f = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) f[cols * r + c] = colMajor ? a[off + c * stride + r] : a[off + r * stride + c];
  return f;
}

/** C (16 x n) += A (16 x 16) B (16 x n), f32 results. */
export function mmaFrag(A: Float64Array, B: Float64Array, C: Float64Array, n = 16): Float64Array {
  const out = new Float64Array(16 * n);
  for (let r = 0; r < 16; r++)
    for (let c = 0; c < n; c++) {
      let x = C[n * r + c];
      for (let k = 0; k < 16; k++) x += A[16 * r + k] * B[n * k + c];
      out[n * r + c] = Math.fround(x);
    }
  return out;
}

/** A 16 x n fragment stored row-major at stride `stride`. */
export function storeFrag(a: Float32Array, off: number, f: Float64Array, stride: number, n = 16): void {
  for (let r = 0; r < 16; r++) for (let c = 0; c < n; c++) a[off + r * stride + c] = f[n * r + c];
}

/** qh [B, HP, R]: the query kernel's rows (int8F16Query), heads past H zero. */
export function paddedQuery(qFull: Float32Array, d: MlaInt8Dims, HP: number): Float32Array {
  const { B, H, R } = d;
  const q16 = int8F16Query(qFull, d);
  const qh = new Float32Array(B * HP * R);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) qh.set(q16.subarray((b * H + h) * R, (b * H + h + 1) * R), (b * HP + h) * R);
  return qh;
}

/**
 * What both emulations set up before the walk: the fragment offsets, the pool view, the chunk count (of the longest
 * sequence, at least one), the padded query rows and the partials [B, chunks, H, Rv + 2] to fill.
 */
export function emulationStart(
  pl: MlaInt8F16Plan,
  qFull: Float32Array,
  pool: Int32Array,
  pageTable: Int32Array,
  lengths: Int32Array,
  d: MlaInt8Dims,
  chunkLen: number,
) {
  const chunks = Math.ceil(Math.max(1, ...Array.from(lengths)) / chunkLen);
  return {
    F: f16Frags(pl),
    view: int8PoolView(pool, pageTable, d),
    chunks,
    qh: paddedQuery(qFull, d, pl.HP),
    partial: new Float32Array(d.B * chunks * d.H * (d.Rv + 2)),
  };
}

/** One workgroup's arrays: kv (two blocks of TB rows at stride KS), part (score / O tiles), pw (p, f16), alpha. */
export function workgroupArrays(pl: MlaInt8F16Plan) {
  return {
    kv: new Float32Array(2 * pl.TB * pl.KS),
    part: new Float32Array(2048),
    pw: new Float32Array(32 * pl.PS),
    alpha: new Float32Array(32),
  };
}

/** qFold: group g's 32 head rows of batch b staged at stride KS in a kv-sized array (heads past H zero). */
export function foldedQuery(qh: Float32Array, b: number, g: number, HP: number, R: number, TB: number, KS: number) {
  const qkv = new Float32Array(2 * TB * KS);
  for (let hq = 0; hq < 32; hq++)
    qkv.set(qh.subarray((b * HP + 32 * g + hq) * R, (b * HP + 32 * g + hq + 1) * R), hq * KS);
  return qkv;
}

/** Every O tile o[sgi][m * cp + c] (head half m) times its row's alpha, rounded to f32. */
export function rescaleO(o: Float64Array[][], alpha: Float32Array, cp: number): void {
  for (const tiles of o)
    for (let m = 0; m < 2; m++)
      for (let c = 0; c < cp; c++) {
        const t = tiles[m * cp + c];
        for (let e = 0; e < 256; e++) t[e] = Math.fround(t[e] * alpha[16 * m + (e >> 4)]);
      }
}

/**
 * The chunk's partials of group g written out as the kernel does: o[sgi][m * cp + c] holds heads 32 g + 16 m ..,
 * value columns 16 (cp sgi + c) ..; m = mRef, l = the sum of the head's tq threads' lRun; heads past H dropped.
 */
export function writePartials(
  partial: Float32Array,
  pBase: number,
  H: number,
  Rv: number,
  g: number,
  o: Float64Array[][],
  cp: number,
  mRef: Float64Array,
  lRun: Float64Array,
  tq: number,
): void {
  for (let sgi = 0; sgi < o.length; sgi++)
    for (let m = 0; m < 2; m++)
      for (let c = 0; c < cp; c++)
        for (let e = 0; e < 256; e++) {
          const h = 32 * g + 16 * m + (e >> 4);
          const dd = 16 * cp * sgi + 16 * c + (e & 15);
          if (h < H) partial[(pBase + h) * (Rv + 2) + 2 + dd] = o[sgi][m * cp + c][e];
        }
  for (let hq = 0; hq < 32; hq++) {
    const h = 32 * g + hq;
    if (h >= H) continue;
    let lt = 0;
    for (let t = 0; t < tq; t++) lt += lRun[tq * hq + t];
    partial[(pBase + h) * (Rv + 2)] = mRef[hq];
    partial[(pBase + h) * (Rv + 2) + 1] = lt;
  }
}

/** The merge (merge.wgsl.ts) of partials [B, chunks, H, Rv + 2], in f64: o [B, H, Rv]. */
export function mergePartials(partial: Float32Array, B: number, H: number, Rv: number, chunks: number): Float32Array {
  const out = new Float32Array(B * H * Rv);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const at = (c: number) => ((b * chunks + c) * H + h) * (Rv + 2);
      let M = -3e38;
      for (let c = 0; c < chunks; c++) M = Math.max(M, partial[at(c)]);
      let Ls = 0;
      for (let c = 0; c < chunks; c++) Ls += partial[at(c) + 1] * 2 ** (partial[at(c)] - M);
      for (let dd = 0; dd < Rv; dd++) {
        let x = 0;
        for (let c = 0; c < chunks; c++) x += partial[at(c) + 2 + dd] * 2 ** (partial[at(c)] - M);
        out[(b * H + h) * Rv + dd] = Ls > 0 ? x / Ls : 0;
      }
    }
  return out;
}

/**
 * Head hq's lazy running max: set to the block max bm on its first block, moved only when bm passes it by more than
 * tau (then O and l are rescaled by alpha = 2^(old - new), rounded to f32; otherwise alpha = 1).
 */
export function lazyMax(mRef: Float64Array, hq: number, bm: number, tau: number): { al: number; moved: boolean } {
  if (mRef[hq] < -1e38) {
    mRef[hq] = bm;
    return { al: 1, moved: false };
  }
  if (bm > mRef[hq] + tau) {
    const al = Math.fround(2 ** (mRef[hq] - bm));
    mRef[hq] = bm;
    return { al, moved: true };
  }
  return { al: 1, moved: false };
}
