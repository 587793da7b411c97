/**
 * Plain-TS reference of what the f16 tensor-core state pass (stateTc16.wgsl.ts) computes for one chunk of one
 * head: ktFormReference.ts ktStateChunkReference's step with each product's operands rounded to f16 (f16Round)
 * under the kernel's power-of-two scales, the sums and everything else in f32 (Math.fround; the tensor cores'
 * summation order differs, so the kernel matches this to f32 rounding of the sums, not bit for bit):
 *   Kb16[i, k] = f16(Kb[i, k] 2^-kbE_i)    kbE_i: frexp exponent of max_k |Kb[i, k]|   (rows: one subgroup each)
 *   S16[k, c]  = f16(S[k, c] 2^-sE_c)      sE_c:  of max_k |S[k, c]|                   (columns: 16 lanes each)
 *   Y[i, c]    = beta_i (v[i, c] - 2^(kbE_i + sE_c) sum_k Kb16[i, k] S16[k, c])
 *   Y16[i, c]  = f16(Y[i, c] 2^-yE_c)      yE_c:  of max_i |Y[i, c]|
 *   Kt16[i, k] = f16(Kt[i, k] 2^-ktE_k)    ktE_k: of max_i |Kt[i, k]| (rows past L are 0)
 *   S'[k, c]   = exp(gc_last_k) S[k, c] + 2^(ktE_k + yE_c) sum_i Kt16[i, k] Y16[i, c]
 * Every scaled operand lies in [-1, 1]: no f16 overflow whatever the inputs' magnitudes (the f32 sums overflow
 * only where the exact ones leave f32's range). Scales are per row / column, so they do not depend on the
 * kernel's 16-column value tiles.
 */
import { f16Round } from '../f16mma.js';
import type { KtStateChunk } from './ktFormReference.js';

/** frexp's exponent: the e with |x| 2^-e in [0.5, 1) (0 for 0 and non-finite x, as WGSL's frexp). */
export function frexpExp(x: number): number {
  const a = Math.abs(x);
  if (a === 0 || !Number.isFinite(a)) return 0;
  let e = Math.floor(Math.log2(a)) + 1;
  if (a * 2 ** -e >= 1) e++;
  if (a * 2 ** -e < 0.5) e--;
  return e;
}

const fr = Math.fround;

/** One step of the tc16 state pass (see the header): Y [L, V] and the state leaving the chunk [K, V], f32 values. */
export function stateTc16ChunkReference(c: KtStateChunk): { Y: Float32Array; S: Float32Array } {
  const { L, K, V } = c;
  const kbE = Array.from({ length: L }, (_, i) => {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(fr(c.Kb[i * K + k])));
    return frexpExp(m);
  });
  const sE = Array.from({ length: V }, (_, col) => {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(fr(c.S[k * V + col])));
    return frexpExp(m);
  });
  const Kb16 = Float64Array.from({ length: L * K }, (_, e) => f16Round(fr(c.Kb[e]) * 2 ** -kbE[Math.floor(e / K)]));
  const S16 = Float64Array.from({ length: K * V }, (_, e) => f16Round(fr(c.S[e]) * 2 ** -sE[e % V]));
  const Y = new Float32Array(L * V);
  for (let i = 0; i < L; i++) {
    for (let col = 0; col < V; col++) {
      let s = 0;
      for (let k = 0; k < K; k++) s = fr(s + Kb16[i * K + k] * S16[k * V + col]);
      const kbs = fr(s * 2 ** (kbE[i] + sE[col]));
      Y[i * V + col] = fr(fr(c.beta[i]) * fr(fr(c.v[i * V + col]) - kbs));
    }
  }
  const yE = Array.from({ length: V }, (_, col) => {
    let m = 0;
    for (let i = 0; i < L; i++) m = Math.max(m, Math.abs(Y[i * V + col]));
    return frexpExp(m);
  });
  const ktE = Array.from({ length: K }, (_, k) => {
    let m = 0;
    for (let i = 0; i < L; i++) m = Math.max(m, Math.abs(fr(c.Kt[i * K + k])));
    return frexpExp(m);
  });
  const S = new Float32Array(K * V);
  for (let k = 0; k < K; k++) {
    const decay = fr(Math.exp(c.gcLast.length === 1 ? c.gcLast[0] : c.gcLast[k]));
    for (let col = 0; col < V; col++) {
      let s = 0;
      for (let i = 0; i < L; i++)
        s = fr(s + f16Round(fr(c.Kt[i * K + k]) * 2 ** -ktE[k]) * f16Round(Y[i * V + col] * 2 ** -yE[col]));
      S[k * V + col] = fr(fr(decay * fr(c.S[k * V + col])) + fr(s * 2 ** (ktE[k] + yE[col])));
    }
  }
  return { Y, S };
}
