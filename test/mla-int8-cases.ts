/**
 * Fixtures of the int8 MLA decode's P x V tests (test/mla-int8-lazy.test.ts, test/mla-int8-two-pass.test.ts): the score
 * cases the lazy and two-pass schemes are measured on, and a paged int8 pool of random rows.
 */
import { cacheWriteInt8Reference } from '../src/kernels/mla/int8Reference.js';
import { int8RowWords } from '../src/kernels/mla/int8Layout.js';
import type { Rng } from '../src/util/random.js';

/**
 * One head's scores and values for the lazy and two-pass P x V schemes (int8LazyReference.ts), CPU only: Rv = 16 value
 * channels (the error is per channel, so more channels only repeat it).
 */
export const Rv = 16;

export interface Case {
  s: Float64Array;
  sL: Float64Array;
  codes: Int8Array;
}

function codesOf(rng: Rng, T: number, bias: (t: number) => number): Int8Array {
  const c = new Int8Array(T * Rv);
  for (let t = 0; t < T; t++)
    for (let j = 0; j < Rv; j++) c[t * Rv + j] = Math.max(-127, Math.min(127, Math.round(bias(t) + 50 * rng.normal())));
  return c;
}

export const cases: Record<string, (rng: Rng) => Case> = {
  // Scores as random keys give them (base 2, spread ~2), value scales within 2x.
  random: (rng) => {
    const T = 4096;
    const s = Float64Array.from({ length: T }, () => 2 * rng.normal());
    const sL = Float64Array.from({ length: T }, () => rng.uniform(0.01, 0.02));
    return { s, sL, codes: codesOf(rng, T, () => 0) };
  },
  // One outlier token (score 0, values -100) and 64K tail tokens each ~2^-14 of it (jittered), together ~4x its
  // mass, with values +40: the exact output is mostly the tail's. One digit against the outlier's chunk max
  // rounds the tail of that chunk to zero.
  outlierTail: (rng) => {
    const T = 65536;
    const s = Float64Array.from({ length: T }, () => -14 + 0.5 * rng.normal());
    s[100] = 0;
    const sL = Float64Array.from({ length: T }, () => rng.uniform(0.01, 0.02));
    return { s, sL, codes: codesOf(rng, T, (t) => (t === 100 ? -100 : 40)) };
  },
  // Value scales over three decades (log-uniform): tokens with small s_t get few levels of x.
  scales: (rng) => {
    const T = 8192;
    const s = Float64Array.from({ length: T }, () => 2 * rng.normal());
    const sL = Float64Array.from({ length: T }, () => 10 ** rng.uniform(-3, 0));
    return { s, sL, codes: codesOf(rng, T, () => 10) };
  },
  // A growing max (a score ramp of 24 over the row plus noise): many rescales.
  ramp: (rng) => {
    const T = 16384;
    const s = Float64Array.from({ length: T }, (_, t) => (24 * t) / T + rng.normal());
    const sL = Float64Array.from({ length: T }, () => rng.uniform(0.01, 0.02));
    return { s, sL, codes: codesOf(rng, T, (t) => (t < T / 2 ? -30 : 30)) };
  },
};

/** A paged int8 pool of random rows (k_pe 4x larger), pages scrambled. */
export function makePool(rng: Rng, lengths: Int32Array, R: number, Rv: number, pageSize: number) {
  const B = lengths.length;
  const maxPages = Math.max(1, ...Array.from(lengths, (T) => Math.ceil(T / pageSize)));
  const numPages = B * maxPages;
  const pageTable = Int32Array.from({ length: numPages }, (_, i) => (i * 5 + 3) % numPages);
  const pool = new Int32Array(numPages * pageSize * int8RowWords(R, Rv));
  for (let b = 0; b < B; b++) {
    const T = lengths[b];
    const x = rng.normalArray(T * R);
    for (let t = 0; t < T; t++) for (let c = Rv; c < R; c++) x[t * R + c] *= 4;
    const seq = new Int32Array(T).fill(b);
    const pos = Int32Array.from({ length: T }, (_, t) => t);
    cacheWriteInt8Reference(pool, x, seq, pos, pageTable, { R, Rv, pageSize, maxPages });
  }
  return { pool, pageTable, maxPages };
}
