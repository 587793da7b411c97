/**
 * The gradient of a narrow view: dy [outer, L, inner] placed at [start, start + L) along a dimension of
 * full size F, zeros elsewhere -> [outer, F, inner].
 */
export interface NarrowDims {
  outer: number;
  F: number;
  L: number;
  inner: number;
  start: number;
}

export function narrowBackwardReference(dy: Float32Array, d: NarrowDims): Float32Array {
  const { outer, F, L, inner, start } = d;
  const out = new Float32Array(outer * F * inner);
  for (let o = 0; o < outer; o++) {
    for (let l = 0; l < L; l++) {
      out.set(dy.subarray((o * L + l) * inner, (o * L + l + 1) * inner), (o * F + start + l) * inner);
    }
  }
  return out;
}
