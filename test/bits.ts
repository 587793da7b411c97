/**
 * Bit-for-bit comparison for tests that claim two kernels compute the same values (the same operations in the same
 * order): f32 compared as u32 patterns (so -0 != 0 and NaN payloads count), bf16 as its u16 patterns.
 */
import { expect } from 'vitest';

/** got = want bit for bit, with the count and first place of a difference in the message. */
export function expectBits(got: Float32Array | Uint16Array, want: Float32Array | Uint16Array, what: string): void {
  const bits = (a: Float32Array | Uint16Array) =>
    a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
  const [g, w] = [bits(got), bits(want)];
  expect(g.length, `${what}: length`).toBe(w.length);
  let diff = 0;
  let first = -1;
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) {
      diff++;
      if (first < 0) first = i;
    }
  }
  expect(
    diff,
    `${what}: ${diff} of ${g.length} differ, the first at ${first} (${got[first]} against ${want[first]})`,
  ).toBe(0);
}
