/**
 * Counter-based random numbers: value i of a stream depends only on (seed, i), so the GPU kernel and
 * this reference produce identical tensors and any slice can be regenerated without the rest. Used for
 * random-weight benchmarks (a 48B model's weights are made on the GPU, never uploaded) and tests.
 */

/** PCG-style integer hash (pcg_hash of Jarzynski & Olano), the same in WGSL. */
export function pcgHash(x: number): number {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Uniform in [lo, hi): 24 random bits, exact in f32. */
export function uniformAt(seed: number, i: number, lo: number, hi: number): number {
  const h = pcgHash((pcgHash(seed >>> 0) + (i >>> 0)) >>> 0);
  const u = (h >>> 8) / 16777216;
  return Math.fround(lo + Math.fround(Math.fround(hi - lo) * u));
}

export function randomUniformReference(n: number, seed: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = uniformAt(seed, i, lo, hi);
  return out;
}
