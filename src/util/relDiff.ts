/**
 * max |a - ref| / max |ref| (the absolute difference where ref is all zero): the one relative-difference
 * measure the benchmarks and kernel comparisons report, as the tests' relErr (test/helpers.ts) states
 * their tolerances, so a reported number reads against a test tolerance directly.
 */
export function maxRelDiff(a: Float32Array, ref: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / (scale || 1);
}
