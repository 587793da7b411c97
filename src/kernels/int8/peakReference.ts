/**
 * What the microbenchmark kernels of peak.wgsl.ts must output, in plain TS, so `bench sgm` reports a
 * rate only for a kernel that computed its products (a loop the compiler dropped would fail here).
 */
import { DP4A_CHAINS, DP4A_LCG, type Dp4aForm, FRAG_WORDS, PEAK_FRAGS, type SgmSource } from './peak.wgsl.js';
import { int8MatmulReference } from './reference.js';

/** Signed byte i of a 32-bit word (i = 0 the lowest). */
const byte = (w: number, i: number) => (w << (24 - 8 * i)) >> 24;

/** WGSL dot4I8Packed: the sum of the four signed byte products (exact: |sum| <= 2^16). */
export function dot4I8Packed(a: number, b: number): number {
  let s = 0;
  for (let i = 0; i < 4; i++) s += byte(a, i) * byte(b, i);
  return s;
}

/** One thread of dp4aPeakWgsl: chains starting at x0[k] with the words y[k]; the wrapped i32 sum. */
export function dp4aPeakThread(x0: ArrayLike<number>, y: ArrayLike<number>, iters: number, form: Dp4aForm): number {
  const x = Array.from({ length: DP4A_CHAINS }, (_, k) => x0[k] | 0);
  let w = (x0[0] ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < iters; i++) {
    for (let k = 0; k < DP4A_CHAINS; k++)
      x[k] = (dot4I8Packed(form === 'chain' ? x[k] : y[k], form === 'chain' ? y[k] : w) + x[k]) | 0;
    w = (Math.imul(w, DP4A_LCG.a) + DP4A_LCG.c) >>> 0;
  }
  return x.reduce((s, v) => (s + v) | 0, 0);
}

/**
 * One subgroup's m n result tiles of sgmPeakWgsl (16 x 16 i32 each, tile (r, j) at (r n + j) 256) for
 * pools a, b of PEAK_FRAGS fragments as int8 (left fragment f: 16 rows x 32, row-major; right fragment f:
 * 16 columns x 32, i.e. stored column-major). i32 wrap-around as on the GPU.
 */
export function sgmPeakExpected(
  a: Int8Array,
  b: Int8Array,
  o: { source: SgmSource; m: number; n: number; iters: number },
): Int32Array {
  const E = 4 * FRAG_WORDS;
  if (a.length !== PEAK_FRAGS * E || b.length !== PEAK_FRAGS * E)
    throw new Error(`sgm peak: pools of ${PEAK_FRAGS * E} int8 each expected, got ${a.length} and ${b.length}`);
  // P[x][y] = left x . right y, a 16 x 16 product over K = 32.
  const P: Int32Array[][] = [];
  for (let x = 0; x < PEAK_FRAGS; x++) {
    P.push([]);
    for (let y = 0; y < PEAK_FRAGS; y++)
      P[x].push(int8MatmulReference(a.subarray(x * E, (x + 1) * E), b.subarray(y * E, (y + 1) * E), 16, 16, 32));
  }
  const out = new Int32Array(o.m * o.n * 256);
  for (let r = 0; r < o.m; r++)
    for (let j = 0; j < o.n; j++) {
      const t = out.subarray((r * o.n + j) * 256, (r * o.n + j + 1) * 256);
      for (let i = 0; i < o.iters; i++) {
        // 'regs' keeps fragments r and j for every step; the loading sources cycle through the pool.
        const pr = o.source === 'regs' ? P[r][j] : P[(i + r) % PEAK_FRAGS][(i + j) % PEAK_FRAGS];
        for (let e = 0; e < 256; e++) t[e] = (t[e] + pr[e]) | 0;
      }
    }
  return out;
}
